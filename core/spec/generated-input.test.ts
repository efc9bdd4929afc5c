/**
 * Generated malformed specs (seeded, bounded in time): mutations of a valid spec. Every one must
 * be refused with a SpecError carrying a path or message, and none may touch Object.prototype.
 * test/spec-submit.test.ts runs a sample of the same generator through launchSweep and Postgres.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mutantArb, submitMutant, VALID_SPEC } from '../../test/malformed-specs';
import { planSweep } from './planner';
import { parseSweepSpec, SpecError } from './spec';

describe('generated malformed specs', () => {
  it('valid spec the mutations start from is valid', () => {
    assert.equal(planSweep(parseSweepSpec(VALID_SPEC), 'gen').trials.length, 8);
  });

  it('every one is refused with a SpecError naming the problem, and Object.prototype stays clean', () => {
    let count = 0;
    const labels = new Map<string, number>();
    const t0 = Date.now();
    fc.assert(
      fc.property(mutantArb, (m) => {
        count++;
        labels.set(m.label, (labels.get(m.label) ?? 0) + 1);
        let caught: unknown;
        try {
          submitMutant(m);
        } catch (err) {
          caught = err;
        }
        assert.ok(caught instanceof SpecError, `${m.label}: expected SpecError, got ${caught === undefined ? 'acceptance' : String(caught)}`);
        assert.ok(caught.issues.length > 0 && caught.issues.every((i) => i.message.length > 0), m.label);
        assert.ok(caught.message.length < 5000, `${m.label}: message of ${caught.message.length} chars`);
        for (const key of ['pwned', 'x', 'd']) assert.equal(({} as Record<string, unknown>)[key], undefined, `${m.label} polluted ${key}`);
      }),
      { numRuns: 1500, seed: 20240610, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
    );
    assert.ok(count >= 1000, `only ${count} specs generated`);
    process.stdout.write(`# ${count} malformed specs refused in ${Date.now() - t0} ms; by kind: ${JSON.stringify(Object.fromEntries(labels))}\n`);
  });
});
