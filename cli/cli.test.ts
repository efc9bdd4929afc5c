/** The `ladder` command as a user runs it: a separate process, against a real stack. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestStack, REPO_ROOT, type TestStack } from '../test/harness';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('ladder CLI', () => {
  let stack: TestStack;
  let tmp: string;

  before(async () => {
    stack = await createTestStack('cli');
    await stack.startWorker({ executor: stack.simulatedExecutor(), pollIntervalMs: 50 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-cli-'));
  });
  after(async () => {
    await stack.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function ladder(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LADDER_STATE_DIR: tmp, // no `ladder dev` here: connections come from the environment
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      LADDER_TASK_QUEUE: stack.taskQueue,
      LADDER_CODE_VERSION: 'cli-test',
    };
    return new Promise((resolve) => {
      execFile(process.execPath, [path.join(REPO_ROOT, 'cli', 'bin.js'), ...args], { env: { ...base, ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  const writeSpec = (name: string, text: string) => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const sweepCount = async () => Number((await stack.database.pool.query('select count(*) from sweeps')).rows[0].count);

  it('rejects an invalid spec with one line naming the field, and stores nothing', async () => {
    const before = await sweepCount();
    const file = writeSpec('bad.yaml', 'name: bad\nkind: synthetic\nconcurrency: "four"\nresources: { gpu: 1 }\n');
    const res = await ladder(['sweep', 'submit', file]);
    assert.equal(res.code, 2);
    const lines = res.stderr.trim().split('\n');
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0]!, /^ladder: invalid sweep spec/);
    assert.match(lines[0]!, /concurrency: /);
    assert.match(lines[0]!, /resources\.gpu: unknown key/);
    assert.equal(await sweepCount(), before);
  });

  it('submits, waits, and reports status and results', async () => {
    const file = writeSpec(
      'ok.yaml',
      'name: cli-ok\nkind: synthetic\nbase: { steps: 3 }\ngrid: { lr: [0.0003, 0.003] }\nseeds: 2\nscale: { key: scale, rungs: [100000, 1000000] }\n',
    );
    const submitted = await ladder(['sweep', 'submit', file, '--wait', '--json']);
    assert.equal(submitted.code, 0, submitted.stderr);
    const out = JSON.parse(submitted.stdout) as { id: string; status: string };
    assert.equal(out.status, 'succeeded');

    const status = await ladder(['sweep', 'status', out.id, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const progress = JSON.parse(status.stdout).progress as Array<{ total: number; counts: { succeeded: number } }>;
    assert.deepEqual(progress.map((r) => [r.total, r.counts.succeeded]), [[4, 4], [4, 4]]);

    const results = await ladder(['results', out.id, '--json']);
    assert.equal(results.code, 0, results.stderr);
    const board = JSON.parse(results.stdout) as { metric: string; rows: Array<{ count: number }> };
    assert.equal(board.metric, 'loss');
    assert.equal(board.rows.length, 4);
    assert.ok(board.rows.every((r) => r.count === 2));

    const table = await ladder(['results', out.id]);
    assert.match(table.stdout, /lr=0\.0003 .* ± .*\(2\)/);

    const unknownMetric = await ladder(['results', out.id, '--metric', 'accuracy']);
    assert.equal(unknownMetric.code, 2);
    assert.match(unknownMetric.stderr, /metric "accuracy" is not in the results .*known: .*loss/);

    const list = await ladder(['sweep', 'list']);
    assert.match(list.stdout, new RegExp(`${out.id}\\s+synthetic\\s+succeeded`));

    const cancel = await ladder(['sweep', 'cancel', out.id]);
    assert.equal(cancel.code, 0);
    assert.match(cancel.stdout, /already finished/);
  });

  it('says clearly when there is no stack to talk to, or no such sweep', async () => {
    const none = await ladder(['sweep', 'list'], { DATABASE_URL: '', TEMPORAL_ADDRESS: '' });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no Ladder stack found/);
    const missing = await ladder(['sweep', 'status', 'nope-123']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), 'ladder: sweep "nope-123" not found');
  });
});
