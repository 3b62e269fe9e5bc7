import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** Runs a TypeScript fixture in a child Node process (through tsx), collecting its stdout lines. */
export function spawnFixture(fixture: string, args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/fixtures', fixture), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PROMISED_LOG_LEVEL: 'silent' },
  });
  const lines: string[] = [];
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    /** Resolves when the child printed `line`; rejects if it exits first or after `timeoutMs`. */
    waitForLine(line: string, timeoutMs = 20_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child did not print "${line}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        const check = () => {
          if (lines.includes(line)) {
            clearTimeout(timer);
            resolve();
            return true;
          }
          return false;
        };
        if (check()) return;
        child.stdout!.on('data', check);
        void exited.then(() => {
          if (!check()) {
            clearTimeout(timer);
            reject(new Error(`child exited before printing "${line}"; stderr: ${stderr}`));
          }
        });
      });
    },
  };
}

export function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}
