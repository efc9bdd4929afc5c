/**
 * The executor contract: how a trial attempt becomes a running job and how we learn its fate.
 *
 * Every implementation (local processes, Kubernetes Jobs, the simulated executor) passes the
 * same contract suite in `test/executor-contract.ts`. All three operations are idempotent: a Temporal activity
 * may be retried at any point, so submitting the same execution twice must find the first one,
 * and cancelling a finished or unknown execution is not an error.
 */

export interface Resources {
  /** GPUs per trial; 0 runs on CPU. */
  gpus: number;
  /** CPU cores requested (Kubernetes request; advisory for local runs). */
  cpu: number;
  /** Memory request, Kubernetes quantity syntax ("2Gi"). */
  memory: string;
}

export interface JobLaunch {
  /** Stable per trial attempt (`<trialId>-a<attempt>`): the idempotency key of submit. */
  executionId: string;
  trialId: string;
  attempt: number;
  /** Job kind, passed as `--kind`. */
  kind: string;
  /** Fully resolved config, written to a file and passed as `--config`. */
  config: Record<string, unknown>;
  resources: Resources;
  /**
   * Extra environment for the job: LADDER_TRIAL_ID, LADDER_INGEST_URL, LADDER_INGEST_TOKEN,
   * LADDER_ATTEMPT. The executor adds LADDER_CHECKPOINT_DIR and LADDER_OUTPUT_DIR itself,
   * because where those live is the executor's business.
   */
  env: Record<string, string>;
  /** Labels for bookkeeping (sweep, rung, project); executors may attach them to what they create. */
  labels: Record<string, string>;
  /** Per-attempt time limit from the spec; executors that can enforce it themselves (a Job's deadline) do. */
  timeoutSeconds?: number;
  /**
   * Bring your own job (the spec's `command`, with `kind` "command"): the argument template,
   * not yet substituted. Executors turn the launch into what they run with `jobInvocation` in
   * command.ts, never through a shell. Absent for built-in kinds.
   */
  command?: string[];
  /** The spec's `workdir`, absolute (made so at submit): where the local executor runs `command`. */
  workdir?: string;
  /** The spec's `image`: the container `command` runs in on Kubernetes (required there). */
  image?: string;
  /**
   * The spec's plain `env` for `command` (never `LADDER_*`; refused again by `jobInvocation`).
   * Apart from `env` above, which holds Ladder's own protocol variables and secrets.
   */
  jobEnv?: Record<string, string>;
}

/** What the executor returns from submit; carried in heartbeat details so a new worker can resume. */
export interface ExecutionRef {
  executor: string;
  executionId: string;
  /** Executor-specific handle (pid, Job name, ...), JSON-serialisable. */
  handle: Record<string, unknown>;
}

export type ExecutionState =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'preempted'
  | 'cancelled';

export interface ExecutionStatus {
  state: ExecutionState;
  /** Set for failed/preempted/cancelled: a short machine-friendly reason ("exit 1", "bad-config", "lost", "oom"). */
  reason?: string;
  /** Whether another attempt may help. Exit code 2 (bad config) is never retryable. */
  retryable?: boolean;
  exitCode?: number | null;
  startedAt?: Date;
  finishedAt?: Date;
}

export const TERMINAL_STATES: ReadonlySet<ExecutionState> = new Set([
  'succeeded',
  'failed',
  'preempted',
  'cancelled',
]);

export function isTerminal(status: ExecutionStatus): boolean {
  return TERMINAL_STATES.has(status.state);
}

export interface Executor {
  readonly name: string;
  submit(launch: JobLaunch): Promise<ExecutionRef>;
  status(ref: ExecutionRef): Promise<ExecutionStatus>;
  cancel(ref: ExecutionRef): Promise<void>;
  /**
   * Resolves with the terminal status as soon as the executor learns of it (a process exit, an
   * informer event, a timer), instead of the caller polling `status`. Resolves with the current
   * non-terminal status when `signal` aborts, and never rejects on abort. Executors that cannot
   * tell leave it out; callers then poll `status`.
   */
  wait?(ref: ExecutionRef, signal: AbortSignal): Promise<ExecutionStatus>;
  /** Logs of the execution so far, for the dashboard; may be truncated to the tail. */
  logs?(ref: ExecutionRef, tailBytes?: number): Promise<string>;
}

/** Exit code rules of the job protocol (jobs/README.md, "Job protocol"). */
export const EXIT_BAD_CONFIG = 2;
/** The reason of a failure the config itself causes (exit 2, a launch that cannot run): never retried. */
export const BAD_CONFIG_REASON = 'bad-config';
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_COMMAND_NOT_FOUND = 127;

export function statusFromExitCode(exitCode: number): ExecutionStatus {
  if (exitCode === 0) return { state: 'succeeded', exitCode };
  if (exitCode === EXIT_BAD_CONFIG) {
    return { state: 'failed', exitCode, reason: BAD_CONFIG_REASON, retryable: false };
  }
  // The shell's codes for a program it could not run (a user's `command`): another attempt
  // would fail the same way.
  if (exitCode === EXIT_COMMAND_NOT_FOUND) return { state: 'failed', exitCode, reason: 'command not found', retryable: false };
  if (exitCode === EXIT_NOT_EXECUTABLE) return { state: 'failed', exitCode, reason: 'command not executable', retryable: false };
  return { state: 'failed', exitCode, reason: `exit ${exitCode}`, retryable: true };
}
