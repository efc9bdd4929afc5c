/**
 * A Ladder worker with the KubernetesExecutor against a test cluster, as its own process, so a
 * test can SIGKILL it (sweep.test.ts). Pods are driven by KWOK as in the other k8s tests, and
 * successes push their synthetic metrics through `withSimulatedIngest` (kwok-sim.ts).
 *
 * Environment (all required): DATABASE_URL, TEMPORAL_ADDRESS, LADDER_TASK_QUEUE,
 * LADDER_INGEST_URL, LADDER_INGEST_SECRET, KUBECONFIG, LADDER_K8S_NAMESPACE, LADDER_JOB_IMAGE.
 * Writes `ready` on stdout once the worker polls its task queue.
 */
import * as k8s from '@kubernetes/client-node';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { openDatabase } from '../../core/db/client';
import { createLogger } from '../../core/log';
import { KubernetesExecutor } from '../../workers/executors/kubernetes';
import { startLadderWorker } from '../../workers/worker';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT } from './cluster';
import { kwokAnnotations, withSimulatedIngest } from './kwok-sim';

const NAMES = [
  'DATABASE_URL',
  'TEMPORAL_ADDRESS',
  'LADDER_TASK_QUEUE',
  'LADDER_INGEST_URL',
  'LADDER_INGEST_SECRET',
  'KUBECONFIG',
  'LADDER_K8S_NAMESPACE',
  'LADDER_JOB_IMAGE',
] as const;

async function main() {
  const env = {} as Record<(typeof NAMES)[number], string>;
  for (const name of NAMES) {
    const v = process.env[name];
    if (!v) throw new Error(`environment variable ${name} is required`);
    env[name] = v;
  }
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(env.KUBECONFIG);
  const executor = new KubernetesExecutor({
    kubeConfig,
    namespace: env.LADDER_K8S_NAMESPACE,
    image: env.LADDER_JOB_IMAGE,
    nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
    tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
    podAnnotations: kwokAnnotations(),
  });
  await executor.start();
  const database = openDatabase(env.DATABASE_URL);
  const worker = await startLadderWorker({
    temporalAddress: env.TEMPORAL_ADDRESS,
    taskQueue: env.LADDER_TASK_QUEUE,
    db: database.db,
    executor: withSimulatedIngest(executor),
    ingest: { url: env.LADDER_INGEST_URL, secret: env.LADDER_INGEST_SECRET },
    log: createLogger('k8s-test-worker'),
    pollIntervalMs: 200,
  });
  process.stdout.write('ready\n');
  const stop = () => void worker.shutdown();
  process.once('SIGTERM', stop);
  await worker.running;
  await executor.close();
  await database.close();
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`k8s test worker: ${e.stack}\n`);
    process.exit(1);
  },
);
