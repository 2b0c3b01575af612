import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every .yaml/.yml file under `dir`, recursively, in a stable (sorted) order. */
export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return yamlFiles(p);
      return /\.ya?ml$/.test(name) ? [p] : [];
    });
}
