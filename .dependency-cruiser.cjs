// The layers of docs/architecture.md, checked by a tool rather than a reviewer's memory
// (`npm run lint`). A rule whose folder does not exist yet (src/kernel) matches nothing and
// passes. Type-only imports count: a layer that names another's types knows about it.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes module order matter and hides which layer depends on which.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'persistence-knows-no-xstate',
      severity: 'error',
      comment: 'The store keeps snapshots as JSON; the machines are the engine’s business.',
      from: { path: '^src/persistence/' },
      to: { path: '^node_modules/xstate/' },
    },
    {
      name: 'machines-are-pure',
      severity: 'error',
      comment: 'Machines are XState only: no SQL, no driver, no store.',
      from: { path: '^src/machines/' },
      to: { path: ['^src/persistence/', '^node_modules/(kysely|pg|better-sqlite3)/'] },
    },
    {
      name: 'kernel-knows-nothing-above',
      severity: 'error',
      comment: 'The promise kernel offers a port and hooks; the layers above register on it.',
      from: { path: '^src/kernel/' },
      to: { path: '^src/(workflows|inspect|dashboard|cli|engine)/' },
    },
    {
      name: 'workflows-build-on-the-kernel-only',
      severity: 'error',
      comment: 'Workflows are built on the kernel’s port, not on the engine or the shells.',
      from: { path: '^src/workflows/' },
      to: { path: '^src/(engine|inspect|dashboard|cli)/' },
    },
    {
      name: 'engine-knows-no-viewer',
      severity: 'error',
      comment: 'The engine is watched through its events; it never calls what watches it.',
      from: { path: '^src/engine/' },
      to: { path: '^src/(inspect|dashboard|cli)/' },
    },
    {
      name: 'inspect-knows-no-shell',
      severity: 'error',
      comment: 'Inspection feeds the dashboard and the CLI, never the other way round.',
      from: { path: '^src/inspect/' },
      to: { path: '^src/(dashboard|cli)/' },
    },
    {
      name: 'opentelemetry-in-one-module',
      severity: 'error',
      comment: 'Only src/kernel/tracing.ts speaks @opentelemetry/api; the rest calls it, so the API’s rules are applied in one place (docs/tracing.md).',
      from: { path: '^src/', pathNot: '^src/kernel/tracing[.]ts$' },
      to: { path: '^node_modules/@opentelemetry/' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment: 'The command line is a thin shell over the public API.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
