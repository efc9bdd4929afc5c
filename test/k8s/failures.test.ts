/**
 * Failure reasons of the Kubernetes executor beyond the contract: OOMKilled, deadline exceeded
 * (activeDeadlineSeconds from the launch's timeout), image pull errors (after the grace; an invalid
 * name at once), kubelet eviction, a Job deleted by someone else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { aLaunch, waitForStatus, waitForTerminal } from '../executor-contract';
import { KubernetesExecutor, jobNameFor, type KubernetesExecutorOptions } from '../../workers/executors/kubernetes';
import type { JobLaunch } from '../../workers/executors/types';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster, type TestCluster } from './cluster';
import { kwokAnnotations } from './kwok-sim';

const NS = 'failures';
const sim = kwokAnnotations();

describe('kubernetes executor failure reasons', { concurrency: false }, () => {
  let cluster: TestCluster;
  let executor: KubernetesExecutor;
  let core: k8s.CoreV1Api;

  const executorOptions = (): KubernetesExecutorOptions => ({
    kubeConfig: cluster.kubeConfig(),
    namespace: NS,
    image: 'registry.invalid/ladder/jobs@sha256:' + '5'.repeat(64),
    nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
    tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
    imagePullGraceMs: 500,
    podAnnotations: (l: JobLaunch) =>
      l.labels.oom ? { 'ladder.test/exit-code': '137', 'ladder.test/reason': 'OOMKilled', 'ladder.test/duration': '300ms' } : sim(l),
  });

  before(async () => {
    cluster = await startCluster({ nodes: 1, gpusPerNode: 8 });
    await cluster.createNamespace(NS);
    core = cluster.kubeConfig().makeApiClient(k8s.CoreV1Api);
    executor = new KubernetesExecutor(executorOptions());
  });
  after(async () => {
    await executor?.close();
    await cluster?.stop();
  });

  it('OOMKilled → failed, oom, retryable', { timeout: 60_000 }, async () => {
    const ref = await executor.submit(aLaunch().withLabels({ oom: 'yes' }).build());
    const s = await waitForTerminal(executor, ref);
    assert.deepEqual([s.state, s.reason, s.retryable], ['failed', 'oom', true], JSON.stringify(s));
  });

  it('activeDeadlineSeconds from the launch timeout → failed, deadline-exceeded, retryable', { timeout: 60_000 }, async () => {
    const launch = { ...aLaunch().withConfig({ steps: 10_000, step_sleep: 0.2 }).build(), timeoutSeconds: 2 };
    const ref = await executor.submit(launch);
    const s = await waitForTerminal(executor, ref, 45_000);
    assert.deepEqual([s.state, s.reason, s.retryable], ['failed', 'deadline-exceeded', true], JSON.stringify(s));
  });

  it('an image that cannot be pulled → failed, image-pull, retryable; the Job is deleted', { timeout: 60_000 }, async () => {
    const launch = aLaunch().withConfig({ steps: 10_000, step_sleep: 0.2 }).build();
    const ref = await executor.submit(launch);
    await waitForStatus(executor, ref, (s) => s.state === 'running', 30_000);
    const jobName = jobNameFor(launch.executionId);
    const pod = (await core.listNamespacedPod({ namespace: NS, labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items[0]!;
    // What the kubelet reports when the pull fails (KWOK pulls nothing).
    await core.patchNamespacedPodStatus(
      {
        name: pod.metadata!.name!,
        namespace: NS,
        body: {
          status: {
            phase: 'Pending',
            containerStatuses: [
              { name: 'job', image: pod.spec!.containers[0]!.image!, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } },
            ],
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    ).catch(async () => {
      // Running → Pending is refused by some versions: report the waiting state while Running.
      await core.patchNamespacedPodStatus(
        {
          name: pod.metadata!.name!,
          namespace: NS,
          body: {
            status: {
              containerStatuses: [
                { name: 'job', image: pod.spec!.containers[0]!.image!, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } },
              ],
            },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      );
    });
    const s = await waitForTerminal(executor, ref, 20_000);
    assert.deepEqual([s.state, s.reason, s.retryable], ['failed', 'image-pull', true], JSON.stringify(s));
    const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
    const gone = async () => {
      try {
        const j = await batch.readNamespacedJob({ name: jobName, namespace: NS });
        return !!j.metadata?.deletionTimestamp;
      } catch {
        return true;
      }
    };
    const until = Date.now() + 20_000;
    while (!(await gone())) {
      assert.ok(Date.now() < until, 'the Job of a failed pull is deleted');
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  /** Pod status as the kubelet would write it (KWOK writes only what its stages say). */
  const patchPodStatus = (name: string, status: k8s.V1PodStatus) =>
    core.patchNamespacedPodStatus(
      { name, namespace: NS, body: { status } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
  const runningPodOf = async (ex: KubernetesExecutor, launch: JobLaunch) => {
    const ref = await ex.submit(launch);
    await waitForStatus(ex, ref, (s) => s.state === 'running', 30_000);
    const jobName = jobNameFor(launch.executionId);
    const pod = (await core.listNamespacedPod({ namespace: NS, labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items[0]!;
    return { ref, jobName, pod };
  };

  it('a pod evicted by the kubelet (phase Failed, reason Evicted, no DisruptionTarget) → preempted, retryable', { timeout: 60_000 }, async () => {
    const { ref, pod } = await runningPodOf(executor, aLaunch().withConfig({ steps: 10_000, step_sleep: 0.2 }).build());
    const now = new Date();
    // Node-pressure eviction as older kubelets report it: the pod is left Failed/Evicted and
    // its container killed (137), which must not read as the job's own crash.
    await patchPodStatus(pod.metadata!.name!, {
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory.',
      containerStatuses: [
        { name: 'job', image: pod.spec!.containers[0]!.image!, imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'Error', startedAt: now, finishedAt: now } } },
      ],
    });
    const s = await waitForTerminal(executor, ref, 30_000);
    assert.deepEqual([s.state, s.reason, s.retryable], ['preempted', 'preempted', true], JSON.stringify(s));
  });

  it('InvalidImageName fails the attempt at once, without waiting out the pull grace; the Job is deleted', { timeout: 60_000 }, async () => {
    // A grace far longer than the test: only the immediate path can end this attempt in time.
    const patient = new KubernetesExecutor({ ...executorOptions(), imagePullGraceMs: 3_600_000 });
    try {
      const { ref, jobName, pod } = await runningPodOf(patient, aLaunch().withConfig({ steps: 10_000, step_sleep: 0.2 }).build());
      const image = pod.spec!.containers[0]!.image!;
      await patchPodStatus(pod.metadata!.name!, {
        containerStatuses: [{ name: 'job', image, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'InvalidImageName', message: `couldn't parse image name "${image}"` } } }],
      });
      const s = await waitForTerminal(patient, ref, 20_000);
      assert.deepEqual([s.state, s.reason, s.retryable], ['failed', 'image-pull', true], JSON.stringify(s));
      const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
      const until = Date.now() + 20_000;
      for (;;) {
        const gone = await batch.readNamespacedJob({ name: jobName, namespace: NS }).then((j) => !!j.metadata?.deletionTimestamp, () => true);
        if (gone) break;
        assert.ok(Date.now() < until, 'the Job of an unpullable image is deleted');
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await patient.close();
    }
  });

  it('a Job deleted by someone else → failed, job-deleted, retryable', { timeout: 60_000 }, async () => {
    const launch = aLaunch().withConfig({ steps: 10_000, step_sleep: 0.2 }).build();
    const ref = await executor.submit(launch);
    await waitForStatus(executor, ref, (s) => s.state === 'running', 30_000);
    const batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
    await batch.deleteNamespacedJob({ name: jobNameFor(launch.executionId), namespace: NS, propagationPolicy: 'Background' });
    const s = await waitForTerminal(executor, ref, 20_000);
    assert.deepEqual([s.state, s.reason, s.retryable], ['failed', 'job-deleted', true], JSON.stringify(s));
  });
});
