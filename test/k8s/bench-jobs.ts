/**
 * Figure (not a test): Kubernetes Jobs per second through Ladder's executor on a fake GPU
 * cluster (KWOK), with the API server's own ceiling measured in the same run as the baseline.
 *
 *     npx tsx test/k8s/bench-jobs.ts [jobs=500] [nodes=100] [concurrency=64]
 *     LADDER_BENCH_BASELINE_EXECUTOR=path/to/old/kubernetes.ts npx tsx test/k8s/bench-jobs.ts 400
 *
 * Phases, one cluster, each in its own namespace:
 * - `bare`: `jobs` suspended Jobs (no pods) created with one keep-alive client at `concurrency`:
 *   what the API server and etcd take when the client does nothing else (the ceiling);
 * - `bareNewTls`: the same through the client library's default, a new TLS connection per
 *   request (what the executor did before it kept its connections);
 * - `executor`: `KubernetesExecutor.submit` of `jobs` attempts at `concurrency` (every object
 *   of an attempt), then each attempt observed `running` through the executor's informers
 *   (KWOK schedules and starts the pods: scheduler, job controller and KWOK share the cores).
 *
 * Prints one JSON line (the last line of output) with every figure: `jobsPerS` (executor,
 * submit to all running), `cpuMsPerJob` (this process's CPU, executor phase), `clusterCpuMsPerJob`
 * per component, `objectsPerAttempt` (objects counted in the namespace), the bare ceilings and
 * the ratio against them, and `loadAverage` (1-minute, before and after): the machine is shared,
 * so figures move with the load.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { KubernetesExecutor, MANAGED_BY_LABEL, MANAGED_BY_VALUE, keepAliveApi } from '../../workers/executors/kubernetes';
import type { ExecutionRef, JobLaunch } from '../../workers/executors/types';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster, type TestCluster } from './cluster';
import { kwokAnnotations } from './kwok-sim';

const IMAGE = 'registry.invalid/ladder/jobs@sha256:' + '4'.repeat(64);
const TICKS_PER_S = 100; // USER_HZ on Linux

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CPU seconds used so far by each component of the cluster (from /proc). */
function clusterCpu(cluster: TestCluster): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(cluster.pids())) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S; // utime + stime
    } catch {
      out[name] = NaN;
    }
  }
  return out;
}

/** apiserver_request_total by "VERB resource" (the API server's own count of what it served). */
async function apiRequests(cluster: TestCluster): Promise<Map<string, number>> {
  const kc = cluster.kubeConfig();
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const text = await new Promise<string>((resolve, reject) => {
    https
      .get(`${cluster.server}/metrics`, opts, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([^"]*)"/.exec(line)?.[1];
    const resource = /resource="([^"]*)"/.exec(line)?.[1];
    const sub = /subresource="([^"]*)"/.exec(line)?.[1];
    const key = `${verb} ${resource}${sub ? `/${sub}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** The `top` request kinds of the interval, per Job. */
function requestsPerJob(before: Map<string, number>, after: Map<string, number>, jobs: number, top = 10): Record<string, number> {
  return Object.fromEntries(
    [...after]
      .map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / jobs] as const)
      .filter(([, v]) => v >= 0.05)
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, +v.toFixed(2)]),
  );
}

/** Runs `count` tasks with at most `concurrency` in flight. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

function launchOf(i: number, run: string): JobLaunch {
  const trialId = `bench-${run}-${String(i).padStart(5, '0')}`;
  return {
    executionId: `${trialId}-a1`,
    trialId,
    attempt: 1,
    kind: 'synthetic',
    // Runs until deleted on KWOK (kwok-sim.ts): every attempt stays `running` once it starts.
    config: { steps: 10_000, step_sleep: 0.2, lr: 1e-4 * (1 + i) },
    resources: { gpus: 1, cpu: 1, memory: '1Gi' },
    env: { LADDER_TRIAL_ID: trialId, LADDER_ATTEMPT: '1', LADDER_INGEST_URL: 'http://ingest.invalid/ingest/v1', LADDER_INGEST_TOKEN: `tok-${i}-${run}` },
    labels: { 'ladder.dev/sweep': `bench-${run}` },
    timeoutSeconds: 3600,
  };
}

async function bareCreates(cluster: TestCluster, batch: k8s.BatchV1Api, namespace: string, jobs: number, concurrency: number) {
  const apiCpu0 = clusterCpu(cluster)['kube-apiserver']!;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await pool(jobs, concurrency, (i) =>
    batch.createNamespacedJob({
      namespace,
      body: {
        metadata: { name: `bare-${i}` },
        spec: {
          suspend: true, // no pods: only the API server and etcd work
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'job', image: IMAGE }] } },
        },
      },
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const apiCpu = clusterCpu(cluster)['kube-apiserver']! - apiCpu0;
  return {
    jobsPerS: +(jobs / s).toFixed(1),
    cpuMsPerJob: +((cpu.user + cpu.system) / 1000 / jobs).toFixed(2),
    apiServerCpuMsPerJob: +((1000 * apiCpu) / jobs).toFixed(1),
  };
}

/** Submits `jobs` attempts through an executor and waits until every one is running. */
async function executorPhase(
  cluster: TestCluster,
  Executor: typeof KubernetesExecutor,
  namespace: string,
  jobs: number,
  concurrency: number,
) {
  const executor = new Executor({
    kubeConfig: cluster.kubeConfig(),
    namespace,
    image: IMAGE,
    nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
    tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
    podAnnotations: kwokAnnotations(),
  });
  await executor.start();
  const refs: ExecutionRef[] = [];
  // When the whole batch passed each stage of the pipeline (seconds from the first submit):
  // submitted (executor) → pod created (job controller) → bound (scheduler) → Running (KWOK).
  const stage = { created: new Map<string, number>(), bound: new Map<string, number>(), running: new Map<string, number>() };
  let watchDone = false;
  let watchEnded: string | null = null;
  const watch = await new k8s.Watch(cluster.kubeConfig()).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (_type: string, pod: k8s.V1Pod) => {
      const name = pod.metadata?.name;
      if (!name) return;
      const now = performance.now();
      if (!stage.created.has(name)) stage.created.set(name, now);
      if (pod.spec?.nodeName && !stage.bound.has(name)) stage.bound.set(name, now);
      if (pod.status?.phase === 'Running' && !stage.running.has(name)) stage.running.set(name, now);
    },
    // A watch the server closes early (it happened under load) would leave the stage times short;
    // they are then reported as unknown rather than as the moment the watch went quiet.
    (err: unknown) => {
      if (!watchDone) watchEnded = err ? String(err) : 'closed by the server';
    },
  );
  const requests0 = await apiRequests(cluster);
  const clusterCpu0 = clusterCpu(cluster);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(jobs, concurrency, async (i) => {
    refs[i] = await executor.submit(launchOf(i, 'x'));
  });
  const submittedS = (performance.now() - t0) / 1000;
  const deadline = Date.now() + 20 * 60_000;
  let running = 0;
  for (;;) {
    const states = await Promise.all(refs.map((r) => executor.status(r)));
    const bad = states.find((s) => s.state !== 'pending' && s.state !== 'running');
    if (bad) throw new Error(`an attempt ended while the bench waited for it to run: ${JSON.stringify(bad)}`);
    running = states.filter((s) => s.state === 'running').length;
    if (running === jobs) break;
    if (Date.now() > deadline) throw new Error(`only ${running}/${jobs} running after 20 min`);
    await sleep(250); // status() reads the informer cache; polling faster only burns this process's CPU
  }
  const runningS = (performance.now() - t0) / 1000;
  watchDone = true;
  watch.abort();
  const lastAt = (m: Map<string, number>) => +((Math.max(...m.values()) - t0) / 1000).toFixed(2);
  const cpu = process.cpuUsage(cpu0);
  const clusterCpu1 = clusterCpu(cluster);
  const requests1 = await apiRequests(cluster);
  const core = cluster.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
  const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
  const [jobList, secrets, configMaps] = await Promise.all([
    batch.listNamespacedJob({ namespace, labelSelector: selector }),
    core.listNamespacedSecret({ namespace, labelSelector: selector }),
    core.listNamespacedConfigMap({ namespace, labelSelector: selector }),
  ]);
  const objects = jobList.items.length + secrets.items.length + configMaps.items.length;
  const jobsPerS = +(jobs / runningS).toFixed(1);
  const clusterCpuMsPerJob = Object.fromEntries(
    Object.keys(clusterCpu1).map((k) => [k, +((1000 * (clusterCpu1[k]! - (clusterCpu0[k] ?? 0))) / jobs).toFixed(1)]),
  );
  await executor.close();
  return {
    jobsPerS,
    submitsPerS: +(jobs / submittedS).toFixed(1),
    secondsToAllRunning: +runningS.toFixed(2),
    secondsUntilAll: watchEnded
      ? { submitted: +submittedS.toFixed(2), podCreated: null, bound: null, running: null, watchEnded }
      : { submitted: +submittedS.toFixed(2), podCreated: lastAt(stage.created), bound: lastAt(stage.bound), running: lastAt(stage.running) },
    cpuMsPerJob: +((cpu.user + cpu.system) / 1000 / jobs).toFixed(2),
    clusterCpuMsPerJob,
    objectsPerAttempt: +(objects / jobs).toFixed(2),
    objects: { jobs: jobList.items.length, secrets: secrets.items.length, configMaps: configMaps.items.length },
    createdByExecutor: executor.createdCount,
    apiRequestsPerJob: requestsPerJob(requests0, requests1, jobs),
  };
}

async function main() {
  const jobs = Number(process.argv[2] ?? 500);
  const nodes = Number(process.argv[3] ?? 100);
  const concurrency = Number(process.argv[4] ?? 64);
  for (const [name, v] of Object.entries({ jobs, nodes, concurrency })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: a positive integer, got ${v}`);
  }
  const baselinePath = process.env.LADDER_BENCH_BASELINE_EXECUTOR;
  // Every attempt holds one GPU until the end (two executor phases with a baseline).
  const capacity = (nodes * 8) / (baselinePath ? 2 : 1);
  if (jobs > capacity) throw new Error(`jobs: at most ${capacity} (one GPU each, 8 per node${baselinePath ? ', two phases' : ''}), got ${jobs}`);
  const load0 = os.loadavg()[0]!;
  const cluster = await startCluster({ nodes, gpusPerNode: 8 });
  try {
    for (const ns of ['bare', 'bare-tls', 'bench']) await cluster.createNamespace(ns);
    // One keep-alive connection pool, as the executor has (the bare ceiling must not pay TLS).
    const bare = await bareCreates(cluster, keepAliveApi(cluster.kubeConfig(), k8s.BatchV1Api, concurrency), 'bare', jobs, concurrency);
    const bareNewTls = await bareCreates(cluster, cluster.kubeConfig().makeApiClient(k8s.BatchV1Api), 'bare-tls', jobs, concurrency);

    // Optional same-run "before": another build of the executor (e.g. the previous release's
    // kubernetes.ts copied next to this file), in its own namespace, on the same cluster. It
    // runs first, so the executor under test runs with the baseline's pods still on the nodes.
    let baseline: Awaited<ReturnType<typeof executorPhase>> | undefined;
    if (baselinePath) {
      await cluster.createNamespace('bench-baseline');
      const mod = (await import(path.resolve(baselinePath))) as { KubernetesExecutor: typeof KubernetesExecutor };
      baseline = await executorPhase(cluster, mod.KubernetesExecutor, 'bench-baseline', jobs, concurrency);
    }
    const run = await executorPhase(cluster, KubernetesExecutor, 'bench', jobs, concurrency);
    const figures = {
      jobs,
      nodes,
      concurrency,
      ...run,
      bareJobsPerS: bare.jobsPerS,
      bareCpuMsPerJob: bare.cpuMsPerJob,
      bareApiServerCpuMsPerJob: bare.apiServerCpuMsPerJob,
      bareNewTlsJobsPerS: bareNewTls.jobsPerS,
      bareNewTlsCpuMsPerJob: bareNewTls.cpuMsPerJob,
      bareNewTlsApiServerCpuMsPerJob: bareNewTls.apiServerCpuMsPerJob,
      executorVsBare: +(run.jobsPerS / bare.jobsPerS).toFixed(2),
      ...(baseline ? { baseline, speedupVsBaseline: +(run.jobsPerS / baseline.jobsPerS).toFixed(2) } : {}),
      loadAverage: { before: +load0.toFixed(2), after: +os.loadavg()[0]!.toFixed(2) },
      cores: os.cpus().length,
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
