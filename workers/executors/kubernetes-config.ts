/**
 * KubernetesExecutor options from the environment (what the Helm chart sets on the worker):
 *
 * | variable                        | option                         | default          |
 * | ------------------------------- | ------------------------------ | ---------------- |
 * | LADDER_K8S_NAMESPACE            | namespace                      | the pod's own namespace (service account file), else `default` |
 * | LADDER_JOB_IMAGE                | image (repo@sha256:…)          | required         |
 * | LADDER_GPU_RESOURCE             | gpuResourceName                | nvidia.com/gpu   |
 * | LADDER_K8S_NODE_SELECTOR        | nodeSelector (JSON object)     | none             |
 * | LADDER_K8S_TOLERATIONS          | tolerations (JSON array)       | none             |
 * | LADDER_KUEUE_QUEUE              | queueName                      | none             |
 * | LADDER_PRIORITY_CLASS           | priorityClassName              | none             |
 * | LADDER_JOB_SERVICE_ACCOUNT      | serviceAccountName (of jobs)   | none             |
 * | LADDER_CHECKPOINT_PVC           | checkpoint: { type: 'pvc' }    | emptyDir         |
 * | LADDER_JOB_TTL_SECONDS          | ttlSecondsAfterFinished        | 3600             |
 * | LADDER_JOB_DELETE_PROPAGATION   | deletePropagation              | Background       |
 *
 * The kube config is `loadFromDefault()`: in a pod, its service account.
 */
import * as fs from 'node:fs';
import { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function json<T>(env: NodeJS.ProcessEnv, name: string): T | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch (e) {
    throw new Error(`environment variable ${name}: not JSON (${(e as Error).message})`);
  }
}

export function kubernetesOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): KubernetesExecutorOptions {
  const image = env.LADDER_JOB_IMAGE;
  if (!image) throw new Error('environment variable LADDER_JOB_IMAGE is required for the kubernetes executor');
  const namespace =
    env.LADDER_K8S_NAMESPACE ||
    (fs.existsSync(SA_NAMESPACE_FILE) ? fs.readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() : 'default');
  const propagation = env.LADDER_JOB_DELETE_PROPAGATION;
  if (propagation && propagation !== 'Background' && propagation !== 'Foreground') {
    throw new Error('environment variable LADDER_JOB_DELETE_PROPAGATION: Background or Foreground');
  }
  return {
    namespace,
    image,
    gpuResourceName: env.LADDER_GPU_RESOURCE || undefined,
    nodeSelector: json(env, 'LADDER_K8S_NODE_SELECTOR'),
    tolerations: json(env, 'LADDER_K8S_TOLERATIONS'),
    queueName: env.LADDER_KUEUE_QUEUE || undefined,
    priorityClassName: env.LADDER_PRIORITY_CLASS || undefined,
    serviceAccountName: env.LADDER_JOB_SERVICE_ACCOUNT || undefined,
    checkpoint: env.LADDER_CHECKPOINT_PVC ? { type: 'pvc', claimName: env.LADDER_CHECKPOINT_PVC } : undefined,
    ttlSecondsAfterFinished: env.LADDER_JOB_TTL_SECONDS ? Number(env.LADDER_JOB_TTL_SECONDS) : undefined,
    deletePropagation: propagation as KubernetesExecutorOptions['deletePropagation'],
  };
}

export function kubernetesExecutorFromEnv(env: NodeJS.ProcessEnv = process.env): KubernetesExecutor {
  return new KubernetesExecutor(kubernetesOptionsFromEnv(env));
}
