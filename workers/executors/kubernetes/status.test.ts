/** One case per row of the mapping table in `status.ts` (no cluster). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import type { ExecutionStatus } from '../types';
import { imagePullFailing, jobStatus, type PullClock } from './status';

const START = '2026-01-01T00:00:00Z';
const END = '2026-01-01T00:10:00Z';
const NOW = Date.parse('2026-01-01T01:00:00Z');

function job(extra: { conditions?: k8s.V1JobCondition[]; ready?: number; deleting?: boolean } = {}): k8s.V1Job {
  return {
    metadata: { name: 'ladder-t-1', ...(extra.deleting ? { deletionTimestamp: new Date(END) } : {}) },
    status: { startTime: new Date(START), conditions: extra.conditions, ready: extra.ready },
  };
}
const failed = (reason?: string, message?: string): k8s.V1JobCondition => ({
  type: 'Failed',
  status: 'True',
  reason,
  message,
  lastTransitionTime: new Date(END),
});
const complete: k8s.V1JobCondition = { type: 'Complete', status: 'True', lastTransitionTime: new Date(END) };

function pod(status: k8s.V1PodStatus, deleting = false, container = 'job'): k8s.V1Pod {
  const s = { ...status };
  if (s.containerStatuses) s.containerStatuses = s.containerStatuses.map((c) => ({ ...c, name: container }));
  return { metadata: { name: 'p', ...(deleting ? { deletionTimestamp: new Date(END) } : {}) }, status: s };
}
const terminated = (exitCode: number, reason?: string) =>
  pod({ phase: 'Failed', containerStatuses: [{ name: 'job', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason } } }] });
const waiting = (reason: string, deleting = false) =>
  pod({ phase: 'Pending', containerStatuses: [{ name: 'job', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason } } }] }, deleting);
const readyPod = (deleting = false) => pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }, deleting);

const clock: PullClock = { now: NOW };
const started = new Date(START);
const ended = new Date(END);

interface Row {
  row: number;
  name: string;
  job: k8s.V1Job;
  pods?: k8s.V1Pod[];
  clock?: PullClock;
  want: ExecutionStatus;
}

const rows: Row[] = [
  { row: 1, name: 'Complete', job: job({ conditions: [complete] }), want: { state: 'succeeded', exitCode: 0, startedAt: started, finishedAt: ended } },
  {
    row: 2,
    name: 'deadline exceeded',
    // A terminated container must not hide the deadline: the deadline killed it.
    job: job({ conditions: [failed('DeadlineExceeded')] }),
    pods: [terminated(143)],
    want: { state: 'failed', reason: 'deadline-exceeded', retryable: true, startedAt: started, finishedAt: ended },
  },
  {
    row: 3,
    name: 'pod with DisruptionTarget',
    job: job({ conditions: [failed('PodFailurePolicy')] }),
    pods: [{ ...terminated(137), status: { ...terminated(137).status, conditions: [{ type: 'DisruptionTarget', status: 'True' }] } }],
    want: { state: 'preempted', reason: 'preempted', retryable: true, startedAt: started, finishedAt: ended },
  },
  {
    row: 4,
    name: 'message names DisruptionTarget',
    job: job({ conditions: [failed('PodFailurePolicy', 'Pod default/p has condition DisruptionTarget matching FailJob rule at index 0')] }),
    want: { state: 'preempted', reason: 'preempted', retryable: true, startedAt: started, finishedAt: ended },
  },
  {
    row: 5,
    name: 'evicted pod',
    job: job({ conditions: [failed('BackoffLimitExceeded')] }),
    pods: [pod({ phase: 'Failed', reason: 'Evicted' })],
    want: { state: 'preempted', reason: 'preempted', retryable: true, startedAt: started, finishedAt: ended },
  },
  {
    row: 6,
    name: 'OOMKilled',
    job: job({ conditions: [failed('BackoffLimitExceeded')] }),
    pods: [terminated(137, 'OOMKilled')],
    want: { state: 'failed', reason: 'oom', retryable: true, exitCode: 137, startedAt: started, finishedAt: ended },
  },
  {
    row: 7,
    name: 'exit 2 is a bad config',
    job: job({ conditions: [failed('PodFailurePolicy')] }),
    pods: [terminated(2, 'Error')],
    want: { state: 'failed', reason: 'bad-config', retryable: false, exitCode: 2, startedAt: started, finishedAt: ended },
  },
  {
    row: 8,
    name: 'another exit code',
    job: job({ conditions: [failed('BackoffLimitExceeded')] }),
    pods: [terminated(3, 'Error')],
    want: { state: 'failed', reason: 'exit 3', retryable: true, exitCode: 3, startedAt: started, finishedAt: ended },
  },
  {
    row: 9,
    name: 'exit code from the message only',
    job: job({ conditions: [failed('PodFailurePolicy', 'Container job for pod default/p failed with exit code 5 matching FailJob rule at index 1')] }),
    want: { state: 'failed', reason: 'exit 5', retryable: true, exitCode: 5, startedAt: started, finishedAt: ended },
  },
  {
    row: 10,
    name: 'failed, nothing else known',
    job: job({ conditions: [failed('BackoffLimitExceeded')] }),
    want: { state: 'failed', reason: 'job-BackoffLimitExceeded', retryable: true, startedAt: started, finishedAt: ended },
  },
  {
    row: 11,
    name: 'Job being deleted by someone else',
    job: job({ deleting: true }),
    pods: [readyPod()],
    want: { state: 'failed', reason: 'job-deleted', retryable: true, startedAt: started },
  },
  {
    row: 12,
    name: 'invalid image name fails at once',
    job: job(),
    pods: [waiting('InvalidImageName')],
    clock: { now: NOW, imagePullSince: NOW },
    want: { state: 'failed', reason: 'image-pull', retryable: true, startedAt: started },
  },
  {
    row: 13,
    name: 'failing pull past the grace',
    job: job(),
    pods: [waiting('ImagePullBackOff')],
    clock: { now: NOW, imagePullSince: NOW - 60_001, imagePullGraceMs: 60_000 },
    want: { state: 'failed', reason: 'image-pull', retryable: true, startedAt: started },
  },
  {
    row: 14,
    name: 'failing pull within the grace',
    job: job(),
    pods: [waiting('ErrImagePull')],
    clock: { now: NOW, imagePullSince: NOW - 60_000, imagePullGraceMs: 60_000 },
    want: { state: 'pending', startedAt: started },
  },
  { row: 15, name: 'a ready running pod', job: job(), pods: [readyPod()], want: { state: 'running', startedAt: started } },
  { row: 16, name: 'Job status.ready', job: job({ ready: 1 }), want: { state: 'running', startedAt: started } },
  { row: 17, name: 'nothing yet', job: job(), pods: [pod({ phase: 'Pending' })], want: { state: 'pending', startedAt: started } },
];

describe('kubernetes status mapping (table in status.ts)', () => {
  it('has one case per table row', () => {
    assert.deepEqual(rows.map((r) => r.row), Array.from({ length: 17 }, (_, i) => i + 1));
  });

  for (const r of rows) {
    it(`row ${r.row}: ${r.name}`, () => {
      assert.deepEqual(jobStatus(r.job, r.pods ?? [], r.clock ?? clock), r.want);
    });
  }

  it('a pod being deleted that no longer runs counts for nothing (rows 12, 15)', () => {
    assert.deepEqual(jobStatus(job(), [waiting('InvalidImageName', true)], clock), { state: 'pending', startedAt: started });
    assert.deepEqual(jobStatus(job(), [readyPod(true)], clock), { state: 'pending', startedAt: started });
    assert.equal(imagePullFailing([waiting('ImagePullBackOff', true)]), false);
    assert.equal(imagePullFailing([waiting('ImagePullBackOff')]), true);
  });

  it('only the job container is read', () => {
    const sidecar = { ...terminated(2, 'Error') };
    sidecar.status = { ...sidecar.status, containerStatuses: sidecar.status!.containerStatuses!.map((c) => ({ ...c, name: 'sidecar' })) };
    assert.equal(jobStatus(job({ conditions: [failed('BackoffLimitExceeded')] }), [sidecar], clock).reason, 'job-BackoffLimitExceeded');
  });
});
