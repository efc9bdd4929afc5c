/**
 * The executor's two informers: ONE on Jobs and ONE on Pods per executor (list + watch with
 * resourceVersion resume, relist on 410 Gone), filtered by `managed-by=ladder`. What the events
 * mean for an attempt is the executor's business; this unit only makes the watches and keeps
 * them alive.
 */
import * as k8s from '@kubernetes/client-node';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './names';

export type CachedInformer<T extends k8s.KubernetesObject> = k8s.Informer<T> & k8s.ObjectCache<T>;

export interface InformerHandlers {
  onJob(job: k8s.V1Job): void;
  onJobDeleted(job: k8s.V1Job): void;
  onPod(pod: k8s.V1Pod): void;
  onPodDeleted(pod: k8s.V1Pod): void;
}

export interface Informers {
  jobs: CachedInformer<k8s.V1Job>;
  pods: CachedInformer<k8s.V1Pod>;
  /** Resolves when both have listed. */
  started: Promise<void>;
}

/**
 * Makes and starts both informers. `stopped()` says when the executor is closing: a broken
 * watch (API server restart, network) is restarted after a pause unless it is.
 */
export function startInformers(
  kc: k8s.KubeConfig,
  batch: k8s.BatchV1Api,
  core: k8s.CoreV1Api,
  namespace: string,
  handlers: InformerHandlers,
  stopped: () => boolean,
  restartDelayMs = 1000,
): Informers {
  const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
  const jobs = k8s.makeInformer<k8s.V1Job>(
    kc,
    `/apis/batch/v1/namespaces/${namespace}/jobs`,
    () => batch.listNamespacedJob({ namespace, labelSelector: selector }),
    selector,
  );
  const pods = k8s.makeInformer<k8s.V1Pod>(
    kc,
    `/api/v1/namespaces/${namespace}/pods`,
    () => core.listNamespacedPod({ namespace, labelSelector: selector }),
    selector,
  );
  jobs.on('add', handlers.onJob);
  jobs.on('update', handlers.onJob);
  jobs.on('delete', handlers.onJobDeleted);
  pods.on('add', handlers.onPod);
  pods.on('update', handlers.onPod);
  pods.on('delete', handlers.onPodDeleted);
  for (const inf of [jobs, pods] as const) {
    inf.on('error', () => {
      // The ListWatch resumes from its resourceVersion, or relists when that is too old (410).
      if (stopped()) return;
      setTimeout(() => {
        if (!stopped()) inf.start().catch(() => {});
      }, restartDelayMs).unref();
    });
  }
  return { jobs, pods, started: Promise.all([jobs.start(), pods.start()]).then(() => undefined) };
}
