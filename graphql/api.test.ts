/**
 * The GraphQL API against a real Postgres (in-process `yoga.fetch`): every query, the guards,
 * auth and project isolation, the N+1 budget, the live subscription, and a third-party client
 * (graphql-request) against a listening server. Mutations that run workflows: mutations.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { GraphQLClient, ClientError } from 'graphql-request';
import { revokeApiToken } from '../core/auth/tokens';
import { openDatabase } from '../core/db/client';
import { analyzeSweep, type SweepAnalysisResult } from '../core/analysis/sweep-analysis';
import { analyses, events, projects, sweeps, trials } from '../core/db/schema';
import { loadObservations, SCALING_ANALYSIS, storeAnalysis } from '../core/sweeps/analysis';
import { createTestStack, eventually, type TestStack } from '../test/harness';
import { createApiServer, type ApiServer } from './server';
import { gqlClient, sseReader, tokens } from '../test/graphql-helpers';

const RICH = 'rich-0001';
let richAnalysis: SweepAnalysisResult;
const VARIANTS = 5;
const SEEDS = 6;
/** loss of (rung, variant, seed): a fixed, irregular table so mean and std are not trivial. */
const loss = (r: number, v: number, s: number) => 1 / (1 + r) + 0.1 * v + 0.01 * ((s * 7 + v * 3) % 5);

describe('GraphQL API', () => {
  let stack: TestStack;
  let api: ApiServer;
  let gql: ReturnType<typeof gqlClient>;
  let tok: Awaited<ReturnType<typeof tokens>>;
  let queryCount = 0;
  const logged: string[] = [];

  before(async () => {
    stack = await createTestStack('gqlapi');
    const { db, pool } = stack.database;
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
      queryCount++;
      return query(...args);
    };
    api = createApiServer({
      database: stack.database,
      ingestSecret: 'x'.repeat(32),
      temporal: { client: stack.temporal, taskQueue: stack.taskQueue },
      log: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
    });
    gql = gqlClient(api);
    tok = await tokens(db);

    await db.insert(projects).values([{ id: 'alpha', name: 'alpha' }, { id: 'beta', name: 'beta' }]).onConflictDoNothing();
    // 25 sweeps in alpha, one minute apart, newest last; one in beta.
    const base = Date.parse('2025-01-01T00:00:00Z');
    const rows = Array.from({ length: 25 }, (_, i) => ({
      id: `s${String(i).padStart(2, '0')}`,
      projectId: 'alpha',
      name: i % 5 === 0 ? `lr-sweep-${i}` : `width-${i}`,
      kind: i % 2 === 0 ? 'synthetic' : 'ttt',
      spec: {},
      status: (i % 3 === 0 ? 'succeeded' : 'running') as 'succeeded' | 'running',
      codeVersion: 'test',
      createdAt: new Date(base + i * 60_000),
    }));
    await db.insert(sweeps).values([
      ...rows,
      { id: 'b-only', projectId: 'beta', name: 'beta-sweep', kind: 'synthetic', spec: {}, codeVersion: 'test', createdAt: new Date(base) },
      { id: RICH, projectId: 'alpha', name: 'rich', kind: 'synthetic', spec: { retries: 0 }, status: 'running', codeVersion: 'test', createdAt: new Date(base - 86_400_000) },
    ]);
    // The rich sweep: 2 rungs × 5 variants × 6 seeds. Rung 0 all succeeded (gpu 10 s each); rung 1:
    // variants 0-2 succeeded (gpu 40 s), variant 3 running, variant 4 planned.
    const trialRows = [];
    for (let r = 0; r < 2; r++) {
      for (let v = 0; v < VARIANTS; v++) {
        for (let s = 0; s < SEEDS; s++) {
          const done = r === 0 || v < 3;
          trialRows.push({
            id: `${RICH}-r${r}-v${v}-s${s}`,
            sweepId: RICH,
            rungIndex: r,
            rungName: r === 0 ? 'small' : 'large',
            scaleValue: r === 0 ? 1e5 : 1e6,
            variantIndex: v,
            variantName: `v${v}`,
            variant: { lr: v },
            seed: s,
            config: { lr: v, seed: s },
            identity: `id-${r}-${v}-${s}`,
            status: (done ? 'succeeded' : v === 3 ? 'running' : 'planned') as 'succeeded' | 'running' | 'planned',
            attempts: done ? 1 : 0,
            maxAttempts: 1,
            gpuSeconds: done ? (r === 0 ? 10 : 40) : 0,
            wallSeconds: done ? 5 : 0,
            result: done ? { metrics: { loss: loss(r, v, s), note: 'text' } } : null,
          });
        }
      }
    }
    await db.insert(trials).values(trialRows);
    const t0 = `${RICH}-r0-v0-s0`;
    await db.insert(events).values([
      { sweepId: RICH, trialId: t0, type: 'trial.attempt.started', data: { attempt: 1 } },
      { sweepId: RICH, trialId: t0, type: 'trial.finished', data: { status: 'succeeded' } },
    ]);
    // The scaling analysis is computed from the trials above, as the worker does after a rung.
    richAnalysis = analyzeSweep({ observations: await loadObservations(db, RICH, 'loss'), metric: 'loss', mode: 'min', bootstrap: { consistency: 50, extrapolation: 50 } });
    await storeAnalysis(db, RICH, SCALING_ANALYSIS, -1, richAnalysis);
    await db.insert(analyses).values([
      {
        sweepId: RICH,
        kind: 'promotion',
        rungIndex: 0,
        data: { rule: { metric: 'loss', mode: 'min', topK: 3 }, decisions: [{ variantIndex: 0, variantName: 'v0', mean: 1.02, count: 6, rank: 1, promoted: true, reason: 'rank 1 of 5' }] },
      },
    ]);
    // 100 000 points in one statement; the global extremes sit at steps 12345 and 77777.
    await pool.query(
      `insert into metric_points (trial_id, name, step, value)
       select $1, 'loss', g, case when g = 12345 then -50 when g = 77777 then 50 else sin(g / 1000.0) end
       from generate_series(0, 99999) g`,
      [t0],
    );
    await pool.query(`insert into metric_points (trial_id, name, step, value) select $1, 'acc', g, g / 10.0 from generate_series(0, 9) g`, [t0]);
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  describe('sweeps connection', () => {
    const Q = `query($first: Int, $after: String, $filter: SweepFilter) {
      sweeps(first: $first, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name kind status project } } }
    }`;

    it('pages newest first with first/after, hasNextPage and totalCount', async () => {
      const seen: string[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const res: any = await gql(Q, { first: 10, after }, tok.alphaViewer);
        assert.equal(res.errors, undefined, JSON.stringify(res.errors));
        const conn = res.data.sweeps;
        assert.equal(conn.totalCount, 26);
        seen.push(...conn.edges.map((e: any) => e.node.id));
        pages++;
        if (!conn.pageInfo.hasNextPage) break;
        after = conn.pageInfo.endCursor;
      }
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...Array.from({ length: 25 }, (_, i) => `s${String(24 - i).padStart(2, '0')}`), RICH]);
    });

    it('filters by status, kind, name substring, project and dates', async () => {
      const ids = async (filter: object, token = tok.alphaViewer) => {
        const res: any = await gql(Q, { first: 100, filter }, token);
        assert.equal(res.errors, undefined, JSON.stringify(res.errors));
        return { ids: res.data.sweeps.edges.map((e: any) => e.node.id).sort(), total: res.data.sweeps.totalCount };
      };
      assert.deepEqual((await ids({ name: 'LR-SWEEP' })).ids, ['s00', 's05', 's10', 's15', 's20']);
      assert.deepEqual((await ids({ kind: 'ttt', status: 'succeeded' })).ids, ['s03', 's09', 's15', 's21']);
      const dated = await ids({ createdAfter: '2025-01-01T00:10:00Z', createdBefore: '2025-01-01T00:13:00Z' });
      assert.deepEqual(dated.ids, ['s11', 's12']);
      assert.equal(dated.total, 2);
      // An alpha token asking for beta's project gets nothing, not beta's sweeps.
      assert.deepEqual((await ids({ project: 'beta' })).ids, []);
      assert.deepEqual((await ids({}, tok.betaViewer)).ids, ['b-only']);
    });

    it('rejects a page above 100 and a forged cursor', async () => {
      const big = await gql(Q, { first: 101 }, tok.alphaViewer);
      assert.equal(big.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      assert.equal(big.data, undefined);
      const forged = await gql(Q, { first: 5, after: 'bm90LWpzb24' }, tok.alphaViewer);
      assert.equal(forged.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    });
  });

  describe('sweep', () => {
    it('reports progress per rung with GPU-seconds used and estimated remaining', async () => {
      const res: any = await gql(
        `{ sweep(id: "${RICH}") { status progress { total gpuSeconds estimatedGpuSecondsRemaining counts { succeeded running planned }
           rungs { rungIndex rungName total gpuSeconds estimatedGpuSecondsRemaining counts { succeeded running planned } } } } }`,
        {},
        tok.alphaViewer,
      );
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const p = res.data.sweep.progress;
      assert.equal(res.data.sweep.status, 'running');
      assert.equal(p.total, 60);
      assert.deepEqual(p.counts, { succeeded: 48, running: 6, planned: 6 });
      assert.equal(p.gpuSeconds, 30 * 10 + 18 * 40);
      assert.deepEqual(p.rungs[0], { rungIndex: 0, rungName: 'small', total: 30, gpuSeconds: 300, estimatedGpuSecondsRemaining: 0, counts: { succeeded: 30, running: 0, planned: 0 } });
      // Rung 1: mean 40 GPU-s per finished trial × 12 planned/running.
      assert.equal(p.rungs[1].estimatedGpuSecondsRemaining, 480);
      assert.equal(p.estimatedGpuSecondsRemaining, 480);
    });

    it('computes the leaderboard (mean, sample std, count over seeds, rank) as by hand', async () => {
      const res: any = await gql(
        `query($mode: MetricMode) { sweep(id: "${RICH}") { leaderboard(metric: "loss", mode: $mode) { variantName rungIndex rungName scaleValue mean std count rank } } }`,
        { mode: 'max' },
        tok.alphaViewer,
      );
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const rows = res.data.sweep.leaderboard;
      assert.equal(rows.length, 5 + 3);
      for (const row of rows) {
        const v = Number(row.variantName.slice(1));
        const values = Array.from({ length: SEEDS }, (_, s) => loss(row.rungIndex, v, s));
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
        assert.equal(row.count, SEEDS);
        assert.ok(Math.abs(row.mean - mean) < 1e-12, `${row.variantName}@${row.rungIndex}: mean ${row.mean} ≠ ${mean}`);
        assert.ok(Math.abs(row.std - std) < 1e-12, `${row.variantName}@${row.rungIndex}: std ${row.std} ≠ ${std}`);
      }
      // mode max: the highest loss ranks first within each rung.
      const rung0 = rows.filter((r: any) => r.rungIndex === 0);
      assert.deepEqual(rung0.map((r: any) => r.variantName), ['v4', 'v3', 'v2', 'v1', 'v0']);
      assert.deepEqual(rung0.map((r: any) => r.rank), [1, 2, 3, 4, 5]);
      const one: any = await gql(`{ sweep(id: "${RICH}") { leaderboard(metric: "loss", rung: 1) { variantName rank } } }`, {}, tok.alphaViewer);
      assert.deepEqual(one.data.sweep.leaderboard, [
        { variantName: 'v0', rank: 1 },
        { variantName: 'v1', rank: 2 },
        { variantName: 'v2', rank: 3 },
      ]);
      // A metric that is not numeric gives null means, not an error.
      const text: any = await gql(`{ sweep(id: "${RICH}") { leaderboard(metric: "note", rung: 0) { mean count rank } } }`, {}, tok.alphaViewer);
      assert.equal(text.errors, undefined);
      assert.ok(text.data.sweep.leaderboard.every((r: any) => r.mean === null && r.count === 0 && r.rank === null));
    });

    it('returns the scaling analysis and the promotion decisions', async () => {
      const res: any = await gql(
        `{ sweep(id: "${RICH}") { analysis promotions { rungIndex rule decisions { variantName mean rank promoted reason } } } }`,
        {},
        tok.alphaViewer,
      );
      assert.deepEqual(res.data.sweep.analysis, JSON.parse(JSON.stringify(richAnalysis)));
      // Computed from the trials: 5 variants at 1e5, 3 of them at 1e6, ranked alike at both.
      assert.deepEqual(richAnalysis.rungs, [1e5, 1e6]);
      assert.equal(richAnalysis.consistency.againstLargest[0]?.shared, 3);
      assert.deepEqual(res.data.sweep.promotions, [
        { rungIndex: 0, rule: { metric: 'loss', mode: 'min', topK: 3 }, decisions: [{ variantName: 'v0', mean: 1.02, rank: 1, promoted: true, reason: 'rank 1 of 5' }] },
      ]);
      const none: any = await gql(`{ sweep(id: "s01") { analysis scalingAnalysis { verdict } promotions { rungIndex } } }`, {}, tok.alphaViewer);
      assert.deepEqual(none.data.sweep, { analysis: null, scalingAnalysis: null, promotions: [] });
    });

    it('types the scaling analysis: verdict, matrices, critical rung, fits and extrapolations by variant', async () => {
      const res: any = await gql(
        `{ sweep(id: "${RICH}") { scalingAnalysis {
            verdict metric mode rungs variants target targetSource targetNote budget { spent }
            consistency { means r2 r2Interval spearman topK threshold againstLargest { scale shared r2 pearson winner largestWinner sameWinner consistent why } }
            criticalRung { scale r2 pearson sameWinner topK reason }
            fits { variant ok model params { a b c } reason }
            extrapolations { variant ok target prediction interval intervalMethod predictSeeds reason backtest { heldOutScale withinInterval } }
          } } }`,
        {},
        tok.alphaViewer,
      );
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const a = res.data.sweep.scalingAnalysis;
      const want = richAnalysis;
      assert.ok(want.verdict.length > 0);
      assert.equal(a.verdict, want.verdict);
      assert.deepEqual([a.metric, a.mode, a.rungs, a.variants, a.target, a.targetSource], [want.metric, want.mode, want.rungs, want.variants, want.target, want.targetSource]);
      assert.deepEqual(a.consistency.means, want.consistency.means);
      assert.deepEqual(a.consistency.r2, want.consistency.r2);
      assert.equal(a.consistency.againstLargest.length, 1);
      assert.equal(a.consistency.againstLargest[0].consistent, want.consistency.againstLargest[0]!.consistent);
      assert.equal(a.criticalRung.scale, want.criticalRung.scale);
      assert.equal(a.criticalRung.reason, want.criticalRung.reason);
      // Records keyed by variant become lists carrying the variant, in name order.
      assert.deepEqual(a.fits.map((f: any) => f.variant), Object.keys(want.fits).sort());
      assert.deepEqual(a.extrapolations.map((e: any) => e.variant), Object.keys(want.extrapolations).sort());
      for (const e of a.extrapolations) {
        const w = want.extrapolations[e.variant]!;
        assert.equal(e.ok, w.ok);
        if (w.ok) assert.deepEqual([e.prediction, e.interval, e.predictSeeds], [w.prediction, w.interval, w.predictSeeds]);
        else assert.equal(e.reason, w.reason);
      }
      assert.equal(a.budget, null, 'no budget without costs passed to the analysis');
    });

    it('pages and filters its trials', async () => {
      const Q = `query($first: Int, $after: String, $filter: TrialFilter) { sweep(id: "${RICH}") {
        trials(first: $first, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { id rungIndex variantName seed status } } } } }`;
      const p1: any = await gql(Q, { first: 7 }, tok.alphaViewer);
      assert.equal(p1.data.sweep.trials.totalCount, 60);
      assert.equal(p1.data.sweep.trials.edges.length, 7);
      assert.equal(p1.data.sweep.trials.pageInfo.hasNextPage, true);
      assert.equal(p1.data.sweep.trials.edges[6].node.id, `${RICH}-r0-v1-s0`);
      const p2: any = await gql(Q, { first: 7, after: p1.data.sweep.trials.pageInfo.endCursor }, tok.alphaViewer);
      assert.equal(p2.data.sweep.trials.edges[0].node.id, `${RICH}-r0-v1-s1`);
      const f: any = await gql(Q, { first: 100, filter: { rung: 1, status: 'running' } }, tok.alphaViewer);
      assert.equal(f.data.sweep.trials.totalCount, 6);
      assert.ok(f.data.sweep.trials.edges.every((e: any) => e.node.variantName === 'v3' && e.node.rungIndex === 1));
      assert.equal(f.data.sweep.trials.pageInfo.hasNextPage, false);
      const v: any = await gql(Q, { first: 4, filter: { variant: 'v2' } }, tok.alphaViewer);
      assert.equal(v.data.sweep.trials.totalCount, 12);
      assert.ok(v.data.sweep.trials.edges.every((e: any) => e.node.variantName === 'v2'));
    });
  });

  describe('trial', () => {
    const t0 = `${RICH}-r0-v0-s0`;

    it('returns config, result, attempts, timings and events', async () => {
      const res: any = await gql(
        `{ trial(id: "${t0}") { id config result attempts maxAttempts status exitReason variant seed sweep { id }
           timings { gpuSeconds wallSeconds updatedAt } events { type data } } }`,
        {},
        tok.alphaViewer,
      );
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const t = res.data.trial;
      assert.deepEqual(t.config, { lr: 0, seed: 0 });
      assert.equal(t.result.metrics.loss, loss(0, 0, 0));
      assert.equal(t.attempts, 1);
      assert.equal(t.status, 'succeeded');
      assert.equal(t.timings.gpuSeconds, 10);
      assert.deepEqual(t.events.map((e: any) => e.type), ['trial.attempt.started', 'trial.finished']);
    });

    it('downsamples a 100k-point series in SQL to ≤ maxPoints points that keep the global min and max', async () => {
      const started = Date.now();
      const res: any = await gql(`{ trial(id: "${t0}") { metrics(names: ["loss"], maxPoints: 500) { name totalPoints points { step value } } } }`, {}, tok.alphaViewer);
      const ms = Date.now() - started;
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const [series] = res.data.trial.metrics;
      assert.equal(series.name, 'loss');
      assert.equal(series.totalPoints, 100_000);
      assert.ok(series.points.length <= 500 && series.points.length >= 400, `${series.points.length} points`);
      assert.deepEqual(series.points.find((p: any) => p.value === -50), { step: 12345, value: -50 });
      assert.deepEqual(series.points.find((p: any) => p.value === 50), { step: 77777, value: 50 });
      const steps = series.points.map((p: any) => p.step);
      assert.deepEqual(steps, [...steps].sort((a: number, b: number) => a - b), 'points in step order');
      assert.ok(ms < 5000, `took ${ms} ms`);
      // A short series comes back whole; names omitted → every series.
      const all: any = await gql(`{ trial(id: "${t0}") { metrics(maxPoints: 20) { name totalPoints points { step } } } }`, {}, tok.alphaViewer);
      const acc = all.data.trial.metrics.find((s: any) => s.name === 'acc');
      assert.equal(acc.points.length, 10);
      assert.deepEqual(all.data.trial.metrics.map((s: any) => s.name), ['acc', 'loss']);
      assert.ok(all.data.trial.metrics[1].points.length <= 20);
    });

    it('compares trials on a metric', async () => {
      const ids = [t0, `${RICH}-r0-v1-s0`, `${RICH}-r1-v4-s0`, 'b-only-nope'];
      const res: any = await gql(
        `query($ids: [ID!]!) { compare(trialIds: $ids, metric: "loss") { trial { id } value series(maxPoints: 100) { totalPoints points { step } } } }`,
        { ids },
        tok.alphaViewer,
      );
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const entries = res.data.compare;
      assert.deepEqual(entries.map((e: any) => e.trial.id), ids.slice(0, 3));
      assert.equal(entries[0].value, loss(0, 0, 0));
      assert.equal(entries[1].value, loss(0, 1, 0));
      assert.equal(entries[2].value, null); // planned: no result yet
      assert.ok(entries[0].series.points.length <= 100);
      assert.equal(entries[1].series, null);
    });
  });

  it('answers a 50-trial page with nested fields in a constant number of SQL queries', async () => {
    const Q = `query($first: Int) { sweep(id: "${RICH}") { id progress { total } leaderboard(metric: "loss") { mean }
      trials(first: $first) { totalCount edges { node { id status config sweep { id name progress { total } analysis }
        events { type } metrics(names: ["loss"], maxPoints: 50) { points { step } } timings { gpuSeconds } } } } } }`;
    const count = async (first: number) => {
      queryCount = 0;
      const res: any = await gql(Q, { first }, tok.alphaViewer);
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      assert.equal(res.data.sweep.trials.edges.length, first);
      return queryCount;
    };
    const for50 = await count(50);
    const for5 = await count(5);
    // token check + sweep + progress + leaderboard + trial page + count + events + metrics + analyses
    assert.ok(for50 <= 10, `${for50} queries for a 50-trial page`);
    if (process.env.LADDER_TEST_VERBOSE) console.log(`queries for a 50-trial page: ${for50}`);
    assert.equal(for50, for5, 'query count does not grow with the page');
  });

  describe('auth', () => {
    it('refuses anonymous reads unless the server allows them; introspection stays open', async () => {
      const res = await gql(`{ sweeps { totalCount } }`);
      assert.equal(res.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      assert.equal(res.data, undefined);
      const intro: any = await gql(`{ __schema { queryType { name } } }`);
      assert.equal(intro.data.__schema.queryType.name, 'Query');
      const open = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true });
      try {
        const anon: any = await gqlClient(open)(`{ sweeps(first: 100) { totalCount } }`);
        assert.equal(anon.data.sweeps.totalCount, 27); // every project
        const mutation = await gqlClient(open)(`mutation { cancelSweep(id: "s01") { outcome } }`);
        assert.equal(mutation.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      } finally {
        await open.close();
      }
    });

    it('rejects an unknown or revoked token with UNAUTHENTICATED and never echoes it', async () => {
      const bogus = 'lad_' + 'A'.repeat(43);
      const res = await gql(`{ sweeps { totalCount } }`, {}, bogus);
      assert.equal(res.status, 401);
      assert.equal(res.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      assert.ok(!JSON.stringify(res).includes(bogus));
      const { createApiToken } = await import('../core/auth/tokens');
      const made = await createApiToken(stack.database.db, { project: 'alpha', role: 'viewer', name: 'revoked' });
      assert.ok((await gql(`{ sweeps { totalCount } }`, {}, made.token)).data);
      await revokeApiToken(stack.database.db, made.id);
      assert.equal((await gql(`{ sweeps { totalCount } }`, {}, made.token)).errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      const stored = await stack.database.pool.query(`select token_hash from api_tokens where id = $1`, [made.id]);
      assert.notEqual(stored.rows[0].token_hash, made.token, 'only the hash is stored');
      assert.ok(!logged.join('\n').includes('lad_'), 'no token in the server log');
    });

    it('lets viewers read but not mutate, and keeps projects apart', async () => {
      const cancel = `mutation($id: ID!) { cancelSweep(id: $id) { outcome } }`;
      assert.equal((await gql(cancel, { id: 's01' })).errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      const viewer = await gql(cancel, { id: 's01' }, tok.alphaViewer);
      assert.equal(viewer.errors?.[0]?.extensions?.code, 'FORBIDDEN');
      assert.equal(viewer.status, 403);
      const launch = await gql(`mutation { launchSweep(spec: {name: "x", kind: "synthetic"}) { trials } }`, {}, tok.alphaViewer);
      assert.equal(launch.errors?.[0]?.extensions?.code, 'FORBIDDEN');
      // Project B sees nothing of project A.
      const b: any = await gql(`{ sweep(id: "${RICH}") { id } trial(id: "${RICH}-r0-v0-s0") { id } compare(trialIds: ["${RICH}-r0-v0-s0"], metric: "loss") { value } }`, {}, tok.betaViewer);
      assert.deepEqual(b.data, { sweep: null, trial: null, compare: [] });
      const bCancel = await gql(cancel, { id: 's01' }, tok.betaEditor);
      assert.equal(bCancel.errors?.[0]?.extensions?.code, 'NOT_FOUND');
      const a: any = await gql(`{ sweep(id: "b-only") { id } }`, {}, tok.alphaEditor);
      assert.equal(a.data.sweep, null);
    });
  });

  describe('guards', () => {
    it('limits depth', async () => {
      const deep = `{ sweep(id: "${RICH}") { trials(first: 1) { edges { node { sweep { trials(first: 1) { edges { node { sweep { trials(first: 1) { edges { node { id } } } } } } } } } } } } }`;
      const res = await gql(deep, {}, tok.alphaViewer);
      assert.equal(res.errors?.[0]?.extensions?.code, 'QUERY_TOO_DEEP');
      assert.equal(res.data, undefined);
    });

    it('limits cost and maxPoints, counting variables', async () => {
      const Q = `query($n: Int, $p: Int) { sweeps(first: $n) { edges { node { trials(first: $n) { edges { node { metrics(maxPoints: $p) { points { step value } } } } } } } } }`;
      const costly = await gql(Q, { n: 100, p: 500 }, tok.alphaViewer);
      assert.equal(costly.errors?.[0]?.extensions?.code, 'QUERY_TOO_COSTLY');
      const cheap: any = await gql(Q, { n: 2, p: 10 }, tok.alphaViewer);
      assert.equal(cheap.errors, undefined, JSON.stringify(cheap.errors));
      const points = await gql(`{ trial(id: "x") { metrics(maxPoints: 100000) { name } } }`, {}, tok.alphaViewer);
      assert.equal(points.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    });

    it('masks internal errors, logging the detail on the server only', async () => {
      const log: string[] = [];
      const bare = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), log: (m, f) => log.push(`${m} ${JSON.stringify(f)}`) });
      try {
        // No Temporal client configured: launching fails inside the resolver.
        const res = await gqlClient(bare)(`mutation { launchSweep(spec: {name: "masked", kind: "synthetic", project: "alpha"}) { trials } }`, {}, tok.alphaEditor);
        assert.equal(res.errors?.[0]?.message, 'Unexpected error.');
        assert.equal(res.errors?.[0]?.extensions?.code, 'INTERNAL_SERVER_ERROR');
        assert.ok(!JSON.stringify(res).includes('Temporal'));
        assert.ok(log.some((l) => l.includes('without a Temporal client')), log.join('\n'));
        assert.ok(!log.join('\n').includes(tok.alphaEditor));
      } finally {
        await bare.close();
      }
    });

    it('reports readiness of Postgres and Temporal at /readiness', async () => {
      const ok = await api.yoga.fetch('http://ladder.test/readiness');
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { postgres: 'ok', temporal: 'ok' });
      const dead = openDatabase('postgres://nobody@127.0.0.1:1/none', { connectionTimeoutMillis: 1000 });
      const down = createApiServer({ database: dead, ingestSecret: 'x'.repeat(32) });
      try {
        const res = await down.yoga.fetch('http://ladder.test/readiness');
        assert.equal(res.status, 503);
        assert.deepEqual(await res.json(), { postgres: 'down' });
      } finally {
        await down.close();
        await dead.close();
      }
    });
  });

  it('streams sweep progress over SSE from LISTEN/NOTIFY, and survives a dropped connection', async () => {
    const ctrl = new AbortController();
    const res = await api.yoga.fetch('http://ladder.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tok.alphaViewer}` },
      body: JSON.stringify({ query: `subscription { sweepProgress(id: "${RICH}") { id status progress { counts { running succeeded } } } }` }),
      signal: ctrl.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const events = sseReader(res.body!);
    try {
      const first = await events.next();
      assert.deepEqual(first.data.sweepProgress.progress.counts, { running: 6, succeeded: 48 });
      const planned = `${RICH}-r1-v4-s0`;
      await stack.database.db.update(trials).set({ status: 'running' }).where(eq(trials.id, planned));
      const second = await events.next();
      assert.deepEqual(second.data.sweepProgress.progress.counts, { running: 7, succeeded: 48 });
      // The LISTEN connection drops: the notifier reconnects and sends the state again.
      const before = api.notifier.connections;
      api.notifier.simulateDrop();
      await eventually('the LISTEN connection to come back', async () => api.notifier.connections > before, 10_000, 20);
      await stack.database.db.update(trials).set({ status: 'succeeded' }).where(eq(trials.id, planned));
      let third = await events.next();
      while (third.data.sweepProgress.progress.counts.succeeded !== 49) third = await events.next();
      await stack.database.db.update(sweeps).set({ status: 'succeeded' }).where(eq(sweeps.id, RICH));
      let fourth = await events.next();
      while (fourth.data.sweepProgress.status !== 'succeeded') fourth = await events.next();
    } finally {
      ctrl.abort();
      await events.cancel();
      await stack.database.db.update(sweeps).set({ status: 'running' }).where(eq(sweeps.id, RICH));
      await stack.database.db.update(trials).set({ status: 'planned' }).where(eq(trials.id, `${RICH}-r1-v4-s0`));
    }
    const denied = await api.yoga.fetch('http://ladder.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tok.betaViewer}` },
      body: JSON.stringify({ query: `subscription { sweepProgress(id: "${RICH}") { id } }` }),
    });
    const deniedEvent = await sseReader(denied.body!).next();
    assert.equal(deniedEvent.errors?.[0]?.extensions?.code, 'NOT_FOUND');
  });

  it('sweepProgress sends only changes and completes once the sweep is over', async () => {
    const id = 'sub-0001';
    const db = stack.database.db;
    await db.insert(sweeps).values({ id, projectId: 'alpha', name: 'sub', kind: 'synthetic', spec: {}, status: 'running', codeVersion: 'test' });
    await db.insert(trials).values(
      [0, 1].map((s) => ({
        id: `${id}-s${s}`, sweepId: id, rungIndex: 0, rungName: 'only', variantIndex: 0, variantName: 'v0', variant: {}, seed: s,
        config: {}, identity: `sub-${s}`, status: 'running' as const, attempts: 1, maxAttempts: 1,
      })),
    );
    const res = await api.yoga.fetch('http://ladder.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tok.alphaViewer}` },
      body: JSON.stringify({ query: `subscription { sweepProgress(id: "${id}") { status progress { counts { running succeeded } } } }` }),
    });
    const reader = sseReader(res.body!);
    const seen: string[] = [];
    const next = async () => {
      const e = await reader.next(20_000);
      seen.push(JSON.stringify(e.data.sweepProgress));
      return e.data.sweepProgress;
    };
    try {
      assert.deepEqual((await next()).progress.counts, { running: 2, succeeded: 0 });
      // Notifications that change nothing visible: an update of the sweep row that keeps its values.
      for (let i = 0; i < 3; i++) await stack.database.pool.query(`update sweeps set status = status where id = $1`, [id]);
      await db.update(trials).set({ status: 'succeeded' }).where(eq(trials.id, `${id}-s0`));
      assert.deepEqual((await next()).progress.counts, { running: 1, succeeded: 1 });
      await db.update(trials).set({ status: 'succeeded' }).where(eq(trials.id, `${id}-s1`));
      await db.update(sweeps).set({ status: 'succeeded' }).where(eq(sweeps.id, id));
      let last = await next();
      while (last.status !== 'succeeded') last = await next();
      assert.deepEqual(last.progress.counts, { running: 0, succeeded: 2 });
      // Then the stream ends: the server completes the subscription.
      await assert.rejects(reader.next(20_000), /event stream ended/);
      for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `event ${i} repeats the one before: ${seen.join(' | ')}`);
    } finally {
      await reader.cancel();
      // Later tests count alpha's sweeps.
      await db.delete(trials).where(eq(trials.sweepId, id));
      await db.delete(sweeps).where(eq(sweeps.id, id));
    }
  });

  it('serves a third-party client (graphql-request) on a real port', async () => {
    const url = await api.listen(0);
    const client = new GraphQLClient(`${url}/graphql`, { headers: { authorization: `Bearer ${tok.alphaViewer}` } });
    const list = await client.request<{ sweeps: { totalCount: number; edges: { node: { id: string } }[] } }>(
      `query($first: Int) { sweeps(first: $first, filter: { kind: "synthetic" }) { totalCount edges { node { id } } } }`,
      { first: 3 },
    );
    assert.equal(list.sweeps.edges.length, 3);
    assert.equal(list.sweeps.totalCount, 14);
    const detail = await client.request<any>(
      `query($id: ID!) { sweep(id: $id) { name progress { total } leaderboard(metric: "loss", rung: 0) { variantName mean count } trials(first: 2) { edges { node { id metrics(names: ["loss"], maxPoints: 100) { points { step value } } } } } } }`,
      { id: RICH },
    );
    assert.equal(detail.sweep.progress.total, 60);
    assert.equal(detail.sweep.leaderboard.length, 5);
    assert.ok(detail.sweep.trials.edges[0].node.metrics[0].points.length <= 100);
    const trial = await client.request<any>(`{ trial(id: "${RICH}-r0-v0-s0") { status events { type } } compare(trialIds: ["${RICH}-r0-v0-s0"], metric: "loss") { value } }`);
    assert.equal(trial.trial.status, 'succeeded');
    assert.equal(trial.compare[0].value, loss(0, 0, 0));
    await assert.rejects(
      () => client.request(`mutation { cancelSweep(id: "s01") { outcome } }`),
      (err: unknown) => err instanceof ClientError && err.response.errors?.[0]?.extensions?.code === 'FORBIDDEN',
    );
    const ready = await fetch(`${url}/readiness`);
    assert.equal(ready.status, 200);
  });
});


