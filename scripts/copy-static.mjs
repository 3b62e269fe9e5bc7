// Build step: the dashboard's front end (plain files, not compiled) goes beside its compiled
// server code, so a published package serves it without the sources.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
fs.cpSync(path.join(root, 'src/dashboard/static'), path.join(root, 'dist/dashboard/static'), { recursive: true });
