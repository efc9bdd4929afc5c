import { LocalExecutor } from './executors/local';
import { SimulatedExecutor } from './executors/simulated';
import type { Executor } from './executors/types';

export interface ExecutorSettings {
  runRoot?: string;
  python?: string;
}

/** Executors by name: `local` runs real jobs as processes; `simulated` runs none (tests, capacity). */
export function createExecutor(name: 'local' | 'simulated', settings: ExecutorSettings = {}): Executor {
  switch (name) {
    case 'local':
      return new LocalExecutor({ runRoot: settings.runRoot, python: settings.python });
    case 'simulated':
      return new SimulatedExecutor();
  }
}
