/** Rewrites README.md's settings table from core/settings.ts (core/settings.test.ts checks it). */
import fs from 'node:fs';
import path from 'node:path';
import { withSettingsTable } from '../core/settings';

const readme = path.resolve(__dirname, '..', 'README.md');
fs.writeFileSync(readme, withSettingsTable(fs.readFileSync(readme, 'utf8')));
console.log(`wrote the settings table of ${path.relative(process.cwd(), readme)}`);
