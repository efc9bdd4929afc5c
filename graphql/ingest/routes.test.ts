import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../core/log';
import { MAX_RESULT_BODY_BYTES } from '../../core/ingest/store';
import { INGEST_TOKEN_GRACE_SECONDS, ingestToken, mintIngestToken, verifyIngestToken } from '../../core/ingest/tokens';
import { createSweep } from '../../core/sweeps/store';
import { parseSweepSpec } from '../../core/spec/spec';
import { createTestStack, type TestStack } from '../../test/harness';
import { createActivities } from '../../workers/activities';

describe('ingest routes', () => {
  let stack: TestStack;
  let sweepId: string;
  let trialA: string;
  let trialB: string;
  const trial = (v: number) => `${sweepId}-r0-v${v}-s0`;

  before(async () => {
    stack = await createTestStack('ingest');
    const spec = parseSweepSpec({ name: 'ingest', kind: 'synthetic', grid: { lr: [1, 2, 3, 4, 5, 6, 7, 8] } });
    const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'test' });
    sweepId = sweep.id;
    trialA = trial(0);
    trialB = trial(1);
    for (const id of [trialA, trialB]) await setTrial(id, 'running', 1);
  });
  after(() => stack.close());

  const setTrial = (id: string, status: string, attempts: number) =>
    stack.database.pool.query('update trials set status = $2, attempts = $3 where id = $1', [id, status, attempts]);
  const post = (trialId: string, kind: 'metrics' | 'result', body: unknown, token?: string) =>
    fetch(`${stack.ingestUrl}/trials/${trialId}/${kind}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const tokenFor = (trialId: string, attempt = 1) => mintIngestToken(stack.ingestSecret, { trialId, attempt, timeoutSeconds: 600 });
  const pointCount = async (trialId: string) =>
    Number((await stack.database.pool.query('select count(*) from metric_points where trial_id = $1', [trialId])).rows[0].count);
  const storedResult = async (trialId: string) =>
    (await stack.database.pool.query('select result from trials where id = $1', [trialId])).rows[0].result;
  const onePoint = { points: [{ name: 'loss', step: 0, value: 1 }] };

  it('stores a batch once, however often it is sent', async () => {
    const points = Array.from({ length: 100 }, (_, step) => ({ name: 'loss', step, value: 1 / (step + 1) }));
    const first = await post(trialA, 'metrics', { points }, tokenFor(trialA));
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { accepted: 100, inserted: 100 });
    const again = await post(trialA, 'metrics', { points: [...points, { name: 'loss', step: 100, value: 0.001 }] }, tokenFor(trialA));
    assert.deepEqual(await again.json(), { accepted: 101, inserted: 1 });
    assert.equal(await pointCount(trialA), 101);
  });

  it('keeps the first value of a step sent again with a different value, and says nothing was inserted', async () => {
    // The job protocol: the same (trial, name, step) twice is stored once. A resumed job that
    // recomputes a step must not overwrite what the dashboard already showed.
    const points = async () =>
      (await stack.database.pool.query('select step, value from metric_points where trial_id = $1 and name = $2 order by step', [trialA, 'dup'])).rows;
    const first = await post(trialA, 'metrics', { points: [{ name: 'dup', step: 7, value: 0.5 }] }, tokenFor(trialA));
    assert.deepEqual(await first.json(), { accepted: 1, inserted: 1 });
    const again = await post(trialA, 'metrics', { points: [{ name: 'dup', step: 7, value: 0.9 }, { name: 'dup', step: 8, value: 0.4 }] }, tokenFor(trialA));
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), { accepted: 2, inserted: 1 });
    // Both values for one step inside one batch: stored once, not a 500.
    const within = await post(trialA, 'metrics', { points: [{ name: 'dup', step: 9, value: 0.3 }, { name: 'dup', step: 9, value: 0.2 }] }, tokenFor(trialA));
    assert.equal(within.status, 200);
    assert.deepEqual(await within.json(), { accepted: 2, inserted: 1 });
    const rows = await points();
    assert.deepEqual(rows.slice(0, 2), [{ step: 7, value: 0.5 }, { step: 8, value: 0.4 }]);
    assert.equal(rows.length, 3);
  });

  it('rejects a missing, forged, retired, expired or other-trial token, storing nothing', async () => {
    const expect = async (token: string | undefined, status: number, message: RegExp) => {
      const res = await post(trialB, 'metrics', onePoint, token);
      assert.equal(res.status, status, token);
      assert.match((await res.json()).error, message);
    };
    await expect(undefined, 401, /missing bearer token/);
    await expect('lt2.not-a-real-token', 401, /not a valid ingest token/);
    // The old format (an HMAC of the trial id, valid forever) is refused even when genuine.
    const lt1 = `lt1.${createHmac('sha256', stack.ingestSecret).update(`ingest:${trialB}`).digest('base64url')}`;
    await expect(lt1, 401, /retired lt1 format/);
    // A valid token with one character of its MAC changed.
    const good = tokenFor(trialB);
    await expect(good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A'), 401, /not a valid ingest token/);
    // Signed with another secret.
    await expect(ingestToken('another-secret-of-16+chars', { trialId: trialB, attempt: 1, expiresAt: 4_000_000_000 }), 401, /not a valid/);
    // Expired: minted for a 60 s timeout two hours ago.
    await expect(mintIngestToken(stack.ingestSecret, { trialId: trialB, attempt: 1, timeoutSeconds: 60 }, Date.now() - 2 * 3600_000), 401, /expired/);
    await expect(tokenFor(trialA), 403, /not valid for this trial/);
    assert.equal(await pointCount(trialB), 0);
  });

  it('gives a token an expiry beyond the timeout, and refuses it once that has passed', async () => {
    const t0 = Date.UTC(2030, 0, 1);
    const token = mintIngestToken(stack.ingestSecret, { trialId: trialB, attempt: 3, timeoutSeconds: 7200 }, t0);
    const at = (ms: number) => verifyIngestToken(stack.ingestSecret, trialB, token, ms);
    assert.deepEqual(at(t0 + 7200_000), { ok: true, attempt: 3, expiresAt: t0 / 1000 + 7200 + INGEST_TOKEN_GRACE_SECONDS });
    assert.equal(at(t0 + (7200 + INGEST_TOKEN_GRACE_SECONDS) * 1000).ok, false);
    assert.equal(verifyIngestToken(stack.ingestSecret, trialA, token, t0).ok, false);
  });

  it('rejects a malformed batch whole, naming the field, storing nothing from it', async () => {
    const good = { name: 'loss', step: 1, value: 0.5 };
    const cases: Array<[unknown, RegExp]> = [
      [{ points: [good, { name: 'loss', step: 2, value: 'NaN' }] }, /points\[1\]\.value/],
      [{ points: [good, { name: 'loss', step: -1, value: 1 }] }, /points\[1\]\.step/],
      [{ points: [good, { name: 'loss', step: 1.5, value: 1 }] }, /points\[1\]\.step/],
      [{ points: [good, { name: 'loss', step: 2 ** 31, value: 1 }] }, /points\[1\]\.step/],
      [{ points: [good, { name: '', step: 3, value: 1 }] }, /points\[1\]\.name/],
      [{ points: [good, { name: 'x'.repeat(201), step: 3, value: 1 }] }, /points\[1\]\.name/],
      [{ points: [{ ...good, extra: true }] }, /points\[0\]\.extra: unknown key/],
      [{ points: 'all of them' }, /^points: /],
      [{ pts: [] }, /points|pts/],
      ['{"points": [', /not valid JSON/],
      // Postgres refuses NUL in text: this was a 503, so the job retried it for a minute.
      [{ points: [good, { name: 'lo\u0000ss', step: 3, value: 1 }] }, /points\[1\]\.name: must not contain a NUL character/],
      [{ points: [{ ...good, name: 'a\ud800' }] }, /points\[0\]\.name: must be valid Unicode/],
      // JSON.parse reads 1e400 as Infinity.
      ['{"points": [{"name": "loss", "step": 1, "value": 1e400}]}', /points\[0\]\.value: must be a finite number/],
      ['{"points": [{"name": "loss", "step": 1, "value": 1, "__proto__": {"x": 1}}]}', /points\[0\]\.__proto__: key "__proto__" is not allowed/],
    ];
    for (const [body, message] of cases) {
      const res = await post(trialB, 'metrics', body, tokenFor(trialB));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match((await res.json()).error, message);
    }
    assert.equal(await pointCount(trialB), 0);
  });

  it('refuses a result with a bad metric, a hostile key or an unstorable value, naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ metrics: { loss: 'low' } }, /metrics\.loss/],
      // zod dropped this metric silently (the key set the prototype of a fresh object).
      ['{"metrics": {"__proto__": 5, "loss": 1}}', /metrics\.__proto__: key "__proto__" is not allowed/],
      ['{"metrics": {"loss": 1}, "config": {"a": {"constructor": {"prototype": {"x": 1}}}}}', /config\.a\.constructor: key "constructor" is not allowed/],
      // jsonb refuses NUL and unpaired surrogates: both were 503s.
      [{ metrics: { loss: 1 }, meta: { host: 'a\u0000b' } }, /meta\.host: must not contain a NUL character/],
      [{ metrics: { loss: 1 }, config: { ['k\u0000']: 1 } }, /config\["k\\u0000"\]: key must not contain a NUL character/],
      [{ metrics: { loss: 1 }, meta: { note: '\udc00' } }, /meta\.note: must be valid Unicode/],
      ['{"metrics": {"loss": 1}, "config": {"lr": 1e999}}', /config\.lr: must be a finite number/],
      [{ metrics: { loss: 1 }, config: [1, 2] }, /config: must be an object/],
      [{ metrics: { loss: 1 }, meta: { deep: JSON.parse('['.repeat(40) + ']'.repeat(40)) } }, /nests deeper than/],
    ];
    for (const [body, message] of cases) {
      const res = await post(trialB, 'result', body, tokenFor(trialB));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match((await res.json()).error, message);
    }
    const huge = await post(trialB, 'result', { metrics: { loss: 1 }, meta: { blob: 'x'.repeat(MAX_RESULT_BODY_BYTES) } }, tokenFor(trialB));
    assert.equal(huge.status, 413);
    assert.equal(await storedResult(trialB), null);
  });

  it('answers 404 for an unknown trial with a valid token, storing nothing', async () => {
    const ghost = `${sweepId}-r0-v99-s0`;
    const metrics = await post(ghost, 'metrics', onePoint, tokenFor(ghost));
    assert.equal(metrics.status, 404);
    assert.match((await metrics.json()).error, /not found/);
    assert.equal((await post(ghost, 'result', { metrics: { loss: 1 } }, tokenFor(ghost))).status, 404);
    assert.equal(await pointCount(ghost), 0);
  });

  it('refuses writes to a trial that is not running, with 409 and nothing stored', async () => {
    for (const [v, status] of [[2, 'planned'], [3, 'succeeded'], [4, 'failed'], [5, 'cancelled']] as const) {
      const id = trial(v);
      await setTrial(id, status, 1);
      const metrics = await post(id, 'metrics', onePoint, tokenFor(id));
      assert.equal(metrics.status, 409, status);
      assert.match((await metrics.json()).error, new RegExp(`is ${status}; writes are accepted only while it runs`));
      const result = await post(id, 'result', { metrics: { loss: -5 } }, tokenFor(id));
      assert.equal(result.status, 409, status);
      assert.equal(await pointCount(id), 0);
      assert.equal(await storedResult(id), null);
    }
  });

  it('accepts writes only from the running attempt; a new attempt starts without the old result', async () => {
    const id = trial(6);
    await setTrial(id, 'running', 1);
    const activities = createActivities({
      db: stack.database.db,
      executor: stack.simulatedExecutor(),
      ingest: { url: stack.ingestUrl, secret: stack.ingestSecret },
      log: silentLogger,
    });
    assert.equal((await post(id, 'result', { metrics: { loss: 3 } }, tokenFor(id, 1))).status, 200);
    await activities.markAttemptStarted(id, 2);
    assert.equal(await storedResult(id), null);

    const late = await post(id, 'metrics', onePoint, tokenFor(id, 1));
    assert.equal(late.status, 409);
    assert.match((await late.json()).error, /attempt 1 .* is not the running attempt \(the trial is on attempt 2\)/);
    assert.equal((await post(id, 'result', { metrics: { loss: 3 } }, tokenFor(id, 1))).status, 409);
    assert.equal(await pointCount(id), 0);
    assert.equal(await storedResult(id), null);
    // A token for an attempt that has not started yet is no better.
    assert.equal((await post(id, 'metrics', onePoint, tokenFor(id, 3))).status, 409);

    assert.equal((await post(id, 'metrics', onePoint, tokenFor(id, 2))).status, 200);
    assert.equal((await post(id, 'result', { metrics: { loss: 2 } }, tokenFor(id, 2))).status, 200);
    assert.deepEqual((await storedResult(id)).metrics, { loss: 2 });
    // A retried markAttemptStarted of the same attempt keeps what the attempt wrote.
    await activities.markAttemptStarted(id, 2);
    assert.deepEqual((await storedResult(id)).metrics, { loss: 2 });
  });

  it('records a result once per attempt: the same one again is fine, another is a conflict', async () => {
    const body = { metrics: { loss: 0.25 }, config: { lr: 2 }, meta: {} };
    const ok = await post(trialB, 'result', body, tokenFor(trialB));
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ok: true });
    // A client that retries after a lost response sends the same result again.
    const retry = await post(trialB, 'result', body, tokenFor(trialB));
    assert.equal(retry.status, 200);
    assert.deepEqual(await retry.json(), { ok: true, unchanged: true });
    const other = await post(trialB, 'result', { metrics: { loss: -5 } }, tokenFor(trialB));
    assert.equal(other.status, 409);
    assert.match((await other.json()).error, /already recorded a different result/);
    assert.deepEqual(await storedResult(trialB), body);
  });

  it('lets exactly one of many concurrent different results win', async () => {
    const id = trial(7);
    await setTrial(id, 'running', 1);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(id, 'result', { metrics: { loss: i } }, tokenFor(id)).then((r) => r.status)),
    );
    assert.equal(statuses.filter((s) => s === 200).length, 1, String(statuses));
    assert.equal(statuses.filter((s) => s === 409).length, 19, String(statuses));
    const winner = statuses.indexOf(200);
    assert.deepEqual((await storedResult(id)).metrics, { loss: winner });
  });

  it('reaches the same trial when every byte of its id is percent-encoded; an encoded slash or bad byte is no trial', async () => {
    const encoded = [...Buffer.from(trialB)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const before = await pointCount(trialB);
    const res = await post(encoded, 'metrics', { points: [{ name: 'enc', step: 0, value: 1 }] }, tokenFor(trialB));
    assert.equal(res.status, 200, await res.text());
    assert.equal(await pointCount(trialB), before + 1);
    for (const bad of [`${trialB}%2Fx`, `${trialB}%00`, `${trialB}%zz`]) {
      assert.equal((await post(bad, 'metrics', onePoint, tokenFor(trialB))).status, 404, bad);
    }
  });

  it('answers 404 for unknown routes and 405 for GET', async () => {
    assert.equal((await fetch(`${stack.ingestUrl}/trials/${trialA}/nope`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`${stack.ingestUrl}/trials/${trialA}/metrics`)).status, 405);
  });
});
