/**
 * Generated hostile and careless ingest requests (fast-check, fixed seed) against the real
 * ingest routes and a real Postgres: malformed JSON, wrong types, prototype keys, NUL, unpaired
 * surrogates, huge numbers, huge arrays and bodies, and bad, forged, expired or misdirected
 * tokens, and writes from attempts that may not write. Each must get the expected 4xx with a
 * message naming the problem, and leave metric_points and trials exactly as they were; a valid
 * batch still goes in afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_METRIC_NAME_LENGTH, MAX_POINTS_PER_BATCH, MAX_RESULT_BODY_BYTES } from '../../core/ingest/store';
import { ingestToken, mintIngestToken } from '../../core/ingest/tokens';
import { parseSweepSpec } from '../../core/spec/spec';
import { createSweep } from '../../core/sweeps/store';
import { createTestStack, type TestStack } from '../../test/harness';

const SEED = 20_251_011;
const RUNS = 1500;
/** The whole run, not one request: a generous ceiling so a slow CI box does not flake. */
const TIME_LIMIT_MS = 240_000;

type Route = 'metrics' | 'result';
/** Which trial a case writes to: the running one (attempt 2), or one that may not be written. */
type Target = 'running' | 'planned' | 'succeeded' | 'unknown';

interface Case {
  kind: string;
  target: Target;
  route: Route;
  /** The raw request body. */
  body: string;
  /** `'good'` is the running attempt's valid token; a string is sent as is; undefined sends none. */
  token: 'good' | { attempt: number; expired?: boolean; otherTrial?: boolean; otherSecret?: boolean } | string | undefined;
  status: number;
  message: RegExp;
}

/** Sets an own enumerable property, even `__proto__`, so JSON.stringify writes it. */
function withKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  return obj;
}

const metricName = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\u0000') && !/[\uD800-\uDFFF]/.test(s));
const goodPoint = fc.record({ name: metricName, step: fc.integer({ min: 0, max: 2 ** 31 - 1 }), value: fc.double({ noNaN: true, noDefaultInfinity: true }) });
const goodPoints = fc.array(goodPoint, { maxLength: 30 });
const nul = fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([a, b]) => `${a}\u0000${b}`);
const loneSurrogate = fc.tuple(fc.string({ maxLength: 5 }), fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff')).map(([a, s]) => `${a}${s}`);
const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype');
const notAnObject = fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }));

/** A batch of good points with `bad` put in at a generated position; the message must name that index. */
function batchWith(points: unknown[], at: number, bad: unknown): { body: string; index: number } {
  const index = points.length === 0 ? 0 : at % (points.length + 1);
  const all = [...points];
  all.splice(index, 0, bad);
  return { body: JSON.stringify({ points: all }), index };
}

const metricsCase = (kind: string, status: number, body: string, message: RegExp): Case => ({ kind, target: 'running', route: 'metrics', body, token: 'good', status, message });
const resultCase = (kind: string, status: number, body: string, message: RegExp): Case => ({ kind, target: 'running', route: 'result', body, token: 'good', status, message });

const malformedJson: fc.Arbitrary<Case> = fc
  .oneof(
    fc.string({ maxLength: 60 }),
    goodPoints.map((p) => JSON.stringify({ points: p })).chain((s) => fc.integer({ min: 0, max: Math.max(0, s.length - 1) }).map((n) => s.slice(0, n))),
    fc.constantFrom('{"points": [NaN]}', "{'points': []}", '{"points": []', '\ufeff{"points": []}', '{"points": [],}', 'undefined'),
  )
  .filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  })
  .chain((body) => fc.constantFrom<Route>('metrics', 'result').map((route) => ({ ...metricsCase('malformed JSON', 400, body, /body is not valid JSON/), route })));

const wrongTypes: fc.Arbitrary<Case> = fc.oneof(
  notAnObject.map((v) => metricsCase('wrong type: body', 400, JSON.stringify(v), /^body: /)),
  notAnObject.filter((v) => !Array.isArray(v)).map((v) => metricsCase('wrong type: points', 400, JSON.stringify({ points: v }), /^points: /)),
  fc.tuple(goodPoints, fc.nat(), fc.constantFrom('name', 'step', 'value'), fc.oneof(fc.string({ maxLength: 5 }), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 }))).map(
    ([points, at, field, v]) => {
      // A string is a name of the right type: only the empty one is wrong.
      const bad = { name: 'loss', step: 1, value: 1, [field]: field === 'name' && typeof v === 'string' ? '' : v };
      const { body, index } = batchWith(points, at, bad);
      return metricsCase(`wrong type: ${field}`, 400, body, new RegExp(`points\\[${index}\\]\\.${field}: `));
    },
  ),
  fc.tuple(goodPoints, fc.nat(), fc.string({ minLength: 1, maxLength: 8 }).filter((k) => /^[a-z]+$/.test(k) && !['name', 'step', 'value'].includes(k))).map(([points, at, key]) => {
    const { body, index } = batchWith(points, at, { name: 'loss', step: 1, value: 1, [key]: 1 });
    return metricsCase('unknown key', 400, body, new RegExp(`points\\[${index}\\]\\.${key}: unknown key`));
  }),
  fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 })).map((v) =>
    resultCase('wrong type: result metrics', 400, JSON.stringify({ metrics: v }), /^metrics: /),
  ),
  fc.tuple(fc.constantFrom('config', 'meta'), fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.array(fc.integer(), { maxLength: 2 }))).map(([field, v]) =>
    resultCase(`wrong type: result ${field}`, 400, JSON.stringify({ metrics: { loss: 1 }, [field]: v }), new RegExp(`^${field}: must be an object`)),
  ),
);

const hostileKeys: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(hostileKey, fc.jsonValue({ maxDepth: 2 })).map(([key, v]) =>
    metricsCase('hostile key: body', 400, JSON.stringify(withKey({ points: [] }, key, v)), new RegExp(`^${key}: key "${key}" is not allowed`)),
  ),
  fc.tuple(goodPoints, fc.nat(), hostileKey, fc.jsonValue({ maxDepth: 2 })).map(([points, at, key, v]) => {
    const { body, index } = batchWith(points, at, withKey({ name: 'loss', step: 1, value: 1 }, key, v));
    return metricsCase('hostile key: point', 400, body, new RegExp(`points\\[${index}\\]\\.${key}: key "${key}" is not allowed`));
  }),
  fc.tuple(hostileKey, fc.double({ noNaN: true, noDefaultInfinity: true })).map(([key, v]) =>
    resultCase('hostile key: result metric', 400, JSON.stringify({ metrics: withKey({ loss: 1 }, key, v) }), new RegExp(`metrics\\.${key}: key`)),
  ),
  fc.tuple(fc.constantFrom('config', 'meta'), fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 4 }), hostileKey, fc.jsonValue({ maxDepth: 2 })).map(([field, nest, key, v]) => {
    let inner: Record<string, unknown> = withKey({}, key, v);
    for (const k of [...nest].reverse()) inner = { [k]: inner };
    const where = [field, ...nest, key].join('\\.');
    return resultCase('hostile key: result config/meta', 400, JSON.stringify({ metrics: { loss: 1 }, [field]: inner }), new RegExp(`^${where}: key "${key}" is not allowed`));
  }),
);

const badStrings: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(goodPoints, fc.nat(), fc.oneof(nul.map((s) => [s, /NUL/] as const), loneSurrogate.map((s) => [s, /valid Unicode/] as const))).map(([points, at, [name, why]]) => {
    const { body, index } = batchWith(points, at, { name, step: 1, value: 1 });
    return metricsCase('NUL or surrogate: metric name', 400, body, new RegExp(`points\\[${index}\\]\\.name: .*${why.source}`));
  }),
  fc.tuple(goodPoints, fc.nat(), fc.integer({ min: MAX_METRIC_NAME_LENGTH + 1, max: 5000 })).map(([points, at, n]) => {
    const { body, index } = batchWith(points, at, { name: 'x'.repeat(n), step: 1, value: 1 });
    return metricsCase('too-long metric name', 400, body, new RegExp(`points\\[${index}\\]\\.name: `));
  }),
  fc.tuple(fc.constantFrom('config', 'meta'), fc.oneof(nul.map((s) => [s, /NUL/] as const), loneSurrogate.map((s) => [s, /valid Unicode/] as const)), fc.boolean()).map(([field, [s, why], asKey]) => {
    const value = asKey ? { [s]: 1 } : { note: s };
    const where = asKey ? `${field}\\[".*"\\]: key .*` : `${field}\\.note: .*`;
    return resultCase('NUL or surrogate: result config/meta', 400, JSON.stringify({ metrics: { loss: 1 }, [field]: value }), new RegExp(`^${where}${why.source}`));
  }),
  nul.map((name) => resultCase('NUL: result metric name', 400, JSON.stringify({ metrics: { [name]: 1 } }), /^metrics\[".*"\]: key must not contain a NUL/)),
);

const hugeNumbers: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(goodPoints, fc.nat(), fc.constantFrom('1e400', '-1e400', '1e999999', '-2e308')).map(([points, at, literal]) => {
    const { body, index } = batchWith(points, at, { name: 'loss', step: 1, value: 7777777.125 });
    return metricsCase('non-finite value', 400, body.replace('7777777.125', literal), new RegExp(`points\\[${index}\\]\\.value: must be a finite number`));
  }),
  fc.tuple(goodPoints, fc.nat(), fc.oneof(fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 }), fc.double({ min: 0.001, max: 1e6, noInteger: true }), fc.constant(1e300))).map(
    ([points, at, step]) => {
      const { body, index } = batchWith(points, at, { name: 'loss', step, value: 1 });
      return metricsCase('step out of range', 400, body, new RegExp(`points\\[${index}\\]\\.step: `));
    },
  ),
  fc.constantFrom('1e400', '-1e400').map((literal) => resultCase('non-finite result metric', 400, `{"metrics": {"loss": ${literal}}}`, /^metrics\.loss: must be a finite number/)),
  fc.constantFrom('1e400', '-1e999').map((literal) => resultCase('non-finite config value', 400, `{"metrics": {}, "config": {"lr": ${literal}}}`, /^config\.lr: must be a finite number/)),
  fc.integer({ min: 33, max: 2000 }).map((depth) =>
    resultCase('deep nesting', 400, `{"metrics": {}, "meta": {"x": ${'['.repeat(depth)}${']'.repeat(depth)}}}`, /nests deeper than/),
  ),
);

const tooManyPoints = JSON.stringify({ points: Array.from({ length: MAX_POINTS_PER_BATCH + 1 }, (_, step) => ({ name: 'm', step, value: 0 })) });
const hugeArrays: fc.Arbitrary<Case> = fc.oneof(
  fc.constant(metricsCase('huge array: too many points', 400, tooManyPoints, new RegExp(`^points: at most ${MAX_POINTS_PER_BATCH} points per batch`))),
  fc.integer({ min: 1, max: 64 * 1024 }).map((extra) =>
    resultCase('huge body: result', 413, JSON.stringify({ metrics: {}, meta: { blob: 'x'.repeat(MAX_RESULT_BODY_BYTES + extra) } }), /body larger than/),
  ),
  fc.integer({ min: 64 * 1024 + 1, max: 200_000 }).map((n) => resultCase('huge string: result meta', 400, JSON.stringify({ metrics: {}, meta: { s: 'y'.repeat(n) } }), /^meta\.s: is longer than/)),
);

const validBody = (route: Route) => (route === 'metrics' ? JSON.stringify({ points: [{ name: 'loss', step: 1, value: 1 }] }) : JSON.stringify({ metrics: { loss: 1 } }));
const badTokens: fc.Arbitrary<Case> = fc.tuple(
  fc.constantFrom<Route>('metrics', 'result'),
  fc.oneof(
    fc.constant({ token: undefined as Case['token'], status: 401, message: /missing bearer token/ }),
    fc.string({ minLength: 1, maxLength: 200 }).filter((s) => s.trim() === s && !/[\r\n\u0000-\u001f\u007f-\uffff]/.test(s)).map((token) => ({ token: token as Case['token'], status: 401, message: /not a valid ingest token|retired lt1/ })),
    fc.base64String({ minLength: 4, maxLength: 120 }).map((b) => ({ token: `lt2.${b.replace(/=/g, '')}.${b.replace(/=/g, '')}` as Case['token'], status: 401, message: /not a valid ingest token/ })),
    fc.constant({ token: { attempt: 2, otherSecret: true } as Case['token'], status: 401, message: /not a valid ingest token/ }),
    fc.constant({ token: { attempt: 2, expired: true } as Case['token'], status: 401, message: /token expired at/ }),
    fc.constant({ token: { attempt: 2, otherTrial: true } as Case['token'], status: 403, message: /not valid for this trial/ }),
    fc.integer({ min: 1, max: 1000 }).filter((a) => a !== 2).map((attempt) => ({ token: { attempt } as Case['token'], status: 409, message: new RegExp(`attempt ${attempt} of trial .* is not the running attempt`) })),
  ),
).map(([route, t]) => ({ kind: `bad token → ${t.status}`, target: 'running' as Target, route, body: validBody(route), ...t }));

const notWritable: fc.Arbitrary<Case> = fc.tuple(fc.constantFrom<Route>('metrics', 'result'), fc.constantFrom<Target>('planned', 'succeeded', 'unknown')).map(([route, target]) => ({
  kind: `write to ${target} trial`,
  target,
  route,
  body: validBody(route),
  token: 'good' as const,
  status: target === 'unknown' ? 404 : 409,
  message: target === 'unknown' ? /not found/ : new RegExp(`is ${target}; writes are accepted only while it runs`),
}));

const cases: fc.Arbitrary<Case> = fc.oneof(
  { arbitrary: malformedJson, weight: 3 },
  { arbitrary: wrongTypes, weight: 6 },
  { arbitrary: hostileKeys, weight: 4 },
  { arbitrary: badStrings, weight: 4 },
  { arbitrary: hugeNumbers, weight: 4 },
  { arbitrary: hugeArrays, weight: 1 },
  { arbitrary: badTokens, weight: 5 },
  { arbitrary: notWritable, weight: 2 },
);

describe('ingest routes: generated bad input', () => {
  let stack: TestStack;
  const ids = {} as Record<Target, string>;

  before(async () => {
    stack = await createTestStack('ingest_fuzz');
    const spec = parseSweepSpec({ name: 'ingest-fuzz', kind: 'synthetic', grid: { lr: [1, 2, 3] } });
    const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'test' });
    ids.running = `${sweep.id}-r0-v0-s0`;
    ids.planned = `${sweep.id}-r0-v1-s0`;
    ids.succeeded = `${sweep.id}-r0-v2-s0`;
    ids.unknown = `${sweep.id}-r0-v9-s0`;
    const pool = stack.database.pool;
    await pool.query(`update trials set status = 'running', attempts = 2 where id = $1`, [ids.running]);
    await pool.query(`update trials set status = 'succeeded', attempts = 2, result = '{"metrics": {"loss": 1}}' where id = $1`, [ids.succeeded]);
  });
  after(() => stack.close());

  /** Everything a bad request could have changed. */
  const snapshot = async () =>
    (
      await stack.database.pool.query(
        `select (select count(*) from metric_points)::int as points,
                (select md5(string_agg(t::text, '|' order by id)) from trials t) as trials`,
      )
    ).rows[0] as { points: number; trials: string };

  const tokenFor = (c: Case): string | undefined => {
    const trialId = ids[c.target];
    if (c.token === 'good') return mintIngestToken(stack.ingestSecret, { trialId, attempt: 2, timeoutSeconds: 600 });
    if (c.token === undefined || typeof c.token === 'string') return c.token;
    const { attempt, expired, otherTrial, otherSecret } = c.token;
    if (otherSecret) return ingestToken('not-the-secret-at-all', { trialId, attempt, expiresAt: 4_000_000_000 });
    if (otherTrial) return mintIngestToken(stack.ingestSecret, { trialId: ids.planned, attempt, timeoutSeconds: 600 });
    if (expired) return mintIngestToken(stack.ingestSecret, { trialId, attempt, timeoutSeconds: 60 }, Date.now() - 24 * 3600_000);
    return mintIngestToken(stack.ingestSecret, { trialId, attempt, timeoutSeconds: 600 });
  };

  it(`answers ${RUNS} generated bad requests with a 4xx naming the problem, storing nothing`, { timeout: TIME_LIMIT_MS + 60_000 }, async () => {
    const counts = new Map<string, number>();
    const byStatus = new Map<number, number>();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const before = await snapshot();
        const token = tokenFor(c);
        const res = await fetch(`${stack.ingestUrl}/trials/${ids[c.target]}/${c.route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
          body: c.body,
        });
        const reply = (await res.json()) as { error?: string };
        const what = `${c.kind}: ${c.body.slice(0, 200)}`;
        assert.equal(res.status, c.status, `${what} → ${JSON.stringify(reply)}`);
        if (c.status !== 200) {
          assert.match(reply.error ?? '', c.message, what);
          assert.deepEqual(await snapshot(), before, `${what} changed the database`);
        }
        runs++;
        counts.set(c.kind, (counts.get(c.kind) ?? 0) + 1);
        byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + 1);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: true },
    );
    assert.equal(runs, RUNS);
    const bad = [...byStatus].filter(([s]) => s >= 400).reduce((n, [, k]) => n + k, 0);
    assert.ok(bad >= 1000, `only ${bad} bad requests were generated`);
    console.log(`ingest generated input: ${runs} requests, ${bad} refused; by status ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}`);
    console.log(`  by kind ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);

    // Still serving: a valid batch and a result of the running attempt go in.
    const good = mintIngestToken(stack.ingestSecret, { trialId: ids.running, attempt: 2, timeoutSeconds: 600 });
    const points = Array.from({ length: 50 }, (_, step) => ({ name: 'after-fuzz', step, value: step / 2 }));
    const ok = await fetch(`${stack.ingestUrl}/trials/${ids.running}/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${good}` },
      body: JSON.stringify({ points }),
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { accepted: 50, inserted: 50 });
  });
});
