import type { EngineStats, PromiseRecord } from '../index.js';

/**
 * Where a command prints for people (stdout), for machines (`--json`: one JSON document on
 * stdout), and its notes (stderr, one line each, so stdout stays parseable in scripts).
 */
export interface Output {
  readonly json: boolean;
  /** Prints `value` as JSON in `--json` mode, else the human `text`. */
  result(value: unknown, text: () => string): void;
  /** A line for people on stdout (nothing in `--json` mode). */
  line(text: string): void;
  /** A one-line note on stderr, in both modes. */
  note(text: string): void;
}

export function createOutput(json: boolean | undefined, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Output {
  return {
    json: json === true,
    result(value, text) {
      out.write(json ? `${JSON.stringify(value)}\n` : ensureNewline(text()));
    },
    line(text) {
      if (!json) out.write(ensureNewline(text));
    },
    note(text) {
      err.write(`promised: ${text}\n`);
    },
  };
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** A promise, one field a line. */
export function formatRecord(record: PromiseRecord): string {
  const lines: Array<[string, string]> = [
    ['id', record.id],
    ['type', record.type],
    ['status', record.status],
    ['priority', String(record.priority)],
    ['attempts', `${record.attempts} of ${record.maxAttempts}`],
    ['payload', JSON.stringify(record.payload) ?? ''],
  ];
  if (record.result !== null && record.result !== undefined) lines.push(['result', JSON.stringify(record.result)]);
  if (record.error) lines.push(['error', `${record.error.code}: ${record.error.message}`]);
  if (record.dependsOn.length > 0) lines.push(['depends on', record.dependsOn.join(', ')]);
  if (record.progress) lines.push(['progress', `${record.progress.current} / ${record.progress.total}`]);
  lines.push(['created', formatDate(record.createdAt)], ['run at', formatDate(record.runAt)]);
  if (record.startedAt) lines.push(['started', formatDate(record.startedAt)]);
  if (record.completedAt) lines.push(['finished', formatDate(record.completedAt)]);
  return lines.map(([name, value]) => `${name.padEnd(11)}${value}`).join('\n');
}

/** ISO time, or `unknown` for a date that cannot be shown (never a crash of the command). */
export function formatDate(date: Date): string {
  return Number.isNaN(date.getTime()) ? 'unknown' : date.toISOString();
}

/** Promises as a table: id, type, status, attempts, age, error. */
export function formatTable(records: PromiseRecord[], now = Date.now()): string {
  if (records.length === 0) return 'no promises';
  const rows = [
    ['ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'CREATED', 'ERROR'],
    ...records.map((r) => [
      r.id,
      r.type,
      r.status,
      `${r.attempts}/${r.maxAttempts}`,
      `${formatDuration(now - r.createdAt.getTime())} ago`,
      r.error ? `${r.error.code}: ${r.error.message}` : '',
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n');
}

/** Counts by status on one line, in the machine's order. */
export function formatCounts(stats: Pick<EngineStats, 'waiting' | 'pending' | 'in_progress' | 'completed' | 'failed'>): string {
  return `waiting ${stats.waiting}, pending ${stats.pending}, in progress ${stats.in_progress}, completed ${stats.completed}, failed ${stats.failed}`;
}

/** `stats`, for people. */
export function formatStats(stats: EngineStats): string {
  const lines = [formatCounts(stats), `dead letters ${stats.deadLetters}`];
  if (stats.oldestPendingAgeMs !== undefined) lines.push(`oldest runnable promise waiting ${formatDuration(stats.oldestPendingAgeMs)}`);
  if (stats.recent) lines.push(`finished in the last minute: ${stats.recent.completedLastMinute} completed, ${stats.recent.failedLastMinute} failed`);
  if (stats.paused?.length) lines.push(`paused (no process claims them): ${stats.paused.join(', ')}`);
  const types = Object.entries(stats.byType ?? {});
  if (types.length > 0) {
    lines.push('by type:');
    for (const [type, counts] of types.sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`  ${type}: ${Object.entries(counts).map(([status, count]) => `${status} ${count}`).join(', ')}`);
    }
  }
  return lines.join('\n');
}

/** `1h 2m`, `3m 4s`, `5.2s`, `120ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1_000);
  const [d, h, m, s] = [Math.floor(seconds / 86_400), Math.floor(seconds / 3_600) % 24, Math.floor(seconds / 60) % 60, seconds % 60];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s}s`;
}
