/**
 * The executor contract (test/executor-contract.ts) against a real control plane with KWOK
 * fake GPU nodes. Pods "run" as test/k8s/kwok-sim.ts says; the contract's fixtures are unchanged.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { executorContract } from '../executor-contract';
import { KubernetesExecutor, jobNameFor } from '../../workers/executors/kubernetes';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster, type TestCluster } from './cluster';
import { kwokAnnotations } from './kwok-sim';

export const TEST_IMAGE = 'registry.invalid/ladder/jobs@sha256:' + '0'.repeat(64);

let cluster: TestCluster;
before(async () => {
  cluster = await startCluster({ nodes: 2, gpusPerNode: 8 });
  await cluster.createNamespace('contract');
});
after(async () => {
  await cluster?.stop();
});

executorContract('kubernetes', async () => {
  const executor = new KubernetesExecutor({
    kubeConfig: cluster.kubeConfig(),
    namespace: 'contract',
    image: TEST_IMAGE,
    nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
    tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
    podAnnotations: kwokAnnotations({ timeScale: 1 }),
  });
  const core = cluster.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
  // Read from the API server, not from the executor's informer cache.
  const podsOf = async (executionId: string) =>
    (await core.listNamespacedPod({ namespace: 'contract', labelSelector: `batch.kubernetes.io/job-name=${jobNameFor(executionId)}` })).items;
  return {
    executor,
    cleanup: async () => {
      // Every wait() of the case has resolved by now: none may still hold a listener.
      const left = executor.pendingWaits;
      await executor.close();
      assert.equal(left, 0, 'wait() listeners left behind');
    },
    // A second start would be a second pod (the Job has backoffLimit 0) or a second Job.
    runsOf: async (launch) => (await podsOf(launch.executionId)).length,
    leftRunning: async (ref) => {
      const job = await batch.readNamespacedJob({ name: jobNameFor(ref.executionId), namespace: 'contract' }).catch(() => null);
      if (job && !job.metadata?.deletionTimestamp && !(job.status?.succeeded || job.status?.failed)) return true;
      return (await podsOf(ref.executionId)).some(
        (p) => !p.metadata?.deletionTimestamp && (p.status?.phase === 'Running' || p.status?.phase === 'Pending'),
      );
    },
    logsShowJobOutput: false, // KWOK's pods run no container: there is no job output to show
  };
});
