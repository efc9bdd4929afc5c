/**
 * The capacity workflow: one capacity run (`ladder capacity run`). Each step fans out generator
 * activities on the loadgen task queue, each running its share of the step's rate; their
 * histograms are merged by an activity (hdr-histogram-js stays out of the sandbox) and the knee
 * search (loadtests/capacity/search.ts, pure) decides the next rate. No I/O here.
 *
 * A generator lost mid-step (its worker killed: no heartbeat) makes the step incomplete — stored
 * as such, never merged as if whole — and the search stops. Cancelling the run cancels every
 * generator, and the workflow waits until they have stopped.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  isCancellation,
  proxyActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import { constantProfile, profileDurationMs, scaleProfile } from '../loadtests/capacity/profile';
import type { LoadProfile, Scenario } from '../loadtests/capacity/scenario';
import { capacitySearch, type StopReason } from '../loadtests/capacity/search';
import type { GeneratorReport } from '../loadtests/capacity/step';
import type { Prepared } from '../loadtests/capacity/targets';
import type { ScalingAnswer, ScalingSample } from '../core/capacity/scaling';
import type { LoadgenActivities, StepSummary } from '../workers/loadgen';

// Activity-option profiles, named once.
/** Bookkeeping on the control queue: short, retried so a restarted database loses nothing. */
const control = proxyActivities<LoadgenActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
});
/**
 * A generator: one attempt (a retried share would run after the others, not with them, so the
 * step would not be the rate it claims), heartbeating, and cancelled only once it has stopped.
 */
const GENERATOR_HEARTBEAT_TIMEOUT_MS = 5000;
const generatorOptions = (taskQueue: string, load: LoadProfile): ActivityOptions => ({
  taskQueue,
  // The profile, then in-flight operations draining for up to their timeout, plus slack.
  startToCloseTimeout: profileDurationMs(load) + load.timeout + 60_000,
  heartbeatTimeout: GENERATOR_HEARTBEAT_TIMEOUT_MS,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 1 },
});

export interface CapacityWorkflowInput {
  runId: string;
  /** The validated scenario (loadtests/capacity/scenario.ts). */
  scenario: Scenario;
  /** Base URL of the target, after --target; null: the scenario's own. */
  target: string | null;
  /** Generator task queue (default `ladder-loadgen`). */
  generatorQueue?: string;
  /** Generators per step (default scenario.agents); a scaling run uses scenario.scaling instead. */
  generators?: number;
}

export interface CapacityWorkflowResult {
  runId: string;
  knee: number | null;
  kneeIsLowerBound: boolean;
  stopReason: StopReason | 'profile done';
  steps: number;
  scaling: ScalingAnswer | null;
}

export const capacityWorkflowId = (runId: string) => `capacity/${runId}`;
export const DEFAULT_LOADGEN_QUEUE = 'ladder-loadgen';

const describeFailure = (err: unknown): string => {
  const e = err as { message?: string; cause?: { message?: string; timeoutType?: unknown } };
  return e.cause?.message ? `${e.message ?? 'failed'}: ${e.cause.message}` : String(e.message ?? err);
};

export async function capacityWorkflow(input: CapacityWorkflowInput): Promise<CapacityWorkflowResult> {
  const { runId, scenario } = input;
  const queue = input.generatorQueue ?? DEFAULT_LOADGEN_QUEUE;
  const mode = scenario.scaling ? 'scaling' : scenario.search ? 'search' : 'profile';
  const prepared: Prepared = await control.capacityPrepare({ runId, scenario, target: input.target, mode });
  let stepIndex = 0;

  /** One step at `load` (all generators together) split across `generators` activities. */
  const runStep = async (load: LoadProfile, generators: number): Promise<StepSummary> => {
    const share = scaleProfile(load, 1 / generators);
    const generate = proxyActivities<LoadgenActivities>(generatorOptions(queue, share)).capacityGenerate;
    const reports: GeneratorReport[] = [];
    let incomplete: string | null = null;
    // Its own scope, so one lost generator stops the others (the step is void anyway).
    const scope = new CancellationScope();
    await scope.run(() =>
      Promise.all(
        Array.from({ length: generators }, (_, index) =>
          generate({ runId, scenario, prepared, load: share, slot: { index, count: generators } }).then(
            (r) => void reports.push(r),
            (err) => {
              if (isCancellation(err) && incomplete) return; // stopped because another was lost
              incomplete ??= isCancellation(err) ? 'cancelled' : `generator ${index} lost: ${describeFailure(err)}`;
              scope.cancel();
            },
          ),
        ),
      ),
    );
    const idx = stepIndex++;
    // Stored even when the run is being cancelled: the record says what happened to the step.
    const step = await CancellationScope.nonCancellable(() => control.capacityMergeStep({ runId, idx, generators, thresholds: scenario.thresholds, reports, incomplete }));
    if (CancellationScope.current().consideredCancelled) await CancellationScope.current().cancelRequested;
    return step;
  };

  /** The knee search (or the profile once) with `generators`. */
  const measure = async (generators: number) => {
    if (!scenario.search) {
      const step = await runStep(scenario.load, generators);
      return { knee: step.passed ? step.offered : null, kneeIsLowerBound: false, stopReason: (step.incomplete ? 'incomplete step' : 'profile done') as CapacityWorkflowResult['stopReason'] };
    }
    const s = scenario.search;
    const durationMs = s.stepDuration ?? (scenario.load.stages ? 10_000 : profileDurationMs(scenario.load));
    const outcome = await capacitySearch((rate) => runStep(constantProfile(scenario.load, rate, durationMs), generators), s);
    return { knee: outcome.knee, kneeIsLowerBound: outcome.kneeIsLowerBound, stopReason: outcome.stopReason as CapacityWorkflowResult['stopReason'] };
  };

  let last: Awaited<ReturnType<typeof measure>> = { knee: null, kneeIsLowerBound: false, stopReason: 'cancelled' };
  const samples: ScalingSample[] = [];
  try {
    if (scenario.scaling) {
      for (const replicas of scenario.scaling.generators) {
        for (let repeat = 0; repeat < scenario.scaling.repeats; repeat++) {
          last = await measure(replicas);
          samples.push({ replicas, knee: last.knee, kneeIsLowerBound: last.kneeIsLowerBound, repeat });
        }
      }
    } else last = await measure(input.generators ?? scenario.agents);
  } catch (err) {
    const cancelled = isCancellation(err);
    await CancellationScope.nonCancellable(() =>
      control.capacityFinish({ runId, status: cancelled ? 'cancelled' : 'failed', knee: last.knee, kneeIsLowerBound: last.kneeIsLowerBound, stopReason: cancelled ? 'cancelled' : 'failed', prepared, error: cancelled ? null : describeFailure(err) }),
    );
    throw err;
  }
  const forRate = scenario.scaling?.forRate ?? 10 * Math.max(0, ...samples.map((s) => s.knee ?? 0));
  const scaling = await control.capacityFinish({
    runId,
    status: 'finished',
    knee: last.knee,
    kneeIsLowerBound: last.kneeIsLowerBound,
    stopReason: last.stopReason,
    prepared,
    scaling: scenario.scaling ? { samples, forRate } : null,
  });
  return { runId, knee: last.knee, kneeIsLowerBound: last.kneeIsLowerBound, stopReason: last.stopReason, steps: stepIndex, scaling };
}
