/**
 * Debian's Python with `requests`, used as a real client. Tests that need it fail under CI (which
 * installs python3-requests) and skip elsewhere when it is missing.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

export const PYTHON = '/usr/bin/python3';

export async function hasPythonRequests(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await promisify(execFile)(PYTHON, ['-c', 'import requests']);
    return true;
  } catch {
    return false;
  }
}

export async function hasFlask(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await promisify(execFile)(PYTHON, ['-c', 'import flask, requests']);
    return true;
  } catch {
    return false;
  }
}
