import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InvocationError, jobInvocation, type InvocationOptions } from './command';
import type { JobLaunch } from './types';

const launch = (over: Partial<JobLaunch> = {}): JobLaunch => ({
  executionId: 't-a1',
  trialId: 't',
  attempt: 1,
  kind: 'synthetic',
  config: { lr: 0.1, seed: 0 },
  resources: { gpus: 0, cpu: 1, memory: '1Gi' },
  env: { LADDER_TRIAL_ID: 't' },
  labels: {},
  ...over,
});
const local: InvocationOptions = { target: 'local', configPath: '/run/t-a1/config.json', python: '/venv/bin/python', interpreter: '/venv/bin/python' };
const k8s: InvocationOptions = { target: 'kubernetes', configPath: '/config/config.json', python: 'python' };

function pathOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvocationError, String(err));
    assert.equal(err.retryable, false);
    return err.path;
  }
  assert.fail('expected an InvocationError');
}

describe('jobInvocation', () => {
  it('runs a built-in kind through the job protocol, config path in LADDER_CONFIG', () => {
    assert.deepEqual(jobInvocation(launch(), local), {
      argv: ['/venv/bin/python', '-m', 'ladder_jobs', 'run', '--kind', 'synthetic', '--config', '/run/t-a1/config.json'],
      env: { LADDER_CONFIG: '/run/t-a1/config.json' },
    });
    assert.deepEqual(jobInvocation(launch(), k8s).argv, ['python', '-m', 'ladder_jobs', 'run', '--kind', 'synthetic', '--config', '/config/config.json']);
  });

  it('substitutes a command, swaps a bare python for the interpreter locally, runs in workdir with the spec env', () => {
    const inv = jobInvocation(
      launch({ kind: 'command', command: ['python', 'train.py', '--lr={lr}', '{args}'], workdir: '/code', jobEnv: { MODE: 'fast' } }),
      local,
    );
    assert.deepEqual(inv, {
      argv: ['/venv/bin/python', 'train.py', '--lr=0.1', '--lr=0.1', '--seed=0'],
      env: { MODE: 'fast', LADDER_CONFIG: '/run/t-a1/config.json' },
      cwd: '/code',
    });
  });

  it('on Kubernetes runs the command in the spec image, the image\'s python, no host workdir', () => {
    const inv = jobInvocation(launch({ kind: 'command', command: ['python', 'train.py'], workdir: '/code', image: 'img@sha256:' + 'a'.repeat(64) }), k8s);
    assert.deepEqual(inv, { argv: ['python', 'train.py'], env: { LADDER_CONFIG: '/config/config.json' }, image: 'img@sha256:' + 'a'.repeat(64) });
  });

  it('refuses, naming the field: no image on Kubernetes, a relative workdir, LADDER_ env, a missing key, too many bytes', () => {
    const c = { kind: 'command', command: ['python', 'train.py'] };
    assert.equal(pathOf(() => jobInvocation(launch(c), k8s)), 'image');
    assert.equal(pathOf(() => jobInvocation(launch({ ...c, workdir: 'code' }), local)), 'workdir');
    assert.equal(pathOf(() => jobInvocation(launch({ ...c, jobEnv: { LADDER_INGEST_TOKEN: 'x' } }), local)), 'env.LADDER_INGEST_TOKEN');
    assert.equal(pathOf(() => jobInvocation(launch({ ...c, command: ['p', 'a', '{nope}'] }), local)), 'command[2]');
    assert.equal(pathOf(() => jobInvocation(launch({ ...c, command: ['p', '{lr}'] }), { ...local, maxCommandBytes: 4 })), 'command');
    assert.equal(pathOf(() => jobInvocation(launch({ kind: 'command' }), local)), 'command');
  });

  it('hands hostile values to the program as exact arguments: no shell ever sees them', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-argv-'));
    try {
      const canary = path.join(dir, 'pwned');
      const hostile = { a: `x; touch ${canary}`, b: `$(touch ${canary})`, c: '`id` "q" \'s\' \\ * ~', d: 'ünïcødé 日本 ✓', e: ' lead and trail ' };
      const inv = jobInvocation(
        launch({ kind: 'command', config: hostile, command: [process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', '{a}', '{b}', '{c}', '{d}', '{e}', '{args}'] }),
        { ...local, interpreter: undefined },
      );
      const out = execFileSync(inv.argv[0]!, inv.argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...inv.env } });
      const expectedArgs = Object.entries(hostile).sort().map(([k, v]) => `--${k}=${v}`);
      assert.deepEqual(JSON.parse(out), [hostile.a, hostile.b, hostile.c, hostile.d, hostile.e, ...expectedArgs]);
      assert.equal(fs.existsSync(canary), false, 'a value was interpreted by a shell');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
