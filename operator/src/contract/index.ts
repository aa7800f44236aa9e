export * from './api-environment.js';
export * from './device-token.js';
export * from './device-token-format.js';
export * from './names.js';
