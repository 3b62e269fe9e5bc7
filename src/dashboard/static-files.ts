import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** The front end's files: name → content type. Nothing else is served. */
export const STATIC_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dom.js': JS,
  'charts.js': JS,
  'stats-chart.js': JS,
  'state-chart.js': JS,
  'list.js': JS,
  'detail.js': JS,
  'workflows.js': JS,
  'schedules.js': JS,
  'app.js': JS,
  'style.css': CSS,
  'stately.html': 'text/html; charset=utf-8',
  'stately.js': JS,
  'vendor/uPlot.iife.min.js': JS,
  'vendor/uPlot.min.css': CSS,
  'vendor/elk.bundled.js': JS,
};

/**
 * The libraries the page uses, served from this host (no CDN: the page works offline). The build
 * copies them into `static/vendor/` (scripts/copy-static.mjs); run from the sources, they are
 * read from the packages in node_modules.
 */
export const VENDOR_FILES: Record<string, string> = {
  'vendor/uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'vendor/uPlot.min.css': 'uplot/dist/uPlot.min.css',
  'vendor/elk.bundled.js': 'elkjs/lib/elk.bundled.js',
};

/**
 * The folder of the front end: `static/` beside this module (sources, or `dist/dashboard` when
 * the build copies it), or the sources' folder seen from the bundled CLI (`dist/cli/main.js`).
 */
export function staticFolder(): string {
  const candidates = ['./static/', '../dashboard/static/', '../../src/dashboard/static/'].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  const found = candidates.find((folder) => fs.existsSync(`${folder}index.html`));
  if (!found) throw new Error(`the dashboard's files were not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** Reads the files once: they are small (the layout library aside), and served from memory. */
export function loadStaticFiles(): Map<string, Buffer> {
  const folder = staticFolder();
  const require = createRequire(import.meta.url);
  return new Map(
    Object.keys(STATIC_FILES).map((name) => {
      const copied = `${folder}${name}`;
      const vendored = VENDOR_FILES[name];
      return [name, fs.readFileSync(vendored === undefined || fs.existsSync(copied) ? copied : require.resolve(vendored))];
    }),
  );
}
