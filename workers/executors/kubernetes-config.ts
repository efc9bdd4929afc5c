/**
 * KubernetesExecutor options from the environment (what the Helm chart sets on the worker). The
 * variables, their types and defaults are declared in core/settings.ts (KUBERNETES_SETTINGS) and
 * listed in README's settings table; this maps them onto the executor's options.
 *
 * The kube config is `loadFromDefault()`: in a pod, its service account.
 */
import * as fs from 'node:fs';
import type { V1Toleration } from '@kubernetes/client-node';
import { readKubernetesSettings } from '../../core/settings';
import { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export function kubernetesOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): KubernetesExecutorOptions {
  const s = readKubernetesSettings(env);
  if (!s.LADDER_JOB_IMAGE) throw new Error('environment variable LADDER_JOB_IMAGE is required for the kubernetes executor');
  const namespace = s.LADDER_K8S_NAMESPACE ?? (fs.existsSync(SA_NAMESPACE_FILE) ? fs.readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() : 'default');
  return {
    namespace,
    image: s.LADDER_JOB_IMAGE,
    gpuResourceName: s.LADDER_GPU_RESOURCE,
    nodeSelector: s.LADDER_K8S_NODE_SELECTOR,
    tolerations: s.LADDER_K8S_TOLERATIONS as V1Toleration[] | undefined,
    queueName: s.LADDER_KUEUE_QUEUE,
    priorityClassName: s.LADDER_PRIORITY_CLASS,
    serviceAccountName: s.LADDER_JOB_SERVICE_ACCOUNT,
    checkpoint: s.LADDER_CHECKPOINT_PVC ? { type: 'pvc', claimName: s.LADDER_CHECKPOINT_PVC } : undefined,
    ttlSecondsAfterFinished: s.LADDER_JOB_TTL_SECONDS,
    deletePropagation: s.LADDER_JOB_DELETE_PROPAGATION,
  };
}

export function kubernetesExecutorFromEnv(env: NodeJS.ProcessEnv = process.env): KubernetesExecutor {
  return new KubernetesExecutor(kubernetesOptionsFromEnv(env));
}
