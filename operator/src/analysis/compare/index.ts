export * from './compare.js';
export * from './effects.js';
export * from './record.js';
export * from './render.js';
