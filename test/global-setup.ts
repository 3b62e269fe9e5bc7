import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * The CLI tests run the real `promised` command (`node dist/cli/main.js`) as child processes, so
 * the build must be current before any test file starts.
 */
export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
