/**
 * Failures a user can see: `ladder logs`, and the failure lines of `sweep status` and
 * `sweep submit --wait`, against a real stack whose worker runs real (failing) jobs with the
 * local executor, so the log is the job's own output.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projects, sweeps, trials } from '../core/db/schema';
import { createTestStack, REPO_ROOT, type TestStack } from '../test/harness';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('ladder logs and failure reports', { timeout: 300_000 }, () => {
  let stack: TestStack;
  let tmp: string;
  let sweepId: string;
  let waitOutput: CliResult;

  function ladder(args: string[]): Promise<CliResult> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LADDER_STATE_DIR: tmp,
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      LADDER_TASK_QUEUE: stack.taskQueue,
      LADDER_CODE_VERSION: 'cli-logs-test',
      LADDER_RUN_ROOT: stack.runRoot,
    };
    return new Promise((resolve) => {
      execFile(process.execPath, [path.join(REPO_ROOT, 'cli', 'bin.js'), ...args], { env, timeout: 180_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  before(async () => {
    stack = await createTestStack('clilogs');
    await stack.startWorker({ executor: stack.localExecutor(), pollIntervalMs: 100 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-cli-logs-'));
    // One variant that crashes on every attempt (the synthetic job's fault knob), one that succeeds.
    const spec = path.join(tmp, 'failing.yaml');
    fs.writeFileSync(
      spec,
      'name: failing\nkind: synthetic\nbase: { steps: 4 }\nvariants:\n  - { name: crashes, config: { fail_attempts: 9 } }\n  - { name: works }\nseeds: 1\nscale: { key: scale, rungs: [100000] }\nretries: 1\nconcurrency: 2\n',
    );
    waitOutput = await ladder(['sweep', 'submit', spec, '--wait']);
    const m = /^sweep (\S+):/.exec(waitOutput.stdout);
    assert.ok(m, `no sweep id in: ${waitOutput.stdout}\n${waitOutput.stderr}`);
    sweepId = m[1]!;
  });
  after(async () => {
    await stack?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const failedTrial = async () => {
    const res = await stack.database.pool.query("select id, attempts from trials where sweep_id = $1 and status = 'failed'", [sweepId]);
    assert.equal(res.rows.length, 1, 'exactly the crashing variant fails');
    return res.rows[0] as { id: string; attempts: number };
  };

  it('ends `sweep submit --wait` with the failed trial, its reason and its last log line', async () => {
    assert.equal(waitOutput.code, 1, waitOutput.stderr);
    const { id } = await failedTrial();
    assert.match(waitOutput.stdout, new RegExp(`failed trials: 1\\n✗ ${id} \\(crashes, .*\\) failed after 2/2 attempts: exit 1`));
    assert.match(waitOutput.stdout, /\| .*simulated crash at step \d+ \(attempt 2 <= fail_attempts 9\)/);
  });

  it('prints the log of the latest attempt, or of the one asked for', async () => {
    const { id, attempts } = await failedTrial();
    assert.equal(attempts, 2);
    const latest = await ladder(['logs', id]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stdout, /simulated crash at step \d+ \(attempt 2 <= fail_attempts 9\)/);
    assert.doesNotMatch(latest.stdout, /attempt 1 <=/);

    const first = await ladder(['logs', id, '--attempt', '1']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /attempt 1 <= fail_attempts 9/);

    const tail = await ladder(['logs', id, '--tail', '20']);
    assert.equal(tail.code, 0, tail.stderr);
    assert.ok(Buffer.byteLength(tail.stdout) <= 20, JSON.stringify(tail.stdout));

    // An ended attempt: --follow prints the log and returns instead of waiting.
    const followed = await ladder(['logs', id, '--follow']);
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /attempt 2 <= fail_attempts 9/);
  });

  it('refuses an unknown trial, an attempt out of range and a trial that never ran, with exit 2', async () => {
    const { id } = await failedTrial();
    const unknown = await ladder(['logs', 'no-such-trial']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr.trim(), 'ladder: trial "no-such-trial" not found');

    const range = await ladder(['logs', id, '--attempt', '3']);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /attempt must be between 1 and 2/);

    const bad = await ladder(['logs', id, '--tail', 'lots']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tail must be a whole number/);

    const { db } = stack.database;
    await db.insert(projects).values({ id: 'default', name: 'default' }).onConflictDoNothing();
    await db.insert(sweeps).values({ id: 'unrun-1', projectId: 'default', name: 'unrun', kind: 'synthetic', spec: {}, codeVersion: 't' });
    await db.insert(trials).values({
      id: 'unrun-1-r0-v0-s0', sweepId: 'unrun-1', rungIndex: 0, rungName: 'r0', variantIndex: 0, variantName: 'v',
      variant: {}, seed: 0, config: {}, identity: 'x', maxAttempts: 1,
    });
    const never = await ladder(['logs', 'unrun-1-r0-v0-s0']);
    assert.equal(never.code, 2, never.stderr);
    assert.match(never.stderr, /trial unrun-1-r0-v0-s0 has not started an attempt yet/);
  });

  it('shows failed trials with reason and last log lines in `sweep status`', async () => {
    const { id } = await failedTrial();
    const status = await ladder(['sweep', 'status', sweepId]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`✗ ${id} .* failed after 2/2 attempts: exit 1\\n(    \\| .*\\n)*    \\| .*simulated crash at step \\d+ \\(attempt 2`));
    const asJson = JSON.parse((await ladder(['sweep', 'status', sweepId, '--json'])).stdout);
    assert.equal(asJson.failures.total, 1);
    assert.equal(asJson.failures.shown[0].trialId, id);
    assert.equal(asJson.failures.shown[0].reason, 'exit 1');
  });
});
