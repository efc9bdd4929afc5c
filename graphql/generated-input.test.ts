/**
 * Generated hostile and careless GraphQL requests (fast-check, fixed seed) against a real
 * Postgres-backed server through `yoga.fetch`: malformed documents, too many aliases, deep
 * nesting, wrong variable types, NUL strings, huge integers, forged cursors, unknown fields,
 * bad dates and invalid specs. Every one must get a 4xx whose first error names the problem
 * (never a 5xx nor the masked "Unexpected error."), store nothing, and leave the server answering.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, validate } from 'graphql';
import { projects, sweeps, trials } from '../core/db/schema';
import { createTestStack, type TestStack } from '../test/harness';
import { encodeCursor } from './data';
import { MASKED_MESSAGE } from './plugins/use-masking';
import { createLadderSchema } from './schema';
import { createApiServer, type ApiServer } from './server';
import { tokens } from '../test/graphql-helpers';

const SEED = 20_251_010;
const RUNS = 1200;
const TABLES = ['projects', 'sweeps', 'trials', 'events', 'metric_points', 'analyses', 'api_tokens'];

interface Case {
  kind: string;
  query: string;
  variables?: unknown;
  /** A raw body instead of `{query, variables}` (malformed JSON). */
  raw?: string;
  editor?: boolean;
}

const schema = createLadderSchema();
const nul = fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })).map(([a, b]) => `${a}\u0000${b}`);
const hugeInt = fc.oneof(fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -(2 ** 31) - 1 }), fc.constant(1e300));
const FIELDS = ['sweeps(first: 100) { totalCount }', 'sweep(id: "s1") { id }', 'trial(id: "t") { id }', 'sweeps { edges { node { id } } }'];

/** A cursor that decodes to something the API never hands out. */
const badCursor = fc.oneof(
  fc.string({ minLength: 1, maxLength: 80 }),
  fc.base64String({ minLength: 1, maxLength: 80 }),
  fc.string({ minLength: 513, maxLength: 2000 }).map((s) => Buffer.from(s).toString('base64url')),
  fc.jsonValue().filter((v) => !Array.isArray(v)).map((v) => encodeCursor([v]).slice(0, -1) + 'A'),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.oneof(hugeInt, nul, fc.double({ noInteger: true }), fc.constant(null), fc.object())).map(([i, bad]) => {
    const key: unknown[] = [0, 0, 0, 'h1-r0-v0-s0'];
    key[i] = bad;
    return encodeCursor(key);
  }),
  fc.oneof(nul, fc.string({ maxLength: 30 }).filter((s) => !/^\d{4}-/.test(s)), fc.integer(), fc.constantFrom('2025-02-30 00:00:00+00', '2025-01-01 24:00:00+00'))
    .map((bad) => encodeCursor([bad, 'h1'])),
  fc.oneof(nul, fc.constant(''), fc.integer(), fc.string({ minLength: 201, maxLength: 300 })).map((bad) => encodeCursor(['2025-01-01 00:00:00+00', bad])),
);

const deepQuery = fc.integer({ min: 11, max: 60 }).map((d) => {
  let inner = 'id';
  for (let i = 0; i < d; i++) inner = i % 2 ? `sweep { ${inner} }` : `trials(first: 1) { edges { node { ${inner} } } }`;
  return `{ sweep(id: "h1") { ${inner} } }`;
});

const cases: fc.Arbitrary<Case> = fc.oneof(
  // Malformed documents: random text, cut-off queries, stray tokens.
  fc.string({ maxLength: 200 }).map((query) => ({ kind: 'random-text', query })),
  fc.tuple(fc.constantFrom(...FIELDS), fc.integer({ min: 1, max: 30 })).map(([f, cut]) => ({ kind: 'truncated', query: `{ ${f}`.slice(0, -cut) })),
  // Too many aliases, of cheap and costly fields.
  fc.tuple(fc.constantFrom(...FIELDS), fc.integer({ min: 101, max: 1500 }), fc.string({ minLength: 1, maxLength: 3 }).filter((s) => /^[A-Za-z_]\w*$/.test(s)))
    .map(([f, n, prefix]) => ({ kind: 'aliases', query: `{ ${Array.from({ length: n }, (_, i) => `${prefix}${i}: ${f}`).join(' ')} }` })),
  deepQuery.map((query) => ({ kind: 'deep', query })),
  // Variables of the wrong type or shape.
  fc.oneof(fc.string(), fc.double(), fc.object(), fc.array(fc.integer()), fc.boolean()).filter((v) => !Number.isInteger(v) && v !== null)
    .map((v) => ({ kind: 'bad-variable', query: 'query($n: Int) { sweeps(first: $n) { totalCount } }', variables: { n: v } })),
  fc.oneof(fc.double({ noInteger: true }), fc.object(), fc.array(fc.string()), fc.constant(null), fc.boolean())
    .map((v) => ({ kind: 'bad-variable', query: 'query($id: ID!) { sweep(id: $id) { id } }', variables: { id: v } })),
  fc.oneof(fc.string({ maxLength: 5 }), fc.constant('[]'), fc.constant('"x"'), fc.constant('{"query": 1}'), fc.constant('{"query": "{ sweeps { totalCount } }", "variables": "x"}'))
    .map((raw) => ({ kind: 'malformed-body', query: '', raw })),
  // NUL in string arguments, literal or variable, and in JSON keys.
  nul.map((s) => ({ kind: 'nul', query: 'query($id: ID!) { trial(id: $id) { id } }', variables: { id: s } })),
  nul.map((s) => ({ kind: 'nul', query: 'query($f: SweepFilter) { sweeps(filter: $f) { totalCount } }', variables: { f: { name: s } } })),
  nul.map((s) => ({ kind: 'nul', query: `{ sweep(id: "h1") { leaderboard(metric: ${JSON.stringify(s)}) { mean } } }` })),
  nul.map((s) => ({ kind: 'nul', query: 'query($ids: [ID!]!) { compare(trialIds: $ids, metric: "loss") { value } }', variables: { ids: ['h1-r0-v0-s0', s] } })),
  // Integers out of range, literal or variable.
  hugeInt.map((n) => ({ kind: 'huge-int', query: `{ sweeps(first: ${n}) { totalCount } }` })),
  hugeInt.map((n) => ({ kind: 'huge-int', query: 'query($f: TrialFilter) { sweep(id: "h1") { trials(filter: $f) { totalCount } } }', variables: { f: { rung: n } } })),
  fc.integer({ min: -1000, max: -1 }).map((n) => ({ kind: 'huge-int', query: `{ sweeps(first: ${n}) { totalCount } }` })),
  fc.integer({ min: 5001, max: 2 ** 31 - 1 }).map((n) => ({ kind: 'huge-int', query: `{ trial(id: "h1-r0-v0-s0") { metrics(maxPoints: ${n}) { name } } }` })),
  // Forged cursors on both connections.
  badCursor.map((c) => ({ kind: 'cursor', query: 'query($a: String) { sweeps(first: 1, after: $a) { totalCount } }', variables: { a: c } })),
  badCursor.map((c) => ({ kind: 'cursor', query: 'query($a: String) { sweep(id: "h1") { trials(first: 1, after: $a) { totalCount } } }', variables: { a: c } })),
  // Dates that are not dates, or out of any database's range.
  fc.oneof(fc.string({ maxLength: 30 }).filter((s) => Number.isNaN(Date.parse(s))), fc.constantFrom('+275760-09-13T00:00:00Z', '-000001-01-01T00:00:00Z', '10000-01-01T00:00:00Z'))
    .map((d) => ({ kind: 'date', query: 'query($f: SweepFilter) { sweeps(filter: $f) { totalCount } }', variables: { f: { createdAfter: d } } })),
  // Unknown fields, arguments, types and operations.
  fc.string({ minLength: 1, maxLength: 12 }).filter((s) => /^[A-Za-z]\w*$/.test(s) && !['sweeps', 'sweep', 'trial', 'compare'].includes(s))
    .map((f) => ({ kind: 'unknown', query: `{ ${f} }` })),
  fc.constantFrom('{ sweeps(last: 1) { totalCount } }', '{ sweep(id: "h1") { secret } }', 'query($x: Nope) { sweeps { totalCount } }', 'query A { sweeps { totalCount } } query A { sweeps { totalCount } }', '{ sweeps { totalCount } }  query B { __typename }')
    .map((query) => ({ kind: 'unknown', query })),
  // Specs that must be refused: unknown key, wrong type, NUL, __proto__, deep nesting.
  fc.oneof(
    fc.record({ name: fc.constant('ok'), kind: fc.constant('synthetic'), bogus: fc.jsonValue() }),
    fc.record({ name: fc.constant('ok'), kind: fc.constant('synthetic'), seeds: fc.oneof(fc.string(), fc.constant(-1), fc.constant(99_999_999_999)) }),
    nul.map((s) => ({ name: 'ok', kind: 'synthetic', base: { note: s } })),
    fc.jsonValue().map((v) => JSON.parse(`{"name": "ok", "kind": "synthetic", "base": {"__proto__": ${JSON.stringify(v) ?? 'null'}}}`) as unknown),
    fc.integer({ min: 65, max: 200 }).map((d) => {
      let v: unknown = 1;
      for (let i = 0; i < d; i++) v = { a: v };
      return { name: 'ok', kind: 'synthetic', base: v };
    }),
    fc.oneof(fc.integer(), fc.string(), fc.array(fc.integer())).filter((v) => typeof v !== 'string' || v.trim() === '' || v.includes('\u0000')),
  ).map((spec) => ({ kind: 'spec', query: 'mutation($s: JSON!) { launchSweep(spec: $s) { trials } }', variables: { s: spec }, editor: true })),
);

describe('generated hostile GraphQL requests', () => {
  let stack: TestStack;
  let api: ApiServer;
  let editor: string;

  before(async () => {
    stack = await createTestStack('gqlgen');
    api = createApiServer({
      database: stack.database,
      ingestSecret: 'x'.repeat(32),
      temporal: { client: stack.temporal, taskQueue: stack.taskQueue },
      allowAnonymousRead: true,
      codeVersion: 'gen-test',
      executor: 'simulated',
    });
    const { db } = stack.database;
    editor = (await tokens(db)).alphaEditor;
    await db.insert(projects).values([{ id: 'alpha', name: 'alpha' }]).onConflictDoNothing();
    await db.insert(sweeps).values({ id: 'h1', projectId: 'alpha', name: 'h1', kind: 'synthetic', spec: {}, codeVersion: 'test' });
    await db.insert(trials).values({
      id: 'h1-r0-v0-s0', sweepId: 'h1', rungIndex: 0, rungName: 'small', variantIndex: 0, variantName: 'v0',
      variant: {}, seed: 0, config: {}, identity: 'gen-h1', maxAttempts: 1, result: { metrics: { loss: 1 } },
    });
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  const rowCounts = async () => {
    const res = await stack.database.pool.query<{ t: string; n: number }>(TABLES.map((t) => `select '${t}' as t, count(*)::int as n from ${t}`).join(' union all '));
    return Object.fromEntries(res.rows.map((r) => [r.t, r.n]));
  };

  it(`answers ${RUNS} generated mistakes with a 4xx naming the problem, storing nothing`, { timeout: 240_000 }, async () => {
    const before = await rowCounts();
    const byKind = new Map<string, number>();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        // A random text that happens to be a valid operation is no mistake; skip it.
        if (c.kind === 'random-text' || c.kind === 'truncated') {
          let valid = false;
          try {
            valid = validate(schema, parse(c.query)).length === 0;
          } catch {
            valid = false;
          }
          fc.pre(!valid);
        }
        const res = await api.yoga.fetch('http://ladder.test/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(c.editor ? { authorization: `Bearer ${editor}` } : {}) },
          body: c.raw ?? JSON.stringify({ query: c.query, variables: c.variables }),
        });
        sent++;
        byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
        const text = await res.text();
        assert.ok(res.status >= 400 && res.status < 500, `${c.kind}: HTTP ${res.status} ${text.slice(0, 300)}`);
        const body = JSON.parse(text) as { errors?: { message: string; extensions?: { code?: string } }[] };
        const error = body.errors?.[0];
        assert.ok(error && error.message.length > 0, `${c.kind}: no error in ${text.slice(0, 300)}`);
        assert.notEqual(error.message, MASKED_MESSAGE, `${c.kind}: masked`);
        assert.notEqual(error.extensions?.code, 'INTERNAL_SERVER_ERROR', `${c.kind}: ${text.slice(0, 300)}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    assert.ok(sent >= 1000, `only ${sent} requests were sent`);
    process.stdout.write(`# generated requests: ${sent} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})\n`);
    assert.deepEqual(await rowCounts(), before);
    // Still answering a normal query afterwards.
    const ok = await api.yoga.fetch('http://ladder.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ sweeps(first: 5) { totalCount edges { node { id } } } }' }),
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as any).data.sweeps.edges, [{ node: { id: 'h1' } }]);
  });
});
