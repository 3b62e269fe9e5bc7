#!/usr/bin/env node
// The `promised` command. This file only wires commander; each command lives in its own module,
// imported when it runs, so `promised enqueue` (what a git hook pays for) loads nothing it does
// not use.
import module from 'node:module';
import { Command, CommanderError } from 'commander';
import { durationArgument, integerArgument } from './arguments.js';
import { describeError, EXIT, exitCodeOf, oneLine } from './exit-codes.js';
import type { EnqueueCommandOptions } from './enqueue-command.js';
import type { DashboardCommandOptions } from './dashboard-command.js';
import type { CleanupOptions, DeadLettersOptions } from './maintenance-commands.js';
import type { GlobalOptions } from './open-engine.js';
import { createOutput, type Output } from './output.js';
import type { ListOptions, RetryCommandOptions } from './promise-commands.js';
import type { WorkerStartOptions, WorkerStatusOptions, WorkerStopOptions } from './worker-commands.js';
import type { MigrateOptions, SteerOptions } from './workflow-commands.js';

// Each command's code is a chunk of the bundle loaded after this line: Node keeps its compiled form
// (in the OS temp folder, or NODE_COMPILE_CACHE), so a git hook's second `promised enqueue` skips
// compiling it. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
module.enableCompileCache();

const program = new Command()
  .name('promised')
  .description('Durable promises and workflows on SQLite or PostgreSQL')
  .option('--db <path>', 'SQLite file or postgres:// URL (or the PROMISED_DB variable)', process.env.PROMISED_DB ?? './promised.db')
  .option('--json', 'machine-readable output: one JSON document on stdout')
  .exitOverride()
  .configureOutput({
    // Commander's own refusals (unknown command or option, missing argument) as one line with a
    // code, like every other refusal.
    writeErr: (text) => process.stderr.write(text.startsWith('error: ') ? `promised: INVALID_ARGUMENT: ${oneLine(text.slice(7).replace(/\n(?=\S)/g, ' '))}\n` : text),
  });

/**
 * Runs a command with the global options merged into its own, and records its exit code.
 * Commander hands an action its arguments, then its options, then the command.
 */
function run<O extends GlobalOptions, A extends unknown[] = []>(work: (output: Output, options: O, ...args: A) => Promise<number>) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = command.optsWithGlobals<O>();
    process.exitCode = await work(createOutput(options.json), options, ...(args.slice(0, -2) as A));
  };
}

program
  .command('demo')
  .description('run the quick-start demo: three reviews in parallel and a setup → tests → run chain')
  .action(
    run(async (_output, options) => {
      const { runDemo } = await import('./demo.js');
      await runDemo({ database: options.db });
      return EXIT.ok;
    }),
  );

const worker = program.command('worker').description('run, stop and inspect the background worker of a database');
worker
  .command('start')
  .description('start a worker (detached unless --foreground); TASKS_MODULE default-exports (engine) => void')
  .argument('<TASKS_MODULE>', 'module whose default export registers tasks, periodics and workflows')
  .option('--concurrency <n>', 'handlers running at once', integerArgument('--concurrency', 1, 10_000), 4)
  .option('--foreground', 'run in this process (systemd, containers); log to stderr unless --log-file')
  .option('--pid-file <path>', 'PID file (default: <db>.worker.pid; for PostgreSQL ./promised-<host>-<port>-<database>.worker.pid); give each worker of one database its own')
  .option('--log-file <path>', 'pino log file of a detached worker (default: <db>.worker.log)')
  .option('--stop-timeout <duration>', 'on stop, how long running handlers may finish before their claims are handed back', durationArgument('--stop-timeout'), 30_000)
  .action(
    run(async (output, options: WorkerStartOptions, tasks: string) => {
      const { workerStart } = await import('./worker-commands.js');
      return workerStart(tasks, options, output);
    }),
  );
worker
  .command('stop')
  .description('stop the worker(s) gracefully: SIGTERM, then wait until running handlers finish')
  .option('--pid-file <path>', 'stop only the worker of this PID file')
  .option('--timeout <duration>', "how long to wait (default: the worker's stop timeout + 10s)", durationArgument('--timeout'))
  .action(
    run(async (output, options: WorkerStopOptions) => {
      const { workerStop } = await import('./worker-commands.js');
      return workerStop(options, output);
    }),
  );
worker
  .command('status')
  .description('running or not, pid, uptime, and counts by status')
  .option('--pid-file <path>', 'look only at this PID file')
  .action(
    run(async (output, options: WorkerStatusOptions) => {
      const { workerStatus } = await import('./worker-commands.js');
      return workerStatus(options, output);
    }),
  );

program
  .command('enqueue')
  .description('store a promise and print its id; with --tasks and no live worker, run it here synchronously')
  .argument('<TYPE>', 'task type')
  .argument('[JSON]', 'payload, as JSON')
  .option('--priority <n>', 'higher runs first (-1000…1000)', integerArgument('--priority', -1000, 1000))
  .option('--delay <duration>', 'wait this long before the first attempt (ms, or 30s, 5m…)', durationArgument('--delay'))
  .option('--depends-on <id...>', 'ids of promises that must complete first')
  .option('--key <key>', 'idempotency key: the same key returns the first promise')
  .option('--tasks <module>', "tasks module that defines TYPE (default: the running worker's)")
  .option('--pid-file <path>', 'the worker to look for (default: <db>.worker*.pid)')
  .option('--wait', 'wait for the outcome and print the result (exit 1 if it failed)')
  .option('--timeout <duration>', 'with --wait: give up after this long (exit 1)', durationArgument('--timeout'))
  .action(
    run(async (output, options: EnqueueCommandOptions, type: string, json: string | undefined) => {
      const { enqueueCommand } = await import('./enqueue-command.js');
      return enqueueCommand(type, json, options, output);
    }),
  );

program
  .command('status')
  .description('one promise: status, attempts, payload, result or error')
  .argument('<ID>', 'promise id')
  .action(
    run(async (output, options, id: string) => {
      const { statusCommand } = await import('./promise-commands.js');
      return statusCommand(id, options, output);
    }),
  );
program
  .command('list')
  .description('promises, newest first')
  .option('--status <status>', 'waiting | pending | in_progress | completed | failed')
  .option('--type <type>', 'only this task type')
  .option('--limit <n>', 'at most this many', integerArgument('--limit', 1, 10_000), 50)
  .action(
    run(async (output, options: ListOptions) => {
      const { listCommand } = await import('./promise-commands.js');
      return listCommand(options, output);
    }),
  );
program
  .command('stats')
  .description('counts by status and type, dead letters, recent throughput')
  .action(
    run(async (output, options) => {
      const { statsCommand } = await import('./promise-commands.js');
      return statsCommand(options, output);
    }),
  );
program
  .command('cancel')
  .description('cancel a waiting, pending or running promise (it fails with CANCELLED)')
  .argument('<ID>', 'promise id')
  .action(
    run(async (output, options, id: string) => {
      const { cancelCommand } = await import('./promise-commands.js');
      return cancelCommand(id, options, output);
    }),
  );
program
  .command('retry')
  .description('send a failed promise back to pending, attempts reset')
  .argument('<ID>', 'promise id')
  .option('--payload <json>', 'run it with this payload instead of the stored one')
  .action(
    run(async (output, options: RetryCommandOptions, id: string) => {
      const { retryCommand } = await import('./promise-commands.js');
      return retryCommand(id, options, output);
    }),
  );
program
  .command('dead-letters')
  .description('promises that failed for good; --retry retries them all, --clear empties the list')
  .option('--clear', 'remove every dead-letter record')
  .option('--retry', 'retry every dead-lettered promise (oldest first); those refused are listed')
  .option('--limit <n>', 'at most this many', integerArgument('--limit', 1, 10_000), 50)
  .action(
    run(async (output, options: DeadLettersOptions) => {
      const { deadLettersCommand } = await import('./maintenance-commands.js');
      return deadLettersCommand(options, output);
    }),
  );
for (const action of ['pause', 'resume'] as const) {
  program
    .command(`${action} <type>`)
    .description(action === 'pause' ? 'stop every process from claiming promises of this task type (running ones finish)' : 'let every process claim promises of this task type again')
    .action(
      run(async (output, options: GlobalOptions, type: string) => {
        const { pauseCommand } = await import('./maintenance-commands.js');
        return pauseCommand(action, type, options, output);
      }),
    );
}
program
  .command('cleanup')
  .description('remove finished promises whose results expired, or (--older-than) finished longer ago')
  .option('--older-than <duration>', 'also remove promises finished longer ago than this (7d, 12h…)', durationArgument('--older-than'))
  .action(
    run(async (output, options: CleanupOptions) => {
      const { cleanupCommand } = await import('./maintenance-commands.js');
      return cleanupCommand(options, output);
    }),
  );

const workflows = program.command('workflows').description('running workflows and new versions of their machines');
workflows
  .command('migrate')
  .description('with --dry-run: what a worker started with TASKS_MODULE would do to each running workflow (migrate, fail, resume), writing nothing; exits 1 if one would fail')
  .requiredOption('--tasks <module>', 'tasks module that registers the new versions of the workflows (nothing is run)')
  .option('--dry-run', 'show, write nothing (required: workflows are migrated when a worker starts)')
  .option('--name <workflow>', 'only the workflows of this name')
  .action(
    run(async (output, options: MigrateOptions) => {
      const { migrateCommand } = await import('./workflow-commands.js');
      return migrateCommand(options, output);
    }),
  );

workflows
  .command('send')
  .description('send a running workflow an event: accepted, kept for a later state, or dropped')
  .argument('<ID>', 'workflow id')
  .argument('<EVENT>', 'an event type (APPROVE) or a JSON object with a "type"')
  .requiredOption('--tasks <module>', "tasks module that registers the workflow's machine (it decides the event; nothing else runs)")
  .option('--key <key>', 'idempotency key: the same send repeated is one event')
  .action(
    run(async (output, options: SteerOptions, id: string, event: string) => {
      const { sendCommand } = await import('./workflow-commands.js');
      return sendCommand(id, event, options, output);
    }),
  );
workflows
  .command('cancel')
  .description('cancel a running workflow: its steps abort, it ends failed with CANCELLED (after compensating, if its machine handles promised.cancel)')
  .argument('<ID>', 'workflow id')
  .requiredOption('--tasks <module>', "tasks module that registers the workflow's machine")
  .action(
    run(async (output, options: SteerOptions, id: string) => {
      const { cancelWorkflowCommand } = await import('./workflow-commands.js');
      return cancelWorkflowCommand(id, options, output);
    }),
  );
for (const [name, pause] of [['pause', true], ['resume', false]] as const) {
  workflows
    .command(name)
    .description(pause ? 'pause a running workflow: none of its steps is claimed and none of its timers fires until resumed' : 'resume a paused workflow')
    .argument('<ID>', 'workflow id')
    .option('--tasks <module>', "tasks module that registers the workflow's machine")
    .action(
      run(async (output, options: SteerOptions, id: string) => {
        const { pauseWorkflowCommand } = await import('./workflow-commands.js');
        return pauseWorkflowCommand(id, pause, options, output);
      }),
    );
}

program
  .command('dashboard')
  .description('the web dashboard and the inspector hub (Stately wire format) over the database, until Ctrl-C')
  .option('--port <n>', 'port to listen on', integerArgument('--port', 0, 65_535), 4242)
  .option('--host <host>', 'address to listen on; anything but loopback needs --token', '127.0.0.1')
  .option('--token <token>', 'required on every request (or PROMISED_DASHBOARD_TOKEN); at least 16 characters', process.env.PROMISED_DASHBOARD_TOKEN)
  .option('--tasks <module>', "tasks module whose workflows' state charts to draw (nothing is run)")
  .option('--poll <ms>', 'how often to read changes made by other processes', integerArgument('--poll', 100, 60_000), 1_000)
  .action(
    run(async (output, options: DashboardCommandOptions) => {
      const { dashboardCommand } = await import('./dashboard-command.js');
      return dashboardCommand(options, output);
    }),
  );

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version exit 0; every refusal by commander is a bad argument. It printed the reason.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.badInput;
  } else {
    process.stderr.write(`${describeError(error)}\n`);
    if (exitCodeOf(error) === EXIT.failure && process.env.PROMISED_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = exitCodeOf(error);
  }
}
// Every command closes what it opened; should a stray handle remain, do not hang a shell or a hook.
setTimeout(() => process.exit(), 2_000).unref();
