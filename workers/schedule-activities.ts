/**
 * Activities of `scheduledSweepWorkflow` (workflows/scheduled.ts): start a run's sweep, close the
 * run with its comparison, post the regression webhook. Thin callers of core/schedules.
 * Registered beside the sweep activities where the worker builds its activity map.
 */
import { ApplicationFailure } from '@temporalio/common';
import { codeVersion as currentCodeVersion } from '../core/code-version';
import type { Db } from '../core/db/client';
import type { SweepStatus } from '../core/db/schema';
import { readSetting } from '../core/settings';
import { SpecError } from '../core/spec/spec';
import { sweepSummaries } from '../core/sweeps/store';
import {
  beginScheduledRun,
  findingsOf,
  finishScheduledRun,
  getScheduleRun,
  markRunNotified,
  requireSchedule,
  scheduleSpec,
  ScheduleNotFoundError,
  type BegunRun,
  type FinishedRun,
} from '../core/schedules/store';
import { postWebhook, redactedUrl, webhookBody, WebhookError } from '../core/schedules/webhook';

export interface ScheduleActivityDeps {
  db: Db;
  log: { info(message: string, fields?: Record<string, unknown>): void; warn(message: string, fields?: Record<string, unknown>): void };
  /** Recorded on every run and in its trials' identities; default: this checkout's or LADDER_CODE_VERSION. */
  codeVersion?: string;
  /** Name of the executor this worker runs trials with (recorded on the sweep). */
  executor?: string;
  /** Let webhooks reach loopback/private addresses; default LADDER_WEBHOOK_ALLOW_INTERNAL=1. */
  webhookAllowInternal?: boolean;
  webhookTimeoutMs?: number;
}

export function createScheduleActivities(deps: ScheduleActivityDeps) {
  let version = deps.codeVersion;
  const allowInternal = deps.webhookAllowInternal ?? readSetting('LADDER_WEBHOOK_ALLOW_INTERNAL') === '1';
  return {
    async beginScheduledRun(input: { scheduleId: string; workflowId: string; workflowRunId: string }): Promise<BegunRun> {
      version ??= currentCodeVersion();
      try {
        return await beginScheduledRun(deps.db, { ...input, codeVersion: version, executor: deps.executor });
      } catch (err) {
        // A schedule deleted between firing and now: nothing to run, and retrying will not change it.
        if (err instanceof ScheduleNotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
        // A stored spec that today's rules refuse fails the same way on every retry.
        if (err instanceof SpecError) throw ApplicationFailure.nonRetryable(err.message, 'BadSpec');
        throw err;
      }
    },

    async finishScheduledRun(input: { runId: number; cancelled?: boolean }): Promise<FinishedRun> {
      const run = await getScheduleRun(deps.db, input.runId);
      if (!run) throw ApplicationFailure.nonRetryable(`schedule run ${input.runId} not found`, 'NotFound');
      let status: SweepStatus | 'cancelled' = 'cancelled';
      if (!input.cancelled && run.sweepId) status = (await sweepSummaries(deps.db, [run.sweepId]))[0]?.status ?? 'cancelled';
      const finished = await finishScheduledRun(deps.db, input.runId, status);
      deps.log.info('scheduled run finished', { schedule: run.scheduleId, run: run.id, sweep: run.sweepId, status: finished.status, regressions: finished.regressions, improvements: finished.improvements });
      return finished;
    },

    /** Posts the run's regressions once: a run already notified is not posted again. */
    async postScheduleWebhook(input: { runId: number }): Promise<{ posted: boolean; status?: number }> {
      const run = await getScheduleRun(deps.db, input.runId);
      if (!run) throw ApplicationFailure.nonRetryable(`schedule run ${input.runId} not found`, 'NotFound');
      if (run.notifiedAt || run.regressions === 0) return { posted: false };
      const schedule = await requireSchedule(deps.db, run.scheduleId);
      const url = scheduleSpec(schedule).schedule.webhook;
      if (!url) return { posted: false };
      const findings = await findingsOf(deps.db, { runId: run.id, kind: 'regression', first: 200 });
      const body = webhookBody({
        schedule: schedule.id,
        project: schedule.projectId,
        run: run.id,
        sweep: run.sweepId,
        codeVersion: run.codeVersion,
        regressions: run.regressions,
        improvements: run.improvements,
        findings: findings.map(({ kind, variant, rung, metric, direction, value, baseline, method, threshold, pValue }) => ({ kind, variant, rung, metric, direction, value, baseline, method, threshold, pValue })),
      });
      try {
        const status = await postWebhook(url, body, { allowInternal, timeoutMs: deps.webhookTimeoutMs });
        await markRunNotified(deps.db, run.id);
        deps.log.info('schedule webhook posted', { schedule: schedule.id, run: run.id, url: redactedUrl(url), status });
        return { posted: true, status };
      } catch (err) {
        if (err instanceof WebhookError) {
          deps.log.warn('schedule webhook failed', { schedule: schedule.id, run: run.id, url: redactedUrl(url), error: err.message, retryable: err.retryable });
          if (!err.retryable) throw ApplicationFailure.nonRetryable(err.message, 'BadWebhook');
          throw ApplicationFailure.retryable(err.message, 'WebhookUnavailable');
        }
        throw err;
      }
    },
  };
}

export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
