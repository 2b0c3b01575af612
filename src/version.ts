/**
 * Files of the sidecache package itself (package.json, config/), found from this module: it sits
 * directly in src/, and the shipped build (build.mjs) puts every bundled chunk directly in dist/,
 * so one directory up is the package root in both. A module deeper in src/ that resolved its own
 * `../../` would point outside the package once bundled: such paths are resolved here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The absolute path of `relative` inside the package root. */
export function packageFile(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const SIDECACHE_VERSION: string = readVersion();
