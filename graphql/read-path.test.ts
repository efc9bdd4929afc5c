/**
 * The API's read path against a real Postgres: the token cache (revocation, the last_used_at
 * stamp), the cache of finished sweeps' leaderboards and its invalidation through NOTIFY, and the
 * one rule for a trial's metric value shared by every reader.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { ApiTokenVerifier, createApiToken, revokeApiToken } from '../core/auth/tokens';
import { apiTokens, projects, sweeps, trials } from '../core/db/schema';
import { loadObservations } from '../core/sweeps/analysis';
import { leaderboard, leaderboards } from '../core/sweeps/store';
import { createTestStack, eventually, type TestStack } from '../test/harness';
import { createApiServer, type ApiServer } from './server';
import { gqlClient } from '../test/graphql-helpers';

const FINISHED = 'done-0001';
const ODD = 'odd-0001';

/** 2 variants × 3 seeds at one rung; loss = variant + seed / 10. */
function trialRows(sweepId: string, loss: (v: number, s: number) => unknown) {
  const rows = [];
  for (let v = 0; v < 2; v++) {
    for (let s = 0; s < 3; s++) {
      rows.push({
        id: `${sweepId}-r0-v${v}-s${s}`,
        sweepId,
        rungIndex: 0,
        rungName: 'small',
        scaleValue: 1000,
        variantIndex: v,
        variantName: `v${v}`,
        variant: {},
        seed: s,
        config: {},
        identity: `${sweepId}-${v}-${s}`,
        status: 'succeeded' as const,
        maxAttempts: 1,
        result: { metrics: { loss: loss(v, s) }, config: {}, meta: {} },
      });
    }
  }
  return rows;
}

describe('GraphQL read path', () => {
  let stack: TestStack;
  let api: ApiServer;
  let gql: ReturnType<typeof gqlClient>;
  let viewer: string;
  /** Leaderboard statements sent to the pool (the cache is hit when this does not move). */
  let leaderboardStatements = 0;
  /** Sweep-row lookups sent to the pool (`sweepSummaries`' prepared statement). */
  let sweepStatements = 0;

  before(async () => {
    stack = await createTestStack('gqlread');
    const { db, pool } = stack.database;
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const cfg = args[0] as { text?: string } | string;
      if ((typeof cfg === 'string' ? cfg : (cfg.text ?? '')).includes('stddev_samp')) leaderboardStatements++;
      if (typeof cfg === 'object' && (cfg as { name?: string }).name === 'ladder_sweep_summaries') sweepStatements++;
      return query(...args);
    };
    api = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32) });
    gql = gqlClient(api);
    await db.insert(projects).values({ id: 'alpha', name: 'alpha' });
    viewer = (await createApiToken(db, { project: 'alpha', role: 'viewer', name: 'reader' })).token;
    const sweep = (id: string) => ({ id, projectId: 'alpha', name: id, kind: 'synthetic', spec: {}, status: 'succeeded' as const, codeVersion: 'test' });
    await db.insert(sweeps).values([sweep(FINISHED), sweep(ODD)]);
    await db.insert(trials).values(trialRows(FINISHED, (v, s) => v + s / 10));
    // Seed 1 of each variant has a non-numeric loss: a string, then a boolean.
    await db.insert(trials).values(trialRows(ODD, (v, s) => (s === 1 ? (v === 0 ? '0.5' : true) : v + s / 10)));
  }, { timeout: 120_000 });

  after(async () => {
    await api?.close();
    await stack?.close();
  });

  describe('token cache', () => {
    it('serves a verified token from the cache until its ttl, then sees a revocation made elsewhere', { timeout: 60_000 }, async () => {
      const { db } = stack.database;
      let now = 1_000_000;
      const verifier = new ApiTokenVerifier(db, { ttlMs: 30_000, now: () => now });
      try {
        const made = await createApiToken(db, { project: 'alpha', role: 'viewer', name: 'cached' });
        assert.equal((await verifier.verify(made.token))?.tokenId, made.id);
        const afterFirst = verifier.statements;
        now += 10_000;
        assert.equal((await verifier.verify(made.token))?.tokenId, made.id);
        assert.equal(verifier.statements, afterFirst, 'a cached token costs no statement');
        // Revoked by another process (no notification reaches this verifier): accepted at most
        // until the ttl runs out, then refused.
        await db.update(apiTokens).set({ revokedAt: new Date() }).where(eq(apiTokens.id, made.id));
        now += 19_999;
        assert.ok(await verifier.verify(made.token), 'still inside the documented bound');
        now += 1;
        assert.equal(await verifier.verify(made.token), null, 'refused once the ttl has run out');
      } finally {
        verifier.close();
      }
    });

    it('forgets a token revoked in this process at once', { timeout: 60_000 }, async () => {
      const { db } = stack.database;
      const verifier = new ApiTokenVerifier(db, { ttlMs: 3_600_000 });
      try {
        const made = await createApiToken(db, { project: 'alpha', role: 'viewer', name: 'revoked-here' });
        assert.ok(await verifier.verify(made.token));
        assert.equal(await revokeApiToken(db, made.id), true);
        assert.equal(await verifier.verify(made.token), null);
      } finally {
        verifier.close();
      }
    });

    it("hears another process's revocation through NOTIFY", { timeout: 60_000 }, async () => {
      const { db, pool } = stack.database;
      const made = await createApiToken(db, { project: 'alpha', role: 'viewer', name: 'revoked-elsewhere' });
      const ask = () => gql(`{ sweep(id: "${FINISHED}") { id } }`, {}, made.token);
      assert.equal((await ask()).data?.sweep?.id, FINISHED);
      await eventually('the notifier listening', async () => api.notifier.listening, 20_000, 20);
      // What revokeApiToken sends, from a connection of its own, without touching this process's cache.
      await pool.query(`with r as (update api_tokens set revoked_at = now() where id = $1 returning id) select pg_notify('ladder_api_token', id) from r`, [
        made.id,
      ]);
      await eventually('the revocation to be heard', async () => (await ask()).status === 401, 20_000, 20);
    });

    it('writes last_used_at at most once a minute per token', { timeout: 60_000 }, async () => {
      const { db } = stack.database;
      let now = Date.parse('2030-01-01T00:00:00Z');
      const verifier = new ApiTokenVerifier(db, { ttlMs: 5_000, now: () => now });
      const made = await createApiToken(db, { project: 'alpha', role: 'viewer', name: 'stamped' });
      const stamp = async () => (await db.select({ at: apiTokens.lastUsedAt }).from(apiTokens).where(eq(apiTokens.id, made.id)))[0]!.at?.getTime();
      try {
        const t0 = now;
        await verifier.verify(made.token);
        assert.equal(await stamp(), t0);
        // Past the cache's ttl too: re-verified from the database (one lookup), not stamped again.
        for (const step of [10_000, 20_000]) {
          now += step;
          const before = verifier.statements;
          assert.ok(await verifier.verify(made.token));
          assert.equal(verifier.statements - before, 1, 'only the lookup: no stamp statement sent');
          assert.equal(await stamp(), t0, `stamped again ${now - t0} ms after the last stamp`);
        }
        // Another API process (its own throttle is empty) sees the stored stamp and leaves it.
        now += 29_999;
        const other = new ApiTokenVerifier(db, { ttlMs: 5_000, now: () => now });
        try {
          assert.ok(await other.verify(made.token));
        } finally {
          other.close();
        }
        assert.equal(await stamp(), t0, 'another process stamped again within the minute');
        now += 1; // 60 s after the first stamp
        await verifier.verify(made.token);
        assert.equal(await stamp(), t0 + 60_000);
      } finally {
        verifier.close();
      }
    });
  });

  describe('finished-sweep leaderboard cache', () => {
    const Q = `query($id: ID!) { sweep(id: $id) { leaderboard(metric: "loss") { variantName mean count rank } } }`;

    it('answers from the cache and drops the entry when a trial of the sweep changes (NOTIFY)', { timeout: 60_000 }, async () => {
      await gql(Q, { id: FINISHED }, viewer); // the first read starts the LISTEN connection
      await eventually('the notifier listening', async () => api.notifier.listening, 20_000, 20);
      const first: any = await gql(Q, { id: FINISHED }, viewer);
      assert.deepEqual(
        first.data.sweep.leaderboard.map((r: any) => [r.variantName, r.count, r.rank]),
        [['v0', 3, 1], ['v1', 3, 2]],
      );
      const statements = leaderboardStatements;
      const again: any = await gql(Q, { id: FINISHED }, viewer);
      assert.deepEqual(again.data, first.data);
      assert.equal(leaderboardStatements, statements, 'a finished sweep is answered from the cache');

      // A change the API did not make (a retry through another server): v0's best seed fails.
      await stack.database.db.update(trials).set({ status: 'failed' }).where(eq(trials.id, `${FINISHED}-r0-v0-s0`));
      const changed: any = await eventually(
        'the leaderboard to show the change',
        async () => {
          const res: any = await gql(Q, { id: FINISHED }, viewer);
          return res.data.sweep.leaderboard[0].count === 2 ? res : null;
        },
        20_000,
        20,
      );
      assert.ok(leaderboardStatements > statements, 'read again from the database');
      assert.ok(Math.abs(changed.data.sweep.leaderboard[0].mean - 0.15) < 1e-12);
    });

    it("serves a finished sweep's row from the cache, only to its own project, until the sweep changes", { timeout: 60_000 }, async () => {
      const { db } = stack.database;
      const beta = (await createApiToken(db, { project: 'beta', role: 'viewer', name: 'other-project' })).token;
      const NAMED = `query($id: ID!) { sweep(id: $id) { id name status leaderboard(metric: "loss") { variantName count } } }`;
      await gql(NAMED, { id: FINISHED }, viewer);
      await eventually('the notifier listening', async () => api.notifier.listening, 20_000, 20);
      const first: any = await gql(NAMED, { id: FINISHED }, viewer);
      assert.equal(first.data.sweep.name, FINISHED);
      const before = { sweep: sweepStatements, board: leaderboardStatements };
      const again: any = await gql(NAMED, { id: FINISHED }, viewer);
      assert.deepEqual(again.data, first.data);
      assert.deepEqual({ sweep: sweepStatements, board: leaderboardStatements }, before, 'a repeated read of a finished sweep sends no statement');

      // The cached row and leaderboard never reach another project's token.
      const other: any = await gql(NAMED, { id: FINISHED }, beta);
      assert.equal(other.errors, undefined, JSON.stringify(other.errors));
      assert.equal(other.data.sweep, null);

      // An update of the sweep row made elsewhere (no local invalidation) reaches the readers.
      await db.update(sweeps).set({ name: 'renamed' }).where(eq(sweeps.id, FINISHED));
      await eventually('the rename to be seen', async () => ((await gql<any>(NAMED, { id: FINISHED }, viewer)).data?.sweep?.name === 'renamed' ? true : null), 20_000, 20);
      assert.ok(sweepStatements > before.sweep, 'read again from the database');

      // Reopened (a retry elsewhere): running again, so its row is no longer cached.
      await db.update(sweeps).set({ status: 'running' }).where(eq(sweeps.id, FINISHED));
      await eventually('the reopened sweep to be seen', async () => ((await gql<any>(NAMED, { id: FINISHED }, viewer)).data?.sweep?.status === 'running' ? true : null), 20_000, 20);
      const running = sweepStatements;
      await gql(NAMED, { id: FINISHED }, viewer);
      assert.equal(sweepStatements, running + 1, "a running sweep's row is read every time");
      await db.update(sweeps).set({ status: 'succeeded', name: FINISHED }).where(eq(sweeps.id, FINISHED));
      await eventually('the sweep finished again', async () => ((await gql<any>(NAMED, { id: FINISHED }, viewer)).data?.sweep?.status === 'succeeded' ? true : null), 20_000, 20);
    });

    it('caches nothing for a sweep that is still running', { timeout: 60_000 }, async () => {
      const { db } = stack.database;
      await db.insert(sweeps).values({ id: 'live-0001', projectId: 'alpha', name: 'live', kind: 'synthetic', spec: {}, status: 'running', codeVersion: 'test' });
      await db.insert(trials).values(trialRows('live-0001', (v, s) => v + s));
      await gql(Q, { id: 'live-0001' }, viewer);
      const statements = leaderboardStatements;
      await gql(Q, { id: 'live-0001' }, viewer);
      assert.equal(leaderboardStatements, statements + 1);
    });
  });

  describe('a non-numeric metric value', () => {
    it('is no value to the leaderboard (core and GraphQL), compare and the analyses alike', { timeout: 60_000 }, async () => {
      const { db } = stack.database;
      // Seeds 0 and 2 only: (0 + 0.2) / 2 and (1 + 1.2) / 2.
      const expected = [
        { variantName: 'v0', mean: 0.1, count: 2 },
        { variantName: 'v1', mean: 1.1, count: 2 },
      ];
      const round = (rows: { variantName: string; mean: number | null; count: number }[]) =>
        rows.map((r) => ({ variantName: r.variantName, mean: r.mean === null ? null : Math.round(r.mean * 1e9) / 1e9, count: r.count }));
      assert.deepEqual(round(await leaderboard(db, ODD, 'loss')), expected);
      assert.deepEqual(round((await leaderboards(db, [ODD], { metric: 'loss', rung: null, mode: 'max' })).get(ODD)!).reverse(), expected);
      const res: any = await gql(`{ sweep(id: "${ODD}") { leaderboard(metric: "loss") { variantName mean count } } }`, {}, viewer);
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      assert.deepEqual(round(res.data.sweep.leaderboard), expected);

      const observations = await loadObservations(db, ODD, 'loss');
      assert.deepEqual(
        observations.map((o) => [o.variant, o.seed, o.value]),
        [['v0', 0, 0], ['v0', 2, 0.2], ['v1', 0, 1], ['v1', 2, 1.2]],
      );
      const ids = [0, 1, 2].map((s) => `${ODD}-r0-v1-s${s}`);
      const cmp: any = await gql(`query($ids: [ID!]!) { compare(trialIds: $ids, metric: "loss") { trial { seed } value } }`, { ids }, viewer);
      assert.deepEqual(
        cmp.data.compare.map((e: any) => [e.trial.seed, e.value]),
        [[0, 1], [1, null], [2, 1.2]],
      );
    });
  });
});
