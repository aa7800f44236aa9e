export * from './bundle.js';
export * from './config.js';
export * from './options.js';
export * from './testrun.js';
export * from './validate-options.js';
