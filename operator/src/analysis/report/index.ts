export * from './csv.js';
export * from './html.js';
export * from './markdown.js';
export { evidenceTable, stagesTable } from './tables.js';
export { textTable } from './text.js';
export { REPORT_FILES, writeReportFiles } from './files.js';
export { scalingFitLines, scalingTable, writeScalingFiles } from './scaling.js';
