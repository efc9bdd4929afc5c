import { kubernetesExecutorFromEnv } from './executors/kubernetes-config';
import { LocalExecutor } from './executors/local';
import { SimulatedExecutor } from './executors/simulated';
import type { Executor } from './executors/types';

export interface ExecutorSettings {
  runRoot?: string;
  python?: string;
}

/**
 * Executors by name: `local` runs real jobs as processes, `kubernetes` as Jobs in a cluster
 * (configured from LADDER_K8S_* variables, see executors/kubernetes-config.ts); `simulated` runs
 * none (tests, capacity).
 */
export function createExecutor(name: 'local' | 'kubernetes' | 'simulated', settings: ExecutorSettings = {}): Executor {
  switch (name) {
    case 'local':
      return new LocalExecutor({ runRoot: settings.runRoot, python: settings.python });
    case 'kubernetes':
      return kubernetesExecutorFromEnv();
    case 'simulated':
      return new SimulatedExecutor();
  }
}
