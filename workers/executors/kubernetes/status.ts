/**
 * Status mapping: a Job and the pods seen of it → an ExecutionStatus. Pure (no API calls, no
 * clock of its own), so every row below has a unit test in `status.test.ts` without a cluster.
 *
 * | #  | Job / pods                                                             | → status                                  |
 * |----|------------------------------------------------------------------------|-------------------------------------------|
 * | 1  | Job condition Complete                                                 | succeeded (exit 0)                        |
 * | 2  | Failed/FailureTarget, reason DeadlineExceeded                          | failed 'deadline-exceeded', retryable     |
 * | 3  | Failed, a pod with condition DisruptionTarget                          | preempted, retryable                      |
 * | 4  | Failed, the condition's message names DisruptionTarget                 | preempted, retryable                      |
 * | 5  | Failed, a pod with reason Evicted                                      | preempted, retryable                      |
 * | 6  | Failed, the job container OOMKilled                                    | failed 'oom', retryable                   |
 * | 7  | Failed, the job container exited 2                                     | failed 'bad-config', not retryable        |
 * | 8  | Failed, the job container exited N ≠ 0                                 | statusFromExitCode(N) ('exit N', retryable)|
 * | 9  | Failed, no terminated container, the message says "exit code N"        | statusFromExitCode(N)                     |
 * | 10 | Failed, nothing else known                                             | failed 'job-<reason>', retryable          |
 * | 11 | not finished, Job has a deletionTimestamp (deleted by someone else)    | failed 'job-deleted', retryable           |
 * | 12 | a live pod waiting on InvalidImageName/ErrImageNeverPull               | failed 'image-pull', retryable (at once)  |
 * | 13 | a live pod waiting on ErrImagePull/ImagePullBackOff past the grace     | failed 'image-pull', retryable            |
 * | 14 | the same, within the grace                                             | pending                                   |
 * | 15 | a ready, running pod that is not being deleted                         | running                                   |
 * | 16 | Job `status.ready` > 0                                                 | running                                   |
 * | 17 | otherwise (unscheduled, suspended by Kueue, pulling the image…)        | pending                                   |
 *
 * First match wins. Rows that need the executor's memory rather than the Job (cancelled by this
 * executor, a Job gone while watched, a Job never seen) are in `../kubernetes.ts`.
 */
import type * as k8s from '@kubernetes/client-node';
import { type ExecutionStatus, statusFromExitCode } from '../types';
import { JOB_CONTAINER } from './names';

const IMAGE_PULL_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff']);
const IMAGE_INVALID = new Set(['InvalidImageName', 'ErrImageNeverPull']);
export const DEFAULT_IMAGE_PULL_GRACE_MS = 120_000;

/** The time-based input of rows 13 and 14: the caller remembers when the pull began failing. */
export interface PullClock {
  now: number;
  /** When a pod of this Job was first seen waiting on a failing pull (see `imagePullFailing`). */
  imagePullSince?: number;
  imagePullGraceMs?: number;
}

function trueCondition(job: k8s.V1Job, type: string): k8s.V1JobCondition | undefined {
  return (job.status?.conditions ?? []).find((c) => c.type === type && c.status === 'True');
}

export function jobFinished(job: k8s.V1Job): boolean {
  return trueCondition(job, 'Complete') !== undefined || jobFailed(job);
}

export function jobFailed(job: k8s.V1Job): boolean {
  return trueCondition(job, 'Failed') !== undefined || trueCondition(job, 'FailureTarget') !== undefined;
}

function finishedAt(job: k8s.V1Job, cond: k8s.V1JobCondition): Date | undefined {
  const t = job.status?.completionTime ?? cond.lastTransitionTime;
  return t ? new Date(t) : undefined;
}

/** A pod being deleted that no longer runs tells nothing about the attempt's future. */
function live(p: k8s.V1Pod): boolean {
  return !(p.metadata?.deletionTimestamp && p.status?.phase !== 'Running');
}

function waitingReason(p: k8s.V1Pod): string | undefined {
  return p.status?.containerStatuses?.find((c) => c.name === JOB_CONTAINER)?.state?.waiting?.reason;
}

/** Whether a live pod is retrying a failing image pull (the caller starts the grace clock). */
export function imagePullFailing(pods: readonly k8s.V1Pod[]): boolean {
  return pods.some((p) => live(p) && IMAGE_PULL_WAITING.has(waitingReason(p) ?? ''));
}

/** Whether a pod's end has been seen (its container terminated, or it was disrupted). */
export function sawTermination(pods: Iterable<k8s.V1Pod>): boolean {
  for (const p of pods) {
    if (p.status?.containerStatuses?.some((c) => c.state?.terminated)) return true;
    if (p.status?.conditions?.some((c) => c.type === 'DisruptionTarget')) return true;
  }
  return false;
}

/** Maps a Job and the pods seen of it to an ExecutionStatus (the table above). */
export function jobStatus(job: k8s.V1Job, pods: readonly k8s.V1Pod[], clock: PullClock): ExecutionStatus {
  const startedAt = job.status?.startTime ? new Date(job.status.startTime) : undefined;
  const complete = trueCondition(job, 'Complete');
  if (complete) {
    return { state: 'succeeded', exitCode: 0, startedAt, finishedAt: finishedAt(job, complete) };
  }
  const failed = trueCondition(job, 'Failed') ?? trueCondition(job, 'FailureTarget');
  if (failed) {
    const base = { startedAt, finishedAt: finishedAt(job, failed) };
    if (failed.reason === 'DeadlineExceeded') {
      return { state: 'failed', reason: 'deadline-exceeded', retryable: true, ...base };
    }
    const disrupted = pods.some((p) => p.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True'));
    if (disrupted || /DisruptionTarget/.test(failed.message ?? '') || pods.some((p) => p.status?.reason === 'Evicted')) {
      return { state: 'preempted', reason: 'preempted', retryable: true, ...base };
    }
    const term = pods
      .map((p) => p.status?.containerStatuses?.find((c) => c.name === JOB_CONTAINER)?.state?.terminated)
      .find((t) => t !== undefined);
    if (term?.reason === 'OOMKilled') return { state: 'failed', reason: 'oom', retryable: true, exitCode: term.exitCode, ...base };
    const fromMessage = /exit code (\d+)/.exec(failed.message ?? '');
    const code = term?.exitCode ?? (fromMessage ? Number(fromMessage[1]) : undefined);
    if (code !== undefined && code !== 0) return { ...statusFromExitCode(code), ...base };
    return { state: 'failed', reason: failed.reason ? `job-${failed.reason}` : 'failed', retryable: true, ...base };
  }
  if (job.metadata?.deletionTimestamp) {
    return { state: 'failed', reason: 'job-deleted', retryable: true, startedAt };
  }
  for (const p of pods) {
    if (!live(p)) continue;
    const waiting = waitingReason(p);
    if (waiting && IMAGE_INVALID.has(waiting)) return { state: 'failed', reason: 'image-pull', retryable: true, startedAt };
    if (waiting && IMAGE_PULL_WAITING.has(waiting)) {
      const since = clock.imagePullSince ?? clock.now;
      if (clock.now - since > (clock.imagePullGraceMs ?? DEFAULT_IMAGE_PULL_GRACE_MS)) {
        return { state: 'failed', reason: 'image-pull', retryable: true, startedAt };
      }
    }
  }
  const ready = pods.some(
    (p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  if (ready || (job.status?.ready ?? 0) > 0) return { state: 'running', startedAt };
  return { state: 'pending', startedAt };
}
