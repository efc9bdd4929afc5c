/**
 * Trial identity: same job kind, resolved config, seed and code version → same result. A command
 * sweep adds its command template, its image and the code version of its working directory, so
 * an edited script or a rebuilt image is never mistaken for a trial that already ran.
 * The hash is over canonical JSON (sorted keys) so key order in a spec never changes identity.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new Error(`cannot hash a non-finite number (${value})`);
    }
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export interface IdentityInput {
  kind: string;
  config: Record<string, unknown>;
  seed: number;
  codeVersion: string;
  /** A command sweep's argument template (before substitution: the config is hashed apart). */
  command?: string[];
  image?: string;
  /** Code version of the command's working directory (see workdir.ts). */
  workdirVersion?: string;
}

export function trialIdentity(input: IdentityInput): string {
  const payload = canonicalJson({
    v: 1,
    kind: input.kind,
    config: input.config,
    seed: input.seed,
    code: input.codeVersion,
    // Absent members are dropped by canonicalJson, so built-in kinds keep their identities.
    command: input.command,
    image: input.image,
    workdir: input.workdirVersion,
  });
  return createHash('sha256').update(payload).digest('hex');
}
