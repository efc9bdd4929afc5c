/** `Trial.logs`: a bounded tail of an attempt's job log, through the executor's log reader, project-scoped. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { projects, sweeps, trials } from '../core/db/schema';
import { LOG_TAIL_MAX_BYTES, type AttemptRef } from '../core/trials/logs';
import { createTestStack, type TestStack } from '../test/harness';
import { createApiServer, type ApiServer } from './server';
import { gqlClient, tokens } from '../test/graphql-helpers';

const TRIAL = 'logs-a-r0-v0-s0';
const LOG = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n');

describe('Trial.logs', () => {
  let stack: TestStack;
  let api: ApiServer;
  let bare: ApiServer;
  let gql: ReturnType<typeof gqlClient>;
  let tok: Awaited<ReturnType<typeof tokens>>;
  const reads: Array<{ ref: AttemptRef; tail: number }> = [];

  before(async () => {
    stack = await createTestStack('gqllogs');
    const { db } = stack.database;
    api = createApiServer({
      database: stack.database,
      ingestSecret: 'x'.repeat(32),
      readLogs: async (ref, tail) => {
        reads.push({ ref, tail });
        if (ref.executor !== 'local') return null;
        const text = `${ref.executionId}\n${LOG}`;
        return text.slice(Math.max(0, text.length - tail));
      },
    });
    bare = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32) });
    gql = gqlClient(api);
    tok = await tokens(db);
    await db.insert(projects).values([{ id: 'alpha', name: 'alpha' }, { id: 'beta', name: 'beta' }]).onConflictDoNothing();
    await db.insert(sweeps).values({ id: 'logs-a', projectId: 'alpha', name: 'logs', kind: 'synthetic', spec: {}, codeVersion: 't', status: 'failed' });
    const row = { sweepId: 'logs-a', rungIndex: 0, rungName: 'r0', variantName: 'v', variant: {}, config: {}, identity: 'i', maxAttempts: 3 };
    await db.insert(trials).values([
      { ...row, id: TRIAL, variantIndex: 0, seed: 0, status: 'failed', attempts: 2, exitReason: 'exit 1', execution: { executor: 'local', executionId: `${TRIAL}-a2`, handle: { pid: 123, host: 'h', gpus: [] } } },
      { ...row, id: 'logs-a-r0-v1-s0', variantIndex: 1, seed: 0, status: 'planned', attempts: 0 },
      { ...row, id: 'logs-a-r0-v2-s0', variantIndex: 2, seed: 0, status: 'failed', attempts: 1, execution: { executor: 'simulated', executionId: 'logs-a-r0-v2-s0-a1', handle: {} } },
    ]);
  });
  after(async () => {
    await api?.close();
    await bare?.close();
    await stack?.close();
  });

  const q = `query($id: ID!, $attempt: Int, $tail: Int) { trial(id: $id) { logs(attempt: $attempt, tail: $tail) } }`;

  it('returns the latest attempt by default, 4000 bytes, through the stored execution reference', async () => {
    reads.length = 0;
    const res = await gql<{ trial: { logs: string } }>(`{ trial(id: "${TRIAL}") { logs } }`, undefined, tok.alphaViewer);
    assert.equal(res.status, 200, JSON.stringify(res.errors));
    assert.equal(res.data!.trial.logs.length, 4000);
    assert.ok(res.data!.trial.logs.endsWith('line 4999'));
    assert.deepEqual(reads, [{ ref: { executor: 'local', executionId: `${TRIAL}-a2`, handle: { pid: 123, host: 'h', gpus: [] } }, tail: 4000 }]);
  });

  it('reads an earlier attempt by its execution id, and caps the tail', async () => {
    reads.length = 0;
    const res = await gql<{ trial: { logs: string } }>(q, { id: TRIAL, attempt: 1, tail: 10_000_000 }, tok.alphaViewer);
    assert.equal(res.status, 200, JSON.stringify(res.errors));
    assert.equal(reads[0]!.ref.executionId, `${TRIAL}-a1`);
    assert.equal(reads[0]!.tail, LOG_TAIL_MAX_BYTES);
    assert.ok(res.data!.trial.logs.startsWith(`${TRIAL}-a1\n`), 'the whole (short) log of attempt 1');
  });

  it('refuses a bad tail or attempt, naming the argument', async () => {
    for (const [vars, argument] of [[{ tail: 0 }, 'tail'], [{ attempt: 0 }, 'attempt']] as const) {
      const res = await gql(q, { id: TRIAL, ...vars }, tok.alphaViewer);
      assert.equal(res.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', JSON.stringify(res));
      assert.equal(res.errors?.[0]?.extensions?.argument, argument);
    }
  });

  it('is null for an attempt that does not exist, a trial never run, an executor without logs, or no reader', async () => {
    const none = async (id: string, vars: Record<string, unknown> = {}, client = gql) => {
      const res = await client<{ trial: { logs: string | null } }>(q, { id, ...vars }, tok.alphaViewer);
      assert.equal(res.status, 200, JSON.stringify(res.errors));
      assert.equal(res.data!.trial.logs, null, id);
    };
    await none(TRIAL, { attempt: 3 });
    await none('logs-a-r0-v1-s0');
    await none('logs-a-r0-v2-s0');
    await none(TRIAL, {}, gqlClient(bare));
  });

  it('shows another project nothing', async () => {
    reads.length = 0;
    const res = await gql<{ trial: null }>(q, { id: TRIAL }, tok.betaViewer);
    assert.equal(res.data?.trial, null);
    assert.equal(reads.length, 0, 'no log was read for a trial the token cannot see');
  });
});
