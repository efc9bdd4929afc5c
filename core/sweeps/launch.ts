/**
 * Launching and cancelling sweeps: the one path shared by the CLI and the GraphQL API, so both
 * validate the same way and start the same workflow.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { isFinishedSweep, sweeps } from '../db/schema';
import { executorIssues, parseSweepSpec, SpecError, specTextToObject, type SweepSpec } from '../spec/spec';
import { sweepWorkflowId } from '../../workflows/ids';
import { createSweep, NotFoundError, sweepSummaries, type CreatedSweep } from './store';

export interface LaunchContext {
  db: Db;
  temporal: Client;
  taskQueue: string;
  codeVersion: string;
  executor?: string;
}

export interface LaunchOptions {
  /** A spec as YAML/JSON text or as an already-parsed object; validated either way. */
  spec: string | unknown;
  rerun?: boolean;
  /**
   * The caller's project (an API token's): a spec without `project` goes there, and a spec that
   * names another is refused with ProjectMismatchError before anything is stored.
   */
  project?: string;
}

export class ProjectMismatchError extends Error {
  constructor(readonly allowed: string, readonly asked: string) {
    super(`this token may launch sweeps in project "${allowed}" only (the spec names "${asked}")`);
    this.name = 'ProjectMismatchError';
  }
}

/** The spec, parsed once, with the caller's project filled in where it names none. */
function specFor(options: LaunchOptions): SweepSpec {
  let raw = typeof options.spec === 'string' ? specTextToObject(options.spec) : options.spec;
  if (options.project !== undefined && raw && typeof raw === 'object' && !Array.isArray(raw) && !Object.hasOwn(raw, 'project')) {
    raw = { ...(raw as Record<string, unknown>), project: options.project };
  }
  const spec = parseSweepSpec(raw);
  if (options.project !== undefined && spec.project !== options.project) throw new ProjectMismatchError(options.project, spec.project);
  return spec;
}

/**
 * How long one call to Temporal may take while launching. Without a deadline the client retries
 * an unreachable server for half a minute while the user (or the API request) waits.
 */
export const TEMPORAL_CALL_DEADLINE_MS = 5000;

export class TemporalUnreachableError extends Error {
  constructor(address: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`Temporal at ${address} is not reachable (${why}); nothing was stored`, { cause });
    this.name = 'TemporalUnreachableError';
  }
}

function temporalAddress(temporal: Client): string {
  const options = (temporal.connection as { options?: { address?: string } }).options;
  return options?.address ?? 'the configured address';
}

/** gRPC DEADLINE_EXCEEDED (4) or UNAVAILABLE (14) anywhere in the cause chain. */
function isUnreachable(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 4 || code === 14) return true;
  }
  return false;
}

export async function launchSweep(ctx: LaunchContext, options: LaunchOptions): Promise<CreatedSweep & { spec: SweepSpec }> {
  const spec = specFor(options);
  // What only the executor that will run it can refuse (a command sweep on Kubernetes needs an image).
  const issues = executorIssues(spec, ctx.executor ?? 'local');
  if (issues.length > 0) throw new SpecError(issues);
  // Asked before anything is stored, so a Temporal that is down costs seconds and leaves no rows.
  try {
    await ctx.temporal.withDeadline(Date.now() + TEMPORAL_CALL_DEADLINE_MS, () => ctx.temporal.workflowService.getSystemInfo({}));
  } catch (err) {
    throw new TemporalUnreachableError(temporalAddress(ctx.temporal), err);
  }
  const created = await createSweep(ctx.db, {
    spec,
    codeVersion: ctx.codeVersion,
    rerun: options.rerun,
    executor: ctx.executor,
  });
  try {
    await ctx.temporal.withDeadline(Date.now() + TEMPORAL_CALL_DEADLINE_MS, () =>
      ctx.temporal.workflow.start('sweepWorkflow', {
        workflowId: sweepWorkflowId(created.id),
        taskQueue: ctx.taskQueue,
        args: [{ sweepId: created.id }],
      }),
    );
  } catch (err) {
    // A sweep that no workflow runs would sit 'pending' forever: take it back out.
    await ctx.db.delete(sweeps).where(eq(sweeps.id, created.id));
    if (isUnreachable(err)) throw new TemporalUnreachableError(temporalAddress(ctx.temporal), err);
    throw new Error(`start workflow for sweep ${created.id}: ${(err as Error).message}`, { cause: err });
  }
  return { ...created, spec };
}

/** Status reads need no spec. */
async function requireSweepSummary(db: Db, sweepId: string) {
  const [sweep] = await sweepSummaries(db, [sweepId]);
  if (!sweep) throw new NotFoundError('sweep', sweepId);
  return sweep;
}

export async function cancelSweep(ctx: Pick<LaunchContext, 'db' | 'temporal'>, sweepId: string): Promise<'cancelling' | 'already-finished'> {
  const sweep = await requireSweepSummary(ctx.db, sweepId);
  if (isFinishedSweep(sweep.status)) return 'already-finished';
  try {
    await ctx.temporal.workflow.getHandle(sweepWorkflowId(sweepId)).cancel();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'already-finished';
    throw err;
  }
  return 'cancelling';
}

/** Waits for the sweep workflow to close; resolves to its final status. */
export async function waitForSweep(ctx: Pick<LaunchContext, 'db' | 'temporal'>, sweepId: string): Promise<string> {
  try {
    await ctx.temporal.workflow.getHandle(sweepWorkflowId(sweepId)).result();
  } catch {
    // Cancelled or failed workflows throw here; the stored status says which.
  }
  return (await requireSweepSummary(ctx.db, sweepId)).status;
}

export { WorkflowExecutionAlreadyStartedError };
