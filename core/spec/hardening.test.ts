/**
 * Hostile and careless specs (issue 10): prototype pollution, unbounded planning, size and string
 * bounds, YAML tags, ranges and operator limits. Each is refused with a path, before any work.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { readSpecLimits } from '../settings';
import { planSweep } from './planner';
import {
  MAX_SPEC_BYTES,
  MAX_STRING_LENGTH,
  parseSweepSpec,
  parseSweepSpecShape,
  parseSweepSpecText,
  SpecError,
  type SpecIssue,
  type SweepSpec,
} from './spec';

function issuesOf(fn: () => unknown): SpecIssue[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    assert.ok(err.issues.length > 0);
    return err.issues;
  }
  assert.fail('expected a SpecError, got none');
}

const polluted = () => (({}) as Record<string, unknown>).pwned;

afterEach(() => {
  // A failing test must not leave the prototype dirty for the next one.
  delete (Object.prototype as Record<string, unknown>).pwned;
});

describe('prototype pollution through a spec', () => {
  const hostile: Array<[string, unknown, string]> = [
    ['grid key __proto__.pwned', { grid: { '__proto__.pwned': [1] } }, 'grid.__proto__.pwned'],
    ['grid key constructor.prototype.pwned', { grid: { 'constructor.prototype.pwned': [1] } }, 'grid.constructor.prototype.pwned'],
    ['scale key __proto__.pwned', { scale: { key: '__proto__.pwned', rungs: [1] } }, 'scale.key'],
    ['scale key constructor.prototype.pwned', { scale: { key: 'constructor.prototype.pwned', rungs: ['x'] } }, 'scale.key'],
    ['base key __proto__', JSON.parse('{"base": {"__proto__": {"pwned": 1}}}'), 'base.__proto__'],
    ['nested base key', JSON.parse('{"base": {"a": {"constructor": {"prototype": {"pwned": 1}}}}}'), 'base.a.constructor'],
    ['variant config', JSON.parse('{"variants": [{"name": "v", "config": {"__proto__": {"pwned": 1}}}]}'), 'variants[0].config.__proto__'],
    [
      'rung config',
      JSON.parse('{"scale": {"key": "w", "rungs": [{"name": "r", "value": 1, "config": {"prototype": {"pwned": 1}}}]}}'),
      'scale.rungs[0].config.prototype',
    ],
    ['top-level key', JSON.parse('{"__proto__": {"pwned": 1}}'), '__proto__'],
  ];
  for (const [label, extra, path] of hostile) {
    it(`refuses a ${label} and leaves Object.prototype clean`, () => {
      const input = { name: 'evil', kind: 'synthetic', ...(extra as object) };
      if (label === 'top-level key') Object.defineProperty(input, '__proto__', { value: { pwned: 1 }, enumerable: true });
      const issues = issuesOf(() => planSweep(parseSweepSpecShape(input), 'x'));
      assert.ok(
        issues.some((i) => i.path === path && /not allowed/.test(i.message)),
        `expected "not allowed" at ${path}: ${JSON.stringify(issues)}`,
      );
      assert.equal(polluted(), undefined, 'Object.prototype was polluted');
    });
  }

  it('the planner alone (a spec that skipped parsing, e.g. read back from storage) refuses too', () => {
    for (const spec of [
      { grid: { '__proto__.pwned': [1] } },
      { scale: { key: 'constructor.prototype.pwned', rungs: [1] } },
      { base: JSON.parse('{"__proto__": {"pwned": 1}}') },
    ]) {
      const full = { name: 'evil', kind: 'synthetic', project: 'p', base: {}, seeds: 1, ...spec } as unknown as SweepSpec;
      assert.throws(() => planSweep(full, 'x'), SpecError);
      assert.equal(polluted(), undefined, `Object.prototype was polluted by ${JSON.stringify(spec)}`);
    }
  });

  it('YAML text with a __proto__ key is refused too', () => {
    const issues = issuesOf(() => parseSweepSpecText('name: e\nkind: synthetic\nbase:\n  __proto__:\n    pwned: 1\n'));
    assert.deepEqual(issues.map((i) => i.path), ['base.__proto__']);
    assert.equal(polluted(), undefined);
  });
});

describe('unbounded planning', () => {
  const tenToTheTen = {
    name: 'huge',
    kind: 'synthetic',
    grid: Object.fromEntries(['a', 'alpha', 'c', 'lr', 'noise', 'scale', 'steps', 'width', 'checkpoint_every', 'fail_attempts'].map((k) => [k, Array.from({ length: 10 }, (_, i) => i + 1)])),
  };

  it('refuses a 10^10-trial grid in milliseconds, stating the count and the limit', () => {
    const t0 = performance.now();
    const issues = issuesOf(() => parseSweepSpec(tenToTheTen));
    const ms = performance.now() - t0;
    assert.deepEqual(issues.map((i) => i.path), ['']);
    assert.match(issues[0]!.message, /plans 10000000000 trials .* the limit is 10000 per sweep \(LADDER_MAX_TRIALS_PER_SWEEP\)/);
    // Generous bound for a loaded CI machine; planning it would take hours and > 4 GB.
    assert.ok(ms < 1000, `took ${ms.toFixed(1)} ms`);
    process.stdout.write(`# 10^10-trial spec refused in ${ms.toFixed(2)} ms\n`);
  });

  it('the planner refuses it too, before building anything', () => {
    const spec = { ...tenToTheTen, project: 'p', base: {}, seeds: 1 } as unknown as SweepSpec;
    const t0 = performance.now();
    assert.throws(() => planSweep(spec, 'x'), /plans 10000000000 trials/);
    assert.ok(performance.now() - t0 < 1000);
  });

  it('counts variants × seeds × rungs against the limit, which the operator can set', () => {
    const spec = { name: 'n', kind: 'synthetic', grid: { lr: [1, 2, 3, 4, 5] }, variants: [{ name: 'a', config: { noise: 0 } }, { name: 'b', config: { noise: 0.1 } }], seeds: 10, scale: { key: 'steps', rungs: [1, 2] } };
    assert.equal(planSweep(parseSweepSpec(spec), 'x').trials.length, 200);
    const limits = readSpecLimits({ LADDER_MAX_TRIALS_PER_SWEEP: '199' });
    assert.match(issuesOf(() => parseSweepSpec(spec, { limits }))[0]!.message, /plans 200 trials .* limit is 199/);
    assert.throws(() => readSpecLimits({ LADDER_MAX_TRIALS_PER_SWEEP: 'lots' }), /LADDER_MAX_TRIALS_PER_SWEEP/);
  });
});

describe('size, strings and nesting', () => {
  it(`refuses spec text over ${MAX_SPEC_BYTES} bytes before parsing it`, () => {
    const text = `name: a\nkind: synthetic\ndescription: "${'x'.repeat(MAX_SPEC_BYTES)}"\n`;
    const issues = issuesOf(() => parseSweepSpecText(text));
    assert.match(issues[0]!.message, /the limit is 262144 \(256 KiB\)/);
  });

  it('refuses a 10 MB string in base (object input, as the API passes it)', () => {
    const issues = issuesOf(() => parseSweepSpec({ name: 'a', kind: 'ttt', base: { device: 'x'.repeat(10 * 1024 * 1024) } }));
    assert.deepEqual(issues.map((i) => i.path), ['base.device']);
    assert.match(issues[0]!.message, new RegExp(`the limit is ${MAX_STRING_LENGTH}`));
  });

  it('refuses overlong keys, deep nesting and non-JSON values with a path', () => {
    assert.ok(issuesOf(() => parseSweepSpec({ name: 'a', kind: 'synthetic', base: { ['k'.repeat(300)]: 1 } }))[0]!.path === 'base');
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { d: deep };
    assert.match(issuesOf(() => parseSweepSpec({ name: 'a', kind: 'synthetic', base: { x: deep } }))[0]!.message, /nested deeper/);
    let deepList: unknown = 1;
    for (let i = 0; i < 100_000; i++) deepList = [deepList];
    assert.match(issuesOf(() => parseSweepSpecText(`name: a\nkind: synthetic\nbase: {x: ${'['.repeat(5000)}${']'.repeat(5000)}}`))[0]!.message, /nested|not valid/);
    assert.match(issuesOf(() => parseSweepSpec({ name: 'a', kind: 'synthetic', base: { x: deepList } }))[0]!.message, /nested deeper/);
    assert.deepEqual(issuesOf(() => parseSweepSpec({ name: 'a', kind: 'synthetic', base: { when: new Date() } }))[0]!.path, 'base.when');
  });

  it('refuses YAML tags instead of turning them into strings or objects', () => {
    for (const [text, path] of [
      ['name: a\nkind: synthetic\nbase:\n  steps: !!js/function "function () { return 1 }"\n', 'base.steps'],
      ['name: a\nkind: synthetic\ndescription: !custom x\n', 'description'],
      ['name: a\nkind: synthetic\ngrid:\n  lr: [1, !!binary aGVsbG8=]\n', 'grid.lr[1]'],
      ['name: a\nkind: synthetic\nbase: !!set {x, y}\n', 'base'],
    ] as const) {
      const issues = issuesOf(() => parseSweepSpecText(text));
      assert.equal(issues[0]!.path, path, text);
      assert.match(issues[0]!.message, /YAML tag .* is not allowed/);
    }
  });

  it('refuses a YAML alias bomb', () => {
    const lines = ['name: a', 'kind: synthetic', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    assert.match(issuesOf(() => parseSweepSpecText(lines.join('\n')))[0]!.message, /not valid YAML|alias/i);
  });
});

describe('ranges and operator limits', () => {
  const base = { name: 'a', kind: 'synthetic' };
  it('seeds are within 0..2^31-1', () => {
    assert.ok(issuesOf(() => parseSweepSpec({ ...base, seeds: [99999999999] })).some((i) => i.path === 'seeds[0]'));
    parseSweepSpec({ ...base, seeds: [0, 2 ** 31 - 1] });
  });

  it('absurd resources and timeouts are refused with the operator limit named', () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ resources: { gpus: 100000 } }, 'resources.gpus', /at most 64 .*LADDER_MAX_GPUS_PER_TRIAL/],
      [{ resources: { cpu: 1e12 } }, 'resources.cpu', /at most 1024 .*LADDER_MAX_CPU_PER_TRIAL/],
      [{ resources: { memory: '5Ti' } }, 'resources.memory', /more than the 4Ti .*LADDER_MAX_MEMORY_PER_TRIAL/],
      [{ resources: { memory: `${'9'.repeat(400)}Gi` } }, 'resources.memory', /LADDER_MAX_MEMORY_PER_TRIAL/],
      [{ timeoutSeconds: 10 ** 9 }, 'timeoutSeconds', /LADDER_MAX_TIMEOUT_SECONDS/],
    ];
    for (const [extra, path, message] of cases) {
      const issues = issuesOf(() => parseSweepSpec({ ...base, ...extra }));
      assert.equal(issues[0]!.path, path);
      assert.match(issues[0]!.message, message);
    }
    const limits = readSpecLimits({ LADDER_MAX_GPUS_PER_TRIAL: '128' });
    assert.equal(parseSweepSpec({ ...base, resources: { gpus: 100 } }, { limits }).resources.gpus, 100);
  });
});
