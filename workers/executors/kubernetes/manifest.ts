/**
 * The objects of one trial attempt, as plain data (no API calls): the `batch/v1` Job and its one
 * Secret. Why the Job looks the way it does (backoffLimit 0, the podFailurePolicy, the token in a
 * Secret) is explained at the top of `../kubernetes.ts`.
 */
import type * as k8s from '@kubernetes/client-node';
import { InvocationError, jobInvocation } from '../command';
import { EXIT_BAD_CONFIG, type JobLaunch } from '../types';
import {
  DIGEST_PINNED,
  EXECUTION_ID_ANNOTATION,
  JOB_CONTAINER,
  KUEUE_QUEUE_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SECRET_CONFIG_KEY,
  SECRET_TOKEN_KEY,
  jobNameFor,
  labelKey,
  labelValue,
} from './names';

export type CheckpointVolume =
  | { type: 'pvc'; claimName: string }
  | { type: 'hostPath'; path: string }
  | { type: 'emptyDir' };

/** The executor options that shape the manifest. */
export interface ManifestOptions {
  /** Job image; must be digest-pinned (`repo@sha256:…`) unless `allowUnpinnedImage`. */
  image: string;
  allowUnpinnedImage?: boolean;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Extended resource name of a GPU. Default `nvidia.com/gpu`. */
  gpuResourceName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: k8s.V1Toleration[];
  /** Kueue LocalQueue: sets the `kueue.x-k8s.io/queue-name` label on the Job. */
  queueName?: string;
  priorityClassName?: string;
  serviceAccountName?: string;
  /** Used when the launch carries no `timeoutSeconds`. Default 86400. */
  activeDeadlineSeconds?: number;
  /** Default 3600. */
  ttlSecondsAfterFinished?: number;
  /** Where checkpoints live (mounted at `/checkpoints`, dir per trial). Default emptyDir. */
  checkpoint?: CheckpointVolume;
  /** podFailurePolicy action for DisruptionTarget. FailJob (default): the attempt ends 'preempted' and Temporal retries; Ignore: the Job controller recreates the pod. */
  disruptionAction?: 'FailJob' | 'Ignore';
  /** Extra pod annotations per launch (tests use this to drive KWOK stages). */
  podAnnotations?: (launch: JobLaunch) => Record<string, string>;
  /** Python module run in the image. Default `ladder_jobs`. */
  jobModule?: string;
}

export function labelsFor(launch: JobLaunch): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(launch.labels)) labels[labelKey(k)] = labelValue(v);
  labels['ladder.dev/trial'] = labelValue(launch.trialId);
  labels['ladder.dev/attempt'] = String(launch.attempt);
  labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE;
  return labels;
}

/** The Job for one attempt. */
export function jobManifest(
  o: ManifestOptions,
  namespace: string,
  launch: JobLaunch,
  jobName = jobNameFor(launch.executionId),
): k8s.V1Job {
  const labels = labelsFor(launch);
  const jobLabels = { ...labels };
  if (o.queueName) jobLabels[KUEUE_QUEUE_LABEL] = labelValue(o.queueName);
  const gpu = o.gpuResourceName ?? 'nvidia.com/gpu';
  const limits: Record<string, string> = { memory: launch.resources.memory };
  if (launch.resources.gpus > 0) limits[gpu] = String(launch.resources.gpus);
  const timeoutSeconds = launch.timeoutSeconds;
  // A built-in kind runs the job module; a `command` sweep runs the user's program in its image.
  const invocation = jobInvocation(launch, { target: 'kubernetes', configPath: '/config/config.json', python: 'python', module: o.jobModule });
  const image = invocation.image ?? o.image;
  if (invocation.image && !o.allowUnpinnedImage && !DIGEST_PINNED.test(invocation.image)) {
    throw new InvocationError('image', `must be digest-pinned (repo@sha256:<64 hex>) so every attempt runs the same code, got '${invocation.image}'`);
  }
  // The spec's own variables first, so the protocol's below always win.
  const env: k8s.V1EnvVar[] = Object.entries(invocation.env).map(([name, value]) => ({ name, value }));
  for (const [k, v] of Object.entries(launch.env)) {
    if (k === 'LADDER_INGEST_TOKEN') continue;
    env.push({ name: k, value: v });
  }
  env.push({ name: 'LADDER_INGEST_TOKEN', valueFrom: { secretKeyRef: { name: jobName, key: SECRET_TOKEN_KEY } } });
  env.push({ name: 'LADDER_CHECKPOINT_DIR', value: `/checkpoints/${labelValue(launch.trialId)}` });
  env.push({ name: 'LADDER_OUTPUT_DIR', value: '/output' });
  const cp = o.checkpoint ?? { type: 'emptyDir' };
  const checkpointVolume: k8s.V1Volume =
    cp.type === 'pvc'
      ? { name: 'checkpoints', persistentVolumeClaim: { claimName: cp.claimName } }
      : cp.type === 'hostPath'
        ? { name: 'checkpoints', hostPath: { path: cp.path, type: 'DirectoryOrCreate' } }
        : { name: 'checkpoints', emptyDir: {} };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobName,
      namespace,
      labels: jobLabels,
      annotations: { [EXECUTION_ID_ANNOTATION]: launch.executionId },
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: timeoutSeconds ?? o.activeDeadlineSeconds ?? 86_400,
      ttlSecondsAfterFinished: o.ttlSecondsAfterFinished ?? 3600,
      podFailurePolicy: {
        rules: [
          { action: o.disruptionAction ?? 'FailJob', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
          { action: 'FailJob', onExitCodes: { containerName: JOB_CONTAINER, operator: 'In', values: [EXIT_BAD_CONFIG] } },
        ],
      },
      template: {
        metadata: {
          labels,
          annotations: { [EXECUTION_ID_ANNOTATION]: launch.executionId, ...(o.podAnnotations?.(launch) ?? {}) },
        },
        spec: {
          restartPolicy: 'Never',
          ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
          automountServiceAccountToken: false,
          ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
          ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
          ...(o.tolerations ? { tolerations: o.tolerations } : {}),
          containers: [
            {
              name: JOB_CONTAINER,
              image,
              imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
              command: invocation.argv,
              env,
              resources: {
                requests: { cpu: String(launch.resources.cpu), memory: launch.resources.memory },
                limits,
              },
              volumeMounts: [
                { name: 'config', mountPath: '/config', readOnly: true },
                { name: 'checkpoints', mountPath: '/checkpoints' },
                { name: 'output', mountPath: '/output' },
                { name: 'dshm', mountPath: '/dev/shm' },
              ],
              securityContext: { allowPrivilegeEscalation: false },
            },
          ],
          volumes: [
            // Only the config is a file; the token stays out of the filesystem.
            { name: 'config', secret: { secretName: jobName, items: [{ key: SECRET_CONFIG_KEY, path: 'config.json' }] } },
            checkpointVolume,
            { name: 'output', emptyDir: {} },
            { name: 'dshm', emptyDir: { medium: 'Memory' } },
          ],
        },
      },
    },
  };
}

/** The owner reference that lets the garbage collector delete the Secret with its Job. */
export function ownerRef(job: k8s.V1Job): k8s.V1OwnerReference {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    name: job.metadata!.name!,
    uid: job.metadata!.uid!,
    controller: true,
    blockOwnerDeletion: false,
  };
}

/** The attempt's one Secret: the config (mounted as a file) and the ingest token (env only). */
export function secretManifest(namespace: string, launch: JobLaunch, job: k8s.V1Job): k8s.V1Secret {
  return {
    metadata: {
      name: job.metadata!.name!,
      namespace,
      labels: labelsFor(launch),
      ownerReferences: [ownerRef(job)],
    },
    type: 'Opaque',
    stringData: {
      [SECRET_CONFIG_KEY]: JSON.stringify(launch.config),
      [SECRET_TOKEN_KEY]: launch.env.LADDER_INGEST_TOKEN ?? '',
    },
  };
}
