/**
 * A generator of malformed sweep specs (mutations of a valid one) for the generated-input suites:
 * core/spec/generated-input.test.ts (parse and plan) and test/spec-submit.test.ts (launch + DB).
 */
import fc from 'fast-check';
import YAML from 'yaml';
import { planSweep } from '../core/spec/planner';
import { parseSweepSpec, parseSweepSpecText } from '../core/spec/spec';

export const VALID_SPEC = {
  name: 'gen',
  kind: 'synthetic',
  base: { steps: 3, noise: 0 },
  grid: { lr: [1e-3, 1e-2] },
  seeds: 2,
  scale: { key: 'scale', rungs: [1e5, 1e6] },
  resources: { gpus: 0, cpu: 1, memory: '1Gi' },
};

export type Mutant = { label: string; input: unknown } | { label: string; text: string };

const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype');
const wrongValue = fc.oneof(
  fc.constant('forty'),
  fc.constant('NaN'),
  fc.constant(true),
  fc.constant(null),
  fc.constant([1]),
  fc.constant({ x: 1 }),
  fc.constant(4.5),
  fc.constant(1e300),
  fc.constant(-(2 ** 60)),
);

/** One malformed spec: object or YAML text. */
export const mutantArb: fc.Arbitrary<Mutant> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 8 }).map((k) => ({ label: 'unknown base key', input: { ...VALID_SPEC, base: { [`x${k}`]: 1 } } })),
  fc.constantFrom('steps', 'lr', 'noise', 'seed', 'preset').chain((key) =>
    // Any finite number is a valid float, so float keys only get non-numbers.
    wrongValue.filter((v) => !((key === 'lr' || key === 'noise') && typeof v === 'number')).map((v) => ({ label: `wrong type of ${key}`, input: { ...VALID_SPEC, base: { [key]: v } } })),
  ),
  fc.tuple(hostileKey, fc.string({ maxLength: 5 })).map(([h, rest]) => ({ label: 'hostile grid key', input: { ...VALID_SPEC, grid: { [`${h}.${rest || 'x'}`]: [1] } } })),
  fc.tuple(hostileKey, fc.string({ maxLength: 5 })).map(([h, rest]) => ({ label: 'hostile scale key', input: { ...VALID_SPEC, scale: { key: `${h}.${rest || 'x'}`, rungs: [1] } } })),
  fc.tuple(hostileKey, fc.constantFrom('base', 'variant', 'rung')).map(([h, where]) => {
    const bad = JSON.parse(`{"${h}": {"pwned": 1}}`) as Record<string, unknown>;
    const input =
      where === 'base'
        ? { ...VALID_SPEC, base: bad }
        : where === 'variant'
          ? { ...VALID_SPEC, variants: [{ name: 'v', config: bad }] }
          : { ...VALID_SPEC, scale: { key: 'scale', rungs: [{ name: 'r', value: 1, config: bad }] } };
    return { label: `hostile ${where} key`, input };
  }),
  fc.integer({ min: 5, max: 12 }).map((n) => ({
    label: 'huge grid',
    input: { ...VALID_SPEC, grid: Object.fromEntries(['a', 'alpha', 'c', 'lr', 'noise', 'width', 'steps', 'checkpoint_every', 'fail_attempts', 'step_sleep', 'seed', 'a'].slice(0, n).map((k) => [k, Array.from({ length: 10 }, (_, i) => i + 1)])) },
  })),
  fc.constantFrom<[string, Record<string, unknown>]>(
    ['seeds', { seeds: [99999999999] }],
    ['seeds', { seeds: -1 }],
    ['gpus', { resources: { gpus: 100000 } }],
    ['cpu', { resources: { cpu: 1e12 } }],
    ['memory', { resources: { memory: '9999Ti' } }],
    ['timeout', { timeoutSeconds: 1e10 }],
    ['kind', { kind: 'synthtic' }],
    ['rung NaN', { scale: { key: 'scale', rungs: ['NaN'] } }],
  ).map(([label, extra]) => ({ label: `out of range: ${label}`, input: { ...VALID_SPEC, ...extra } })),
  fc.integer({ min: 30, max: 300 }).map((depth) => {
    let deep: unknown = 1;
    for (let i = 0; i < depth; i++) deep = { d: deep };
    return { label: 'deep nesting', input: { ...VALID_SPEC, base: { x: deep } } };
  }),
  fc.integer({ min: 4097, max: 20_000 }).map((n) => ({ label: 'long string', input: { ...VALID_SPEC, description: 'x'.repeat(n) } })),
  fc.constantFrom('!!js/function "f()"', '!custom 1', '!!binary aGVsbG8=', '!!set {a, b}', '!!timestamp 2001-01-01', '!!float 3').map((tagged) => ({
    label: 'YAML tag',
    text: `name: gen\nkind: synthetic\nbase:\n  steps: ${tagged}\n`,
  })),
  fc.constantFrom('name: [a\n', '{"name": ', 'name: a\nname: b\n', ': :\n  - [', 'x'.repeat(300 * 1024)).map((text) => ({ label: 'broken text', text })),
  fc.tuple(fc.constantFrom('stepz', '__proto__', 'lr'), wrongValue).map(([key, v]) => ({
    label: 'bad YAML text',
    text: YAML.stringify({ ...VALID_SPEC, base: { [key]: key === 'lr' ? 'NaN' : v } }),
  })),
);

export function submitMutant(m: Mutant, plan = true): void {
  const spec = 'text' in m ? parseSweepSpecText(m.text) : parseSweepSpec(m.input);
  if (plan) planSweep(spec, 'gen');
}
