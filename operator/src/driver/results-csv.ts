/*
 * A streaming reader for `vegeta encode -to csv` (v12.13.0, lib/results.go NewCSVEncoder): no
 * header, one record per result, Go encoding/csv quoting (a field is quoted when it holds a comma,
 * a quote, CR or LF, or starts with a space; quotes inside are doubled), records end with "\n".
 * Columns:
 *    0 timestamp (unix ns)   1 status code (0: no response)   2 latency (ns)   3 bytes out
 *    4 bytes in   5 error   6 body (base64)   7 attack name   8 seq   9 method   10 url
 *   11 response headers (base64)
 * Only the fields the driver uses are turned into strings; the rest are skipped in place.
 */

export interface VegetaResult {
  /** When the vegeta worker took the request (unix ms, fractional). See driver.ts: this can be before the target was read. */
  timestampMs: number;
  code: number;
  latencyMs: number;
  error: string;
  method: string;
  url: string;
}

const COLUMNS = 12;

export class VegetaCsvReader {
  private rest = '';

  constructor(private readonly onResult: (result: VegetaResult) => void) {}

  /** Feeds decoded text; complete records are reported, a partial one is kept for the next chunk. */
  push(chunk: string): void {
    const text = this.rest.length > 0 ? this.rest + chunk : chunk;
    let position = 0;
    const ends = new Int32Array(COLUMNS);
    records: while (position < text.length) {
      let start = position;
      for (let column = 0; column < COLUMNS; column++) {
        const end = fieldEnd(text, start);
        if (end < 0) break records; // the record continues in the next chunk
        const terminator = text.charCodeAt(end);
        const last = column === COLUMNS - 1;
        if (last ? terminator !== LF : terminator !== COMMA) {
          const line = text.slice(position, text.indexOf('\n', position) + 1 || undefined);
          throw new Error(`vegeta encode -to csv: expected ${COLUMNS} columns per record, got a record ending after column ${column + 1}: ${JSON.stringify(line.slice(0, 300))}`);
        }
        ends[column] = end;
        start = end + 1;
      }
      const field = (column: number) => unquote(text, column === 0 ? position : ends[column - 1]! + 1, ends[column]!);
      this.onResult({
        timestampMs: Number(field(0)) / 1e6,
        code: Number(field(1)),
        latencyMs: Number(field(2)) / 1e6,
        error: field(5),
        method: field(9),
        url: field(10),
      });
      position = start;
    }
    this.rest = position < text.length ? text.slice(position) : '';
  }

  /** Text received after the last complete record (non-empty means the stream was cut). */
  get pending(): string {
    return this.rest;
  }
}

const COMMA = 44;
const LF = 10;
const QUOTE = 34;

/** Index of the ',' or '\n' that ends the field starting at `start`; -1 when the text ends first. */
function fieldEnd(text: string, start: number): number {
  if (text.charCodeAt(start) !== QUOTE) {
    const comma = text.indexOf(',', start);
    const newline = text.indexOf('\n', start);
    if (comma < 0) return newline;
    return newline >= 0 && newline < comma ? newline : comma;
  }
  let index = start + 1;
  for (;;) {
    const quote = text.indexOf('"', index);
    if (quote < 0 || quote + 1 >= text.length) return -1;
    if (text.charCodeAt(quote + 1) === QUOTE) {
      index = quote + 2; // an escaped quote
      continue;
    }
    return quote + 1;
  }
}

function unquote(text: string, start: number, end: number): string {
  if (text.charCodeAt(start) !== QUOTE) return text.slice(start, end);
  return text.slice(start + 1, end - 1).replaceAll('""', '"');
}
