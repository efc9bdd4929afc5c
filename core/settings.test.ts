import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { README_MARKERS, readKubernetesSettings, readLoadgenSettings, readSetting, readSettings, readSpecLimits, SETTING_NAMES, withSettingsTable } from './settings';

const ROOT = path.resolve(__dirname, '..');
/** Where shipped code and the development stack live (tests and the dashboard read no variables of ours). */
const SOURCE_DIRS = ['core', 'graphql', 'workers', 'workflows', 'cli', 'stack', 'scripts', 'loadtests'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'fixtures') out.push(...sourceFiles(full));
    } else if (/\.(ts|js)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) out.push(full);
  }
  return out;
}

/** Names of the variables a file reads as `process.env.NAME` or `process.env['NAME']`. */
function envReads(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/process\.env(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\])/g)) names.add((m[1] ?? m[2])!);
  return [...names];
}

describe('settings', () => {
  it('names the variable and the problem when one is wrong', () => {
    assert.throws(() => readSettings({ LADDER_PORT: '70000' }), /environment variable LADDER_PORT: .*65535/);
    assert.throws(() => readSettings({ DATABASE_URL: 'mysql://x' }), /environment variable DATABASE_URL: must be a postgres:\/\/ URL/);
    assert.throws(() => readSpecLimits({ LADDER_MAX_TRIALS_PER_SWEEP: '0' }), /LADDER_MAX_TRIALS_PER_SWEEP/);
    assert.throws(() => readKubernetesSettings({ LADDER_K8S_TOLERATIONS: '{nope' }), /environment variable LADDER_K8S_TOLERATIONS: not JSON/);
    assert.throws(() => readKubernetesSettings({ LADDER_K8S_NODE_SELECTOR: '[1]' }), /LADDER_K8S_NODE_SELECTOR: a JSON object of strings/);
    assert.throws(() => readLoadgenSettings({ LADDER_LOADGEN_CONCURRENCY: '2.5' }), /LADDER_LOADGEN_CONCURRENCY/);
  });

  it('gives defaults, treats an empty variable as unset, and parses lists and JSON', () => {
    const s = readSettings({ LADDER_PORT: '', LADDER_ALLOWED_HOSTS: ' a:1 , b:2,, ' });
    assert.equal(s.LADDER_PORT, 4000);
    assert.equal(s.LADDER_EXECUTOR, 'local');
    assert.deepEqual(s.LADDER_ALLOWED_HOSTS, ['a:1', 'b:2']);
    assert.deepEqual(readSetting('LADDER_ALLOWED_ORIGINS', {}), []);
    assert.deepEqual(readKubernetesSettings({ LADDER_K8S_NODE_SELECTOR: '{"pool":"gpu"}' }).LADDER_K8S_NODE_SELECTOR, { pool: 'gpu' });
    // One variable read alone does not need the others to be valid.
    assert.equal(readSetting('LADDER_HOST', { LADDER_PORT: 'nope', LADDER_HOST: '127.0.0.1' }), '127.0.0.1');
  });

  it('declares every variable that shipped code and the dev stack read', () => {
    const declared = new Set(SETTING_NAMES);
    // The machine's own, not Ladder settings.
    const ambient = new Set(['PATH', 'HOME', 'XDG_CACHE_HOME', 'OMP_NUM_THREADS']);
    const undeclared: string[] = [];
    let files = 0;
    for (const dir of SOURCE_DIRS) {
      for (const file of sourceFiles(path.join(ROOT, dir))) {
        files++;
        for (const name of envReads(fs.readFileSync(file, 'utf8'))) {
          if (!declared.has(name) && !ambient.has(name)) undeclared.push(`${name} (${path.relative(ROOT, file)})`);
        }
      }
    }
    assert.ok(files > 100, `scanned only ${files} files`);
    assert.deepEqual(undeclared, [], 'declare these in core/settings.ts');
    assert.deepEqual(envReads(`a(process.env.LADDER_X); b(process.env['LADDER_Y'])`), ['LADDER_X', 'LADDER_Y']);
  });

  it("README's table is the one generated from the declarations", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.includes(README_MARKERS.start) && readme.includes(README_MARKERS.end), 'README.md needs the settings markers');
    assert.ok(withSettingsTable(readme) === readme, 'README.md is stale: run npx tsx scripts/settings-table.ts');
    for (const name of SETTING_NAMES) assert.ok(readme.includes(`| \`${name}\` |`), name);
  });
});
