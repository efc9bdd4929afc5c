/**
 * Operator limits on "bring your own job" sweeps (a spec's `command`, `env` and `workdir`), read
 * from the environment like the other spec limits in core/settings.ts, so every process (CLI, API,
 * worker) checks a spec the same way.
 */
import { z } from 'zod';

const commandLimitsSchema = z.object({
  /** Arguments in a spec's `command` (before `{args}` expands). */
  LADDER_MAX_COMMAND_ARGS: z.coerce.number().int().min(1).max(100_000).default(256),
  /**
   * Bytes of the argument list a trial runs, after substitution. Linux refuses a single argument
   * over 128 KiB (MAX_ARG_STRLEN) and all of them with the environment over ~2 MiB; a clear error
   * at submit beats an E2BIG from spawn on every attempt.
   */
  LADDER_MAX_COMMAND_BYTES: z.coerce.number().int().min(1024).max(2 * 1024 ** 2).default(128 * 1024),
  /** Variables in a spec's `env`. */
  LADDER_MAX_JOB_ENV: z.coerce.number().int().min(0).max(10_000).default(64),
  /** Files hashed for a working directory's code version. */
  LADDER_MAX_WORKDIR_FILES: z.coerce.number().int().min(1).max(10_000_000).default(20_000),
  /** Bytes hashed for a working directory's code version; 1 GiB by default. */
  LADDER_MAX_WORKDIR_BYTES: z.coerce.number().int().min(1).default(1024 ** 3),
});

export type CommandLimits = z.infer<typeof commandLimitsSchema>;

export function readCommandLimits(env: NodeJS.ProcessEnv = process.env): CommandLimits {
  const keys = Object.keys(commandLimitsSchema.shape) as Array<keyof CommandLimits>;
  const present = Object.fromEntries(keys.flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
  const parsed = commandLimitsSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`environment variable ${String(issue.path[0])}: ${issue.message}`);
}
