/** The `ladder` command as a user runs it: a separate process, against a real stack. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../stack/ports';
import { createTestStack, eventually, REPO_ROOT, type TestStack } from '../test/harness';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('ladder CLI', { timeout: 300_000 }, () => {
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

  it('imports a results table as a read-only sweep and analyses it', async () => {
    // Four variants whose loss follows L = a·N^-0.3 + 1.5, with a per-variant a and tiny seed noise.
    const lines = ['variant,scale,seed,loss,accuracy'];
    const variants = { small: 60, base: 50, wide: 40, deep: 45 };
    for (const [variant, a] of Object.entries(variants)) {
      for (const scale of [1e5, 1e6, 1e7, 1e8]) {
        for (const seed of [0, 1, 2]) {
          const loss = a * scale ** -0.3 + 1.5 + (seed - 1) * 0.002;
          lines.push(`${variant},${scale},${seed},${loss.toFixed(6)},${(1 / loss).toFixed(6)}`);
        }
      }
    }
    const file = writeSpec('published-table.csv', `${lines.join('\n')}\n`);
    const imported = await ladder(['import', file, '--metric', 'loss', '--mode', 'min']);
    assert.equal(imported.code, 0, imported.stderr);
    const id = imported.stdout.trim();
    assert.match(id, /^published-table-[0-9a-z]{8}$/);

    const analyzed = await ladder(['analyze', id, '--json', '--target', '1e9']);
    assert.equal(analyzed.code, 0, analyzed.stderr);
    const a = JSON.parse(analyzed.stdout);
    assert.deepEqual(a.rungs, [1e5, 1e6, 1e7, 1e8]);
    assert.equal(a.consistency.r2.length, 4);
    assert.ok(a.consistency.r2[0][3] > 0.99, 'variant means are affine across rungs');
    assert.equal(a.consistency.spearman[0][3], 1);
    assert.equal(a.criticalRung.scale, 1e5);
    assert.equal(a.target, 1e9);
    const wide = a.extrapolations.wide;
    assert.ok(wide.ok, JSON.stringify(wide));
    const truth = 40 * 1e9 ** -0.3 + 1.5;
    assert.ok(Math.abs(wide.prediction - truth) < 0.01, `prediction ${wide.prediction} vs ${truth}`);
    assert.ok(a.fits.wide.ok && Math.abs(a.fits.wide.params.b - 0.3) < 0.02);

    const text = await ladder(['analyze', id]);
    assert.match(text.stdout, /critical rung: 1e5/);
    const status = await ladder(['sweep', 'status', id]);
    assert.match(status.stdout, /status\s+imported/);
  });

  it('does not call a reversed or winner-changing ranking consistent, and refuses a metric nobody reported', async () => {
    // The issue's table: adam-lr1e-3 wins at 1e6, adam-lr3e-4 at 1e7 and 1e8 (R² 0.97+ at 1e6 only
    // because sgd is far behind everywhere); and a table whose 1e6 and 1e7 rankings are reversed.
    const issue: Record<string, number[]> = {
      'adam-lr1e-3': [2.5, 2.21, 2.03],
      'adam-lr3e-4': [2.52, 2.18, 2.0],
      'adam-lr1e-4': [2.6, 2.25, 2.02],
      sgd: [3.5, 3.2, 3.0],
    };
    const reversed: Record<string, number[]> = { a: [2.0, 2.0, 1.3], b: [2.1, 2.1, 1.2], c: [2.2, 2.2, 1.1], d: [2.3, 2.3, 1.0] };
    const csv = (t: Record<string, number[]>) =>
      ['variant,scale,seed,loss', ...Object.entries(t).flatMap(([v, vals]) => [1e6, 1e7, 1e8].flatMap((s, i) => [0, 1].map((k) => `${v},${s},${k},${(vals[i]! + (k - 0.5) * 0.002).toFixed(4)}`)))].join('\n');

    const rev = await ladder(['import', writeSpec('reversed.csv', csv(reversed)), '--metric', 'loss']);
    assert.equal(rev.code, 0, rev.stderr);
    const revId = rev.stdout.trim();
    const revText = await ladder(['analyze', revId]);
    assert.equal(revText.code, 0, revText.stderr);
    const verdict = revText.stdout.split('\n')[0]!;
    assert.match(verdict, /^No rung below 1e8 predicts it: 1e7: R² 1 but the ranking is reversed \(r -1\)/);
    assert.match(revText.stdout, /critical rung: none/);
    assert.doesNotMatch(revText.stdout, /budget:|Promoted|no promotion decision/, 'an imported sweep neither promoted nor spent anything');
    const revJson = JSON.parse((await ladder(['analyze', revId, '--json'])).stdout);
    assert.equal(revJson.criticalRung.scale, null);
    assert.equal(revJson.verdict, verdict);
    assert.equal(revJson.budget, undefined);

    const changed = await ladder(['import', writeSpec('winner-changes.csv', csv(issue)), '--metric', 'loss']);
    assert.equal(changed.code, 0, changed.stderr);
    const text = await ladder(['analyze', changed.stdout.trim()]);
    assert.match(text.stdout, /^Rankings at 1e7 already predict 1e8 \(.*same winner.*\)\. At 1e6 R² 0\.9\d clears 0\.9 but the winner changes \(adam-lr1e-3 → adam-lr3e-4\)\./);
    assert.match(text.stdout, /critical rung: 1e7/);
    assert.doesNotMatch(text.stdout, /critical rung: 1e6/);

    const unknown = await ladder(['analyze', revId, '--metric', 'acc']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /metric "acc" is not in the results of .*\(known: loss\)/);
  });

  it('refuses a broken results table, naming row and column, and stores nothing', async () => {
    const before = await sweepCount();
    const file = writeSpec('broken.csv', 'variant,scale,seed,loss\na,1e5,0,2.5\nb,ten,0,2.4\nc,1e6,x,2.3\n');
    const res = await ladder(['import', file]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /row 3, column scale: "ten" is not a positive number/);
    assert.match(res.stderr, /row 4, column seed: "x" is not a non-negative integer/);
    const noMetric = await ladder(['import', writeSpec('nometric.csv', 'variant,scale,seed\na,1,0\n')]);
    assert.match(noMetric.stderr, /names no metric column/);
    assert.equal(await sweepCount(), before);
  });

  it('serves the API from the environment (`ladder serve`, the deployment entry point)', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'cli', 'bin.js'), 'serve', '--host', '127.0.0.1'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: stack.databaseUrl,
        TEMPORAL_ADDRESS: stack.temporalAddress,
        LADDER_INGEST_SECRET: stack.ingestSecret,
        LADDER_PORT: String(port),
      },
      stdio: 'ignore',
    });
    try {
      const ready = await eventually('`ladder serve` to answer /readiness', async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readiness`).catch(() => null);
        return res?.status === 200 ? res : null;
      }, 30_000);
      assert.deepEqual(Object.keys(await ready.json()).sort(), ['postgres', 'temporal']);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('answers --version from package.json, and lists every command with a description and an example', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const version = await ladder(['--version']);
    assert.equal(version.code, 0);
    assert.equal(version.stdout.trim(), pkg.version);
    const { buildProgram } = await import('./main');
    const help = await ladder(['--help']);
    assert.equal(help.code, 0);
    const commands = buildProgram().commands.flatMap((c) => [c, ...c.commands]);
    for (const cmd of commands) {
      assert.ok(cmd.description(), `${cmd.name()} has a description`);
      const own = await ladder([...(cmd.parent?.name() === 'ladder' ? [] : [cmd.parent!.name()]), cmd.name(), '--help']);
      assert.match(own.stdout, /\nExample:\n  \$ /, `${cmd.name()} --help shows an example`);
    }
    for (const cmd of buildProgram().commands) assert.match(help.stdout, new RegExp(`\\n  ${cmd.name()}\\b`));
    assert.ok(['logs', 'sweep'].every((n) => buildProgram().commands.some((c) => c.name() === n)));
    assert.ok(buildProgram().commands.find((c) => c.name() === 'sweep')!.commands.some((c) => c.name() === 'watch'));
  });

  it('on Ctrl-C during --wait says the sweep continues and how to follow it (exit 130); `sweep watch` follows it', async () => {
    // Slow trials (simulated: 40 steps × 0.5 s) so the sweep is still running when interrupted.
    const file = writeSpec('slow.yaml', 'name: cli-slow\nkind: synthetic\nbase: { steps: 40, step_sleep: 0.5 }\nseeds: 1\nconcurrency: 1\ngrid: { lr: [0.001, 0.002] }\nscale: { key: scale, rungs: [100000] }\n');
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'cli', 'bin.js'), 'sweep', 'submit', file, '--wait'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LADDER_STATE_DIR: tmp, DATABASE_URL: stack.databaseUrl, TEMPORAL_ADDRESS: stack.temporalAddress, LADDER_TASK_QUEUE: stack.taskQueue, LADDER_CODE_VERSION: 'cli-test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually('a progress line naming a running trial', async () => /running: lr=/.test(stderr), 60_000);
      child.kill('SIGINT');
      assert.equal(await exited, 130);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const id = /^sweep (\S+):/.exec(stdout)?.[1];
    assert.ok(id, stdout);
    assert.match(stderr, /elapsed \d+s/);
    assert.match(stderr, new RegExp(`sweep ${id} continues in the background\\.\\n  follow it:  npx ladder sweep watch ${id}`));
    const row = await stack.database.pool.query('select status from sweeps where id = $1', [id]);
    assert.equal(row.rows[0].status, 'running', 'the sweep goes on without the terminal');

    assert.equal((await ladder(['sweep', 'cancel', id])).code, 0);
    const watched = await ladder(['sweep', 'watch', id]);
    assert.equal(watched.code, 1, watched.stderr);
    assert.match(watched.stdout, new RegExp(`sweep ${id} cancelled`));
    const unknown = await ladder(['sweep', 'watch', 'nope-123']);
    assert.equal(unknown.stderr.trim(), 'ladder: sweep "nope-123" not found');
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
