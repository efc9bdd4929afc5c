/**
 * Process settings from the environment, validated once at start-up so a typo fails fast with
 * the variable's name instead of surfacing later as a connection error.
 */
import { z } from 'zod';

/**
 * Operator limits on what one sweep spec may ask for. Read apart from readSettings so a spec is
 * checked the same way in every process (CLI, API, worker) without needing the rest of the
 * settings to be valid there.
 */
const specLimitsSchema = z.object({
  /** Trials (variants × seeds × rungs) one sweep may plan. */
  LADDER_MAX_TRIALS_PER_SWEEP: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  LADDER_MAX_GPUS_PER_TRIAL: z.coerce.number().int().min(0).max(4096).default(64),
  LADDER_MAX_CPU_PER_TRIAL: z.coerce.number().positive().max(100_000).default(1024),
  /** Bytes; 4 TiB by default. */
  LADDER_MAX_MEMORY_PER_TRIAL: z.coerce.number().int().positive().default(4 * 1024 ** 4),
  /** Per attempt; 7 days by default. */
  LADDER_MAX_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(7 * 24 * 3600),
});

const settingsSchema = z.object({
  ...specLimitsSchema.shape,
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:/]+:\d+$/, 'must be host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  LADDER_TASK_QUEUE: z.string().min(1).default('ladder'),
  LADDER_EXECUTOR: z.enum(['local', 'kubernetes', 'simulated']).default('local'),
  /** Base URL jobs push results to, as they see it (…/ingest/v1). */
  LADDER_INGEST_URL: z.string().url().optional(),
  LADDER_INGEST_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  LADDER_RUN_ROOT: z.string().optional(),
  LADDER_PYTHON: z.string().optional(),
  LADDER_PORT: z.coerce.number().int().min(0).max(65535).default(4000),
});

export type Settings = z.infer<typeof settingsSchema>;

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  // An empty variable means unset, as in most shells' `VAR= cmd` idiom.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = settingsSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`environment variable ${String(issue.path[0])}: ${issue.message}`);
}

export type SpecLimits = z.infer<typeof specLimitsSchema>;

export function readSpecLimits(env: NodeJS.ProcessEnv = process.env): SpecLimits {
  const keys = Object.keys(specLimitsSchema.shape) as Array<keyof SpecLimits>;
  const present = Object.fromEntries(keys.flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
  const parsed = specLimitsSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`environment variable ${String(issue.path[0])}: ${issue.message}`);
}

export function requireSetting<K extends keyof Settings>(settings: Settings, key: K): NonNullable<Settings[K]> {
  const value = settings[key];
  if (value === undefined || value === null || value === '') {
    throw new Error(`environment variable ${key} is required here`);
  }
  return value as NonNullable<Settings[K]>;
}
