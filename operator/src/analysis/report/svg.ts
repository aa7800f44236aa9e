/*
 * Line charts as inline SVG, rendered from data: no script, no external stylesheet or font, so the
 * HTML report is one file that opens anywhere (and in a CI artifact viewer).
 */

export interface ChartSeries {
  name: string;
  points: readonly (readonly [number, number])[];
  color: string;
  dashed?: boolean;
  /** false: the line alone, no dot per point (a fitted curve). */
  dots?: boolean;
}

export interface ChartMarker {
  /** A vertical line at x (e.g. the breaking point). */
  x: number;
  label: string;
  color: string;
}

export interface ChartLine {
  /** A horizontal line at y (e.g. the SLO threshold). */
  y: number;
  label: string;
  color: string;
}

export interface ChartBand {
  /** A shaded span of x (e.g. a stage's steady window), labelled at the top. */
  from: number;
  to: number;
  label: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  markers?: readonly ChartMarker[];
  lines?: readonly ChartLine[];
  bands?: readonly ChartBand[];
  /** A dot (with its value as a tooltip) at every point: default true; off for long time series. */
  dots?: boolean;
  width?: number;
  height?: number;
  formatX?: (value: number) => string;
  /** Where to put the x ticks (they span the axis), instead of evenly spaced round numbers: for an axis whose round numbers mean nothing. */
  xTicks?: readonly number[];
  formatY?: (value: number) => string;
  /** Include 0 on the y axis (default true; not with a log scale). */
  yFromZero?: boolean;
  /** log: for latencies, whose interesting part (near the SLO) is orders of magnitude below overload. */
  yScale?: 'linear' | 'log';
}

/** A colour-blind-safe palette (Okabe–Ito). */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'] as const;

const MARGIN = { top: 44, right: 16, bottom: 44, left: 64 } as const;

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[char]!);
}

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 300;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const formatX = options.formatX ?? shortNumber;
  const formatY = options.formatY ?? shortNumber;
  const log = options.yScale === 'log';
  const finite = (value: number) => Number.isFinite(value);
  const plottable = ([x, y]: readonly [number, number]) => finite(x) && finite(y) && (!log || y > 0);
  const points = options.series.flatMap((series) => series.points.filter(plottable));
  const title = `<text x="${MARGIN.left}" y="18" class="title">${escapeXml(options.title)}</text>`;
  // No xmlns: the chart is inline in HTML, whose parser puts <svg> in the SVG namespace itself.
  const open = `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(options.title)}">`;
  if (points.length === 0) {
    return `${open}${title}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="empty">no data</text></svg>`;
  }

  const xs = [...points.map(([x]) => x), ...(options.markers ?? []).map((marker) => marker.x)];
  const ys = [...points.map(([, y]) => y), ...(options.lines ?? []).map((line) => line.y)].filter((y) => !log || y > 0);
  if (options.yFromZero !== false && !log) ys.push(0);
  const xTicks = options.xTicks && options.xTicks.length >= 2 ? [...options.xTicks].sort((a, b) => a - b) : niceTicks(Math.min(...xs), Math.max(...xs), 6);
  // 5% headroom so a threshold line at the top does not sit on the frame.
  const yMax = Math.max(...ys);
  const yTicks = log ? logTicks(Math.min(...ys), yMax) : niceTicks(Math.min(...ys), yMax + 0.05 * Math.abs(yMax), 5);
  const [x0, x1] = [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const ty = (y: number) => (log ? Math.log10(y) : y);
  const [y0, y1] = [ty(yTicks[0]!), ty(yTicks[yTicks.length - 1]!)];
  const sx = (x: number) => MARGIN.left + (x1 === x0 ? plotW / 2 : ((x - x0) / (x1 - x0)) * plotW);
  const sy = (y: number) => MARGIN.top + plotH - (y1 === y0 ? plotH / 2 : ((ty(y) - y0) / (y1 - y0)) * plotH);
  const r = (value: number) => value.toFixed(1);

  const parts: string[] = [open, title];
  for (const tick of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${r(sy(tick))}" y2="${r(sy(tick))}" class="grid"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${r(sy(tick) + 4)}" text-anchor="end" class="tick">${escapeXml(formatY(tick))}</text>`);
  }
  for (const tick of xTicks) {
    parts.push(`<text x="${r(sx(tick))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" class="tick">${escapeXml(formatX(tick))}</text>`);
  }
  for (const band of options.bands ?? []) {
    const [left, right] = [sx(Math.max(band.from, x0)), sx(Math.min(band.to, x1))];
    if (right <= left) continue;
    parts.push(`<rect x="${r(left)}" y="${MARGIN.top}" width="${r(right - left)}" height="${plotH}" class="band"><title>${escapeXml(band.label)}</title></rect>`);
    if (right - left >= 6 * band.label.length) parts.push(`<text x="${r((left + right) / 2)}" y="${MARGIN.top + plotH - 4}" text-anchor="middle" class="band-label">${escapeXml(band.label)}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" class="frame"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle" class="axis">${escapeXml(options.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" class="axis">${escapeXml(options.yLabel)}</text>`);

  for (const line of options.lines ?? []) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${r(sy(line.y))}" y2="${r(sy(line.y))}" stroke="${line.color}" stroke-dasharray="6 4" class="ref"/>`);
    parts.push(`<text x="${MARGIN.left + plotW - 4}" y="${r(sy(line.y) - 4)}" text-anchor="end" fill="${line.color}" class="note">${escapeXml(line.label)}</text>`);
  }
  for (const marker of options.markers ?? []) {
    parts.push(`<line x1="${r(sx(marker.x))}" x2="${r(sx(marker.x))}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="${marker.color}" stroke-dasharray="4 3" class="ref"/>`);
    parts.push(`<text x="${r(sx(marker.x) + 4)}" y="${MARGIN.top + 12}" fill="${marker.color}" class="note">${escapeXml(marker.label)}</text>`);
  }
  for (const series of options.series) {
    const valid = series.points.filter(plottable);
    if (valid.length === 0) continue;
    const path = valid.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${r(sx(x))} ${r(sy(y))}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${series.color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="5 3"' : ''}><title>${escapeXml(series.name)}</title></path>`);
    for (const [x, y] of options.dots === false || series.dots === false ? [] : valid) {
      parts.push(`<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="3" fill="${series.color}"><title>${escapeXml(`${series.name}: ${formatY(y)} at ${formatX(x)}`)}</title></circle>`);
    }
  }
  // Legend on its own row under the title, so long signal names never cover the title or the data.
  let legendX = MARGIN.left;
  for (const series of options.series) {
    parts.push(`<line x1="${legendX}" x2="${legendX + 14}" y1="32" y2="32" stroke="${series.color}" stroke-width="3"${series.dashed ? ' stroke-dasharray="4 2"' : ''}/>`);
    parts.push(`<text x="${legendX + 18}" y="36" class="legend">${escapeXml(series.name)}</text>`);
    legendX += 6.5 * series.name.length + 34;
  }
  parts.push('</svg>');
  return parts.join('');
}

/** Round tick values (1, 2, 2.5, 5 × 10ⁿ) covering [min, max]. */
export function niceTicks(min: number, max: number, count: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const rough = (max - min) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough) ?? 10 * magnitude;
  const start = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let value = start; value <= max + step * 1e-9; value += step) ticks.push(Number(value.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** Decades (1, 10, 100, ...), with 2 and 5 in between when the range spans few decades. */
export function logTicks(min: number, max: number): number[] {
  const low = Math.floor(Math.log10(min));
  const high = Math.max(low + 1, Math.ceil(Math.log10(max)));
  const factors = high - low <= 3 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let exponent = low; exponent <= high; exponent++) {
    for (const factor of factors) {
      const value = Number((factor * 10 ** exponent).toPrecision(12));
      if (exponent === high && factor > 1) break;
      ticks.push(value);
    }
  }
  return ticks;
}

export function shortNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${Number((value / 1e6).toPrecision(3))}M`;
  if (abs >= 1e4) return `${Number((value / 1e3).toPrecision(3))}k`;
  return String(Number(value.toPrecision(3)));
}
