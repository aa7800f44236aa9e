import { Document, LineCounter, isNode, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { loadExperimentSchema, type LoadExperiment } from './load-experiment.js';

/** One thing wrong with a manifest, where it is, and (usually) what to do about it. */
export interface ExperimentError {
  /** Dotted path with list indices, e.g. "spec.load.stages[2].duration"; "" for the whole document. */
  path: string;
  message: string;
  /** Where in the source, 1-based, when known. */
  line?: number;
  column?: number;
  source?: string;
}

export type ParseResult =
  | { ok: true; experiment: LoadExperiment }
  | { ok: false; errors: ExperimentError[] };

/**
 * Reads a LoadExperiment from YAML or JSON text and validates it exactly as the apiserver would
 * (same rules, same messages), returning the experiment with every default applied.
 */
export function parseExperiment(text: string, sourceName = '<input>'): ParseResult {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col, source: sourceName };
  };
  if (!Array.isArray(documents) || documents.length === 0) {
    return { ok: false, errors: [{ path: '', message: 'is empty: expected a LoadExperiment manifest', source: sourceName }] };
  }
  const syntaxErrors = documents.flatMap((doc) => doc.errors.map((error) => ({ path: '', message: firstLine(error.message), ...at(error.pos[0]) })));
  if (syntaxErrors.length > 0) return { ok: false, errors: syntaxErrors };
  if (documents.length > 1) {
    return {
      ok: false,
      errors: [{ path: '', message: `holds ${documents.length} YAML documents: put one LoadExperiment in each file`, ...at(documents[1]!.range[0]) }],
    };
  }
  const document = documents[0]!;
  const result = loadExperimentSchema.safeParse(document.toJS(), { error: describeIssue });
  if (result.success) return { ok: true, experiment: result.data };
  return { ok: false, errors: result.error.issues.flatMap((issue) => toErrors(issue, document, at)) };
}

/** Errors one per line, "file:line:column: path: message", for the CLI. */
export function formatErrors(errors: readonly ExperimentError[]): string {
  return errors
    .map((error) => {
      const where = [error.source, error.line, error.column].filter((part) => part !== undefined).join(':');
      const what = error.path ? `${error.path}: ${error.message}` : error.message;
      return where ? `${where}: ${what}` : what;
    })
    .join('\n');
}

/** Dotted path with [i] for list items: the spelling kubectl and the apiserver use. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    return text ? `${text}.${String(key)}` : String(key);
  }, '');
}

function toErrors(issue: z.core.$ZodIssue, document: Document, at: (offset: number) => Pick<ExperimentError, 'line' | 'column' | 'source'>): ExperimentError[] {
  const locate = (path: readonly PropertyKey[]) => {
    const offset = offsetOf(document, path);
    return offset === undefined ? {} : at(offset);
  };
  if (issue.code === 'unrecognized_keys') {
    // One error per key, pointing at the key, so each typo is found by its line.
    const explain = ['loadexperiment', ...issue.path.filter((key) => typeof key === 'string')].join('.');
    return issue.keys.map((key) => ({
      ...locate([...issue.path, key]),
      path: formatPath([...issue.path, key]),
      message: `unknown field: check the spelling (kubectl explain ${explain} lists the fields)`,
    }));
  }
  return [{ ...locate(issue.path), path: formatPath(issue.path), message: issue.message }];
}

/** Where the nearest existing node of a path starts (a missing field points at its parent). */
function offsetOf(document: Document, path: readonly PropertyKey[]): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const node: unknown = length === 0 ? document.contents : document.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return undefined;
}

/** Wording for issues the schema leaves to the defaults: short, and saying what to write instead. */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${article(issue.expected)}, not ${kindOf(issue.input)}`;
    case 'invalid_value':
      return `must be one of: ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    default:
      return undefined;
  }
}

function article(expected: string): string {
  if (expected === 'object') return 'a mapping (key: value)';
  if (expected === 'array') return 'a list';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function kindOf(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return `${typeof input} ${JSON.stringify(input)}`;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!;
}
