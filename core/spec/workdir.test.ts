import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { planSweep } from './planner';
import { parseSweepSpec, SpecError } from './spec';
import { prepareSpecFile, workdirCodeVersion } from './workdir';

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-workdir-'));
  roots.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

const SPEC = 'name: byo\ncommand: [python, train.py, "{args}"]\nworkdir: code\ngrid: { lr: [0.1, 0.2] }\n';

function identities(dir: string, specText = SPEC): string[] {
  const prepared = prepareSpecFile(specText, path.join(dir, 'spec.yaml'));
  return planSweep(parseSweepSpec(prepared), 'v1').trials.map((t) => t.identity);
}

describe('workdir code version', () => {
  it('changes when the script changes, so a finished trial is not reused for new code', () => {
    const dir = project({ 'code/train.py': 'print(1)\n', 'spec.yaml': SPEC });
    const before = identities(dir);
    fs.writeFileSync(path.join(dir, 'code/train.py'), 'print(2)\n');
    const afterEdit = identities(dir);
    for (let i = 0; i < before.length; i++) assert.notEqual(afterEdit[i], before[i]);
    fs.writeFileSync(path.join(dir, 'code/train.py'), 'print(1)\n');
    assert.deepEqual(identities(dir), before, 'the same bytes again give the same identities');
  });

  it('changes with a new file, a renamed file and the executable bit', () => {
    const dir = project({ 'a.py': 'x' });
    const v0 = workdirCodeVersion(dir);
    fs.writeFileSync(path.join(dir, 'b.py'), 'y');
    const v1 = workdirCodeVersion(dir);
    fs.renameSync(path.join(dir, 'b.py'), path.join(dir, 'c.py'));
    const v2 = workdirCodeVersion(dir);
    fs.chmodSync(path.join(dir, 'c.py'), 0o755);
    const v3 = workdirCodeVersion(dir);
    assert.equal(new Set([v0, v1, v2, v3]).size, 4);
    assert.match(v0, /^sha256:[0-9a-f]{32}$/);
  });

  it('ignores caches, VCS folders, job output and the spec file itself', () => {
    const dir = project({ 'train.py': 'x', 'spec.yaml': SPEC.replace('workdir: code\n', '') });
    const v0 = workdirCodeVersion(dir, { exclude: [path.join(dir, 'spec.yaml')] });
    for (const rel of ['__pycache__/train.cpython-311.pyc', '.git/HEAD', 'ladder-output/metrics.jsonl', 'sub/node_modules/x.js']) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), 'noise');
    }
    fs.writeFileSync(path.join(dir, 'spec.yaml'), `${SPEC}seeds: 3\n`);
    assert.equal(workdirCodeVersion(dir, { exclude: [path.join(dir, 'spec.yaml')] }), v0);
  });

  it('in a git work tree, versions what git would (untracked too) and skips .gitignore\'d files', () => {
    const dir = project({ 'train.py': 'x', '.gitignore': 'data/\n' });
    execFileSync('git', ['init', '-q', dir]);
    const v0 = workdirCodeVersion(dir);
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'big.bin'), 'ignored');
    assert.equal(workdirCodeVersion(dir), v0, 'ignored data does not change the version');
    fs.writeFileSync(path.join(dir, 'new.py'), 'untracked but not ignored');
    assert.notEqual(workdirCodeVersion(dir), v0);
  });

  it('is bounded in files and bytes, with the limit named', () => {
    const dir = project({ 'a.py': 'x'.repeat(100), 'b.py': 'y', 'c.py': 'z' });
    assert.throws(() => workdirCodeVersion(dir, { limits: { LADDER_MAX_WORKDIR_FILES: 2, LADDER_MAX_WORKDIR_BYTES: 1e9 } }), /LADDER_MAX_WORKDIR_FILES/);
    assert.throws(() => workdirCodeVersion(dir, { limits: { LADDER_MAX_WORKDIR_FILES: 10, LADDER_MAX_WORKDIR_BYTES: 50 } }), /LADDER_MAX_WORKDIR_BYTES/);
  });

  it('never follows a symlink out of the folder', () => {
    const outside = project({ 'secret.txt': 'a' });
    const dir = project({ 'train.py': 'x' });
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'link'));
    const v0 = workdirCodeVersion(dir);
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'b');
    assert.equal(workdirCodeVersion(dir), v0);
  });
});

describe('prepareSpecFile', () => {
  it('makes workdir absolute against the spec file and records the version', () => {
    const dir = project({ 'code/train.py': 'x' });
    const out = prepareSpecFile(SPEC, path.join(dir, 'spec.yaml')) as Record<string, unknown>;
    assert.equal(out.workdir, path.join(dir, 'code'));
    assert.equal(out.workdirVersion, workdirCodeVersion(path.join(dir, 'code')));
  });

  it('defaults workdir to the spec file\'s folder', () => {
    const dir = project({ 'train.py': 'x' });
    const out = prepareSpecFile(SPEC.replace('workdir: code\n', ''), path.join(dir, 'spec.yaml')) as Record<string, unknown>;
    assert.equal(out.workdir, dir);
  });

  it('leaves a built-in kind\'s spec as its text', () => {
    const text = 'name: x\nkind: synthetic\n';
    assert.equal(prepareSpecFile(text, '/nonexistent/spec.yaml'), text);
  });

  it('refuses a workdir that does not exist, with the path', () => {
    const dir = project({});
    assert.throws(() => prepareSpecFile(SPEC, path.join(dir, 'spec.yaml')), (e: unknown) => e instanceof SpecError && e.issues[0]!.path === 'workdir');
  });
});
