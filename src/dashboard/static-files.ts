import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The front end's files: name → content type. Nothing else is served. */
export const STATIC_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'list.js': 'text/javascript; charset=utf-8',
  'detail.js': 'text/javascript; charset=utf-8',
  'workflows.js': 'text/javascript; charset=utf-8',
  'charts.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'stately.html': 'text/html; charset=utf-8',
  'stately.js': 'text/javascript; charset=utf-8',
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

/** Reads the files once: they are small, and served from memory. */
export function loadStaticFiles(): Map<string, Buffer> {
  const folder = staticFolder();
  return new Map(Object.keys(STATIC_FILES).map((name) => [name, fs.readFileSync(`${folder}${name}`)]));
}
