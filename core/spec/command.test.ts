import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planSweep } from './planner';
import { COMMAND_KIND, executorIssues, parseSweepSpec, parseSweepSpecText, SpecError } from './spec';
import { configArgs, expandCommand, parseTemplate, templateKeys, TemplateError } from './template';

const cmd = { name: 'byo', command: ['python', 'train.py', '--lr', '{lr}'], base: { lr: 0.1 } };

function issuesOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpecError) return err.issues;
    throw err;
  }
  assert.fail('expected a SpecError');
}

describe('command specs', () => {
  it('parse with kind "command", and a parsed spec parses again to the same spec', () => {
    const spec = parseSweepSpec({ ...cmd, env: { WANDB_MODE: 'offline' }, image: 'repo/img@sha256:' + 'a'.repeat(64) });
    assert.equal(spec.kind, COMMAND_KIND);
    assert.deepEqual(spec.command, cmd.command);
    assert.deepEqual(parseSweepSpec(JSON.parse(JSON.stringify(spec))), spec);
  });

  it('refuse both kind and command, and neither, with the path', () => {
    const both = issuesOf(() => parseSweepSpec({ ...cmd, kind: 'synthetic' }));
    assert.deepEqual(both.map((i) => i.path), ['command']);
    assert.match(both[0]!.message, /either kind or command, not both/);
    const neither = issuesOf(() => parseSweepSpec({ name: 'x' }));
    assert.deepEqual(neither.map((i) => i.path), ['kind']);
    assert.match(neither[0]!.message, /either kind .* or command/);
    assert.deepEqual(issuesOf(() => parseSweepSpec({ name: 'x', kind: 'command' })).map((i) => i.path), ['command']);
  });

  it('refuse an empty command and a blank program', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, command: [] })).map((i) => i.path), ['command']);
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, command: ['', 'x'] })).map((i) => i.path), ['command[0]']);
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, command: ['python', 'a\0b'] })).map((i) => i.path), ['command[1]']);
  });

  it('refuse LADDER_ env names (any case) and bad names, with the path', () => {
    const issues = issuesOf(() => parseSweepSpec({ ...cmd, env: { LADDER_INGEST_URL: 'http://evil', ladder_x: '1', OK: 'y' } }));
    assert.deepEqual(issues.map((i) => i.path).sort(), ['env.LADDER_INGEST_URL', 'env.ladder_x']);
    assert.ok(issues.every((i) => /LADDER_/.test(i.message)));
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, env: { 'A-B': '1' } })).map((i) => i.path), ['env.A-B']);
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, env: { A: 1 } })).map((i) => i.path), ['env.A']);
  });

  it('refuse command-only fields on a built-in kind', () => {
    const issues = issuesOf(() => parseSweepSpec({ name: 'x', kind: 'synthetic', image: 'i', env: { A: 'b' }, workdir: '.' }));
    assert.deepEqual(issues.map((i) => i.path).sort(), ['env', 'image', 'workdir']);
  });

  it('apply the operator limits on arguments and env', () => {
    const commandLimits = { LADDER_MAX_COMMAND_ARGS: 3, LADDER_MAX_COMMAND_BYTES: 4096, LADDER_MAX_JOB_ENV: 1, LADDER_MAX_WORKDIR_FILES: 10, LADDER_MAX_WORKDIR_BYTES: 10 };
    const issues = issuesOf(() => parseSweepSpec({ ...cmd, env: { A: '1', B: '2' } }, { commandLimits }));
    assert.deepEqual(issues.map((i) => i.path).sort(), ['command', 'env']);
    assert.match(issues.find((i) => i.path === 'command')!.message, /4 arguments; the limit is 3 \(LADDER_MAX_COMMAND_ARGS\)/);
  });

  it('refuse {args} inside a longer argument or as the program', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, command: ['python', 'x{args}'] })).map((i) => i.path), ['command[1]']);
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...cmd, command: ['{args}'] })).map((i) => i.path), ['command[0]']);
  });

  it('take any config keys (no kind schema), and YAML text', () => {
    const spec = parseSweepSpecText('name: y\ncommand: [node, job.js, "{args}"]\nbase: { anything: [1, 2], deep: { x: true } }\n');
    assert.equal(spec.kind, 'command');
  });

  it('need an image only when the executor is Kubernetes', () => {
    const spec = parseSweepSpec(cmd);
    assert.deepEqual(executorIssues(spec, 'kubernetes').map((i) => i.path), ['image']);
    assert.deepEqual(executorIssues(spec, 'local'), []);
    assert.deepEqual(executorIssues(parseSweepSpec({ ...cmd, image: 'img@sha256:' + 'b'.repeat(64) }), 'kubernetes'), []);
    assert.deepEqual(executorIssues(parseSweepSpec({ name: 'x', kind: 'synthetic' }), 'kubernetes'), []);
  });
});

describe('command templates', () => {
  const config = { lr: 0.001, name: 'a b "c" $(touch x); `id`', model: { width: 64, act: 'gelu' }, flag: true, none: null, list: [1, 'x'], seed: 3, 'ünï': 'ç' };

  it('substitute {key}, dotted keys and several placeholders in one argument', () => {
    assert.deepEqual(expandCommand(['p', '--lr={lr}', '{model.width}x{model.act}', '{seed}'], config), ['p', '--lr=0.001', '64xgelu', '3']);
  });

  it('keep spaces, quotes, shell syntax and unicode as one argument each', () => {
    assert.deepEqual(expandCommand(['p', '{name}', '{ünï}'], config), ['p', config.name, 'ç']);
  });

  it('write non-strings as JSON and keep {{ }} and non-key braces literal', () => {
    assert.deepEqual(expandCommand(['p', '{flag}', '{none}', '{list}', '{model}'], config), ['p', 'true', 'null', '[1,"x"]', '{"act":"gelu","width":64}']);
    assert.deepEqual(expandCommand(['p', '{{lr}}', '{"a": 1}', '{ lr }'], config), ['p', '{lr}', '{"a": 1}', '{ lr }']);
  });

  it('expand {args} to --key=value for every (flattened) key, sorted', () => {
    assert.deepEqual(expandCommand(['p', '{args}', 'end'], { b: 1, a: { y: 'v w', x: [1] }, seed: 0 }), ['p', '--a.x=[1]', '--a.y=v w', '--b=1', '--seed=0', 'end']);
    assert.deepEqual(configArgs({ empty: {} }), ['--empty={}']);
  });

  it('refuse a key the config lacks, naming the argument, and never read inherited members', () => {
    assert.throws(() => expandCommand(['p', 'x', '{missing}'], config), (e: unknown) => e instanceof TemplateError && e.index === 2 && /missing/.test(e.message));
    assert.throws(() => expandCommand(['p', '{toString}'], {}), TemplateError);
    assert.throws(() => expandCommand(['p', '{lr.x}'], config), TemplateError);
  });

  it('parse into literal and key pieces', () => {
    assert.deepEqual(parseTemplate('a{b}c'), [{ text: 'a' }, { key: 'b' }, { text: 'c' }]);
    assert.deepEqual(parseTemplate(''), [{ text: '' }]);
    assert.deepEqual(templateKeys(['{a}', '{args}', 'x{b.c}']), [{ index: 0, key: 'a' }, { index: 2, key: 'b.c' }]);
  });
});

describe('planning command sweeps', () => {
  const ladder = {
    name: 'byo',
    command: ['python', 'train.py', '{args}', '--width', '{width}'],
    grid: { lr: [0.1, 0.01] },
    seeds: 2,
    scale: { key: 'width', rungs: [16, 32] },
    promotion: { metric: 'val_loss', topK: 1 },
    workdirVersion: 'sha256:abc',
  };

  it('plans variants × seeds × rungs with seed in the config', () => {
    const plan = planSweep(parseSweepSpec(ladder), 'v1');
    assert.equal(plan.trials.length, 8);
    for (const t of plan.trials) assert.equal(t.config.seed, t.seed);
  });

  it('refuses, at plan time, a placeholder some trial config lacks, with the path', () => {
    const spec = parseSweepSpec({ ...ladder, command: ['python', 'train.py', '--dropout', '{dropout}'] });
    const issues = issuesOf(() => planSweep(spec, 'v1'));
    assert.equal(issues[0]!.path, 'command[3]');
    assert.match(issues[0]!.message, /\{dropout\}/);
  });

  it('gives trials an identity that changes with the command, the image and the workdir version', () => {
    const ids = (input: object) => planSweep(parseSweepSpec(input), 'v1').trials.map((t) => t.identity);
    const base = ids(ladder);
    const changed = [
      ids({ ...ladder, command: [...ladder.command, '--fast'] }),
      ids({ ...ladder, image: 'img@sha256:' + 'c'.repeat(64) }),
      ids({ ...ladder, workdirVersion: 'sha256:abd' }),
    ];
    for (const other of changed) for (let i = 0; i < base.length; i++) assert.notEqual(other[i], base[i]);
    assert.deepEqual(ids(JSON.parse(JSON.stringify(ladder))), base, 'same spec, same identities');
  });

  it('refuses a command that expands past the byte limit', () => {
    const spec = parseSweepSpec({ ...ladder, base: { blob: 'x'.repeat(4000) }, command: ['p', ...Array.from({ length: 40 }, () => '{blob}')] });
    const issues = issuesOf(() => planSweep(spec, 'v1'));
    assert.match(issues[0]!.message, /LADDER_MAX_COMMAND_BYTES/);
  });
});
