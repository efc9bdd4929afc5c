import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import YAML from 'yaml';
import { canonicalJson } from './identity';
import { parseSweepSpecShape, rungNames, SpecError, specTextToObject, type SpecIssue } from './spec';

// These tests are about the spec's own grammar, so they use made-up kinds and config keys and
// skip the job-kind check (kinds.test.ts covers that).
const parseSweepSpec = (input: unknown) => parseSweepSpecShape(input);
const parseSweepSpecText = (text: string) => parseSweepSpecShape(specTextToObject(text));

/** Runs fn, asserts it throws a SpecError and returns its issues. */
function issuesOf(fn: () => unknown): SpecIssue[] {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SpecError, `expected a SpecError, got ${caught === undefined ? 'no error' : String(caught)}`);
  assert.ok(caught.issues.length > 0, 'a SpecError must carry at least one issue');
  return caught.issues;
}

function paths(issues: SpecIssue[]): string[] {
  return issues.map((i) => i.path);
}

const minimal = { name: 'tiny', kind: 'ttt' };

describe('parseSweepSpec: valid specs', () => {
  it('fills defaults on a minimal spec', () => {
    const spec = parseSweepSpec(minimal);
    assert.deepEqual(spec, {
      name: 'tiny',
      kind: 'ttt',
      project: 'default',
      base: {},
      seeds: 1,
      resources: { gpus: 0, cpu: 1, memory: '2Gi' },
      concurrency: 4,
      retries: 2,
      timeoutSeconds: 3600,
    });
    assert.deepEqual(rungNames(spec), ['default']);
  });

  it('accepts a full spec with grid, variants, seed list, mixed rungs, promotion and resources', () => {
    const input = {
      name: 'full-sweep-1',
      project: 'proj-a',
      description: 'everything',
      kind: 'synthetic_v2',
      base: { optimizer: { lr: 0.001, betas: [0.9, 0.99] }, steps: 100, tag: null, flag: true },
      grid: { 'optimizer.lr': [0.001, 0.01], batch: [16, 32, 64] },
      variants: [{ name: 'wide', config: { width: 512 } }, { name: 'plain' }],
      seeds: [0, 7, 42],
      scale: {
        key: 'model.width',
        rungs: [128, 'medium', { name: 'big', value: 1024, config: { batch: 8 } }, { name: 'huge', value: 'xl' }],
      },
      promotion: { metric: 'loss', topK: 2 },
      resources: { gpus: 1, cpu: 2.5, memory: '512Mi' },
      concurrency: 8,
      retries: 0,
      timeoutSeconds: 60,
    };
    const spec = parseSweepSpec(input);
    assert.equal(spec.project, 'proj-a');
    assert.deepEqual(spec.grid, input.grid);
    assert.deepEqual(spec.variants, [
      { name: 'wide', config: { width: 512 } },
      { name: 'plain', config: {} },
    ]);
    assert.deepEqual(spec.seeds, [0, 7, 42]);
    assert.deepEqual(spec.scale, input.scale);
    assert.deepEqual(spec.promotion, { metric: 'loss', mode: 'min', topK: 2 });
    assert.deepEqual(spec.resources, { gpus: 1, cpu: 2.5, memory: '512Mi' });
    assert.equal(spec.retries, 0);
    assert.deepEqual(rungNames(spec), ['128', 'medium', 'big', 'huge']);
  });

  it('fills the resources defaults field by field', () => {
    assert.deepEqual(parseSweepSpec({ ...minimal, resources: { gpus: 2 } }).resources, { gpus: 2, cpu: 1, memory: '2Gi' });
  });

  it('accepts a promotion by fraction with mode max', () => {
    const spec = parseSweepSpec({ ...minimal, promotion: { metric: 'acc', mode: 'max', fraction: 0.5 } });
    assert.deepEqual(spec.promotion, { metric: 'acc', mode: 'max', fraction: 0.5 });
  });

  it('allows a scale key named like an inherited Object.prototype member next to a grid', () => {
    // `key in grid` used to see inherited members (toString, valueOf) as grid axes.
    const spec = parseSweepSpec({ ...minimal, grid: { lr: [1, 2] }, scale: { key: 'toString', rungs: [1, 2] } });
    assert.equal(spec.scale?.key, 'toString');
  });
});

describe('parseSweepSpecText', () => {
  const yamlText = `
name: yaml-sweep
kind: ttt
base:
  optimizer:
    lr: 0.001
grid:
  optimizer.lr: [0.001, 0.01]
seeds: 3
scale:
  key: model.width
  rungs:
    - 128
    - name: big
      value: 512
      config: { batch: 4 }
promotion:
  metric: loss
  fraction: 0.5
`;

  it('parses YAML', () => {
    const spec = parseSweepSpecText(yamlText);
    assert.equal(spec.name, 'yaml-sweep');
    assert.deepEqual(spec.base, { optimizer: { lr: 0.001 } });
    assert.deepEqual(spec.grid, { 'optimizer.lr': [0.001, 0.01] });
    assert.equal(spec.seeds, 3);
    assert.deepEqual(spec.scale, { key: 'model.width', rungs: [128, { name: 'big', value: 512, config: { batch: 4 } }] });
    assert.deepEqual(spec.promotion, { metric: 'loss', mode: 'min', fraction: 0.5 });
  });

  it('parses JSON to the same spec as the equivalent object', () => {
    const obj = { name: 'json-sweep', kind: 'ttt', seeds: [1, 2], scale: { key: 'n', rungs: [1, 2] } };
    assert.deepEqual(parseSweepSpecText(JSON.stringify(obj)), parseSweepSpec(obj));
    assert.deepEqual(parseSweepSpecText(JSON.stringify(obj, null, 2)), parseSweepSpec(obj));
  });

  it('validates the text after parsing it, with paths', () => {
    const issues = issuesOf(() => parseSweepSpecText('name: a\nkind: ttt\nresources:\n  gpu: 1\n'));
    assert.deepEqual(issues, [{ path: 'resources.gpu', message: 'unknown key' }]);
  });

  for (const [label, text] of [
    ['a list', '- a\n- b\n'],
    ['a number', '42'],
    ['a string', 'just words'],
    ['an empty document', ''],
    ['null', 'null'],
    ['a JSON array', '[{"name": "a", "kind": "ttt"}]'],
  ] as const) {
    it(`rejects ${label} as not a mapping`, () => {
      const issues = issuesOf(() => parseSweepSpecText(text));
      assert.deepEqual(issues, [{ path: '', message: 'a sweep spec must be a mapping (an object)' }]);
    });
  }

  for (const [label, text] of [
    ['broken YAML', 'name: [a, b\nkind: ttt\n'],
    ['broken JSON', '{"name": "a", "kind": '],
    ['a duplicate key', 'name: a\nname: b\nkind: ttt\n'],
  ] as const) {
    it(`rejects ${label} with a clear one-line message`, () => {
      const issues = issuesOf(() => parseSweepSpecText(text));
      assert.equal(issues.length, 1);
      assert.equal(issues[0]!.path, '');
      assert.match(issues[0]!.message, /^not valid YAML or JSON: \S/);
      assert.ok(!issues[0]!.message.includes('\n'), 'the message is one line');
    });
  }
});

describe('parseSweepSpec: rejected specs', () => {
  it('rejects an unknown top-level key with its path', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...minimal, concurency: 4 })), [{ path: 'concurency', message: 'unknown key' }]);
  });

  it('rejects unknown nested keys with their exact paths', () => {
    const cases: Array<[unknown, string]> = [
      [{ ...minimal, resources: { gpu: 1 } }, 'resources.gpu'],
      [{ ...minimal, scale: { key: 'w', rungs: [{ nmae: 'a', name: 'a', value: 1 }] } }, 'scale.rungs[0].nmae'],
      [{ ...minimal, scale: { key: 'w', rungs: [1, { name: 'b', value: 2, extra: true }] } }, 'scale.rungs[1].extra'],
      [{ ...minimal, scale: { key: 'w', rungs: [1], step: 2 } }, 'scale.step'],
      [{ ...minimal, promotion: { metric: 'loss', topK: 1, top_k: 1 } }, 'promotion.top_k'],
      [{ ...minimal, variants: [{ name: 'a' }, { name: 'b', confg: {} }] }, 'variants[1].confg'],
    ];
    for (const [input, path] of cases) {
      assert.deepEqual(paths(issuesOf(() => parseSweepSpec(input))), [path], `for ${JSON.stringify(input)}`);
      assert.equal(issuesOf(() => parseSweepSpec(input))[0]!.message, 'unknown key');
    }
  });

  it('lists every unknown key, not just the first', () => {
    const issues = issuesOf(() => parseSweepSpec({ ...minimal, a: 1, b: 2, resources: { gpu: 1 } }));
    assert.deepEqual(paths(issues).sort(), ['a', 'b', 'resources.gpu']);
  });

  it('accepts any key inside config objects (base, variant config, rung config)', () => {
    const spec = parseSweepSpec({
      ...minimal,
      base: { anything: { goes: [1, 'x', null] } },
      variants: [{ name: 'v', config: { whatever: 1 } }],
      scale: { key: 'w', rungs: [{ name: 'r', value: 1, config: { odd_key: true } }] },
    });
    assert.deepEqual(spec.base, { anything: { goes: [1, 'x', null] } });
  });

  it('names the field of a wrong type', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...minimal, concurrency: '4' }, 'concurrency'],
      [{ ...minimal, seeds: -1 }, 'seeds'],
      [{ ...minimal, seeds: 1.5 }, 'seeds'],
      [{ ...minimal, seeds: [0, -1] }, 'seeds[1]'],
      [{ ...minimal, seeds: [] }, 'seeds'],
      [{ ...minimal, kind: 3 }, 'kind'],
      [{ ...minimal, kind: 'Bad-Kind' }, 'kind'],
      [{ ...minimal, name: 'Has Spaces' }, 'name'],
      [{ ...minimal, name: 'a'.repeat(64) }, 'name'],
      [{ ...minimal, retries: 21 }, 'retries'],
      [{ ...minimal, timeoutSeconds: 0 }, 'timeoutSeconds'],
      [{ ...minimal, resources: { memory: '2GB' } }, 'resources.memory'],
      [{ ...minimal, resources: { cpu: 0 } }, 'resources.cpu'],
      [{ ...minimal, base: [] }, 'base'],
      [{ ...minimal, base: { lr: Number.NaN } }, 'base.lr'],
      [{ ...minimal, grid: { lr: [] } }, 'grid.lr'],
      [{ ...minimal, grid: { lr: 0.1 } }, 'grid.lr'],
      [{ ...minimal, scale: { key: 'w', rungs: [] } }, 'scale.rungs'],
      [{ ...minimal, scale: { key: 'w', rungs: [1, true] } }, 'scale.rungs[1]'],
      [{ ...minimal, scale: { key: 'w', rungs: [1, Number.POSITIVE_INFINITY] } }, 'scale.rungs[1]'],
      [{ ...minimal, promotion: { metric: 'loss', mode: 'median', topK: 1 } }, 'promotion.mode'],
      [{ ...minimal, promotion: { metric: 'loss', fraction: 1.5 } }, 'promotion.fraction'],
      [{ ...minimal, variants: [] }, 'variants'],
    ];
    for (const [input, path] of cases) {
      const issues = issuesOf(() => parseSweepSpec(input));
      assert.ok(paths(issues).includes(path), `expected an issue at ${path}, got ${JSON.stringify(issues)}`);
      for (const issue of issues) assert.ok(issue.message.length > 0);
    }
  });

  it('puts the path in the error message', () => {
    assert.throws(() => parseSweepSpec({ ...minimal, concurrency: '4' }), /^SpecError: invalid sweep spec: concurrency: /);
    assert.throws(() => parseSweepSpec({ ...minimal, concurrency: '4', retries: -1 }), /invalid sweep spec \(2 problems\): concurrency: .*; retries: /);
  });

  it('requires name and kind', () => {
    assert.deepEqual(paths(issuesOf(() => parseSweepSpec({ kind: 'ttt' }))), ['name']);
    assert.deepEqual(paths(issuesOf(() => parseSweepSpec({ name: 'a' }))), ['kind']);
    assert.deepEqual(paths(issuesOf(() => parseSweepSpec({}))).sort(), ['kind', 'name']);
  });

  it('rejects a non-object input', () => {
    for (const input of [null, undefined, 'name: a', 3, []]) {
      const issues = issuesOf(() => parseSweepSpec(input));
      assert.deepEqual(paths(issues), ['']);
    }
  });

  it('needs exactly one of topK and fraction in a promotion', () => {
    for (const promotion of [{ metric: 'loss' }, { metric: 'loss', topK: 2, fraction: 0.5 }]) {
      const issues = issuesOf(() => parseSweepSpec({ ...minimal, promotion }));
      assert.deepEqual(issues, [{ path: 'promotion', message: 'give exactly one of topK, fraction or intervalOverlap' }]);
    }
    assert.ok(paths(issuesOf(() => parseSweepSpec({ ...minimal, promotion: { metric: 'loss', topK: 0 } }))).includes('promotion.topK'));
  });

  it('rejects duplicate rung names, including a number and an object rung with the same name', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...minimal, scale: { key: 'w', rungs: [1, 2, 1] } })), [
      { path: 'scale.rungs[2]', message: 'duplicate rung "1"' },
    ]);
    assert.deepEqual(
      paths(issuesOf(() => parseSweepSpec({ ...minimal, scale: { key: 'w', rungs: [64, { name: '64', value: 128 }] } }))),
      ['scale.rungs[1]'],
    );
    assert.deepEqual(
      paths(issuesOf(() => parseSweepSpec({ ...minimal, scale: { key: 'w', rungs: ['s', { name: 'm', value: 2 }, { name: 's', value: 3 }] } }))),
      ['scale.rungs[2]'],
    );
  });

  it('rejects duplicate seeds', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...minimal, seeds: [3, 1, 3] })), [{ path: 'seeds', message: 'seeds must be distinct' }]);
  });

  it('rejects duplicate variant names', () => {
    assert.deepEqual(issuesOf(() => parseSweepSpec({ ...minimal, variants: [{ name: 'a' }, { name: 'b' }, { name: 'a', config: { x: 1 } }] })), [
      { path: 'variants[2].name', message: 'duplicate variant "a"' },
    ]);
  });

  it('rejects a scale key that is also a grid axis', () => {
    assert.deepEqual(
      paths(issuesOf(() => parseSweepSpec({ ...minimal, grid: { width: [1, 2] }, scale: { key: 'width', rungs: [1, 2] } }))),
      ['grid.width'],
    );
  });

  it('reports every cross-field problem at once', () => {
    const issues = issuesOf(() =>
      parseSweepSpec({ ...minimal, seeds: [1, 1], variants: [{ name: 'a' }, { name: 'a' }], scale: { key: 'w', rungs: [1, 1] } }),
    );
    assert.deepEqual(paths(issues).sort(), ['scale.rungs[1]', 'seeds', 'variants[1].name']);
  });
});

// ---------------------------------------------------------------------------------------------
// Property-based: valid specs parse; every single-mutation broken spec is rejected at its path.
// ---------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = Record<string, unknown>;
type Path = Array<string | number>;

const nameArb = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const kindArb = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);
const configKeyArb = fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/);
const finiteArb = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true }));
const { value: configValueArb } = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 6 }),
    finiteArb,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(configKeyArb, tie('value'), { maxKeys: 3, noNullPrototype: true }),
  ),
}));
const configArb = fc.dictionary(configKeyArb, configValueArb, { maxKeys: 4, noNullPrototype: true });

const scalarRungArb = fc.oneof(finiteArb, fc.string({ minLength: 1, maxLength: 6 }));
const rungArb = fc.oneof(
  scalarRungArb,
  fc.record(
    { name: fc.string({ minLength: 1, maxLength: 12 }), value: scalarRungArb, config: configArb },
    { requiredKeys: ['name', 'value'], noNullPrototype: true },
  ),
);
const rungName = (r: unknown) => (typeof r === 'object' && r !== null ? (r as { name: string }).name : String(r));

const scaleKeyArb = fc.stringMatching(/^[a-z]{1,5}(\.[a-z]{1,5})?$/);
const gridArb = fc.dictionary(scaleKeyArb, fc.uniqueArray(configValueArb, { minLength: 1, maxLength: 3, selector: (v) => canonicalJson(v) }), { minKeys: 1, maxKeys: 3, noNullPrototype: true });

const promotionArb = fc.oneof(
  fc.record(
    { metric: fc.string({ minLength: 1, maxLength: 8 }), mode: fc.constantFrom('min', 'max'), topK: fc.integer({ min: 1, max: 10 }) },
    { requiredKeys: ['metric', 'topK'], noNullPrototype: true },
  ),
  fc.record(
    {
      metric: fc.string({ minLength: 1, maxLength: 8 }),
      mode: fc.constantFrom('min', 'max'),
      fraction: fc.double({ min: 0.01, max: 1, noNaN: true }),
    },
    { requiredKeys: ['metric', 'fraction'], noNullPrototype: true },
  ),
);

const resourcesArb = fc.record(
  {
    gpus: fc.integer({ min: 0, max: 8 }),
    cpu: fc.double({ min: 0.1, max: 64, noNaN: true }),
    memory: fc.stringMatching(/^[0-9]{1,3}(Mi|Gi)$/),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const validSpecArb: fc.Arbitrary<Obj> = fc
  .record(
    {
      name: nameArb,
      kind: kindArb,
      project: nameArb,
      description: fc.string({ maxLength: 20 }),
      base: configArb,
      grid: gridArb,
      variants: fc.uniqueArray(fc.record({ name: fc.string({ minLength: 1, maxLength: 10 }), config: configArb }, { requiredKeys: ['name'], noNullPrototype: true }), {
        minLength: 1,
        maxLength: 3,
        selector: (v) => v.name,
      }),
      seeds: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.uniqueArray(fc.nat({ max: 10_000 }), { minLength: 1, maxLength: 5 })),
      scale: fc.record(
        { key: scaleKeyArb, rungs: fc.uniqueArray(rungArb, { minLength: 1, maxLength: 4, selector: rungName }) },
        { noNullPrototype: true },
      ),
      promotion: promotionArb,
      resources: resourcesArb,
      concurrency: fc.integer({ min: 1, max: 10_000 }),
      retries: fc.integer({ min: 0, max: 20 }),
      timeoutSeconds: fc.integer({ min: 1, max: 100_000 }),
    },
    { requiredKeys: ['name', 'kind'], noNullPrototype: true },
  )
  .filter((s) => !(s.scale && s.grid && Object.hasOwn(s.grid, s.scale.key)))
  // Within the default trial limit (10,000), which has tests of its own.
  .filter(
    (s) =>
      (s.variants?.length ?? 1) *
        Object.values(s.grid ?? {}).reduce((n, v) => n * v.length, 1) *
        (typeof s.seeds === 'number' ? s.seeds : (s.seeds?.length ?? 1)) *
        (s.scale?.rungs.length ?? 1) <=
      10_000,
  )
  .map((s) => s as Obj);

function getAt(root: unknown, path: Path): unknown {
  let node = root;
  for (const part of path) node = (node as Record<string | number, unknown>)[part];
  return node;
}

function setAt(root: Obj, path: Path, value: unknown): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1]!] = value;
}

function deleteAt(root: Obj, path: Path): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>;
  delete parent[path[path.length - 1]!];
}

/** Written here rather than imported so the test does not trust the formatter under test. */
function showPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

function related(issuePath: string, target: string): boolean {
  if (issuePath === '' || target === '') return issuePath === target;
  const under = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || a.startsWith(`${b}[`);
  return under(issuePath, target) || under(target, issuePath);
}

interface Mutation {
  kind: 'unknown-key' | 'wrong-type' | 'delete-required' | 'out-of-range';
  path: Path;
  apply: (spec: Obj) => void;
}

/** Paths of the strict objects present in a spec (where an unknown key must be refused). */
function strictObjectPaths(spec: Obj): Path[] {
  const out: Path[] = [[]];
  for (const key of ['resources', 'scale', 'promotion']) if (spec[key] !== undefined) out.push([key]);
  const scale = spec.scale as { rungs: unknown[] } | undefined;
  scale?.rungs.forEach((r, i) => {
    if (typeof r === 'object') out.push(['scale', 'rungs', i]);
  });
  (spec.variants as unknown[] | undefined)?.forEach((_, i) => out.push(['variants', i]));
  return out;
}

/** Fields present in the spec, each with values of a type the schema must refuse there. */
function wrongTypeCandidates(spec: Obj): Array<[Path, unknown[]]> {
  const out: Array<[Path, unknown[]]> = [
    [['name'], [3, true, null, ['a']]],
    [['kind'], [3, false, {}, ['ttt']]],
  ];
  const top: Record<string, unknown[]> = {
    project: [1, true],
    description: [1, []],
    base: ['x', 3, [1], null],
    grid: ['x', [1, 2], { lr: 'not-a-list' }],
    variants: ['x', {}],
    seeds: ['3', true, { n: 3 }],
    scale: ['x', []],
    promotion: ['x', 1],
    resources: ['x', 2],
    concurrency: ['4', true, null],
    retries: ['2', false],
    timeoutSeconds: ['60', []],
  };
  for (const [key, values] of Object.entries(top)) if (spec[key] !== undefined) out.push([[key], values]);
  const resources = spec.resources as Obj | undefined;
  if (resources) {
    out.push([['resources', 'gpus'], ['1', 1.5]]);
    out.push([['resources', 'cpu'], ['1', null]]);
    out.push([['resources', 'memory'], [2, '2 GB']]);
  }
  const scale = spec.scale as { rungs: unknown[] } | undefined;
  if (scale) {
    out.push([['scale', 'key'], [1, '']]);
    out.push([['scale', 'rungs'], ['1', {}]]);
    scale.rungs.forEach((r, i) => {
      out.push([['scale', 'rungs', i], [true, null, '', [1]]]);
      if (typeof r === 'object') {
        out.push([['scale', 'rungs', i, 'name'], [1, '']]);
        out.push([['scale', 'rungs', i, 'value'], [true, null]]);
      }
    });
  }
  if (spec.promotion) {
    out.push([['promotion', 'metric'], [1, '']]);
    out.push([['promotion', 'mode'], ['median', 1]]);
  }
  (spec.variants as unknown[] | undefined)?.forEach((_, i) => {
    out.push([['variants', i, 'name'], [1, '']]);
    out.push([['variants', i, 'config'], ['x', [1]]]);
  });
  const seeds = spec.seeds;
  if (Array.isArray(seeds)) out.push([['seeds', 0], ['0', 0.5]]);
  return out;
}

/** Numeric fields present (or addable) in the spec, each with values just out of range. */
function outOfRangeCandidates(spec: Obj): Array<[Path, unknown[]]> {
  const out: Array<[Path, unknown[]]> = [
    [['concurrency'], [0, -1, 10_001]],
    [['retries'], [-1, 21]],
    [['timeoutSeconds'], [0, -5]],
    [['seeds'], [0, 1001]],
  ];
  if (spec.resources) {
    out.push([['resources', 'gpus'], [-1]]);
    out.push([['resources', 'cpu'], [0, -0.5]]);
  }
  const promotion = spec.promotion as Obj | undefined;
  if (promotion?.topK !== undefined) out.push([['promotion', 'topK'], [0, -3]]);
  if (promotion?.fraction !== undefined) out.push([['promotion', 'fraction'], [0, 1.0001, -0.5]]);
  if (Array.isArray(spec.seeds)) out.push([['seeds', spec.seeds.length - 1], [-1]]);
  return out;
}

const unknownKeyArb = fc.stringMatching(/^[a-z]{1,8}$/).map((s) => `x${s}`);

function mutationArb(spec: Obj): fc.Arbitrary<Mutation> {
  const pickFrom = (candidates: Array<[Path, unknown[]]>, kind: Mutation['kind']) =>
    fc.constantFrom(...candidates).chain(([path, values]) =>
      fc.constantFrom(...values).map(
        (value): Mutation => ({ kind, path, apply: (s) => setAt(s, path, value) }),
      ),
    );
  return fc.oneof(
    fc.tuple(fc.constantFrom(...strictObjectPaths(spec)), unknownKeyArb, configValueArb).map(
      ([at, key, value]): Mutation => ({ kind: 'unknown-key', path: [...at, key], apply: (s) => setAt(s, [...at, key], value) }),
    ),
    pickFrom(wrongTypeCandidates(spec), 'wrong-type'),
    fc.constantFrom<Path>(['name'], ['kind']).map((path): Mutation => ({ kind: 'delete-required', path, apply: (s) => deleteAt(s, path) })),
    pickFrom(outOfRangeCandidates(spec), 'out-of-range'),
  );
}

const brokenSpecArb = validSpecArb.chain((spec) =>
  mutationArb(spec).map((mutation) => {
    const broken = structuredClone(spec);
    mutation.apply(broken);
    return { spec: broken, mutation };
  }),
);

describe('parseSweepSpec: properties', () => {
  it('every generated valid spec parses, keeps what was given and fills defaults', () => {
    fc.assert(
      fc.property(validSpecArb, (input) => {
        const spec = parseSweepSpec(structuredClone(input));
        assert.equal(spec.name, input.name);
        assert.equal(spec.kind, input.kind);
        assert.equal(spec.project, input.project ?? 'default');
        assert.deepEqual(spec.base, input.base ?? {});
        assert.deepEqual(spec.seeds, input.seeds ?? 1);
        assert.equal(spec.concurrency, input.concurrency ?? 4);
        assert.equal(spec.retries, input.retries ?? 2);
        assert.equal(spec.timeoutSeconds, input.timeoutSeconds ?? 3600);
        assert.deepEqual(spec.resources, { gpus: 0, cpu: 1, memory: '2Gi', ...(input.resources as Obj | undefined) });
        assert.deepEqual(spec.scale, input.scale);
        assert.deepEqual(spec.grid, input.grid);
        if (input.scale) assert.deepEqual(rungNames(spec), (input.scale as { rungs: unknown[] }).rungs.map(rungName));
        // Parsing is idempotent on its own output.
        assert.deepEqual(parseSweepSpec(structuredClone(spec)), spec);
      }),
      { numRuns: 150 },
    );
  });

  it('the valid specs also parse from JSON and YAML text', () => {
    fc.assert(
      fc.property(validSpecArb, (input) => {
        const fromObject = parseSweepSpec(structuredClone(input));
        // JSON.stringify writes -0 as 0; compare through JSON so that is not a false alarm.
        const norm = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
        assert.deepEqual(norm(parseSweepSpecText(JSON.stringify(input))), norm(fromObject));
        assert.deepEqual(parseSweepSpecText(YAML.stringify(input)), fromObject);
      }),
      { numRuns: 100 },
    );
  });

  it('every single-mutation broken spec is refused with an issue at the mutated field', () => {
    fc.assert(
      fc.property(brokenSpecArb, ({ spec, mutation }) => {
        const target = showPath(mutation.path);
        const issues = issuesOf(() => parseSweepSpec(spec));
        assert.ok(
          issues.some((i) => related(i.path, target)),
          `${mutation.kind} at ${target}: issues ${JSON.stringify(issues)}`,
        );
        if (mutation.kind === 'unknown-key') {
          assert.ok(
            issues.some((i) => i.path === target && i.message === 'unknown key'),
            `unknown key must be reported at its exact path ${target}: ${JSON.stringify(issues)}`,
          );
        }
        if (mutation.kind === 'delete-required') assert.ok(paths(issues).includes(target));
      }),
      { numRuns: 200 },
    );
  });
});

describe('grid values', () => {
  it('rejects a repeated grid value, naming its position', () => {
    assert.throws(
      () => parseSweepSpec({ name: 'dup', kind: 'synthetic', grid: { lr: [0.1, 0.2, 0.1] } }),
      (err: unknown) => err instanceof SpecError && err.issues.some((i) => i.path === 'grid.lr[2]' && /duplicate value/.test(i.message)),
    );
  });
});
