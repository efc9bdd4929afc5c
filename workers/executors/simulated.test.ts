import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { getEventListeners, setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import { aLaunch, executorContract, waitForTerminal } from '../../test/executor-contract';
import {
  resolveSyntheticConfig,
  SimulatedExecutor,
  SyntheticConfigError,
  SYNTHETIC_DEFAULTS,
  SYNTHETIC_PRESETS,
  syntheticFinalLoss,
  syntheticPoint,
} from './simulated';
import type { ExecutionRef } from './types';

executorContract('simulated', async () => {
  // Fast: a step_sleep of 0.2 s lasts 2 ms of real time.
  const executor = new SimulatedExecutor({ timeScale: 0.01 });
  return {
    executor,
    cleanup: async () => executor.reset(),
    runsOf: async (launch) => executor.startsOf(launch.executionId),
    leftRunning: async (ref) => executor.isLive(ref.executionId),
  };
});

interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  body: any;
  at: number;
}

/** A tiny ingest endpoint that records requests; `respond` may hold or refuse them. */
async function startIngest(respond: (req: Received) => Promise<number> | number = () => 200) {
  const received: Received[] = [];
  const waiters: { match: (r: Received) => boolean; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const entry: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        at: Date.now(),
      };
      received.push(entry);
      for (const w of waiters.filter((w) => w.match(entry))) w.resolve();
      const status = await respond(entry);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    received,
    /** Resolves when a request matching `match` has arrived; rejects after timeoutMs. */
    arrival(match: (r: Received) => boolean, timeoutMs = 10_000): Promise<void> {
      if (received.some(match)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching request within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('SimulatedExecutor', { timeout: 60_000 }, () => {
  it('speaks the job protocol to the ingest URL and succeeds only after the POSTs', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const ingest = await startIngest(async (req) => {
      if (req.url.endsWith('/result')) await held; // hold the result until we say so
      return 200;
    });
    try {
      const executor = new SimulatedExecutor();
      const launch = aLaunch()
        .trial('trial-42')
        .withConfig({ steps: 25, scale: 1e7, seed: 3 })
        .withEnv({ LADDER_INGEST_URL: `${ingest.url}/`, LADDER_INGEST_TOKEN: 'tok-abc' })
        .build();
      const ref = await executor.submit(launch);
      // The run takes no time; the first status starts the POSTs and says running until they end.
      assert.equal((await executor.status(ref)).state, 'running');
      await ingest.arrival((r) => r.url.endsWith('/result'));
      assert.equal((await executor.status(ref)).state, 'running', 'succeeded before the result was accepted');
      release();
      const status = await waitForTerminal(executor, ref, 5_000);
      assert.equal(status.state, 'succeeded');

      const metricsPosts = ingest.received.filter((r) => r.url === '/ingest/trials/trial-42/metrics');
      const resultPosts = ingest.received.filter((r) => r.url === '/ingest/trials/trial-42/result');
      assert.ok(metricsPosts.length >= 1);
      assert.equal(resultPosts.length, 1);
      assert.equal(ingest.received.length, metricsPosts.length + 1);
      for (const r of ingest.received) {
        assert.equal(r.method, 'POST');
        assert.equal(r.authorization, 'Bearer tok-abc');
      }
      // The result comes last.
      assert.equal(ingest.received.at(-1)!.url, '/ingest/trials/trial-42/result');

      const points = metricsPosts.flatMap((r) => r.body.points);
      for (const p of points) {
        assert.deepEqual(Object.keys(p).sort(), ['name', 'step', 'value']);
        assert.equal(typeof p.value, 'number');
      }
      const loss = points.filter((p: any) => p.name === 'loss');
      assert.deepEqual(loss.map((p: any) => p.step), Array.from({ length: 25 }, (_, i) => i + 1));
      assert.deepEqual(points.filter((p: any) => p.name === 'val_loss').map((p: any) => p.step), [10, 20, 25]);
      // A learning curve: it falls towards L_final = c + a * scale^-alpha.
      const lFinal = 1.5 + 50 * 1e7 ** -0.3;
      assert.ok(loss[0].value > loss[24].value);
      assert.ok(Math.abs(loss[24].value - lFinal) < 1.5, `last loss ${loss[24].value} vs L_final ${lFinal}`);

      const result = resultPosts[0]!.body;
      assert.deepEqual(Object.keys(result).sort(), ['config', 'meta', 'metrics']);
      assert.equal(result.metrics.loss, loss[24].value);
      assert.equal(typeof result.metrics.val_loss, 'number');
      assert.equal(result.meta.simulated, true);
      assert.equal(result.config.scale, 1e7);
      assert.equal(result.config.steps, 25);
      assert.equal(result.config.seed, 3);
    } finally {
      await ingest.close();
    }
  });

  it('sends metric points in batches of at most 500', async () => {
    const ingest = await startIngest();
    try {
      const executor = new SimulatedExecutor();
      const ref = await executor.submit(
        aLaunch().withConfig({ steps: 1200 }).withEnv({ LADDER_INGEST_URL: ingest.url, LADDER_INGEST_TOKEN: 't' }).build(),
      );
      assert.equal((await waitForTerminal(executor, ref, 5_000)).state, 'succeeded');
      const batches = ingest.received.filter((r) => r.url.endsWith('/metrics')).map((r) => r.body.points.length);
      assert.ok(batches.every((n) => n <= 500), String(batches));
      assert.equal(batches.reduce((a, b) => a + b, 0), 1200 + 120);
    } finally {
      await ingest.close();
    }
  });

  it('a refused POST makes the execution failed, reason ingest, retryable', async () => {
    const ingest = await startIngest((req) => (req.url.endsWith('/result') ? 401 : 200));
    try {
      const executor = new SimulatedExecutor();
      const ref = await executor.submit(
        aLaunch().withEnv({ LADDER_INGEST_URL: ingest.url, LADDER_INGEST_TOKEN: 'wrong' }).build(),
      );
      const status = await waitForTerminal(executor, ref, 5_000);
      assert.deepEqual([status.state, status.reason, status.retryable], ['failed', 'ingest', true]);
      assert.match(await executor.logs(ref), /HTTP 401/);
      assert.doesNotMatch(await executor.logs(ref), /wrong/); // the token is never logged
    } finally {
      await ingest.close();
    }
  });

  it('an unreachable ingest makes the execution failed, reason ingest, retryable', async () => {
    const ingest = await startIngest();
    await ingest.close(); // nothing listens there any more
    const executor = new SimulatedExecutor({ ingestTries: 2 });
    const ref = await executor.submit(aLaunch().withEnv({ LADDER_INGEST_URL: ingest.url }).build());
    const status = await waitForTerminal(executor, ref, 5_000);
    assert.deepEqual([status.state, status.reason, status.retryable], ['failed', 'ingest', true]);
  });

  it('durations follow steps × step_sleep × timeScale on the injected clock', async () => {
    let now = 1_000_000;
    const executor = new SimulatedExecutor({ now: () => now, timeScale: 2 });
    const ok = await executor.submit(aLaunch().withConfig({ steps: 10, step_sleep: 1.5 }).build()); // 30 s
    const crash = await executor.submit(aLaunch().withConfig({ steps: 10, step_sleep: 1.5, fail_attempts: 1 }).build()); // at step 5: 15 s
    assert.equal((await executor.status(ok)).state, 'running');
    now += 14_999;
    assert.equal((await executor.status(crash)).state, 'running');
    now += 1;
    const crashed = await executor.status(crash);
    assert.deepEqual([crashed.state, crashed.exitCode, crashed.retryable], ['failed', 1, true]);
    assert.equal((await executor.status(ok)).state, 'running');
    await executor.cancel(crash); // finished: no-op
    assert.equal((await executor.status(crash)).state, 'failed');
    now += 15_000;
    const done = await executor.status(ok);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.finishedAt!.getTime() - done.startedAt!.getTime(), 30_000);
  });

  it('submit is idempotent: the job is started once', async () => {
    const executor = new SimulatedExecutor();
    const launch = aLaunch().build();
    await Promise.all([executor.submit(launch), executor.submit(launch), executor.submit(launch)]);
    assert.equal(executor.startedCount, 1);
  });

  it('state is gone after a restart: unknown-execution, retryable', async () => {
    const first = new SimulatedExecutor();
    const ref = await first.submit(aLaunch().build());
    const status = await new SimulatedExecutor().status(ref);
    assert.deepEqual([status.state, status.reason, status.retryable], ['failed', 'unknown-execution', true]);
  });

  it('validates configs like the synthetic job', () => {
    assert.deepEqual(resolveSyntheticConfig({}).config, { ...SYNTHETIC_DEFAULTS });
    assert.equal(resolveSyntheticConfig({ preset: 'xs', steps: 3 }).config.scale, 1e5);
    assert.equal(resolveSyntheticConfig({ scale: 10 }).config.scale, 10); // int where float is fine
    for (const bad of [{ bogus: 1 }, { steps: 1.5 }, { steps: '5' }, { steps: 0 }, { noise: -1 }, { preset: 'xxl' }, { width: true }]) {
      assert.throws(() => resolveSyntheticConfig(bad), SyntheticConfigError, JSON.stringify(bad));
    }
    // Other kinds: unknown keys are ignored, known knobs still checked.
    assert.equal(resolveSyntheticConfig({ model: 'vit', steps: 7 }, false).config.steps, 7);
    assert.throws(() => resolveSyntheticConfig({ steps: 'x' }, false));
  });

  it('the curve is deterministic per seed and follows the scaling law', () => {
    const cfg = resolveSyntheticConfig({ seed: 5 }).config;
    assert.deepEqual(syntheticPoint(cfg, 7), syntheticPoint(cfg, 7));
    assert.notDeepEqual(syntheticPoint(cfg, 7), syntheticPoint({ ...cfg, seed: 6 }, 7));
    const small = syntheticFinalLoss(resolveSyntheticConfig({ scale: 1e5 }).config);
    const large = syntheticFinalLoss(resolveSyntheticConfig({ scale: 1e8 }).config);
    assert.ok(large < small);
    assert.ok(Math.abs(large - (1.5 + 50 * 1e8 ** -0.3)) < 1e-12);
  });
});

/**
 * The workflow, GraphQL, CLI and dashboard suites all run on the simulated executor, so it must
 * report what the real synthetic job (jobs/ladder_jobs/kinds/synthetic.py, the reference) would.
 * Both are run here on the same configs and compared point by point.
 */
const PYTHON = process.env.LADDER_PYTHON;
const STRICT = process.env.CI === 'true' || process.env.LADDER_STRICT_TESTS === '1';
const NO_PYTHON = 'LADDER_PYTHON is not set (npm test sets it), so the Python synthetic kind cannot run';
const JOBS_DIR = path.resolve(__dirname, '..', '..', 'jobs');
const POINT_TOLERANCE = 1e-9;

async function python(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  // Under CI a missing interpreter fails here, with the reason, instead of skipping.
  assert.ok(PYTHON, NO_PYTHON);
  try {
    const { stdout, stderr } = await promisify(execFile)(PYTHON, ['-m', 'ladder_jobs', ...args], {
      cwd: JOBS_DIR,
      env: { PATH: process.env.PATH ?? '', PYTHONPATH: JOBS_DIR, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

type Point = { name: string; step: number; value: number };

/** The Python job in offline mode: its metrics.jsonl and result.json. */
async function runPythonOffline(config: Record<string, unknown>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-sim-pin-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const res = await python(['run', '--kind', 'synthetic', '--config', path.join(dir, 'config.json')], {
      LADDER_OUTPUT_DIR: path.join(dir, 'out'),
      LADDER_CHECKPOINT_DIR: path.join(dir, 'ckpt'),
      LADDER_ATTEMPT: '1',
    });
    assert.equal(res.code, 0, res.stderr);
    const points = fs
      .readFileSync(path.join(dir, 'out', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Point);
    const result = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'result.json'), 'utf8')) as { metrics: Record<string, number> };
    return { points, result };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The simulated executor on the same config: the points and result it POSTs. */
async function runSimulated(config: Record<string, unknown>) {
  const ingest = await startIngest();
  try {
    const executor = new SimulatedExecutor();
    const ref = await executor.submit(
      aLaunch().trial('pin').withExactConfig(config).withEnv({ LADDER_INGEST_URL: ingest.url, LADDER_INGEST_TOKEN: 't' }).build(),
    );
    assert.equal((await waitForTerminal(executor, ref, 10_000)).state, 'succeeded', await executor.logs(ref));
    const points = ingest.received.filter((r) => r.url.endsWith('/metrics')).flatMap((r) => r.body.points as Point[]);
    const result = ingest.received.find((r) => r.url.endsWith('/result'))!.body as { metrics: Record<string, number> };
    return { points, result };
  } finally {
    await ingest.close();
  }
}

const key = (p: Point) => `${p.name}@${p.step}`;

describe('SimulatedExecutor ⇄ the Python synthetic kind', { skip: !STRICT && !PYTHON && NO_PYTHON, timeout: 180_000 }, () => {
  it('has the same defaults and presets', async () => {
    const res = await python(['kinds', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const synthetic = JSON.parse(res.stdout).synthetic as { defaults: unknown; presets: unknown };
    assert.deepEqual(synthetic.defaults, { ...SYNTHETIC_DEFAULTS });
    assert.deepEqual(synthetic.presets, SYNTHETIC_PRESETS);
  });

  it('resolves and refuses the same configs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-sim-cfg-'));
    try {
      const resolve = async (config: unknown) => {
        const file = path.join(dir, 'config.json');
        fs.writeFileSync(file, JSON.stringify(config));
        return python(['config', '--kind', 'synthetic', '--config', file]);
      };
      for (const good of [{}, { preset: 'xs', steps: 3 }, { preset: 'l', scale: 10, width: 64 }, { lr: 1e-2, seed: 9, noise: 0 }]) {
        const res = await resolve(good);
        assert.equal(res.code, 0, `${JSON.stringify(good)}: ${res.stderr}`);
        assert.deepEqual(resolveSyntheticConfig(good).config, JSON.parse(res.stdout), JSON.stringify(good));
      }
      for (const bad of [{ bogus: 1 }, { steps: 1.5 }, { steps: '5' }, { steps: 0 }, { noise: -1 }, { preset: 'xxl' }, { width: true }, { lr: 0 }]) {
        const res = await resolve(bad);
        assert.equal(res.code, 2, `Python accepted ${JSON.stringify(bad)}`);
        assert.throws(() => resolveSyntheticConfig(bad), SyntheticConfigError, JSON.stringify(bad));
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const config of [
    { steps: 25, seed: 3, scale: 1e7, noise: 0.5, lr: 1e-3 },
    { preset: 'xs', steps: 12, width: 64, seed: 123_456_789_012, noise: 0.2 },
    { steps: 21, seed: 7, noise: 1, alpha: 0.5, a: 10, c: 2, lr: 3e-2 },
    {},
  ]) {
    it(`emits the same points and result for ${JSON.stringify(config)}`, async () => {
      const [py, sim] = await Promise.all([runPythonOffline(config), runSimulated(config)]);
      assert.deepEqual(sim.points.map(key).sort(), py.points.map(key).sort(), 'the same (name, step) pairs');
      const simByKey = new Map(sim.points.map((p) => [key(p), p.value]));
      for (const p of py.points) {
        const value = simByKey.get(key(p))!;
        assert.ok(Math.abs(value - p.value) <= POINT_TOLERANCE, `${key(p)}: simulated ${value}, Python ${p.value}`);
      }
      for (const name of ['loss', 'val_loss', 'final_loss_noiseless', 'steps']) {
        const [a, b] = [sim.result.metrics[name]!, py.result.metrics[name]!];
        assert.ok(Math.abs(a - b) <= POINT_TOLERANCE, `result ${name}: simulated ${a}, Python ${b}`);
      }
    });
  }
});

describe('SimulatedExecutor.wait and its memory', { timeout: 120_000 }, () => {
  const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;

  it('10,000 executions leave the maps bounded; a pruned one is unknown; unread ones stay', async () => {
    let now = 1_000_000;
    const executor = new SimulatedExecutor({ now: () => now, retainMs: 60_000, maxRetained: 100 });
    // Finished, but nobody read the status yet: these must survive any amount of pruning.
    const unread = await Promise.all(Array.from({ length: 5 }, () => executor.submit(aLaunch().withConfig({ steps: 1 }).build())));
    let first: ExecutionRef | undefined;
    let peak = 0;
    for (let i = 0; i < 10_000; i++) {
      const launch = aLaunch().withConfig({ steps: 1 }).build();
      const ref = await executor.submit(launch);
      first ??= ref;
      assert.equal((await executor.wait(ref, AbortSignal.timeout(5_000))).state, 'succeeded');
      // Within the window a repeated submit finds the execution: nothing starts again.
      await executor.submit(launch);
      assert.equal(executor.startsOf(launch.executionId), 1);
      const stats = executor.memoryStats();
      peak = Math.max(peak, stats.executions, stats.startsById);
      now += 1;
    }
    assert.ok(peak <= 100 + 5 + 1, `the maps grew to ${peak} entries`);
    assert.equal(executor.startedCount, 10_005);
    const pruned = await executor.status(first!);
    assert.deepEqual([pruned.state, pruned.reason, pruned.retryable], ['failed', 'unknown-execution', true]);
    // After the time window everything read is gone, whatever the cap.
    now += 60_001;
    await executor.status(first!);
    assert.deepEqual(executor.memoryStats(), { executions: 5, retired: 0, startsById: 5, pendingWaits: 0 });
    for (const ref of unread) assert.equal((await executor.status(ref)).state, 'succeeded');
  });

  it('an execution read terminal stays known for retainMs, then is forgotten', async () => {
    let now = 0;
    const executor = new SimulatedExecutor({ now: () => now, retainMs: 10_000 });
    const launch = aLaunch().withConfig({ steps: 1 }).build();
    const ref = await executor.submit(launch);
    // A running execution is never pruned, however long ago its status was read.
    const slow = await executor.submit(aLaunch().withConfig({ steps: 100, step_sleep: 1 }).build());
    assert.equal((await executor.status(slow)).state, 'running');
    assert.equal((await executor.status(ref)).state, 'succeeded');
    now += 10_000;
    assert.equal((await executor.status(ref)).state, 'succeeded', 'forgotten before the window ended');
    await executor.submit(launch);
    assert.equal(executor.startedCount, 2, 'the repeated submit started a run');
    now += 1;
    assert.equal((await executor.status(ref)).reason, 'unknown-execution');
    now += 80_000;
    assert.equal((await executor.status(slow)).state, 'running');
    assert.equal(executor.startedCount, 2);
  });

  it('wait resolves only once the POSTs are done', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const ingest = await startIngest(async (req) => {
      if (req.url.endsWith('/result')) await held;
      return 200;
    });
    try {
      const executor = new SimulatedExecutor();
      const ref = await executor.submit(aLaunch().withEnv({ LADDER_INGEST_URL: ingest.url, LADDER_INGEST_TOKEN: 't' }).build());
      let settled = false;
      const signal = AbortSignal.timeout(10_000);
      const waiting = executor.wait(ref, signal).finally(() => (settled = true));
      await ingest.arrival((r) => r.url.endsWith('/result'));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(settled, false, 'wait resolved before the result was accepted');
      release();
      assert.equal((await waiting).state, 'succeeded');
      assert.equal(signal.aborted, false, 'only the time limit ended the wait');
    } finally {
      await ingest.close();
    }
  });

  it('wait follows the injected clock: moving it past the run end wakes the waiter (the dashboard test moves it)', async () => {
    let shift = 0;
    const executor = new SimulatedExecutor({ now: () => Date.now() + shift });
    const ref = await executor.submit(aLaunch().withConfig({ steps: 10, step_sleep: 60 }).build()); // 10 min
    const controller = new AbortController();
    const limit = setTimeout(() => controller.abort(), 10_000);
    const waiting = executor.wait(ref, controller.signal);
    shift += 11 * 60_000;
    const status = await waiting;
    clearTimeout(limit);
    assert.equal(controller.signal.aborted, false, 'the run end woke the wait, not its time limit');
    assert.equal(status.state, 'succeeded');
  });

  it('wait is woken when the run ends between its status read and its subscription (a clock that moves on every read)', async () => {
    // CI once failed here: wait() saw the run going, the clock passed its end before the waiter
    // subscribed, no timer was armed and the wait hung until its signal.
    for (let runMs = 1; runMs <= 12; runMs++) {
      let clock = 1_000_000;
      const executor = new SimulatedExecutor({ now: () => clock++ });
      const ref = await executor.submit(aLaunch().withConfig({ steps: 1, step_sleep: runMs / 1000 }).build());
      const controller = new AbortController();
      const limit = setTimeout(() => controller.abort(), 2_000);
      const status = await executor.wait(ref, controller.signal);
      clearTimeout(limit);
      assert.equal(controller.signal.aborted, false, `a ${runMs} ms run: only the time limit ended the wait`);
      assert.equal(status.state, 'succeeded', `a ${runMs} ms run`);
    }
  });

  it('wait wakes on the run end, not on a poll; aborted and shared-signal waits leave nothing behind', async () => {
    const executor = new SimulatedExecutor();
    // Runs on the real clock: one that outlasts the loop below, and one of 1 s.
    const long = await executor.submit(aLaunch().withConfig({ steps: 1_000, step_sleep: 0.3 }).build());
    const before = count('Timeout');
    for (let i = 0; i < 10_000; i++) {
      const controller = new AbortController();
      const pending = executor.wait(long, controller.signal);
      await Promise.resolve(); // past the subscription
      controller.abort();
      const s = await pending;
      if (s.state !== 'running') assert.fail(`wait ${i}: ${JSON.stringify(s)}`);
    }
    assert.equal(executor.memoryStats().pendingWaits, 0);
    assert.equal(count('Timeout'), before, 'an aborted wait left its timer');
    await executor.cancel(long);
    const ref = await executor.submit(aLaunch().withConfig({ steps: 5, step_sleep: 0.2 }).build());
    const shared = new AbortController();
    setMaxListeners(0, shared.signal); // thousands of listeners on purpose: the count is asserted below
    const waits = Array.from({ length: 2_000 }, () => executor.wait(ref, shared.signal));
    await Promise.resolve(); // past the subscriptions
    assert.equal(count('Timeout'), before + 1, 'one timer per execution, however many wait');
    const statuses = await Promise.all(waits);
    assert.ok(statuses.every((s) => s.state === 'succeeded'));
    assert.equal(getEventListeners(shared.signal, 'abort').length, 0);
    assert.equal(executor.memoryStats().pendingWaits, 0);
    assert.equal(count('Timeout'), before);
  });
});
