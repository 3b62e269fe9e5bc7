import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { isDeadLocalOwner, isProcessAlive } from '../src/kernel/local-process.js';
import { until } from './helpers/wait.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** The state letter of `/proc/<pid>/stat` (R, S, Z…), or null when there is no such process. */
function procState(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * A zombie: `sh` starts `sleep` in the background, prints its pid, then becomes (exec) another
 * `sleep`, which never waits for children. Once the first `sleep` is SIGKILLed it stays a zombie,
 * exited but not reaped, until its parent exits (the afterEach kills it; init then reaps both).
 */
async function zombie(): Promise<{ zombiePid: number; parentPid: number }> {
  const parent = spawn('sh', ['-c', 'sleep 600 & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(parent);
  const zombiePid = await new Promise<number>((resolve, reject) => {
    parent.stdout!.setEncoding('utf8').once('data', (text: string) => resolve(Number(text.trim())));
    parent.once('exit', () => reject(new Error('the parent exited early')));
  });
  // Wait until the shell has become the parent that never waits, then kill its child.
  await until(() => fs.readFileSync(`/proc/${parent.pid}/cmdline`, 'utf8').startsWith('sleep\0'), 10_000, 'the shell to exec sleep');
  process.kill(zombiePid, 'SIGKILL');
  await until(() => procState(zombiePid) === 'Z', 10_000, 'the killed sleep to become a zombie');
  return { zombiePid, parentPid: parent.pid! };
}

describe.skipIf(process.platform !== 'linux')('isProcessAlive', () => {
  it('a zombie (killed, not yet reaped by its parent) is dead, though kill(pid, 0) still succeeds on it', async () => {
    const { zombiePid, parentPid } = await zombie();
    expect(() => process.kill(zombiePid, 0)).not.toThrow();
    expect(isProcessAlive(zombiePid)).toBe(false);
    expect(isProcessAlive(parentPid)).toBe(true);
  });

  it('a live process is alive, this one too; an exited and reaped one is not', async () => {
    const child = spawn('sleep', ['600']);
    children.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    expect(isProcessAlive(child.pid!)).toBe(true);
    expect(isProcessAlive(process.pid)).toBe(true);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(isProcessAlive(child.pid!)).toBe(false);
  });
});

describe('isDeadLocalOwner', () => {
  const host = os.hostname();

  it.skipIf(process.platform !== 'linux')('an owner whose process is a zombie on this host is dead: its claims can be recovered at once', async () => {
    const { zombiePid, parentPid } = await zombie();
    expect(isDeadLocalOwner(`${host}:${zombiePid}:1a2b3c4d`)).toBe(true);
    expect(isDeadLocalOwner(`${host}:${parentPid}:1a2b3c4d`)).toBe(false);
  });

  it('an owner whose process exited on this host is dead', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.once('exit', resolve));
    expect(isDeadLocalOwner(`${host}:${child.pid}:1a2b3c4d`)).toBe(true);
  });

  it.each([
    ['this process', `${host}:${process.pid}:1a2b3c4d`],
    ['a live process on another host (its pid means nothing here)', `another-host:1:1a2b3c4d`],
    ['a pid that is not a number', `${host}:abc:1a2b3c4d`],
    ['pid 0 (kill(0, 0) would ask about our own process group)', `${host}:0:1a2b3c4d`],
    ['a negative pid (a process group)', `${host}:-1:1a2b3c4d`],
    ['an empty pid', `${host}::1a2b3c4d`],
    ['no pid at all', host],
    ['an empty owner', ''],
    ['a pid beyond any pid_t', `${host}:99999999999:1a2b3c4d`],
  ])('is not dead: %s', (_label, owner) => {
    expect(isDeadLocalOwner(owner)).toBe(false);
  });

  it('a live process on this host is not dead', () => {
    expect(isDeadLocalOwner(`${host}:${process.ppid}:1a2b3c4d`)).toBe(false);
  });
});
