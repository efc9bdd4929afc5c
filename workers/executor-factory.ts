import type { LogReader } from '../core/trials/logs';
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
    // Required on use: the Kubernetes client alone takes seconds to load, and a CLI reading a local log needs none of it.
    case 'local': {
      const { LocalExecutor } = require('./executors/local') as typeof import('./executors/local');
      return new LocalExecutor({ runRoot: settings.runRoot, python: settings.python });
    }
    case 'kubernetes':
      return (require('./executors/kubernetes-config') as typeof import('./executors/kubernetes-config')).kubernetesExecutorFromEnv();
    case 'simulated': {
      const { SimulatedExecutor } = require('./executors/simulated') as typeof import('./executors/simulated');
      return new SimulatedExecutor();
    }
  }
}

/**
 * Reads attempt logs for a process that is not the worker (the CLI, the API): an executor of the
 * reference's kind, made on first use. The simulated executor keeps its logs in the worker's
 * memory, so from elsewhere there are none (null).
 */
export function createLogReader(settings: ExecutorSettings = {}): LogReader {
  const made = new Map<string, Executor>();
  return async (ref, tailBytes) => {
    const name = ref.executor;
    if (name !== 'local' && name !== 'kubernetes') return null;
    let executor = made.get(name);
    if (!executor) made.set(name, (executor = createExecutor(name, settings)));
    if (!executor.logs) return null;
    return executor.logs(ref, tailBytes);
  };
}
