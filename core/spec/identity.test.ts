import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, trialIdentity } from './identity';

describe('canonicalJson', () => {
  it('sorts object keys recursively, including inside arrays', () => {
    const value = { b: 1, a: { d: [{ z: 1, y: 2 }], c: 'x' } };
    assert.equal(canonicalJson(value), '{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}');
  });

  it('keeps array order', () => {
    assert.equal(canonicalJson([3, 1, 2]), '[3,1,2]');
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });

  it('drops undefined object members', () => {
    assert.equal(canonicalJson({ a: 1, b: undefined, c: { d: undefined } }), '{"a":1,"c":{}}');
    assert.equal(canonicalJson({ a: 1, b: undefined }), canonicalJson({ a: 1 }));
  });

  it('writes scalars like JSON', () => {
    assert.equal(canonicalJson(null), 'null');
    assert.equal(canonicalJson('a"b'), '"a\\"b"');
    assert.equal(canonicalJson(true), 'true');
    assert.equal(canonicalJson(-1.5), '-1.5');
    assert.equal(canonicalJson({ 'k"y': 1 }), '{"k\\"y":1}');
  });

  it('rejects NaN and infinities, also nested', () => {
    assert.throws(() => canonicalJson(Number.NaN), /non-finite/);
    assert.throws(() => canonicalJson(Number.POSITIVE_INFINITY), /non-finite/);
    assert.throws(() => canonicalJson({ a: [1, Number.NEGATIVE_INFINITY] }), /non-finite/);
    assert.throws(() => canonicalJson({ a: { b: Number.NaN } }), /non-finite/);
  });

  it('is valid JSON that round-trips to an equal value, and ignores key order (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        // Compared through JSON.stringify so -0 (written as 0 by both) is not a false alarm.
        const text = canonicalJson(v);
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)));
        assert.equal(canonicalJson(reverseKeys(v)), text);
      }),
      { numRuns: 150 },
    );
  });
});

function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .reverse()
        .map(([k, x]) => [k, reverseKeys(x)]),
    );
  }
  return v;
}

describe('trialIdentity', () => {
  const input = { kind: 'ttt', config: { lr: 0.001, model: { width: 256, depth: 4 }, seed: 3 }, seed: 3, codeVersion: 'abc123' };

  it('is a sha256 over the documented canonical payload (catches a silent payload change)', () => {
    // The payload written out by hand, keys in sorted order: code, config, kind, seed, v.
    const payload =
      '{"code":"abc123","config":{"lr":0.001,"model":{"depth":4,"width":256},"seed":3},"kind":"ttt","seed":3,"v":1}';
    const expected = createHash('sha256').update(payload, 'utf8').digest('hex');
    assert.equal(trialIdentity(input), expected);
    // Pinned literal as well (computed once, outside the code under test).
    assert.equal(trialIdentity(input), '0e7dbf218d3faebc7e6feef20fa8e727a8b62500c9c6e34c029adf790f6794b0');
  });

  it('is 64 lowercase hex characters and stable across calls', () => {
    const a = trialIdentity(input);
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(trialIdentity(structuredClone(input)), a);
    assert.equal(trialIdentity(input), a);
  });

  it('does not depend on config key order', () => {
    const reordered = { ...input, config: { seed: 3, model: { depth: 4, width: 256 }, lr: 0.001 } };
    assert.equal(trialIdentity(reordered), trialIdentity(input));
  });

  it('changes with kind, seed, code version and any config value', () => {
    const base = trialIdentity(input);
    const variants = [
      { ...input, kind: 'synthetic' },
      { ...input, seed: 4 },
      { ...input, codeVersion: 'abc124' },
      { ...input, config: { ...input.config, lr: 0.002 } },
      { ...input, config: { ...input.config, model: { width: 256, depth: 5 } } },
      { ...input, config: { ...input.config, extra: null } },
      { ...input, config: { ...input.config, lr: '0.001' } },
    ];
    const ids = variants.map(trialIdentity);
    for (const id of ids) assert.notEqual(id, base);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('refuses a config with a non-finite number', () => {
    assert.throws(() => trialIdentity({ ...input, config: { lr: Number.NaN } }), /non-finite/);
  });
});
