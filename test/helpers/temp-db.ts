import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

const folders: string[] = [];

/** A fresh folder for one test's database files, removed after the test. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-test-'));
  folders.push(dir);
  return dir;
}

/** A path for a fresh database file in its own folder. */
export function tempDbPath(): string {
  return path.join(tempDir(), 'promised.db');
}

afterEach(() => {
  for (const dir of folders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
