/**
 * System tools some tests drive (promtool, chromium). Under CI=true a missing tool fails the test
 * (CI must install it); elsewhere the test is skipped with a note saying how to install it.
 */
import { accessSync, constants } from 'node:fs';
import type { TestContext } from 'node:test';

/** The first executable among `candidates`, or null. */
export function findExecutable(candidates: readonly string[]): string | null {
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not this one
    }
  }
  return null;
}

/** Returns the tool's path; when missing, fails under CI=true and skips the test otherwise. */
export function requireTool(t: TestContext, candidates: readonly string[], install: string): string | null {
  const found = findExecutable(candidates);
  if (found !== null) return found;
  const message = `${candidates[0]} not found: ${install}`;
  if (process.env['CI'] === 'true') throw new Error(`${message} (required under CI=true)`);
  t.skip(message);
  return null;
}
