import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'dashboard', 'src');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { OUTSIDE_SOURCES } = require('./ensure-dashboard.js') as { OUTSIDE_SOURCES: string[] };

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('ensure-dashboard', () => {
  it('rebuilds when a file the dashboard imports from outside its folder changes', () => {
    const outside = new Set<string>();
    for (const file of files(SRC).filter((f) => /\.tsx?$/.test(f))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = path.resolve(path.dirname(file), m[1]!);
        if (!target.startsWith(path.join(ROOT, 'dashboard') + path.sep)) outside.add(`${path.relative(ROOT, target)}.ts`);
      }
    }
    assert.ok(outside.size > 0, 'the scan found no import from outside dashboard/ (it should find core/format)');
    for (const f of outside) assert.ok(OUTSIDE_SOURCES.includes(f), `${f} is imported by the dashboard: add it to OUTSIDE_SOURCES in scripts/ensure-dashboard.js`);
    for (const f of OUTSIDE_SOURCES) assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} is listed but missing`);
  });
});
