export * from './arrivals.js';
export * from './hash.js';
export * from './payload.js';
export * from './phases.js';
export * from './plan.js';
export * from './runner-slice.js';
export * from './schedule.js';
