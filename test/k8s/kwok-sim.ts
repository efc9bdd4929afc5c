/**
 * How a KWOK pod "runs" a launch: maps the launch's synthetic config to the pod annotations
 * that test/k8s/kwok-stages.yaml acts on (no Python runs; KWOK only moves pod status).
 *
 * | launch                                               | annotations                              | KWOK does                        |
 * | ---------------------------------------------------- | ---------------------------------------- | -------------------------------- |
 * | config the synthetic kind rejects (unknown key, type)| exit-code 2, duration 300ms              | Failed, exit code 2 (bad config) |
 * | attempt <= fail_attempts                             | exit-code 1, duration half of the run    | Failed, exit code 1              |
 * | steps × step_sleep ≥ LONG_S (e.g. 10000 × 0.2 s)     | none                                     | Running until deleted            |
 * | otherwise                                            | exit-code 0, duration steps × step_sleep | Succeeded, exit code 0           |
 *
 * A `command` launch (bring your own job) maps the same way from the synthetic knobs in its config;
 * its other keys are ignored (only kind `synthetic` is strict), so a command sweep on KWOK sets
 * `steps`/`step_sleep` to choose how long its pods "run".
 *
 * Durations are scaled by `timeScale` and at least `minMs` (KWOK's own reaction time is ~100 ms).
 * The mapping uses the simulated executor's config resolver, so the contract fixtures are
 * unchanged: this hook is passed as `KubernetesExecutorOptions.podAnnotations`.
 */
import type { KubernetesExecutor } from '../../workers/executors/kubernetes';
import { resolveSyntheticConfig, SimulatedExecutor, SyntheticConfigError } from '../../workers/executors/simulated';
import type { ExecutionRef, ExecutionStatus, Executor, JobLaunch } from '../../workers/executors/types';

const LONG_S = 600;

export function kwokAnnotations(options: { timeScale?: number; minMs?: number } = {}) {
  const scale = options.timeScale ?? 1;
  const minMs = options.minMs ?? 300;
  const ms = (seconds: number) => `${Math.max(minMs, Math.round(seconds * 1000 * scale))}ms`;
  return (launch: JobLaunch): Record<string, string> => {
    let config;
    try {
      config = resolveSyntheticConfig(launch.config, launch.kind === 'synthetic').config;
    } catch (e) {
      if (!(e instanceof SyntheticConfigError)) throw e;
      return { 'ladder.test/exit-code': '2', 'ladder.test/duration': ms(0) };
    }
    const run = config.steps * config.step_sleep;
    if (launch.attempt <= config.fail_attempts) {
      return { 'ladder.test/exit-code': '1', 'ladder.test/duration': ms(run / 2) };
    }
    if (run >= LONG_S) return {};
    return { 'ladder.test/exit-code': '0', 'ladder.test/duration': ms(run) };
  };
}

/**
 * KubernetesExecutor whose successes push synthetic metrics like the real job would: KWOK pods
 * run nothing, so when a Job completes the simulated executor's push path posts the points and
 * result on the pod's behalf. `tokenOf` picks the ingest token the push uses (default: the
 * launch's own); a test passes one that reads it back from the cluster as the pod would.
 */
export function withSimulatedIngest(
  inner: KubernetesExecutor,
  options: { tokenOf?: (launch: JobLaunch) => Promise<string> } = {},
): Executor & { inner: KubernetesExecutor; wait: NonNullable<Executor['wait']> } {
  const sim = new SimulatedExecutor();
  // What the pod would have done before exiting 0: post its points and result. The simulated
  // execution is `running` until its POSTs are done: status() callers poll again, wait() callers
  // wait for the POSTs.
  const pushOnSuccess = async (ref: ExecutionRef, st: ExecutionStatus, signal?: AbortSignal): Promise<ExecutionStatus> => {
    const launch = ref.handle.simLaunch as JobLaunch | undefined;
    if (st.state !== 'succeeded' || !launch) return st;
    const env = { ...launch.env };
    if (options.tokenOf) env.LADDER_INGEST_TOKEN = await options.tokenOf(launch);
    const simRef = await sim.submit({ ...launch, env, config: { ...launch.config, step_sleep: 0, fail_attempts: 0 } });
    return signal ? sim.wait(simRef, signal) : sim.status(simRef);
  };
  return {
    name: inner.name,
    inner,
    async submit(launch: JobLaunch): Promise<ExecutionRef> {
      const ref = await inner.submit(launch);
      return { ...ref, handle: { ...ref.handle, simLaunch: launch } };
    },
    status: async (ref) => pushOnSuccess(ref, await inner.status(ref)),
    wait: async (ref, signal) => pushOnSuccess(ref, await inner.wait(ref, signal), signal),
    cancel: (ref) => inner.cancel(ref),
    logs: (ref, n) => inner.logs(ref, n),
  };
}
