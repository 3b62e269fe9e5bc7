import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

// A throwaway PostgreSQL server for the whole test run: initdb in a temp folder, pg_ctl on a free
// loopback port, stopped and removed at teardown. Tests read its admin URL with
// `inject('postgresAdminUrl')` (null, with `postgresSkipReason`, when the binaries are absent).

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string | null;
    postgresSkipReason: string;
  }
}

const BIN_DIRS = ['/usr/local/bin', '/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

/** Where initdb and pg_ctl live, or why we cannot run a server here. */
export function findPostgresBinaries(): { initdb: string; pgCtl: string } | { missing: string } {
  for (const dir of BIN_DIRS) {
    const initdb = path.join(dir, 'initdb');
    const pgCtl = path.join(dir, 'pg_ctl');
    if (fs.existsSync(initdb) && fs.existsSync(pgCtl)) return { initdb, pgCtl };
  }
  return { missing: `initdb/pg_ctl not found in ${BIN_DIRS.join(', ')}` };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningPostgres {
  adminUrl: string;
  dir: string;
  port: number;
  /** Stops the server (fast shutdown) and keeps the data folder. */
  stop(): void;
  /** Starts it again on the same port (after `stop`). */
  start(): void;
  /** Stops it and removes the folder. */
  destroy(): void;
}

/** Runs a command as the `postgres` OS user when we are root (initdb refuses to run as root). */
function asPostgres(command: string[]): void {
  const quoted = command.map((part) => `'${part.replace(/'/g, `'\\''`)}'`).join(' ');
  const result =
    process.getuid?.() === 0
      ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', quoted], { encoding: 'utf8' })
      : spawnSync('/bin/sh', ['-c', quoted], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`);
}

/** initdb + pg_ctl start in a fresh temp folder, on a free loopback port. */
export async function startPostgres(): Promise<RunningPostgres> {
  const binaries = findPostgresBinaries();
  if ('missing' in binaries) throw new Error(binaries.missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', dir]);
  asPostgres([binaries.initdb, '-D', data, '-U', 'postgres', '--auth=trust', '--no-instructions', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200`;
  const start = () => asPostgres([binaries.pgCtl, '-D', data, '-l', path.join(dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
  const stop = () => asPostgres([binaries.pgCtl, '-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    port,
    start,
    stop,
    destroy() {
      try {
        stop();
      } catch {
        // Already stopped.
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** vitest globalSetup: one server for the run, its admin URL provided to every test file. */
export default async function setup(project: TestProject): Promise<() => void> {
  const binaries = findPostgresBinaries();
  if ('missing' in binaries) {
    const reason = `PostgreSQL tests skipped: ${binaries.missing}`;
    console.warn(reason);
    project.provide('postgresAdminUrl', null);
    project.provide('postgresSkipReason', reason);
    return () => {};
  }
  const server = await startPostgres();
  project.provide('postgresAdminUrl', server.adminUrl);
  project.provide('postgresSkipReason', '');
  return () => server.destroy();
}

let databaseCounter = 0;

/** A fresh, empty database on the test server; returns its URL. */
export async function createFreshDatabase(adminUrl: string): Promise<string> {
  const { default: pg } = await import('pg');
  const name = `t_${process.pid}_${Date.now().toString(36)}_${databaseCounter++}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
