// `npm run torture`: the full campaign.
//
//   npm run torture                              # every phase, default sizes
//   npm run torture -- 20000 100 40              # crash phase: [promises] [kills] [workflows]
//   npm run torture -- --only poison,fleet       # some phases: crash, poison, fleet
//   npm run torture -- --fleet-kills 10 --lease 1000 --poison-seconds 8 --poison-every 10 --keep
//
// The poison and fleet phases run on SQLite and on a throwaway PostgreSQL server (initdb and
// pg_ctl in a temp folder); without those binaries the PostgreSQL runs are skipped, saying why.
import { parseArgs } from 'node:util';
import { findPostgresBinaries, startPostgres, type RunningPostgres } from '../helpers/postgres.js';
import type { CampaignBackend } from './campaign-database.js';
import { fleet, fleetFailures } from './fleet.js';
import { poison, poisonFailures } from './poison.js';
import { torture } from './torture.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: 'string', default: 'crash,poison,fleet' },
    'fleet-kills': { type: 'string', default: '5' },
    lease: { type: 'string', default: '1000' },
    'poison-seconds': { type: 'string', default: '8' },
    // 0: the same stream without hostile promises, to tell what poison costs from what the stream does.
    'poison-every': { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
  },
});
const phases = new Set(values.only.split(','));
const [promises = '10000', kills = '50', workflows = '20'] = positionals;
const say = (line: string) => console.log(line);
const failures: string[] = [];

if (phases.has('crash')) {
  say(`torture, crash phase: ${promises} promises in chains and fan-out/fan-in graphs, ${workflows} workflows, a cron schedule, ${kills} SIGKILLs (SQLite)`);
  const report = await torture({ promises: Number(promises), kills: Number(kills), workflows: Number(workflows), keep: values.keep, log: say });
  console.table([report]);
  if (report.lost + report.duplicatedCompletions + report.stuck + report.orderViolations > 0 || report.workflowsCompleted !== Number(workflows)) failures.push('crash: lost, duplicated, stuck or out-of-order promises, or unfinished workflows');
}

const backends: CampaignBackend[] = [{ name: 'SQLite' }];
let server: RunningPostgres | undefined;
if (phases.has('poison') || phases.has('fleet')) {
  const binaries = findPostgresBinaries();
  if ('missing' in binaries) say(`PostgreSQL phases skipped: ${binaries.missing}`);
  else {
    server = await startPostgres();
    backends.push({ name: 'PostgreSQL', adminUrl: server.adminUrl });
  }
}
try {
  if (phases.has('poison')) {
    const seconds = Number(values['poison-seconds']);
    const every = Number(values['poison-every']);
    say(`\ntorture, poison phase: 3 workers, 200 healthy promises/s, ${every > 0 ? `one hostile promise per ${every} mixed in` : 'no hostile promise (a control run)'} for ${seconds} s (U+0000, lone surrogates, non-string messages, a completion the database refuses)`);
    const outcomes: Array<Record<string, string>> = [];
    const reports = [];
    for (const backend of backends) {
      const result = await poison({ backend, seconds, rate: 200, hostileEvery: Number(values['poison-every']), keep: values.keep, log: say });
      reports.push(result.report);
      outcomes.push(result.outcomes);
      for (const problem of result.problems) say(`  ${backend.name}: ${problem}`);
      if (Object.keys(result.engineErrors).length > 0) say(`  ${backend.name}: engine errors logged: ${JSON.stringify(result.engineErrors)}`);
      failures.push(...poisonFailures(result.report).map((failure) => `poison on ${backend.name}: ${failure}`));
    }
    console.table(reports);
    if (outcomes.length === 2) {
      const differing = Object.keys(outcomes[0]!).filter((kind) => outcomes[0]![kind] !== outcomes[1]![kind]);
      for (const kind of differing) failures.push(`poison: "${kind}" stored differently: SQLite ${outcomes[0]![kind]}, PostgreSQL ${outcomes[1]![kind]}`);
      if (differing.length === 0) say('  every hostile outcome was stored the same way on SQLite and PostgreSQL');
    }
  }
  if (phases.has('fleet')) {
    const fleetKills = Number(values['fleet-kills']);
    say(`\ntorture, fleet phase: 4 workers, a steady backlog, ${fleetKills} workers SIGKILLed while holding claims (each replaced once its claims came back)`);
    const reports = [];
    for (const backend of backends) {
      const result = await fleet({ backend, kills: fleetKills, leaseMs: Number(values.lease), keep: values.keep, log: say });
      reports.push(result.report);
      if (Object.keys(result.engineErrors).length > 0) say(`  ${backend.name}: engine errors logged: ${JSON.stringify(result.engineErrors)}`);
      failures.push(...fleetFailures(result.report, fleetKills).map((failure) => `fleet on ${backend.name}: ${failure}`));
    }
    console.table(reports);
  }
} finally {
  server?.destroy();
}

for (const failure of failures) say(`FAILED: ${failure}`);
say(failures.length === 0 ? 'torture: 0 lost, 0 duplicated completions, 0 stuck; poison stored and contained; dead workers’ claims back within two leases' : 'torture: FAILED');
process.exit(failures.length === 0 ? 0 : 1);
