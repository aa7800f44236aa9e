export * from './lru-cache.js';
export * from './driver.js';
export * from './latency-histogram.js';
export * from './logins.js';
export * from './metrics.js';
export * from './results-csv.js';
export * from './targets.js';
export * from './vegeta.js';
