#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { PromisedError } from '../errors.js';
import { runDemo } from './demo.js';

const program = new Command()
  .name('promised')
  .description('Durable promises and workflows on SQLite')
  .option('--db <path>', 'database file', process.env.PROMISED_DB ?? './promised.db')
  .exitOverride();

program
  .command('demo')
  .description('run the quick-start demo: three reviews in parallel and a setup → tests → run chain')
  .action(async () => {
    await runDemo({ database: program.opts<{ db: string }>().db });
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  if (error instanceof PromisedError) {
    process.stderr.write(`promised: ${error.code}: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`promised: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
