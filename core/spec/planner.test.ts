import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mulberry32 } from '../analysis/rng';
import { canonicalJson, trialIdentity } from './identity';
import { deepMerge, planSweep, plainJson, setPath, type Config } from './planner';
import { parseSweepSpecShape, SpecError, type SweepSpecInput } from './spec';

const CODE = 'code-v1';

/** Planning does not depend on the job kind, so these specs use made-up kinds and keys. */
function plan(input: SweepSpecInput, codeVersion = CODE) {
  return planSweep(parseSweepSpecShape(input), codeVersion);
}

describe('planSweep: shape', () => {
  it('a minimal spec gives one trial: base variant, default rung, seed 0', () => {
    const p = plan({ name: 'a', kind: 'ttt', base: { lr: 0.1 } });
    assert.deepEqual(
      p.variants.map((v) => [v.index, v.name, v.overrides]),
      [[0, 'base', {}]],
    );
    assert.deepEqual(p.rungs, [{ index: 0, name: 'default', value: null, overrides: {} }]);
    assert.deepEqual(p.seeds, [0]);
    assert.equal(p.trials.length, 1);
    assert.equal(p.trials[0]!.key, 'r0-v0-s0');
    assert.deepEqual(p.trials[0]!.config, { lr: 0.1, seed: 0 });
  });

  it('trial count is variants × seeds × rungs, keys are r<rung>-v<variant>-s<seed>, rung-major order', () => {
    const p = plan({
      name: 'a',
      kind: 'ttt',
      grid: { lr: [1, 2, 3] },
      variants: [
        { name: 'x', config: { arch: 'x' } },
        { name: 'y', config: { arch: 'y' } },
      ],
      seeds: [5, 9],
      scale: { key: 'width', rungs: [64, 128] },
    });
    assert.equal(p.variants.length, 6);
    assert.equal(p.rungs.length, 2);
    assert.deepEqual(p.seeds, [5, 9]);
    assert.equal(p.trials.length, 6 * 2 * 2);
    const expectedKeys: string[] = [];
    for (let r = 0; r < 2; r++) for (let v = 0; v < 6; v++) for (const s of [5, 9]) expectedKeys.push(`r${r}-v${v}-s${s}`);
    assert.deepEqual(
      p.trials.map((t) => t.key),
      expectedKeys,
    );
    for (const t of p.trials) {
      assert.equal(t.key, `r${t.rung.index}-v${t.variant.index}-s${t.seed}`);
      assert.equal(t.config.seed, t.seed);
    }
  });

  it('seeds as a count are 0..n-1, as a list are kept in order', () => {
    assert.deepEqual(plan({ name: 'a', kind: 'ttt', seeds: 4 }).seeds, [0, 1, 2, 3]);
    assert.deepEqual(plan({ name: 'a', kind: 'ttt', seeds: [42, 7, 0] }).seeds, [42, 7, 0]);
    assert.deepEqual(
      plan({ name: 'a', kind: 'ttt', seeds: [42, 7] }).trials.map((t) => t.key),
      ['r0-v0-s42', 'r0-v0-s7'],
    );
  });

  it('crosses listed variants with the grid (listed outer, grid keys sorted, values in order)', () => {
    const p = plan({
      name: 'a',
      kind: 'ttt',
      grid: { lr: [0.1, 0.01], batch: [8] },
      variants: [{ name: 'wide', config: { width: 512 } }, { name: 'narrow', config: { width: 64 } }],
    });
    assert.deepEqual(
      p.variants.map((v) => [v.index, v.name, v.overrides]),
      [
        [0, 'wide batch=8,lr=0.1', { width: 512, batch: 8, lr: 0.1 }],
        [1, 'wide batch=8,lr=0.01', { width: 512, batch: 8, lr: 0.01 }],
        [2, 'narrow batch=8,lr=0.1', { width: 64, batch: 8, lr: 0.1 }],
        [3, 'narrow batch=8,lr=0.01', { width: 64, batch: 8, lr: 0.01 }],
      ],
    );
  });

  it('names grid-only variants by their point, and formats non-string values as JSON', () => {
    const p = plan({ name: 'a', kind: 'ttt', grid: { opt: ['adam', { name: 'sgd', m: 0.9 }], flag: [true] } });
    assert.deepEqual(
      p.variants.map((v) => v.name),
      ['flag=true,opt=adam', 'flag=true,opt={"m":0.9,"name":"sgd"}'],
    );
  });

  it('dotted grid keys set nested config and keep the sibling keys from base', () => {
    const p = plan({
      name: 'a',
      kind: 'ttt',
      base: { optimizer: { name: 'adam', lr: 1, betas: [0.9, 0.99] } },
      grid: { 'optimizer.lr': [0.1, 0.2], 'model.dims.width': [32] },
    });
    assert.deepEqual(p.variants[0]!.overrides, { optimizer: { lr: 0.1 }, model: { dims: { width: 32 } } });
    assert.deepEqual(p.trials[1]!.config, {
      optimizer: { name: 'adam', lr: 0.2, betas: [0.9, 0.99] },
      model: { dims: { width: 32 } },
      seed: 0,
    });
  });

  it('resolves config as base ← variant ← rung, the scale key takes the rung value, seed last', () => {
    const p = plan({
      name: 'a',
      kind: 'ttt',
      base: { batch: 32, lr: 1, seed: 999, model: { width: 1, depth: 2 } },
      variants: [{ name: 'v', config: { lr: 2, batch: 16 } }],
      scale: {
        key: 'model.width',
        rungs: [128, { name: 'big', value: 1024, config: { batch: 4, model: { depth: 8 } } }, 'xl'],
      },
    });
    assert.deepEqual(
      p.rungs.map((r) => [r.index, r.name, r.value, r.overrides]),
      [
        [0, '128', 128, { model: { width: 128 } }],
        [1, 'big', 1024, { batch: 4, model: { depth: 8, width: 1024 } }],
        [2, 'xl', 'xl', { model: { width: 'xl' } }],
      ],
    );
    assert.deepEqual(
      p.trials.map((t) => t.config),
      [
        { batch: 16, lr: 2, seed: 0, model: { width: 128, depth: 2 } },
        { batch: 4, lr: 2, seed: 0, model: { width: 1024, depth: 8 } },
        { batch: 16, lr: 2, seed: 0, model: { width: 'xl', depth: 2 } },
      ],
    );
  });

  it('a rung value wins over a rung config that sets the scale key too', () => {
    const p = plan({ name: 'a', kind: 'ttt', scale: { key: 'width', rungs: [{ name: 'r', value: 8, config: { width: 99 } }] } });
    assert.equal(p.trials[0]!.config.width, 8);
  });

  it('the trial identity is trialIdentity over kind, resolved config, seed and code version', () => {
    const p = plan({ name: 'a', kind: 'synthetic', base: { x: 1 }, seeds: 2, scale: { key: 'n', rungs: [1, 2] } }, 'abc');
    for (const t of p.trials) {
      assert.equal(t.identity, trialIdentity({ kind: 'synthetic', config: t.config, seed: t.seed, codeVersion: 'abc' }));
      assert.match(t.identity, /^[0-9a-f]{64}$/);
    }
  });

  it('trial configs are independent copies: editing one touches neither the spec nor other trials', () => {
    const spec = parseSweepSpecShape({
      name: 'a',
      kind: 'ttt',
      base: { model: { width: 1 }, list: [1] },
      variants: [{ name: 'v', config: { opt: { lr: 1 } } }],
      seeds: 2,
      scale: { key: 'n', rungs: [{ name: 'r', value: 1, config: { extra: { k: 1 } } }] },
    });
    const before = structuredClone(spec);
    const p = planSweep(spec, CODE);
    const [a, b] = p.trials;
    (a!.config.model as Config).width = 2;
    (a!.config.list as number[]).push(2);
    (a!.config.opt as Config).lr = 2;
    (a!.config.extra as Config).k = 2;
    assert.deepEqual(b!.config, { model: { width: 1 }, list: [1], opt: { lr: 1 }, extra: { k: 1 }, n: 1, seed: 1 });
    assert.deepEqual(p.variants[0]!.overrides, { opt: { lr: 1 } });
    assert.deepEqual(p.rungs[0]!.overrides, { extra: { k: 1 }, n: 1 });
    assert.deepEqual(spec, before);
  });
});

describe('deepMerge and setPath', () => {
  it('deepMerge merges objects recursively and replaces everything else', () => {
    const target: Config = { a: { b: 1, c: [1, 2] }, d: 1, e: { f: 1 } };
    const out = deepMerge(target, { a: { c: [3], g: null }, d: { x: 1 }, e: 5 });
    assert.equal(out, target);
    // Objects the merge creates have a null prototype; compare as JSON.
    assert.deepEqual(plainJson(target), { a: { b: 1, c: [3], g: null }, d: { x: 1 }, e: 5 });
  });

  it('deepMerge copies, it does not alias the patch', () => {
    const patch = { a: { b: [1] } };
    const target = deepMerge({}, patch);
    (target.a as { b: number[] }).b.push(2);
    assert.deepEqual(patch, { a: { b: [1] } });
  });

  it('setPath creates objects on the way and replaces non-objects', () => {
    const target: Config = { a: 1, keep: { x: 1 } };
    setPath(target, 'a.b.c', 2);
    setPath(target, 'keep.y', 3);
    setPath(target, 'top', [1]);
    assert.deepEqual(plainJson(target), { a: { b: { c: 2 } }, keep: { x: 1, y: 3 }, top: [1] });
    const list = [1, 2];
    setPath(target, 'arr.inner', list);
    list.push(3);
    assert.deepEqual(plainJson((target as Config).arr), { inner: [1, 2] });
    setPath(target, 'top.x', 1);
    assert.deepEqual(plainJson((target as Config).top), { x: 1 }, 'an array on the way is replaced by an object');
  });

  it('setPath and deepMerge refuse keys that reach a prototype, and never write through one', () => {
    for (const path of ['__proto__.polluted', 'constructor.prototype.polluted', 'a.__proto__.polluted', 'prototype']) {
      assert.throws(() => setPath({}, path, 1), SpecError, path);
    }
    // JSON.parse makes "__proto__" an own key, as a request body would.
    const patch = JSON.parse('{"__proto__": {"polluted": 1}, "a": {"constructor": {"prototype": {"polluted": 1}}}}') as Config;
    assert.throws(() => deepMerge({}, patch), SpecError);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  });

  it('an inherited member is not mistaken for a nested config', () => {
    const target = deepMerge({}, { toString: { x: 1 } });
    assert.deepEqual(plainJson(target), { toString: { x: 1 } });
    assert.equal(typeof ({} as { toString: unknown }).toString, 'function');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const keyArb = fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/);
const scalarArb = fc.oneof(fc.integer({ min: -100, max: 100 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 5 }), fc.boolean(), fc.constant(null));
const { value: valueArb } = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalarArb,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(keyArb, tie('value'), { maxKeys: 3, noNullPrototype: true }),
  ),
}));
const configArb = fc.dictionary(keyArb, valueArb, { maxKeys: 4, noNullPrototype: true });

/**
 * Specs whose variants, rungs and seeds are all distinct in config: grid values distinct per axis,
 * listed variants tagged with their own `variant_tag`, rung values distinct, seeds distinct.
 * Grid keys and the scale key live under their own prefixes so they cannot shadow one another.
 */
const plannerSpecArb: fc.Arbitrary<SweepSpecInput> = fc
  .record(
    {
      kind: fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/),
      base: configArb,
      grid: fc.dictionary(
        keyArb.map((k) => `g.${k}`),
        fc.uniqueArray(valueArb, { minLength: 1, maxLength: 3, selector: (v) => canonicalJson(v) }),
        { maxKeys: 2, noNullPrototype: true },
      ),
      variants: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }).chain((names) =>
        fc.tuple(...names.map(() => configArb)).map((configs) =>
          names.map((name, i) => ({ name, config: { ...configs[i], variant_tag: i } })),
        ),
      ),
      seeds: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.uniqueArray(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 4 })),
      scale: fc.record(
        {
          key: keyArb.map((k) => `s.${k}`),
          rungs: fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 3 }).chain((values) =>
            fc.tuple(...values.map((v) => fc.oneof(fc.constant<unknown>(v), configArb.map((config) => ({ name: `rung-${v}`, value: v, config }))))),
          ),
        },
        { noNullPrototype: true },
      ),
    },
    { requiredKeys: ['kind'], noNullPrototype: true },
  )
  .map((s) => ({ name: 'prop-sweep', ...s }) as SweepSpecInput)
  // Specs whose variants collapse into one config are refused by the planner (tested below).
  .filter((input) => {
    try {
      plan(input);
      return true;
    } catch (err) {
      if (err instanceof SpecError) return false;
      throw err;
    }
  });

/** Rebuilds every plain object with its keys in a random order; arrays keep their order. */
function shuffleKeys(value: unknown, next: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, next));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Config);
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, next)]));
  }
  return value;
}

describe('planSweep: properties', () => {
  it('is deterministic: the same spec (parsed twice or planned twice) gives deep-equal plans', () => {
    fc.assert(
      fc.property(plannerSpecArb, (input) => {
        const spec = parseSweepSpecShape(structuredClone(input));
        const a = planSweep(spec, CODE);
        const b = planSweep(spec, CODE);
        const c = planSweep(parseSweepSpecShape(structuredClone(input)), CODE);
        assert.deepEqual(a, b);
        assert.deepEqual(a, c);
      }),
      { numRuns: 100 },
    );
  });

  it('the trial count is variants × seeds × rungs', () => {
    fc.assert(
      fc.property(plannerSpecArb, (input) => {
        const p = plan(input);
        const listed = input.variants?.length ?? 1;
        const gridPoints = Object.values(input.grid ?? {}).reduce((n, values) => n * values.length, 1);
        const seeds = typeof input.seeds === 'number' ? input.seeds : (input.seeds?.length ?? 1);
        const rungs = input.scale?.rungs.length ?? 1;
        assert.equal(p.variants.length, listed * gridPoints);
        assert.equal(p.trials.length, listed * gridPoints * seeds * rungs);
        assert.equal(new Set(p.trials.map((t) => t.key)).size, p.trials.length);
      }),
      { numRuns: 100 },
    );
  });

  it('key order anywhere in the spec never changes the plan or its identities', () => {
    fc.assert(
      fc.property(plannerSpecArb, fc.integer(), (input, seed) => {
        const shuffled = shuffleKeys(input, mulberry32(seed)) as SweepSpecInput;
        const a = plan(input);
        const b = plan(shuffled);
        assert.deepEqual(
          b.trials.map((t) => [t.key, t.variant.name, t.identity]),
          a.trials.map((t) => [t.key, t.variant.name, t.identity]),
        );
        assert.deepEqual(b, a);
      }),
      { numRuns: 150 },
    );
  });

  it('identities are distinct across a plan when variants, rungs and seeds differ', () => {
    fc.assert(
      fc.property(plannerSpecArb, (input) => {
        const p = plan(input);
        assert.equal(new Set(p.trials.map((t) => t.identity)).size, p.trials.length);
      }),
      { numRuns: 100 },
    );
  });

  it('every identity changes with the code version', () => {
    fc.assert(
      fc.property(plannerSpecArb, fc.string({ minLength: 1, maxLength: 8 }), (input, other) => {
        fc.pre(other !== CODE);
        const a = plan(input, CODE);
        const b = plan(input, other);
        a.trials.forEach((t, i) => {
          assert.equal(b.trials[i]!.key, t.key);
          assert.notEqual(b.trials[i]!.identity, t.identity);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('every identity changes when a config value that reaches the trials changes', () => {
    fc.assert(
      fc.property(plannerSpecArb, fc.uniqueArray(valueArb, { minLength: 2, maxLength: 2, selector: (v) => canonicalJson(v) }), (input, [v1, v2]) => {
        const withValue = (v: Json): SweepSpecInput => ({ ...input, base: { ...input.base, zz_probe: v } });
        const a = plan(withValue(v1!));
        const b = plan(withValue(v2!));
        a.trials.forEach((t, i) => {
          assert.deepEqual(t.config.zz_probe, v1);
          assert.notEqual(b.trials[i]!.identity, t.identity);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('changing one leaf of one trial config changes that identity', () => {
    fc.assert(
      fc.property(plannerSpecArb, fc.nat(), valueArb, (input, pick, replacement) => {
        const p = plan(input);
        const t = p.trials[pick % p.trials.length]!;
        const leaves = Object.keys(t.config).filter((k) => k !== 'seed');
        fc.pre(leaves.length > 0);
        const key = leaves[pick % leaves.length]!;
        fc.pre(canonicalJson(t.config[key]) !== canonicalJson(replacement));
        const changed = { ...t.config, [key]: replacement };
        assert.notEqual(trialIdentity({ kind: input.kind!, config: changed, seed: t.seed, codeVersion: CODE }), t.identity);
      }),
      { numRuns: 100 },
    );
  });
});

describe('planSweep: collapsing variants', () => {
  it('refuses a spec whose variants resolve to the same config, naming the rung', () => {
    // The rung's config replaces the object the dotted grid key writes into, so both grid
    // values end up as the same trial.
    const input: SweepSpecInput = {
      name: 'collapse',
      kind: 'synthetic',
      grid: { 'g.a': [0, 1] },
      scale: { key: 's', rungs: [{ name: 'small', value: 1, config: { g: 0 } }] },
    };
    assert.throws(
      () => plan(input),
      (err: unknown) =>
        err instanceof SpecError &&
        err.issues[0]!.path === 'scale.rungs[0]' &&
        /resolve to the same config on rung "small"/.test(err.issues[0]!.message),
    );
  });
});
