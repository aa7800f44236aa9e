export * from './csv.js';
export * from './html.js';
export * from './markdown.js';
export { evidenceTable, stagesTable, type Table } from './tables.js';
