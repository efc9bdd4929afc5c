/**
 * Submit-time checks against the job kinds' own declarations (core/spec/job-kinds.json), and the
 * drift check of that file against `python -m ladder_jobs kinds --json`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { generateJobKinds, JOB_KINDS_FILE, jobKindsFromListing } from '../../scripts/gen-job-kinds';
import { jobKind, jobKindNames } from './kinds';
import { parseSweepSpec, parseSweepSpecText, SpecError, type SpecIssue } from './spec';

function issuesOf(fn: () => unknown): SpecIssue[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected a SpecError, got none');
}

const ok = { name: 'k', kind: 'synthetic' };

describe('job-kinds.json', () => {
  it('describes every job kind with typed keys and its presets', () => {
    assert.deepEqual(jobKindNames().sort(), ['clip', 'instaaug', 'rlhf', 'ssl', 'synthetic', 'ttt', 'video']);
    const synthetic = jobKind('synthetic')!;
    assert.equal(synthetic.keys.steps, 'int');
    assert.equal(synthetic.keys.scale, 'float', 'a float default written 1000000.0 stays a float');
    assert.equal(synthetic.keys.seed, 'int');
    assert.deepEqual(synthetic.presets, ['l', 'm', 's', 'xs']);
    assert.equal(jobKind('ttt')!.keys.inner_mean, 'bool');
    assert.equal(jobKind('ttt')!.keys.layer, 'str');
    assert.equal(jobKind('constructor'), undefined);
  });

  it('is what the jobs package declares today (regenerate with `npx tsx scripts/gen-job-kinds.ts`)', { skip: !process.env.LADDER_PYTHON && 'LADDER_PYTHON not set' }, () => {
    assert.equal(fs.readFileSync(JOB_KINDS_FILE, 'utf8'), generateJobKinds(process.env.LADDER_PYTHON!));
  });

  it('the generator keeps int and float apart and fails loudly on a kind that did not load', () => {
    const text = jobKindsFromListing(
      '{"a": {"defaults": {"f": 1.0, "i": 1, "e": 1e-05, "b": true, "s": "x", "l": [], "o": {}, "n": null}, "presets": {"xs": {}}, "help": ""}}',
    );
    assert.deepEqual(JSON.parse(text), {
      kinds: { a: { keys: { b: 'bool', e: 'float', f: 'float', i: 'int', l: 'list', n: 'any', o: 'object', s: 'str' }, presets: ['xs'] } },
    });
    assert.throws(
      () => jobKindsFromListing('{"ttt": {"defaults": null, "presets": null, "help": "(unavailable: torch)"}}'),
      /kind "ttt" did not load/,
    );
  });
});

describe('parseSweepSpec: configs are checked against the job kind', () => {
  it('refuses an unknown kind, listing the known ones', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ name: 'k', kind: 'synthtic' })), [
      { path: 'kind', message: 'unknown job kind "synthtic" (known: clip, instaaug, rlhf, ssl, synthetic, ttt, video)' },
    ]);
  });

  it('refuses unknown keys in base, variants, rung configs, grid and scale keys, at their paths', () => {
    const issues = issuesOf(() =>
      parseSweepSpec({
        ...ok,
        base: { stepz: 4 },
        variants: [{ name: 'v', config: { nois: 0 } }],
        grid: { lrr: [1, 2], 'opt.lr': [1] },
        scale: { key: 'scal', rungs: [{ name: 'a', value: 1, config: { widht: 2 } }] },
      }),
    );
    assert.deepEqual(issues.map((i) => i.path).sort(), [
      'base.stepz',
      'grid.lrr',
      'grid.opt.lr',
      'scale.key',
      'scale.rungs[0].config.widht',
      'variants[0].config.nois',
    ]);
    const base = issues.find((i) => i.path === 'base.stepz')!;
    assert.match(base.message, /^unknown key of kind "synthetic" \(known: a, alpha, c, .*steps.*\)$/);
    assert.match(new SpecError(issues).message, /base\.stepz: unknown key of kind "synthetic"/);
  });

  it('refuses values whose type is not the type of the default, like the job does', () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ base: { steps: 'forty' } }, 'base.steps', /expects int, got str \("forty"\)/],
      [{ base: { steps: 4.5 } }, 'base.steps', /expects int, got float/],
      [{ base: { steps: true } }, 'base.steps', /expects int, got bool/],
      [{ base: { steps: 2 ** 60 } }, 'base.steps', /expects int/],
      [{ base: { lr: '3e-4' } }, 'base.lr', /expects float, got str/],
      [{ base: { lr: [1] } }, 'base.lr', /expects float, got list/],
      [{ base: { preset: 'xl' } }, 'base.preset', /unknown preset "xl" of kind "synthetic" \(known: l, m, s, xs\)/],
      [{ base: { preset: 1 } }, 'base.preset', /expects str/],
      [{ grid: { steps: [1, 'two'] } }, 'grid.steps[1]', /expects int/],
      [{ scale: { key: 'scale', rungs: [1e5, 'NaN'] } }, 'scale.rungs[1]', /expects float, got str \("NaN"\)/],
      [{ scale: { key: 'steps', rungs: [{ name: 'a', value: 'Infinity' }] } }, 'scale.rungs[0].value', /expects int/],
      [{ scale: { key: 'steps.x', rungs: [1] } }, 'scale.key', /"steps" is a int key .* needs an object key/],
    ];
    for (const [extra, path, message] of cases) {
      const issues = issuesOf(() => parseSweepSpec({ ...ok, ...extra }));
      const issue = issues.find((i) => i.path === path);
      assert.ok(issue, `expected an issue at ${path}, got ${JSON.stringify(issues)}`);
      assert.match(issue.message, message);
    }
  });

  it('accepts what the job accepts: int for float, presets, seed, a preset scale axis', () => {
    parseSweepSpec({ ...ok, base: { scale: 1000000, lr: 1, steps: 3, preset: 'xs', seed: 4 } });
    parseSweepSpec({ ...ok, scale: { key: 'preset', rungs: ['xs', 's', 'm'] } });
    parseSweepSpec({ name: 't', kind: 'ttt', base: { inner_mean: false, layer: 'ttt_mlp', device: 'cpu' } });
  });

  it('checks YAML text the same way (the issue probe: kind typo, key typo, wrong type, NaN rung)', () => {
    for (const [text, path] of [
      ['name: a\nkind: synthtic\n', 'kind'],
      ['name: a\nkind: synthetic\nbase: {stepz: 3}\n', 'base.stepz'],
      ['name: a\nkind: synthetic\nbase: {steps: forty}\n', 'base.steps'],
      ['name: a\nkind: synthetic\nscale: {key: scale, rungs: [1e5, "NaN"]}\n', 'scale.rungs[1]'],
    ] as const) {
      assert.deepEqual(
        issuesOf(() => parseSweepSpecText(text)).map((i) => i.path),
        [path],
        text,
      );
    }
  });
});
