/**
 * The executor contract (workers/executors/contract.ts) against a real control plane with KWOK
 * fake GPU nodes. Pods "run" as test/k8s/kwok-sim.ts says; the contract's fixtures are unchanged.
 */
import { after, before } from 'node:test';
import { executorContract } from '../../workers/executors/contract';
import { KubernetesExecutor } from '../../workers/executors/kubernetes';
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
  return {
    executor,
    cleanup: async () => {
      await executor.close();
    },
  };
});
