/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough to read back
 * what /metrics serves: `# HELP`, `# TYPE`, and sample lines `name{label="value",...} value
 * [timestamp]` with escaped label values (`\\`, `\"`, `\n`) and the special values `+Inf`, `-Inf`
 * and `NaN` (any letter case: prom-client writes `Nan`). Pure: no I/O. Malformed lines throw a
 * PromTextError naming the line.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (e.g. `x_bucket`, `x_sum`, `x_count` for histogram `x`). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  type: MetricType;
  help: string;
  readonly samples: Sample[];
}

export class PromTextError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'PromTextError';
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info'] as const;

/** A sample value: a float, or Inf / NaN in any letter case (as Go's ParseFloat, which Prometheus uses). */
export function parseNumber(text: string): number {
  switch (text.toLowerCase()) {
    case '+inf':
    case 'inf':
      return Number.POSITIVE_INFINITY;
    case '-inf':
      return Number.NEGATIVE_INFINITY;
    case 'nan':
      return Number.NaN;
    default: {
      const n = Number(text);
      if (text.trim() === '' || Number.isNaN(n)) throw new Error(`"${text}" is not a number`);
      return n;
    }
  }
}

/** Parses a whole exposition; families keep the order they first appear in. */
export function parsePromText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  /** The family a sample belongs to: its own name, or the name without a histogram/summary suffix. */
  const familyOf = (sampleName: string): MetricFamily => {
    if (families.has(sampleName)) return family(sampleName);
    for (const suffix of SUFFIXES) {
      if (!sampleName.endsWith(suffix)) continue;
      const base = families.get(sampleName.slice(0, -suffix.length));
      if (base !== undefined && base.type !== 'untyped') return base;
    }
    return family(sampleName);
  };

  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s(.*))?$/.exec(line);
      if (m === null) continue; // an ordinary comment
      const [, keyword, name, rest = ''] = m;
      const f = family(name as string);
      if (keyword === 'HELP') f.help = unescapeHelp(rest);
      else {
        const type = rest.trim();
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type))
          throw new PromTextError(`unknown metric type "${type}"`, lineNo);
        f.type = type as MetricType;
      }
      continue;
    }
    const sample = parseSampleLine(line, lineNo);
    familyOf(sample.name).samples.push(sample);
  }
  return families;
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

function parseSampleLine(line: string, lineNo: number): Sample {
  const nameMatch = METRIC_NAME.exec(line);
  if (nameMatch === null) throw new PromTextError('expected a metric name', lineNo);
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      while (line[pos] === ' ') pos++;
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const labelMatch = LABEL_NAME.exec(line.slice(pos));
      if (labelMatch === null) throw new PromTextError('expected a label name', lineNo);
      const labelName = labelMatch[0];
      pos += labelName.length;
      if (line[pos] !== '=' || line[pos + 1] !== '"')
        throw new PromTextError(`expected ="…" after label ${labelName}`, lineNo);
      pos += 2;
      let value = '';
      for (;;) {
        const c = line[pos];
        if (c === undefined) throw new PromTextError(`unterminated value of label ${labelName}`, lineNo);
        pos++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos];
          pos++;
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new PromTextError(`bad escape \\${e ?? ''} in label ${labelName}`, lineNo);
        } else value += c;
      }
      labels[labelName] = value;
      while (line[pos] === ' ') pos++;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') throw new PromTextError('expected , or } after a label', lineNo);
    }
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  if (line[pos] !== ' ' && line[pos] !== '\t')
    throw new PromTextError('expected a space before the value', lineNo);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '')
    throw new PromTextError('expected a value and an optional timestamp', lineNo);
  let value: number;
  try {
    value = parseNumber(rest[0] as string);
  } catch (err) {
    throw new PromTextError((err as Error).message, lineNo);
  }
  return { name, labels, value };
}

/** Samples of one name whose labels include every pair in `match`. */
export function samplesOf(
  families: ReadonlyMap<string, MetricFamily>,
  sampleName: string,
  match: Readonly<Record<string, string>> = {},
): Sample[] {
  const out: Sample[] = [];
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== sampleName) continue;
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) out.push(s);
    }
  }
  return out;
}

/** Sum of the values of `samplesOf(...)`. */
export function sumOf(
  families: ReadonlyMap<string, MetricFamily>,
  sampleName: string,
  match: Readonly<Record<string, string>> = {},
): number {
  return samplesOf(families, sampleName, match).reduce((acc, s) => acc + s.value, 0);
}

/** Sums of `sampleName` grouped by the value of one label. */
export function sumBy(
  families: ReadonlyMap<string, MetricFamily>,
  sampleName: string,
  label: string,
  match: Readonly<Record<string, string>> = {},
): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samplesOf(families, sampleName, match)) {
    const key = s.labels[label];
    if (key === undefined) continue;
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}
