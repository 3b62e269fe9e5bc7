import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The examples of the workflow steering docs and of the workflow API's TSDoc compile against
// the real types: each `ts` block becomes the body of an async function over a few declared
// names (an engine, a workflow id…), and the whole set is type-checked with the project's options.

const root = path.resolve(import.meta.dirname, '..');

const PRELUDE = `import type { AnyStateMachine } from 'xstate';
import type { Engine, WorkflowMigration, WorkflowStep } from '${path.join(root, 'src/index.js')}';
declare const engine: Engine;
export type { WorkflowMigration };
declare const id: string;
declare const machine: AnyStateMachine;
declare const releaseV2: AnyStateMachine;
declare const steps: Record<string, WorkflowStep>;
declare const requestId: string;
declare const clickId: string;
declare function bookHotel(): Promise<string>;
declare function releaseHotel(): Promise<string>;
`;

/** The `ts` blocks of a markdown section (from its heading to the next heading of the same level or above). */
function markdownBlocks(file: string, heading: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `${file} has ${heading}`).toBeGreaterThan(0);
  const level = heading.match(/^#+/)![0].length;
  const rest = text.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`\\n#{1,${level}} `));
  return [...(end < 0 ? rest : rest.slice(0, end)).matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** The `ts` blocks of the TSDoc examples of a source file. */
function tsdocBlocks(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/\* ```ts\n([\s\S]*?)\* ```/g)].map((match) => match[1]!.replace(/^\s*\* ?/gm, ''));
}

function asModule(block: string): string {
  const lines = block.split('\n');
  const imports = lines.filter((line) => line.startsWith('import '));
  const body = lines.filter((line) => !line.startsWith('import '));
  return `${PRELUDE}${imports.join('\n')}\nexport async function example(): Promise<void> {\n${body.join('\n')}\n}\n`;
}

describe('documentation examples', () => {
  it('the workflow steering and typed-workflow examples and the workflow API TSDoc examples compile', () => {
    const blocks = [
      ...markdownBlocks('docs/workflows.md', '## Steering workflows').map((code, index) => ({ name: `workflows.md steering #${index + 1}`, code })),
      ...markdownBlocks('docs/workflows.md', '### Declarative migration').map((code, index) => ({ name: `workflows.md migration #${index + 1}`, code })),
      ...markdownBlocks('docs/workflows.md', '## Typed workflows: `defineWorkflow`').map((code, index) => ({ name: `workflows.md typed #${index + 1}`, code })),
      ...tsdocBlocks('src/engine/typed-workflows.ts').map((code, index) => ({ name: `typed-workflows.ts example #${index + 1}`, code })),
      ...tsdocBlocks('src/testing/workflow-paths.ts').map((code, index) => ({ name: `workflow-paths.ts example #${index + 1}`, code })),
      ...tsdocBlocks('src/engine/engine-workflows.ts').map((code, index) => ({ name: `engine-workflows.ts example #${index + 1}`, code })),
      ...tsdocBlocks('src/workflows/workflow-types.ts').map((code, index) => ({ name: `workflow-types.ts example #${index + 1}`, code })),
    ];
    expect(blocks.length).toBeGreaterThan(15);
    const files = new Map(blocks.map((block, index) => [path.join(root, 'test', `docs-example-${index}.ts`), block]));
    const config = ts.parseJsonConfigFileContent(ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile).config, ts.sys, root);
    const host = ts.createCompilerHost(config.options);
    const readFile = host.readFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    host.readFile = (file) => (files.has(file) ? asModule(files.get(file)!.code) : readFile(file));
    host.fileExists = (file) => files.has(file) || fileExists(file);
    const program = ts.createProgram([...files.keys()], { ...config.options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false }, host);
    const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const block = diagnostic.file ? files.get(diagnostic.file.fileName) : undefined;
      return `${block?.name ?? diagnostic.file?.fileName ?? '?'}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
    expect(problems).toEqual([]);
  }, 120_000);
});
