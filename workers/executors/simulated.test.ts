import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';

import { aLaunch, executorContract, waitForTerminal } from './contract';
import {
  resolveSyntheticConfig,
  SimulatedExecutor,
  SyntheticConfigError,
  SYNTHETIC_DEFAULTS,
  syntheticFinalLoss,
  syntheticPoint,
} from './simulated';

executorContract('simulated', async () => {
  // Fast: a step_sleep of 0.2 s lasts 2 ms of real time.
  const executor = new SimulatedExecutor({ timeScale: 0.01 });
  return { executor, cleanup: async () => executor.reset() };
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
      const status = await respond(entry);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('SimulatedExecutor', () => {
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
      while (!ingest.received.some((r) => r.url.endsWith('/result'))) await new Promise((r) => setTimeout(r, 10));
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
