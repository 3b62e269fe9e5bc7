import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROMISE_STATUSES } from '../src/machines/promise-machine.js';
import { FINISHED_STATUSES, UNFINISHED_STATUSES } from '../src/persistence/statuses.js';

// What the persistence layer may load. `pg` only once a PostgreSQL URL is opened (open-store.ts
// imports the PostgreSQL store dynamically): an SQLite user never loads it. XState never: this
// layer stores snapshots as JSON and knows nothing of machines.

const root = path.resolve(import.meta.dirname, '..');
const persistence = path.join(root, 'src/persistence');

/** The specifiers a module loads when it is evaluated: static imports and re-exports, not `import type`, not `import()`. */
function staticImports(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  for (const match of source.matchAll(/^(import|export)\s+(?!type\s)([^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) specifiers.push(match[3]!);
  return specifiers;
}

/** Every module reached from `entry` through static imports: files of this repository, and packages by name. */
function staticClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const specifier of staticImports(file)) {
      if (!specifier.startsWith('.')) packages.add(specifier.startsWith('node:') ? specifier : specifier.split('/')[0]!);
      else visit(path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts'));
    }
  };
  visit(entry);
  return { files, packages };
}

function persistenceModules(dir = persistence): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return persistenceModules(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('persistence imports', () => {
  it('finds the imports it looks for (the check itself works)', () => {
    const postgres = staticClosure(path.join(persistence, 'postgres/open-postgres-store.ts'));
    expect(postgres.packages).toContain('pg');
    expect(staticImports(path.join(persistence, 'open-store.ts'))).toContain('./sqlite/open-sqlite-store.js');
  });

  it('the SQLite path never loads pg, nor any PostgreSQL module', () => {
    for (const entry of ['open-store.ts', 'sqlite/open-sqlite-store.ts', 'sql-store.ts']) {
      const { files, packages } = staticClosure(path.join(persistence, entry));
      expect([...packages], entry).not.toContain('pg');
      expect([...files].filter((file) => file.includes(`${path.sep}postgres${path.sep}`)), entry).toEqual([]);
    }
    // And the one way in stays dynamic.
    expect(fs.readFileSync(path.join(persistence, 'open-store.ts'), 'utf8')).toMatch(/await import\('\.\/postgres\/open-postgres-store\.js'\)/);
  });

  it('no persistence module imports XState or the machines, even for types', () => {
    for (const file of persistenceModules()) {
      const source = fs.readFileSync(file, 'utf8');
      expect(source, path.relative(root, file)).not.toMatch(/from\s+['"](xstate|@statelyai\/[^'"]+|[./]+machines\/[^'"]+)['"]/);
    }
  });

  it('its status lists are the machine’s statuses, split into unfinished and finished', () => {
    expect([...UNFINISHED_STATUSES, ...FINISHED_STATUSES].sort()).toEqual([...PROMISE_STATUSES].sort());
  });
});
