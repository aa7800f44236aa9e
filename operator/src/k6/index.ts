export * from './bundle.js';
export * from './config.js';
export * from './options.js';
export * from './schedule.js';
export * from './testrun.js';
export * from './token.js';
export * from './token-format.js';
export * from './validate-options.js';
