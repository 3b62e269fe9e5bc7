import fs from 'node:fs';
import os from 'node:os';

// What this host can tell about its own processes: whether one is alive, and when it started
// (which tells a process from a later one that got the same pid). Used to recover the claims of
// a dead local worker at once, and by the command line to judge PID files.

const MAX_PID = 2 ** 31 - 1;

/**
 * True while process `pid` runs. A zombie (exited, not yet reaped by its parent) is dead:
 * `kill(pid, 0)` still succeeds on it, so on Linux its state in `/proc/<pid>/stat` decides;
 * where there is no `/proc`, `kill(pid, 0)` alone. A process of another user (EPERM) is alive.
 *
 * @example
 * ```ts
 * if (!isProcessAlive(info.pid)) removeStalePidFile(file);
 * ```
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid > MAX_PID) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // Z: zombie; X: dead (seen only for an instant).
  const state = procStat(pid)?.[0];
  return state !== 'Z' && state !== 'X';
}

/**
 * The start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat`, field 22), or
 * null where `/proc` cannot tell. A pid reused by another program has another start time.
 */
export function processStartTime(pid: number): string | null {
  return procStat(pid)?.[19] ?? null;
}

/**
 * True when a lease owner id (`host:pid:nonce`, as engines write them) names a process of this
 * host that is no longer alive (a zombie included), so its claims can be recovered now rather
 * than when their leases expire. Another host's owner, this process, and anything that does not
 * parse are never dead: their leases run out instead.
 *
 * @example
 * ```ts
 * isDeadLocalOwner(`${os.hostname()}:48213:1a2b3c4d`); // true once process 48213 has died
 * ```
 */
export function isDeadLocalOwner(owner: string): boolean {
  const nonceAt = owner.lastIndexOf(':');
  const pidAt = owner.lastIndexOf(':', nonceAt - 1);
  if (nonceAt <= 0 || pidAt < 0) return false;
  const host = owner.slice(0, pidAt);
  const pidText = owner.slice(pidAt + 1, nonceAt);
  const pid = Number(pidText);
  // A pid is a positive pid_t, written in decimal.
  if (host !== os.hostname() || !/^[1-9][0-9]{0,9}$/.test(pidText) || pid > MAX_PID) return false;
  return pid !== process.pid && !isProcessAlive(pid);
}

/** The fields of `/proc/<pid>/stat` after the command name (state first), or null without /proc. */
function procStat(pid: number): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}
