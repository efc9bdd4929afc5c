/**
 * The spec's `search` block: random search is reproducible and crossed with the grid, ASHA
 * becomes the scale ladder and promotion rule, and bad blocks are refused with the path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSpecLimits } from '../settings';
import { planSweep } from './planner';
import { ashaRungs, samplePoints } from './search';
import { parseSweepSpec, SpecError } from './spec';

const loguniformLr = { type: 'loguniform', low: 1e-5, high: 1e-1 };
const base = (search: unknown, extra: Record<string, unknown> = {}) => ({ name: 'search', kind: 'synthetic', base: { steps: 2 }, search, ...extra });

/** The issues a spec is refused with, as `path: message` lines. */
function refusal(input: unknown, options = {}): string[] {
  try {
    parseSweepSpec(input, options);
  } catch (err) {
    if (err instanceof SpecError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  assert.fail('the spec was accepted');
}

describe('search.random', () => {
  const spec = base({ seed: 7, samples: 6, random: { lr: loguniformLr, width: { type: 'int', low: 32, high: 512 }, noise: { type: 'uniform', low: 0, high: 0.1 } } }, { seeds: 2 });

  it('plans the same trials and identities on every submit, also from the stored spec', () => {
    const first = planSweep(parseSweepSpec(spec), 'v1');
    const again = planSweep(parseSweepSpec(structuredClone(spec)), 'v1');
    // A stored spec is the parsed one, as JSON: parsing that again must plan the same.
    const stored = planSweep(parseSweepSpec(JSON.parse(JSON.stringify(parseSweepSpec(spec)))), 'v1');
    const view = (p: typeof first) => p.trials.map((t) => [t.key, t.variant.name, t.identity, JSON.stringify(t.config)]);
    assert.equal(first.trials.length, 12);
    assert.deepEqual(view(again), view(first));
    assert.deepEqual(view(stored), view(first));
  });

  it('draws other points for another seed', () => {
    const names = (seed: number) => planSweep(parseSweepSpec({ ...spec, search: { ...spec.search as object, seed } }), 'v1').variants.map((v) => v.name);
    assert.notDeepEqual(names(8), names(7));
    assert.deepEqual(names(7), names(7));
  });

  it('keeps earlier samples when more are drawn (their trials are reused)', () => {
    const points = (samples: number) => samplePoints({ seed: 3, samples, random: { lr: loguniformLr, width: { type: 'int', low: 32, high: 512 } } } as never);
    assert.deepEqual(points(10).slice(0, 4), points(4));
  });

  it('draws each distribution inside its bounds, with its type', () => {
    const points = samplePoints({
      seed: 1,
      samples: 300,
      random: { lr: loguniformLr, width: { type: 'int', low: 32, high: 40 }, act: { type: 'choice', values: ['relu', 'gelu', { name: 'swish' }] }, p: { type: 'uniform', low: -1, high: 1 } },
    } as never);
    const column = (k: string) => points.map((p) => new Map(p).get(k));
    assert.ok(column('lr').every((v) => typeof v === 'number' && v >= 1e-5 && v <= 1e-1));
    assert.ok(column('width').every((v) => Number.isInteger(v) && (v as number) >= 32 && (v as number) <= 40));
    assert.deepEqual(new Set(column('width')), new Set([32, 33, 34, 35, 36, 37, 38, 39, 40]), 'both ends of an int range are drawn');
    assert.equal(new Set(column('act').map((v) => JSON.stringify(v))).size, 3);
    assert.ok(column('p').every((v) => typeof v === 'number' && v >= -1 && v <= 1));
    // Log-uniform: about as many draws per decade; a plain uniform would put ~90% in the top one.
    const top = column('lr').filter((v) => (v as number) > 1e-2).length;
    assert.ok(top > 30 && top < 120, `${top} of 300 draws in the top decade`);
  });

  it('draws distinct points from a small discrete space', () => {
    const points = samplePoints({ seed: 0, samples: 4, random: { width: { type: 'int', low: 1, high: 4 } } } as never);
    assert.deepEqual(points.map((p) => p[0]![1]).sort(), [1, 2, 3, 4]);
  });

  it('crosses the samples with the grid and the listed variants', () => {
    const plan = planSweep(
      parseSweepSpec(base({ samples: 3, random: { lr: loguniformLr } }, { grid: { width: [64, 128] }, variants: [{ name: 'a' }, { name: 'b', config: { noise: 0 } }] })),
      'v1',
    );
    assert.equal(plan.variants.length, 2 * 2 * 3);
    assert.equal(new Set(plan.variants.map((v) => v.name)).size, 12, 'names are unique');
    const lrs = new Set(plan.variants.map((v) => v.overrides.lr));
    assert.equal(lrs.size, 3, 'each grid point gets the same three samples');
    assert.ok(plan.variants.every((v) => v.overrides.width === 64 || v.overrides.width === 128));
  });

  it('counts samples against the trial limit', () => {
    const limits = { ...readSpecLimits(), LADDER_MAX_TRIALS_PER_SWEEP: 50 };
    assert.deepEqual(refusal(base({ samples: 30, random: { lr: loguniformLr } }, { seeds: 2 }), { limits }), [
      ': the spec plans 60 trials (variants × samples × seeds × rungs); the limit is 50 per sweep (LADDER_MAX_TRIALS_PER_SWEEP)',
    ]);
    assert.doesNotThrow(() => parseSweepSpec(base({ samples: 25, random: { lr: loguniformLr } }, { seeds: 2 }), { limits }));
  });
});

describe('search.asha', () => {
  const asha = { resource: 'steps', minResource: 10, maxResource: 270, eta: 3, metric: 'loss' };

  it('becomes the scale ladder (minResource·eta^k up to maxResource) and a best-1/eta promotion', () => {
    const spec = parseSweepSpec(base({ asha }, { grid: { lr: [1e-4, 1e-3] } }));
    assert.deepEqual(spec.scale, { key: 'steps', rungs: [10, 30, 90, 270] });
    assert.deepEqual(spec.promotion, { metric: 'loss', mode: 'min', fraction: 1 / 3 });
    const plan = planSweep(spec, 'v1');
    assert.deepEqual(plan.trials.map((t) => [t.rung.index, t.config.steps]).filter(([, s], i, a) => a.findIndex(([, x]) => x === s) === i), [[0, 10], [1, 30], [2, 90], [3, 270]]);
    // Parsing the parsed (stored) spec again accepts the ladder it carries.
    assert.deepEqual(parseSweepSpec(JSON.parse(JSON.stringify(spec))), spec);
  });

  it('ends the ladder at maxResource when it is not minResource·eta^k', () => {
    assert.deepEqual(ashaRungs({ ...asha, maxResource: 100, mode: 'min' }), [10, 30, 90, 100]);
  });

  it('crosses with random search', () => {
    const plan = planSweep(parseSweepSpec(base({ samples: 9, random: { lr: loguniformLr }, asha })), 'v1');
    assert.equal(plan.variants.length, 9);
    assert.equal(plan.trials.length, 9 * 4, 'every variant is planned on every rung; promotion skips the rest');
  });
});

describe('bad search blocks are refused with the path', () => {
  const cases: Array<[string, unknown, string]> = [
    ['unknown distribution', base({ samples: 2, random: { lr: { type: 'gaussian', low: 0, high: 1 } } }), 'search.random.lr.type: type must be one of uniform, loguniform, int, choice'],
    ['low ≥ high', base({ samples: 2, random: { lr: { type: 'uniform', low: 0.1, high: 0.1 } } }), 'search.random.lr: low (0.1) must be below high (0.1)'],
    ['loguniform ≤ 0', base({ samples: 2, random: { lr: { type: 'loguniform', low: 0, high: 1 } } }), 'search.random.lr.low: must be > 0 for a loguniform distribution (got 0)'],
    ['int bound not an integer', base({ samples: 2, random: { width: { type: 'int', low: 8, high: 64.5 } } }), 'search.random.width.high: must be an integer for an int distribution (got 64.5)'],
    ['empty choice', base({ samples: 2, random: { lr: { type: 'choice', values: [] } } }), 'search.random.lr.values: must list at least one value'],
    ['duplicate choice', base({ samples: 1, random: { lr: { type: 'choice', values: [0.1, 0.1] } } }), 'search.random.lr.values[1]: duplicate value 0.1'],
    ['missing bound', base({ samples: 2, random: { lr: { type: 'uniform', low: 0 } } }), 'search.random.lr.high: Invalid input: expected number, received undefined'],
    ['unknown key in a distribution', base({ samples: 2, random: { lr: { type: 'uniform', low: 0, high: 1, log: true } } }), 'search.random.lr.log: unknown key'],
    ['search key also a grid axis', base({ samples: 2, random: { lr: loguniformLr } }, { grid: { lr: [0.1] } }), 'search.random.lr: "lr" is also a grid axis (grid.lr): give each key one source'],
    ['random without samples', base({ random: { lr: loguniformLr } }), 'search.samples: random search needs samples: how many points to draw'],
    ['samples without random', base({ samples: 3, asha: { resource: 'steps', minResource: 1, maxResource: 9, metric: 'loss' } }), 'search.samples: samples needs random: the distributions to draw from'],
    ['an empty search', base({}), 'search: give random (with samples), asha, or both'],
    ['a space smaller than samples', base({ samples: 5, random: { width: { type: 'int', low: 1, high: 2 }, lr: { type: 'choice', values: [0.1, 0.2] } } }), 'search.samples: 5 samples, but the space has only 4 distinct points: lower samples or use a grid'],
    ['a key the kind does not have', base({ samples: 2, random: { lrr: loguniformLr } }), 'search.random.lrr: "lrr": unknown key of kind "synthetic"'],
    ['floats for an int key', base({ samples: 2, random: { width: { type: 'uniform', low: 1, high: 9 } } }), 'search.random.width.type: uniform draws floats, but "width" is an int key of kind "synthetic" (use type: int)'],
    ['a forbidden path segment', base({ samples: 2, random: { 'a.constructor': loguniformLr } }), 'search.random.a.constructor: "constructor" is not allowed as a path segment'],
    ['asha max ≤ min', base({ asha: { resource: 'steps', minResource: 9, maxResource: 9, metric: 'loss' } }), 'search.asha.maxResource: must be greater than minResource (9)'],
    ['asha eta below 2', base({ asha: { resource: 'steps', minResource: 1, maxResource: 9, eta: 1, metric: 'loss' } }), 'search.asha.eta: Too small: expected number to be >=2'],
    ['asha resource a grid axis', base({ asha: { resource: 'steps', minResource: 1, maxResource: 9, metric: 'loss' } }, { grid: { steps: [1, 2] } }), 'search.asha.resource: "steps" is also a grid axis (grid.steps); ASHA sets it per rung'],
    ['asha and a scale axis', base({ asha: { resource: 'steps', minResource: 1, maxResource: 9, metric: 'loss' } }, { scale: { key: 'scale', rungs: [1e5, 1e6] } }), 'scale: search.asha makes the resource ladder the scale axis; a sweep has one scale axis (remove scale)'],
    ['asha and a promotion rule', base({ asha: { resource: 'steps', minResource: 1, maxResource: 9, metric: 'loss' } }, { promotion: { metric: 'loss', topK: 2 } }), 'promotion: search.asha promotes the best 1/eta of each rung itself (remove promotion)'],
    ['asha resource of the wrong type', base({ asha: { resource: 'steps', minResource: 1.5, maxResource: 9, metric: 'loss' } }), 'search.asha.minResource: expects int, got float (1.5)'],
    ['asha with too many rungs', base({ asha: { resource: 'scale', minResource: 1, maxResource: 1e12, eta: 2, metric: 'loss' } }), 'search.asha: minResource·eta^k up to maxResource makes more than 20 rungs: raise eta or minResource'],
  ];
  for (const [what, input, expected] of cases) {
    it(what, () => {
      const issues = refusal(input);
      assert.ok(
        issues.some((i) => i.startsWith(expected)),
        `expected an issue starting with\n  ${expected}\ngot\n  ${issues.join('\n  ')}`,
      );
    });
  }
});
