// Build step: the dashboard's front end (plain files, not compiled) goes beside its compiled
// server code, so a published package serves it without the sources; the charting and layout
// libraries it uses are copied from their packages into static/vendor/ with their licences (the
// page loads nothing from elsewhere, and works offline).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const target = path.join(root, 'dist/dashboard/static');
fs.cpSync(path.join(root, 'src/dashboard/static'), target, { recursive: true });
const require = createRequire(path.join(root, 'package.json'));
const vendor = {
  'uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
  'uPlot.LICENSE': 'uplot/LICENSE',
  'elk.bundled.js': 'elkjs/lib/elk.bundled.js',
  'elk.LICENSE.md': 'elkjs/LICENSE.md',
};
fs.mkdirSync(path.join(target, 'vendor'), { recursive: true });
for (const [name, from] of Object.entries(vendor)) fs.copyFileSync(require.resolve(from), path.join(target, 'vendor', name));
