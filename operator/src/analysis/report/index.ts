export * from './csv.js';
export * from './html.js';
export * from './markdown.js';
export { lineChart, niceTicks, escapeXml, type ChartSeries, type LineChartOptions } from './svg.js';
export { evidenceTable, stagesTable, type Table } from './tables.js';
