/**
 * Names, labels and annotations of the objects the Kubernetes executor creates. Kept apart from
 * the manifest so that tools reading a cluster (benches, tests, `kubectl` selectors in docs) can
 * find Ladder's objects without pulling in the executor.
 */
import { createHash } from 'node:crypto';

/** A digest-pinned image reference: every attempt of a trial runs the same bytes. */
export const DIGEST_PINNED = /@sha256:[0-9a-f]{64}$/;

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'ladder';
export const EXECUTION_ID_ANNOTATION = 'ladder.dev/execution-id';
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
export const JOB_CONTAINER = 'job';
export const SECRET_CONFIG_KEY = 'config.json';
export const SECRET_TOKEN_KEY = 'ingest-token';
/** The Job controller labels its pods with one of these (the second before Kubernetes 1.27). */
export const JOB_NAME_LABELS = ['batch.kubernetes.io/job-name', 'job-name'] as const;

/** DNS-1123 label (≤ 63) from an execution id: sanitised prefix + stable 8-hex hash. */
export function jobNameFor(executionId: string): string {
  const hash = createHash('sha256').update(executionId).digest('hex').slice(0, 8);
  let base = executionId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-');
  base = base.slice(0, 63 - 'ladder-'.length - 1 - hash.length).replace(/^-+|-+$/g, '');
  return base ? `ladder-${base}-${hash}` : `ladder-${hash}`;
}

/** A valid label value (≤ 63, [A-Za-z0-9._-], alphanumeric at both ends); hashed when shortened. */
export function labelValue(value: string): string {
  let v = value.replace(/[^A-Za-z0-9._-]+/g, '-');
  if (v.length > 63 || v !== value) {
    const hash = createHash('sha256').update(value).digest('hex').slice(0, 8);
    v = `${v.slice(0, 54)}-${hash}`;
  }
  return v.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** A valid label key: optional DNS subdomain prefix + '/' + name (≤ 63). */
export function labelKey(key: string): string {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash).toLowerCase().replace(/[^a-z0-9.-]+/g, '-').slice(0, 253) : '';
  let name = (slash >= 0 ? key.slice(slash + 1) : key).replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 63);
  name = name.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'x';
  return prefix ? `${prefix}/${name}` : name;
}

/** The Job a pod belongs to, from the Job controller's label. */
export function jobNameOfPod(labels: Record<string, string> | undefined): string | undefined {
  return JOB_NAME_LABELS.map((l) => labels?.[l]).find(Boolean);
}
