/**
 * Figure: time from sweep submit to all Jobs created, on a fake GPU cluster (KWOK).
 *
 *     npx tsx test/k8s/bench-jobs.ts [trials=500] [nodes=100]
 *
 * Needs the test services (Postgres, Temporal) like `npm test` starts them: run it through
 * `npx tsx scripts/test.ts`-style env (LADDER_TEST_PG_URL, LADDER_TEST_TEMPORAL_ADDRESS) or let
 * createTestStack start its own. The sweep workflow keeps at most MAX_CHILDREN_IN_FLIGHT (200)
 * trials in flight, so trials are short (KWOK completes each pod after 2 s) and the figure is the
 * time until all of them have had their Job created (Jobs stay until their TTL). Metrics are
 * absent (nothing pushes them), so trials end 'failed' ("exited 0 without a final result") with
 * retries 0: that does not change the Job creation path being measured. Prints one JSON line.
 */
import * as k8s from '@kubernetes/client-node';
import { launchSweep, cancelSweep, waitForSweep, type LaunchContext } from '../../core/sweeps/launch';
import { KubernetesExecutor } from '../../workers/executors/kubernetes';
import { createTestStack, sleep } from '../harness';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster } from './cluster';
import { kwokAnnotations } from './kwok-sim';

async function main() {
  const trials = Number(process.argv[2] ?? 500);
  const nodes = Number(process.argv[3] ?? 100);
  const cluster = await startCluster({ nodes, gpusPerNode: 8 });
  await cluster.createNamespace('bench');
  const stack = await createTestStack('k8sbench');
  const executor = new KubernetesExecutor({
    kubeConfig: cluster.kubeConfig(),
    namespace: 'bench',
    image: 'registry.invalid/ladder/jobs@sha256:' + '4'.repeat(64),
    nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
    tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
    podAnnotations: kwokAnnotations(),
  });
  const worker = await stack.startWorker({ executor, pollIntervalMs: 1000 });
  const ctx: LaunchContext = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'bench' };
  const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
  const seeds = 10;
  const lrs = Array.from({ length: Math.ceil(trials / seeds) }, (_, i) => 1e-4 * (1 + i));
  const cpu0 = process.cpuUsage();
  let rssMax = 0;
  const t0 = Date.now();
  const sweep = await launchSweep(ctx, {
    spec: {
      name: 'bench',
      kind: 'synthetic',
      base: { steps: 4, step_sleep: 0.5 },
      grid: { lr: lrs },
      seeds,
      resources: { gpus: 1, cpu: 1, memory: '1Gi' },
      concurrency: trials,
      retries: 0,
      timeoutSeconds: 3600,
    },
  });
  let jobs = 0;
  const samples: [number, number][] = [];
  while (jobs < sweep.trials) {
    await sleep(500);
    jobs = (await batch.listNamespacedJob({ namespace: 'bench', labelSelector: `ladder.dev/sweep=${sweep.id}` })).items.length;
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
    samples.push([Date.now() - t0, jobs]);
    if (Date.now() - t0 > 20 * 60_000) throw new Error(`only ${jobs} Jobs after 20 min`);
  }
  const wallS = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const firstJobAt = samples.find(([, n]) => n > 0)?.[0] ?? 0;
  process.stdout.write(
    JSON.stringify({
      trials: sweep.trials,
      nodes,
      secondsToAllJobs: wallS,
      jobsPerSecond: +(sweep.trials / wallS).toFixed(1),
      jobsPerSecondAfterFirst: +(sweep.trials / (wallS - firstJobAt / 1000)).toFixed(1),
      createdByExecutor: executor.createdCount,
      processCpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(1),
      processCpuPercentOfOneCore: +((100 * (cpu.user + cpu.system)) / 1e6 / wallS).toFixed(0),
      processRssMaxMiB: Math.round(rssMax / 2 ** 20),
      note: 'in-process worker + API + test client in one node process; Temporal, Postgres and the control plane are separate processes',
    }) + '\n',
  );
  await cancelSweep(ctx, sweep.id);
  await waitForSweep(ctx, sweep.id);
  await worker.shutdown();
  await executor.close();
  await stack.close();
  await cluster.stop();
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
