/**
 * A small Dockerfile reader for tests that check the image without a Docker engine: instructions
 * with their flags and arguments, grouped by build stage, exec-form (JSON) arguments and ENV pairs.
 * Covers the syntax our Dockerfile uses (comments, parser directives, line continuations).
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  readonly keyword: string;
  /** `--name=value` flags before the arguments (`--from=build`, `--interval=15s`). */
  readonly flags: Readonly<Record<string, string>>;
  /** The arguments after the flags, continuations joined with a space. */
  readonly args: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

export interface BuildStage {
  /** The base image as written (`node:22-bookworm-slim`). */
  readonly image: string;
  /** `AS name`, if any. */
  readonly name: string | null;
  /** Instructions after FROM, up to the next FROM. */
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  readonly instructions: readonly Instruction[];
  readonly stages: readonly BuildStage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let i = 0;
  while (i < lines.length) {
    const start = i;
    let line = (lines[i] ?? '').trim();
    i++;
    if (line === '' || line.startsWith('#')) continue;
    // Continuations: a trailing backslash joins the next line; comment lines inside are skipped.
    while (line.endsWith('\\') && i < lines.length) {
      line = line.slice(0, -1).trimEnd();
      const next = (lines[i] ?? '').trim();
      i++;
      if (next.startsWith('#')) {
        line += ' \\';
        continue;
      }
      line += ` ${next}`;
    }
    const m = /^(\S+)\s*(.*)$/s.exec(line);
    if (!m) continue;
    let rest = m[2] ?? '';
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); f; f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
      flags[f[1] as string] = f[2] ?? '';
      rest = rest.slice(f[0].length);
    }
    instructions.push({ keyword: (m[1] as string).toUpperCase(), flags, args: rest.trim(), line: start + 1 });
  }
  const stages: BuildStage[] = [];
  let current: { image: string; name: string | null; instructions: Instruction[] } | null = null;
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [image = '', as, name] = ins.args.split(/\s+/);
      current = { image, name: as?.toUpperCase() === 'AS' && name ? name : null, instructions: [] };
      stages.push(current);
    } else current?.instructions.push(ins);
  }
  return { instructions, stages };
}

/** The exec (JSON array) form of CMD / ENTRYPOINT / HEALTHCHECK CMD, or null for the shell form. */
export function execForm(args: string): string[] | null {
  const s = args.trim();
  if (!s.startsWith('[')) return null;
  const parsed: unknown = JSON.parse(s);
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
    throw new Error(`not a JSON array of strings: ${s}`);
  }
  return parsed;
}

/** `ENV A=1 B="x y"` (and the legacy `ENV A 1`) as pairs, in order. */
export function envPairs(args: string): Array<[string, string]> {
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=].*)$/.exec(args);
  if (legacy && !args.includes('=')) return [[legacy[1] as string, (legacy[2] as string).trim()]];
  const out: Array<[string, string]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) {
    const raw = m[2] as string;
    out.push([m[1] as string, raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
  }
  return out;
}

/** Every instruction with `keyword` in a stage. */
export function all(stage: BuildStage, keyword: string): Instruction[] {
  return stage.instructions.filter((ins) => ins.keyword === keyword);
}

/** The last instruction with `keyword` in a stage (the one that takes effect), or undefined. */
export function last(stage: BuildStage, keyword: string): Instruction | undefined {
  return all(stage, keyword).at(-1);
}
