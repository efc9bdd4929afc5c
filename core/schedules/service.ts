/**
 * Schedules through Temporal's own Schedules: the one path shared by the CLI and GraphQL. A
 * schedule is a row (what it runs, how runs are judged) and the Temporal schedule
 * `schedule/<name>` (when it fires, paused or not, overlap), whose action starts
 * `scheduledSweepWorkflow` (workflows/scheduled.ts).
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError as TemporalScheduleNotFound, type Client, type ScheduleOverlapPolicy } from '@temporalio/client';
import type { Db } from '../db/client';
import type { ScheduleOverlap } from '../spec/schedule';
import { executorIssues, parseSweepSpec, parseSweepSpecText, SpecError, type SweepSpec } from '../spec/spec';
import { TEMPORAL_CALL_DEADLINE_MS } from '../sweeps/launch';
import { deleteScheduleRow, insertSchedule, requireSchedule, ScheduleConflictError, setSchedulePaused, type ScheduleRow } from './store';
import { checkScheduleName, parseTiming, ScheduleInputError } from './timing';

export interface ScheduleContext {
  db: Db;
  temporal: Client;
  taskQueue: string;
  executor?: string;
}

export const temporalScheduleId = (id: string) => `schedule/${id}`;
/** Temporal adds the fire time to this for each run's workflow id. */
export const scheduledWorkflowIdPrefix = (id: string) => `scheduled/${id}`;

const OVERLAP: Record<ScheduleOverlap, ScheduleOverlapPolicy> = {
  skip: 'SKIP',
  'buffer-one': 'BUFFER_ONE',
  'cancel-other': 'CANCEL_OTHER',
};

export interface CreateScheduleOptions {
  spec: string | unknown;
  /** Defaults to the spec's name. */
  name?: string | null;
  cron?: string | null;
  every?: string | null;
  paused?: boolean;
}

export function parseScheduledSpec(input: string | unknown, executor = 'local'): SweepSpec {
  const spec = typeof input === 'string' ? parseSweepSpecText(input) : parseSweepSpec(input);
  const issues = executorIssues(spec, executor);
  if (!spec.schedule) issues.push({ path: 'schedule', message: 'a scheduled sweep needs a schedule block listing the metrics to compare run over run' });
  if (issues.length) throw new SpecError(issues);
  return spec;
}

function deadline<T>(temporal: Client, fn: () => Promise<T>): Promise<T> {
  return temporal.withDeadline(Date.now() + TEMPORAL_CALL_DEADLINE_MS, fn);
}

export async function createSchedule(ctx: ScheduleContext, options: CreateScheduleOptions): Promise<ScheduleRow> {
  const timing = parseTiming(options);
  const spec = parseScheduledSpec(options.spec, ctx.executor);
  const id = checkScheduleName(options.name ?? spec.name);
  const row = await insertSchedule(ctx.db, { id, projectId: spec.project, spec, cron: timing.cron, every: timing.every, paused: options.paused ?? false });
  try {
    await deadline(ctx.temporal, () =>
      ctx.temporal.schedule.create({
        scheduleId: temporalScheduleId(id),
        spec: timing.cron !== null ? { cronExpressions: [timing.cron] } : { intervals: [{ every: timing.everyMs }] },
        action: {
          type: 'startWorkflow',
          workflowType: 'scheduledSweepWorkflow',
          workflowId: scheduledWorkflowIdPrefix(id),
          taskQueue: ctx.taskQueue,
          args: [{ scheduleId: id }],
        },
        policies: { overlap: OVERLAP[spec.schedule!.overlap], catchupWindow: '1 minute' },
        state: { paused: options.paused ?? false, note: options.paused ? 'created paused' : undefined },
      }),
    );
  } catch (err) {
    // A row no Temporal schedule fires would list as a schedule that never runs: take it back out.
    await deleteScheduleRow(ctx.db, id);
    if (err instanceof ScheduleAlreadyRunning) throw new ScheduleConflictError(id);
    const message = err instanceof Error ? err.message : String(err);
    if (timing.cron !== null && /cron|spec/i.test(message)) throw new ScheduleInputError('cron', `Temporal refused it: ${message.slice(0, 300)}`);
    throw new Error(`create Temporal schedule for ${id}: ${message}`, { cause: err });
  }
  return row;
}

async function onTemporal<T>(ctx: ScheduleContext, id: string, fn: (handle: ReturnType<Client['schedule']['getHandle']>) => Promise<T>): Promise<T> {
  await requireSchedule(ctx.db, id);
  try {
    return await deadline(ctx.temporal, () => fn(ctx.temporal.schedule.getHandle(temporalScheduleId(id))));
  } catch (err) {
    if (err instanceof TemporalScheduleNotFound) throw new Error(`schedule "${id}" has no Temporal schedule (deleted outside Ladder?); delete it and create it again`, { cause: err });
    throw err;
  }
}

export async function pauseSchedule(ctx: ScheduleContext, id: string, note = 'paused through Ladder'): Promise<void> {
  await onTemporal(ctx, id, (h) => h.pause(note));
  await setSchedulePaused(ctx.db, id, true);
}

export async function resumeSchedule(ctx: ScheduleContext, id: string, note = 'resumed through Ladder'): Promise<void> {
  await onTemporal(ctx, id, (h) => h.unpause(note));
  await setSchedulePaused(ctx.db, id, false);
}

/**
 * A run asked for by hand (a paused schedule runs too: it was asked to). It is never dropped:
 * under `skip` it waits behind a running run instead (buffer one), since the scheduler learns that
 * a run ended a moment after it did, and a trigger right then would otherwise vanish silently.
 * `cancel-other` cancels the running one, as the spec asks.
 */
export function triggerOverlap(overlap: ScheduleOverlap): ScheduleOverlapPolicy {
  return overlap === 'skip' ? 'BUFFER_ONE' : OVERLAP[overlap];
}

export async function triggerSchedule(ctx: ScheduleContext, id: string): Promise<void> {
  const row = await requireSchedule(ctx.db, id);
  const overlap = (row.spec as { schedule?: { overlap?: ScheduleOverlap } }).schedule?.overlap ?? 'skip';
  await onTemporal(ctx, id, (h) => h.trigger(triggerOverlap(overlap)));
}

/** Deletes the Temporal schedule and the row with its runs' history; the runs' sweeps stay. */
export async function deleteSchedule(ctx: ScheduleContext, id: string): Promise<void> {
  await requireSchedule(ctx.db, id);
  try {
    await deadline(ctx.temporal, () => ctx.temporal.schedule.getHandle(temporalScheduleId(id)).delete());
  } catch (err) {
    if (!(err instanceof TemporalScheduleNotFound)) throw err;
  }
  await deleteScheduleRow(ctx.db, id);
}

/** The next fire times Temporal plans (empty when paused); null when Temporal does not know the schedule. */
export async function nextRunTimes(temporal: Client, id: string): Promise<Date[] | null> {
  try {
    const d = await deadline(temporal, () => temporal.schedule.getHandle(temporalScheduleId(id)).describe());
    return d.state.paused ? [] : d.info.nextActionTimes.slice(0, 5);
  } catch (err) {
    if (err instanceof TemporalScheduleNotFound) return null;
    throw err;
  }
}
