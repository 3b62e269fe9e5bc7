// `npm run torture`: the full campaign (10,000 promises, 50 kills by default).
//   npm run torture -- [promises] [kills] [workflows]
import { torture } from './torture.js';

const [promises = '10000', kills = '50', workflows = '20'] = process.argv.slice(2);
console.log(`torture: ${promises} promises in chains and fan-out/fan-in graphs, ${workflows} workflows, a cron schedule, ${kills} SIGKILLs`);
const report = await torture({ promises: Number(promises), kills: Number(kills), workflows: Number(workflows), log: (line) => console.log(line) });
console.table(report);
const ok = report.lost === 0 && report.duplicatedCompletions === 0 && report.stuck === 0 && report.orderViolations === 0 && report.workflowsCompleted === Number(workflows);
console.log(ok ? 'torture: 0 lost, 0 duplicated completions, 0 stuck, every dependency order respected' : 'torture: FAILED');
process.exit(ok ? 0 : 1);
