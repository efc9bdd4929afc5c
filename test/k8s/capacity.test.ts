/**
 * The k8s capacity scenario (loadtests/scenarios/k8s.yaml) against a real control plane with KWOK
 * fake GPU nodes: a few seconds at a small rate through the capacity workflow on a loadgen worker,
 * as `npm run loadtest:smoke` runs the other scenarios. A watch started before the run counts the
 * Jobs created and their pods seen Running independently of the generator's own figures.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';
import { getCapacityRun } from '../../core/capacity/store';
import { silentLogger } from '../../core/log';
import { runCapacity } from '../../loadtests/capacity/run';
import { parseScenario } from '../../loadtests/capacity/scenario';
import { startLoadgenWorker, type LoadgenWorker } from '../../workers/loadgen';
import { createTestStack, eventually, REPO_ROOT, type TestStack } from '../harness';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster, type TestCluster } from './cluster';

const NAMESPACE = 'capacity';
const RATE = 2;
const DURATION_S = 3;

describe('capacity: the k8s scenario on a KWOK cluster', { timeout: 300_000 }, () => {
  let cluster: TestCluster;
  let stack: TestStack;
  let loadgen: LoadgenWorker;
  const queue = () => `${stack.taskQueue}-capacity`;

  before(async () => {
    [cluster, stack] = await Promise.all([startCluster({ nodes: 2, gpusPerNode: 8 }), createTestStack('capacity_k8s')]);
    await cluster.createNamespace(NAMESPACE);
    loadgen = await startLoadgenWorker({ temporalAddress: stack.temporalAddress, generatorQueue: queue(), controlQueue: queue(), database: stack.database, log: silentLogger, maxGenerators: 2 });
  });
  after(async () => {
    await loadgen?.shutdown();
    await stack?.close();
    await cluster?.stop();
  });

  test('Jobs are created and observed Running at the offered rate; the run is stored; its Jobs are deleted', async () => {
    const raw = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'loadtests', 'scenarios', 'k8s.yaml'), 'utf8')) as Record<string, any>;
    const scenario = parseScenario({
      ...raw,
      k8s: {
        ...raw.k8s,
        namespace: NAMESPACE,
        kubeconfig: cluster.kubeconfigPath,
        nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
        tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
      },
      load: { rate: RATE, duration: `${DURATION_S}s`, timeout: '60s' },
      thresholds: ['p95 < 30s', 'errors < 5%', 'achieved >= 0.5 * offered'],
      search: undefined,
    });

    // Counted by the cluster, not by the generator: Jobs added and pods seen Running, by name.
    const jobs = new Set<string>();
    const running = new Set<string>();
    const watch = new k8s.Watch(cluster.kubeConfig());
    const onEvent = (set: Set<string>, ok: (o: any) => boolean) => (_type: string, o: any) => {
      if (o?.metadata?.labels?.['ladder-capacity'] && ok(o)) set.add(o.metadata.name);
    };
    const watches = await Promise.all([
      watch.watch(`/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, {}, onEvent(jobs, () => true), () => {}),
      watch.watch(`/api/v1/namespaces/${NAMESPACE}/pods`, {}, onEvent(running, (p) => p.status?.phase === 'Running'), () => {}),
    ]);
    try {
      const run = await runCapacity({ client: stack.temporal, db: stack.database.db, runId: 'k8s-smoke', scenario, target: null, controlQueue: queue(), generatorQueue: queue() });
      assert.equal(run.status, 'finished', run.error ?? '');
      assert.equal(run.kind, 'k8s');
      assert.equal(run.steps.length, 1);
      const step = run.steps[0]!;
      assert.deepEqual(step.data.errors, []);
      assert.equal(step.passed, true, JSON.stringify(step.data.thresholds));
      assert.equal(step.offered, RATE);
      assert.equal(step.data.planned, RATE * DURATION_S);
      assert.equal(step.data.succeeded, RATE * DURATION_S, 'every Job was observed Running by the generator');
      assert.ok(step.achieved >= 0.5 * RATE && step.achieved <= RATE * 1.01, `achieved ${step.achieved}/s`);
      assert.equal(run.knee, RATE);

      // The cluster saw the same: one Job per operation and each of its pods Running.
      await eventually('the watch to see every Job and Running pod', async () => jobs.size === step.data.started && running.size === step.data.succeeded, 30_000, 100);

      // Stored, and read back as `ladder capacity show` does.
      const stored = await getCapacityRun(stack.database.db, 'k8s-smoke');
      assert.equal(stored.steps[0]!.data.succeeded, step.data.succeeded);
      assert.equal(stored.knee, RATE);

      // The run deletes its Jobs at the end of the step.
      const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
      await eventually('the run\'s Jobs to be deleted', async () => (await batch.listNamespacedJob({ namespace: NAMESPACE, labelSelector: 'ladder-capacity' })).items.length === 0, 60_000, 250);
    } finally {
      for (const w of watches) w.abort();
    }
  });
});
