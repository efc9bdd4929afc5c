/**
 * The trial state module against a real Postgres: paging in plan order, starting attempts, and
 * recording outcomes exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { events, trials } from '../db/schema';
import { parseSweepSpec } from '../spec/spec';
import { createSweep } from '../sweeps/store';
import { createTestStack, type TestStack } from '../../test/harness';
import { createTrialState, retryBackoffMs, type TrialCursor, type TrialState } from './state';

describe('trial state', { timeout: 120_000 }, () => {
  let stack: TestStack;
  let state: TrialState;

  before(async () => {
    stack = await createTestStack('trial_state');
    state = createTrialState(stack.database.db);
  });
  after(() => stack.close());

  const sweepOf = async (name: string, extra: Record<string, unknown> = {}) => {
    const spec = parseSweepSpec({ name, kind: 'synthetic', base: { steps: 1 }, grid: { lr: [1e-4, 2e-4, 3e-4, 4e-4] }, seeds: 5, retries: 1, ...extra });
    return createSweep(stack.database.db, { spec, codeVersion: 'state-test', executor: 'simulated' });
  };
  const eventsOf = async (trialId: string, type: string) =>
    stack.database.db.select().from(events).where(and(eq(events.trialId, trialId), eq(events.type, type)));
  const row = async (trialId: string) => (await stack.database.db.select().from(trials).where(eq(trials.id, trialId)))[0]!;

  it('pages a rung in plan order: every runnable trial exactly once, across pages', async () => {
    const sweep = await sweepOf('paging');
    const seen: string[] = [];
    let cursor: TrialCursor | null = null;
    let pages = 0;
    do {
      const page = await state.listRunnableTrials(sweep.id, 0, cursor, 7);
      seen.push(...page.attempts.map((a) => a.trialId));
      assert.ok(page.attempts.every((a) => a.attempt === 1));
      cursor = page.next;
      pages++;
    } while (cursor);
    const planned = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id)).orderBy(trials.variantIndex, trials.seed, trials.id);
    assert.equal(pages, 3, '20 trials at 7 a page');
    assert.deepEqual(seen, planned.map((t) => t.id));
    await assert.rejects(state.listRunnableTrials(sweep.id, 0, null, 0), /limit must be an integer/);
  });

  it('starts attempts in one batch; starting the same attempt again is a resume, not a second start', async () => {
    const sweep = await sweepOf('start');
    const [a, b] = (await state.listRunnableTrials(sweep.id, 0, null, 2)).attempts;
    const first = await state.startAttempts([a!, b!]);
    assert.deepEqual(first.started.map((s) => [s.trialId, s.resumed]).sort(), [[a!.trialId, false], [b!.trialId, false]].sort());
    const again = await state.startAttempts([a!]);
    assert.equal(again.started[0]?.resumed, true);
    assert.equal((await eventsOf(a!.trialId, 'trial.attempt.started')).length, 1);
    // A running trial whose attempt has no outcome is listed again with the same attempt (resume).
    const relisted = (await state.listRunnableTrials(sweep.id, 0, null, 500)).attempts.find((x) => x.trialId === a!.trialId);
    assert.deepEqual(relisted, { trialId: a!.trialId, attempt: 1 });
  });

  it('records an attempt once: the second call writes nothing and returns what was stored', async () => {
    const sweep = await sweepOf('record');
    const [a] = (await state.listRunnableTrials(sweep.id, 0, null, 1)).attempts;
    await state.startAttempts([a!]);
    await stack.database.db.update(trials).set({ result: { metrics: { loss: 1 } } }).where(eq(trials.id, a!.trialId));
    const input = { ...a!, verdict: { state: 'succeeded' as const }, wallSeconds: 2.5, gpus: 2 };
    const one = await state.recordOutcome(input);
    const two = await state.recordOutcome(input);
    assert.deepEqual([one.recorded, one.status, one.final], [true, 'succeeded', true]);
    assert.deepEqual([two.recorded, two.status, two.final], [false, 'succeeded', true]);
    assert.equal((await eventsOf(a!.trialId, 'trial.succeeded')).length, 1, 'one event');
    const t = await row(a!.trialId);
    assert.deepEqual([t.wallSeconds, t.gpuSeconds, t.recordedAttempt], [2.5, 5, 1], 'wall time added once');
    assert.equal((await state.startAttempts([a!])).started.length, 0, 'a recorded attempt does not start again');
  });

  it('exit 0 without a result is a retryable failure; the last attempt closes the trial', async () => {
    const sweep = await sweepOf('no-result');
    const [a] = (await state.listRunnableTrials(sweep.id, 0, null, 1)).attempts;
    await state.startAttempts([a!]);
    const first = await state.recordOutcome({ ...a!, verdict: { state: 'succeeded' }, wallSeconds: 1, gpus: 0 });
    assert.deepEqual(
      [first.status, first.state, first.reason, first.retryable, first.final, first.retryInMs],
      ['running', 'failed', 'exited 0 without a final result', true, false, retryBackoffMs(1)],
    );
    // Recording a non-final outcome again (the trial stays running) is a no-op as well.
    const again = await state.recordOutcome({ ...a!, verdict: { state: 'succeeded' }, wallSeconds: 1, gpus: 0 });
    assert.deepEqual([again.recorded, again.final], [false, false]);
    assert.equal((await eventsOf(a!.trialId, 'trial.attempt.failed')).length, 1);
    assert.equal((await row(a!.trialId)).wallSeconds, 1);
    // Listed again, it is due for attempt 2 (attempt 1 is recorded).
    const next = (await state.listRunnableTrials(sweep.id, 0, null, 500)).attempts.find((x) => x.trialId === a!.trialId);
    assert.deepEqual(next, { trialId: a!.trialId, attempt: 2 });
    await state.startAttempts([next!]);
    const last = await state.recordOutcome({ ...next!, verdict: { state: 'succeeded' }, wallSeconds: 1, gpus: 0 });
    assert.deepEqual([last.status, last.final], ['failed', true], 'retries: 1 means two attempts');
    assert.equal((await row(a!.trialId)).exitReason, 'exited 0 without a final result');
  });

  it('preemption is retryable whatever the executor says; bad-config never is', async () => {
    const sweep = await sweepOf('preempt');
    const [a, b] = (await state.listRunnableTrials(sweep.id, 0, null, 2)).attempts;
    await state.startAttempts([a!, b!]);
    const pre = await state.recordOutcome({ ...a!, verdict: { state: 'preempted', reason: 'node lost', retryable: false }, wallSeconds: 1, gpus: 0 });
    assert.deepEqual([pre.status, pre.final, pre.retryable], ['running', false, true]);
    const bad = await state.recordOutcome({ ...b!, verdict: { state: 'failed', reason: 'bad-config', retryable: false }, wallSeconds: 1, gpus: 0 });
    assert.deepEqual([bad.status, bad.final, bad.reason], ['failed', true, 'bad-config']);
  });

  it('cancels unfinished trials once, with one event each', async () => {
    const sweep = await sweepOf('cancel');
    const [a, b] = (await state.listRunnableTrials(sweep.id, 0, null, 2)).attempts;
    await state.startAttempts([a!]);
    assert.deepEqual((await state.cancelTrials([a!.trialId, b!.trialId])).sort(), [a!.trialId, b!.trialId].sort());
    assert.deepEqual(await state.cancelTrials([a!.trialId]), []);
    assert.equal((await eventsOf(a!.trialId, 'trial.cancelled')).length, 1);
    // A cancelled trial's late outcome is not recorded over its status.
    const late = await state.recordOutcome({ ...a!, verdict: { state: 'succeeded' }, wallSeconds: 1, gpus: 0 });
    assert.deepEqual([late.recorded, late.status, late.final], [false, 'cancelled', true]);
  });
});
