// Every ```ts block of README.md and docs/*.md is type-checked against the sources, and those
// marked `<!-- run -->` are run, each in a fresh folder (so its './promised.db' is a temporary
// SQLite database): an example cannot drift from the API it shows.
//
// Markers, on the line before the fence (blank lines between are allowed):
//   <!-- run -->                  type-check it and run it; it must exit 0
//   <!-- fragment: why -->        neither: a piece that cannot stand alone (say why; keep these few)
//   (nothing)                     type-check it
// A block is compiled as a module of its own (top-level await allowed) that imports the package by
// name: `promised` maps to src/index.ts (tsconfig.json's `paths`, which tsx also follows to run it).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/temp-db.js';

const root = path.resolve(import.meta.dirname, '..');
// Inside the checkout, so the examples resolve xstate, zod and the rest from its node_modules.
const out = path.join(root, 'test-output/docs-examples');

// Being rewritten by other work right now; their examples join this test when it lands.
// docs/workflows.md's examples are fragments over a declared engine, workflow id and machine:
// test/workflow-docs-examples.test.ts type-checks them, with the workflow API's TSDoc examples.
const EXCLUDED = new Set(['docs/workflows.md']);
const MAX_FRAGMENTS = 6;
const RUN_TIMEOUT_MS = 30_000;

interface Block {
  /** `docs/lifecycle.md:67`: where its fence opens. */
  where: string;
  /** The Markdown line of the block's first line of code. */
  firstLine: number;
  mode: 'check' | 'run' | 'fragment';
  reason: string;
  code: string;
  file: string;
}

function blocksOf(relative: string): Block[] {
  const lines = fs.readFileSync(path.join(root, relative), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let index = 0; index < lines.length; index++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[index]!)) continue;
    const end = lines.findIndex((line, at) => at > index && /^```\s*$/.test(line));
    if (end < 0) throw new Error(`${relative}:${index + 1}: a code block that never closes`);
    let marker = index - 1;
    while (marker >= 0 && lines[marker]!.trim() === '') marker--;
    const comment = /^<!--\s*(run|fragment)(?::\s*(.*?))?\s*-->$/.exec(lines[marker]?.trim() ?? '');
    const where = `${relative}:${index + 1}`;
    blocks.push({
      where,
      firstLine: index + 2,
      mode: comment?.[1] === 'run' ? 'run' : comment?.[1] === 'fragment' ? 'fragment' : 'check',
      reason: comment?.[2] ?? '',
      code: lines.slice(index + 1, end).join('\n'),
      file: path.join(out, `${relative.replace(/[/.]/g, '_')}_${index + 1}.ts`),
    });
    index = end;
  }
  return blocks;
}

const sources = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)].filter((file) => !EXCLUDED.has(file));
const blocks = sources.flatMap(blocksOf);
const compiled = blocks.filter((block) => block.mode !== 'fragment');

beforeAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  for (const block of compiled) fs.writeFileSync(block.file, `${block.code}\n`);
});

describe('the code blocks of README.md and docs/', () => {
  it('are found, and the few fragments say why they cannot stand alone', () => {
    expect(compiled.length).toBeGreaterThan(10);
    const fragments = blocks.filter((block) => block.mode === 'fragment');
    for (const fragment of fragments) expect(fragment.reason, `${fragment.where}: <!-- fragment: why -->`).not.toBe('');
    expect(fragments.length, fragments.map((fragment) => fragment.where).join(', ')).toBeLessThanOrEqual(MAX_FRAGMENTS);
  });

  it('type-check against the sources', () => {
    const config = ts.readConfigFile(path.join(root, 'tsconfig.json'), (file) => ts.sys.readFile(file));
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    const program = ts.createProgram(
      compiled.map((block) => block.file),
      // An example may name a value it does not use again; every block is a module of its own.
      { ...options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false, moduleDetection: ts.ModuleDetectionKind.Force, declaration: false, sourceMap: false },
    );
    const byFile = new Map(compiled.map((block) => [block.file, block]));
    const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      const block = diagnostic.file && byFile.get(diagnostic.file.fileName);
      if (!diagnostic.file || diagnostic.start === undefined) return message;
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      return block ? `${block.where.split(':')[0]}:${block.firstLine + line} (block at ${block.where}): ${message}` : `${diagnostic.file.fileName}:${line + 1}: ${message}`;
    });
    expect(problems).toEqual([]);
  }, 60_000);

  const runnable = compiled.filter((block) => block.mode === 'run');
  it('some are runnable', () => expect(runnable.length).toBeGreaterThan(3));
  for (const block of runnable) {
    it(`runs ${block.where}`, async () => {
      const tsx = path.join(root, 'node_modules/tsx/dist/loader.mjs');
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', pathToFileURL(tsx).href, block.file],
          { cwd: tempDir(), timeout: RUN_TIMEOUT_MS, env: { ...process.env, TSX_TSCONFIG_PATH: path.join(root, 'tsconfig.json'), PROMISED_LOG_LEVEL: 'silent' } },
          (error, _stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stderr }),
        );
      });
      expect(result.stderr, block.where).toBe('');
      expect(result.code, block.where).toBe(0);
    });
  }
});
