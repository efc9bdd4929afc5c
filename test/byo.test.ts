/**
 * Bring your own job, end to end on the local executor: the examples in examples/byo/ (a plain
 * PyTorch script adopting the SDK, a shell script speaking the HTTP protocol) run as sweeps with
 * promotion and an analysis, and a command that cannot run fails its trial with the reason.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { analyses, trials } from '../core/db/schema';
import { prepareSpecFile } from '../core/spec/workdir';
import { launchSweep, type LaunchContext } from '../core/sweeps/launch';
import type { LadderWorker } from '../workers/worker';
import { createTestStack, REPO_ROOT, waitForSweepWithin, type TestStack } from './harness';

const BYO = path.join(REPO_ROOT, 'examples', 'byo');

/** An example spec file, made ready as the CLI does, with some top-level fields replaced. */
function exampleSpec(file: string, overrides: Record<string, unknown>): Record<string, unknown> {
  const prepared = prepareSpecFile(fs.readFileSync(path.join(BYO, file), 'utf8'), path.join(BYO, file));
  assert.equal(typeof prepared, 'object', 'a command spec is prepared into an object');
  return { ...(prepared as Record<string, unknown>), ...overrides };
}

describe('bring your own job (local executor)', { concurrency: false, timeout: 600_000 }, () => {
  let stack: TestStack;
  let ctx: LaunchContext;
  let worker: LadderWorker;

  before(async () => {
    stack = await createTestStack('byo');
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'test-code' };
    worker = await stack.startWorker();
  });
  after(async () => {
    await worker?.shutdown();
    await stack?.close();
  });

  const rows = (sweepId: string) => stack.database.db.select().from(trials).where(eq(trials.sweepId, sweepId)).orderBy(trials.id);
  /** The sweep's trials and the log of its first failed one, for an assertion message. */
  const state = async (sweepId: string) => {
    const all = await rows(sweepId);
    const failed = all.find((t) => t.status === 'failed');
    const log = failed?.execution ? await stack.localExecutor().logs!(failed.execution as never, 2000) : '';
    return `${JSON.stringify(all.map((t) => [t.id, t.status, t.exitReason]))}\n${log}`;
  };

  it('the shell example climbs its ladder over HTTP: every trial succeeds with its loss, one variant is promoted', async () => {
    const created = await launchSweep(ctx, { spec: exampleSpec('shell.yaml', { name: 'byo-shell-test' }) });
    assert.equal(created.spec.kind, 'command');
    assert.equal(await waitForSweepWithin(ctx, created.id, 240_000), 'succeeded', await state(created.id));
    const all = await rows(created.id);
    const ran = all.filter((t) => t.status === 'succeeded');
    // 2 rates × 2 seeds on the first rung; topK 1 promotes one rate (2 seeds) to the second.
    assert.equal(ran.length, 6, JSON.stringify(all.map((t) => [t.id, t.status, t.exitReason])));
    assert.equal(all.filter((t) => t.status === 'skipped').length, 2);
    for (const t of ran) {
      const loss = (t.result as { metrics?: Record<string, unknown> } | null)?.metrics?.loss;
      assert.equal(typeof loss, 'number', `${t.id} reported a numeric loss`);
    }
    const points = await stack.database.pool.query<{ n: number }>(
      `select count(*)::int as n from metric_points m join trials t on t.id = m.trial_id where t.sweep_id = $1`,
      [created.id],
    );
    assert.ok(points.rows[0]!.n >= ran.length * 20, `every step of every trial was pushed (got ${points.rows[0]!.n})`);
    const [promotion] = await stack.database.db
      .select()
      .from(analyses)
      .where(and(eq(analyses.sweepId, created.id), eq(analyses.kind, 'promotion')));
    assert.ok(promotion, 'a promotion decision is stored');
  });

  it('the PyTorch example (SDK) runs two rungs with promotion and a scaling analysis', async () => {
    const spec = exampleSpec('digits.yaml', {
      name: 'byo-digits-test',
      base: { steps: 40, batch_size: 64, checkpoint_every: 20 },
      grid: { lr: [0.003, 0.03] },
      seeds: 1,
      scale: { key: 'hidden', rungs: [{ name: 's', value: 16 }, { name: 'm', value: 32 }] },
      promotion: { metric: 'val_loss', mode: 'min', topK: 1 },
    });
    const created = await launchSweep(ctx, { spec });
    assert.equal(await waitForSweepWithin(ctx, created.id, 480_000), 'succeeded', await state(created.id));
    const all = await rows(created.id);
    assert.deepEqual(
      all.map((t) => t.status).sort(),
      ['skipped', 'succeeded', 'succeeded', 'succeeded'],
      JSON.stringify(all.map((t) => [t.id, t.status, t.exitReason])),
    );
    for (const t of all.filter((r) => r.status === 'succeeded')) {
      const result = t.result as { metrics?: Record<string, unknown> } | null;
      assert.equal(typeof result?.metrics?.val_loss, 'number', `${t.id} reported val_loss`);
      assert.equal((t.config as Record<string, unknown>).seed, t.seed, 'the seed is part of the config the script got');
    }
    const kinds = (await stack.database.db.select().from(analyses).where(eq(analyses.sweepId, created.id))).map((a) => a.kind);
    assert.ok(kinds.includes('promotion') && kinds.includes('scaling'), `analyses stored: ${kinds.join(', ')}`);
  });

  it('a command that is not found fails its trial once, with the reason, and is not retried', async () => {
    const created = await launchSweep(ctx, {
      spec: {
        name: 'byo-missing',
        command: ['ladder-no-such-program-xyz', '{args}'],
        workdir: BYO,
        base: { steps: 1 },
        retries: 2,
        concurrency: 1,
        timeoutSeconds: 60,
      },
    });
    assert.equal(await waitForSweepWithin(ctx, created.id), 'failed');
    const [t] = await rows(created.id);
    assert.equal(t!.status, 'failed');
    assert.equal(t!.exitReason, 'command not found');
    assert.equal(t!.attempts, 1, 'a missing program is not retried');
  });

  it('a command that cannot run as given (relative workdir through the API) fails as bad config with the reason in its log', async () => {
    const created = await launchSweep(ctx, {
      spec: { name: 'byo-relative', command: ['sh', '-c', 'exit 0'], workdir: 'somewhere/relative', base: {}, concurrency: 1, timeoutSeconds: 60 },
    });
    assert.equal(await waitForSweepWithin(ctx, created.id), 'failed');
    const [t] = await rows(created.id);
    assert.equal(t!.exitReason, 'bad-config');
    assert.equal(t!.attempts, 1);
    const log = await stack.localExecutor().logs!(t!.execution as never, 4000);
    assert.match(log, /cannot run: workdir: "somewhere\/relative" is relative/);
  });
});
