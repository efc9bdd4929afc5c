import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ingestToken } from '../../core/ingest/tokens';
import { createSweep } from '../../core/sweeps/store';
import { parseSweepSpec } from '../../core/spec/spec';
import { createTestStack, type TestStack } from '../../test/harness';

describe('ingest routes', () => {
  let stack: TestStack;
  let trialA: string;
  let trialB: string;

  before(async () => {
    stack = await createTestStack('ingest');
    const spec = parseSweepSpec({ name: 'ingest', kind: 'synthetic', grid: { lr: [1, 2] } });
    const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'test' });
    trialA = `${sweep.id}-r0-v0-s0`;
    trialB = `${sweep.id}-r0-v1-s0`;
  });
  after(() => stack.close());

  const post = (trialId: string, kind: 'metrics' | 'result', body: unknown, token?: string) =>
    fetch(`${stack.ingestUrl}/trials/${trialId}/${kind}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const tokenFor = (trialId: string) => ingestToken(stack.ingestSecret, trialId);
  const pointCount = async (trialId: string) =>
    Number((await stack.database.pool.query('select count(*) from metric_points where trial_id = $1', [trialId])).rows[0].count);

  it('stores a batch once, however often it is sent', async () => {
    const points = Array.from({ length: 100 }, (_, step) => ({ name: 'loss', step, value: 1 / (step + 1) }));
    const first = await post(trialA, 'metrics', { points }, tokenFor(trialA));
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { accepted: 100, inserted: 100 });
    const again = await post(trialA, 'metrics', { points: [...points, { name: 'loss', step: 100, value: 0.001 }] }, tokenFor(trialA));
    assert.deepEqual(await again.json(), { accepted: 101, inserted: 1 });
    assert.equal(await pointCount(trialA), 101);
  });

  it('rejects a missing or wrong token, and a token of another trial, storing nothing', async () => {
    const body = { points: [{ name: 'loss', step: 0, value: 1 }] };
    assert.equal((await post(trialB, 'metrics', body)).status, 401);
    assert.equal((await post(trialB, 'metrics', body, 'lt1.not-a-real-token')).status, 403);
    const stolen = await post(trialB, 'metrics', body, tokenFor(trialA));
    assert.equal(stolen.status, 403);
    assert.match((await stolen.json()).error, /not valid for this trial/);
    assert.equal(await pointCount(trialB), 0);
  });

  it('rejects a malformed batch whole, naming the field, storing nothing from it', async () => {
    const good = { name: 'loss', step: 1, value: 0.5 };
    const cases: Array<[unknown, RegExp]> = [
      [{ points: [good, { name: 'loss', step: 2, value: 'NaN' }] }, /points\[1\]\.value/],
      [{ points: [good, { name: 'loss', step: -1, value: 1 }] }, /points\[1\]\.step/],
      [{ points: [good, { name: '', step: 3, value: 1 }] }, /points\[1\]\.name/],
      [{ points: [{ ...good, extra: true }] }, /points\[0\]\.extra: unknown key/],
      [{ pts: [] }, /points|pts/],
      ['{"points": [', /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await post(trialB, 'metrics', body, tokenFor(trialB));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match((await res.json()).error, message);
    }
    assert.equal(await pointCount(trialB), 0);
  });

  it('records a final result, and refuses one with a non-numeric metric', async () => {
    const bad = await post(trialB, 'result', { metrics: { loss: 'low' } }, tokenFor(trialB));
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /metrics\.loss/);
    const ok = await post(trialB, 'result', { metrics: { loss: 0.25 }, config: { lr: 2 }, meta: {} }, tokenFor(trialB));
    assert.equal(ok.status, 200);
    const row = await stack.database.pool.query('select result from trials where id = $1', [trialB]);
    assert.deepEqual(row.rows[0].result.metrics, { loss: 0.25 });
  });

  it('answers 404 for unknown routes and 405 for GET', async () => {
    assert.equal((await fetch(`${stack.ingestUrl}/trials/${trialA}/nope`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`${stack.ingestUrl}/trials/${trialA}/metrics`)).status, 405);
  });
});
