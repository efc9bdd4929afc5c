/**
 * capacityRuns / capacityRun over stored runs (core/capacity/store.ts), through the server's own
 * schema (createLadderSchema merges graphql/capacity.ts into it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { graphql, type GraphQLSchema } from 'graphql';
import { createCapacityRun, finishCapacityRun, recordCapacityStep } from '../core/capacity/store';
import { mergeStep, type GeneratorReport } from '../loadtests/capacity/step';
import { encodeHistogram, newHistogram, recordMs } from '../loadtests/capacity/histogram';
import { parseScenario } from '../loadtests/capacity/scenario';
import { createTestStack, type TestStack } from '../test/harness';
import { createLadderSchema } from './schema';

const scenario = parseScenario({ name: 'gq', scenario: 'http', http: { url: 'http://127.0.0.1:1/' }, load: { rate: 10, duration: '1s' }, thresholds: ['p95 < 100ms', 'errors < 1%'] });

/** A generator report of `n` operations at `ms` each (none: an empty histogram). */
function report(n: number, ms: number, failed = 0): GeneratorReport {
  const h = newHistogram();
  for (let i = 0; i < n; i++) recordMs(h, ms);
  return { slot: { index: 0, count: 1 }, offered: n + failed, planned: n + failed, started: n + failed, succeeded: n, failed, dropped: 0, inFlight: 0, durationS: 1, elapsedS: 1, histogram: encodeHistogram(h), errors: failed ? [{ message: 'HTTP 503', count: failed }] : [], stoppedEarly: null, extra: {} };
}

describe('GraphQL capacityRuns / capacityRun', { timeout: 60_000 }, () => {
  let stack: TestStack;
  let schema: GraphQLSchema;
  const query = async (source: string, variableValues: Record<string, unknown> = {}) => graphql({ schema, source, variableValues, contextValue: { db: stack.database.db } });

  before(async () => {
    stack = await createTestStack('capacity_gql');
    schema = createLadderSchema() as unknown as GraphQLSchema;
    for (const id of ['run-a', 'run-b', 'run-c']) {
      await createCapacityRun(stack.database.db, { id, scenario, target: 'http://127.0.0.1:1/', mode: 'search', host: { cpus: 2, loadavgStart: [1, 1, 1], node: 'v20' } });
    }
    const db = stack.database.db;
    await recordCapacityStep(db, 'run-b', 0, 1, mergeStep(scenario.thresholds, [report(10, 20)], null));
    await recordCapacityStep(db, 'run-b', 1, 1, mergeStep(scenario.thresholds, [report(0, 0, 20)], null));
    await finishCapacityRun(db, 'run-b', { status: 'finished', knee: 10, kneeIsLowerBound: false, stopReason: 'target down' });
  });
  after(() => stack?.close());

  test('pages newest first with a cursor', async () => {
    const page = `query($after: String) { capacityRuns(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`;
    const one = await query(page);
    assert.equal(one.errors, undefined, JSON.stringify(one.errors));
    const c1 = (one.data as any).capacityRuns;
    assert.deepEqual(c1.edges.map((e: any) => e.node.id), ['run-c', 'run-b']);
    assert.equal(c1.pageInfo.hasNextPage, true);
    const c2 = ((await query(page, { after: c1.pageInfo.endCursor })).data as any).capacityRuns;
    assert.deepEqual(c2.edges.map((e: any) => e.node.id), ['run-a']);
    assert.equal(c2.pageInfo.hasNextPage, false);
  });

  test('a run with steps, thresholds and knee; no latency is null, not NaN', async () => {
    const r = await query(`{ capacityRun(id: "run-b") { id status knee kneeIsLowerBound stopReason thresholds host steps { index generators offered achieved p50Ms p95Ms p99Ms errorRate droppedRate passed incomplete thresholds { threshold actual limit passed } } } }`);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const run = (r.data as any).capacityRun;
    assert.equal(run.status, 'finished');
    assert.equal(run.knee, 10);
    assert.deepEqual(run.thresholds, ['p95 < 100ms', 'errors < 1%']);
    assert.deepEqual(run.steps.map((s: any) => [s.index, s.offered, s.passed]), [[0, 10, true], [1, 20, false]]);
    assert.ok(Math.abs(run.steps[0].p95Ms - 20) < 0.05, `p95 ${run.steps[0].p95Ms}`); // HDR, 3 significant digits
    assert.equal(run.steps[1].p95Ms, null);
    assert.deepEqual(run.steps[1].thresholds.map((t: object) => ({ ...t })), [{ threshold: 'p95 < 100ms', actual: null, limit: 100, passed: false }, { threshold: 'errors < 1%', actual: 1, limit: 0.01, passed: false }]);
  });

  test('bad input: unknown or malformed id is null, a bad cursor or page size names the argument', async () => {
    const r = await query(`{ a: capacityRun(id: "nope") { id } b: capacityRun(id: "../../etc") { id } }`);
    assert.deepEqual({ ...r.data }, { a: null, b: null });
    const bad = await query(`{ capacityRuns(after: "eyJ4IjoxfQ") { edges { cursor } } }`);
    assert.equal(bad.errors?.[0]?.extensions.argument, 'after');
    const big = await query(`{ capacityRuns(first: 101) { edges { cursor } } }`);
    assert.equal(big.errors?.[0]?.extensions.argument, 'first');
  });
});
