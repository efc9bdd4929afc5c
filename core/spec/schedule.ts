/**
 * The sweep spec's optional `schedule:` block: how a recurring (scheduled) sweep is judged and
 * run. When it fires is not here: `--cron` / `--every` belong to the schedule, so one spec can be
 * scheduled nightly and hourly without two files.
 *
 *   schedule:
 *     metrics:                       # every variant's value is compared with earlier runs
 *       - metric: val_loss
 *         direction: min             # lower is better (max: higher is better)
 *         tolerance: 0.05            # a move beyond 5% of the baseline counts
 *       - metric: accuracy
 *         direction: max
 *         test: welch                # or: Welch's t-test over the seeds, p < alpha
 *         alpha: 0.01
 *     baselineRuns: 3                # earlier runs the baseline is taken over
 *     webhook: https://hooks.example.com/ladder   # POSTed when a run finds a regression
 *     overlap: skip                  # skip | buffer-one | cancel-other
 *     rerun: true                    # false lets a run reuse earlier results (default: rerun)
 */
import { z } from 'zod';

export const SCHEDULE_OVERLAPS = ['skip', 'buffer-one', 'cancel-other'] as const;
export type ScheduleOverlap = (typeof SCHEDULE_OVERLAPS)[number];

export const MAX_SCHEDULE_METRICS = 20;
export const MAX_BASELINE_RUNS = 50;
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * A webhook is called by the worker, so its URL is hostile input: http(s) only, no credentials
 * (they would sit in the stored spec, shown to every reader of the project), no fragment.
 */
export function webhookUrlIssue(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an http or https URL, not ${url.protocol}`;
  if (url.username || url.password) return 'must not carry credentials (user:password@)';
  if (url.hash) return 'must not have a #fragment';
  return null;
}

const scheduleMetric = z
  .strictObject({
    metric: z.string().min(1).max(200),
    direction: z.enum(['min', 'max']),
    /** Relative move (fraction of the baseline) that counts; 0.05 = 5%. */
    tolerance: z.number().nonnegative().max(100).optional(),
    /** Absolute move that counts (the larger of the two when both are given). */
    absoluteTolerance: z.number().nonnegative().optional(),
    /** `welch`: Welch's t-test of this run's seeds against the baseline runs' seeds. */
    test: z.literal('welch').optional(),
    alpha: z.number().gt(0).lt(1).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.test && (m.tolerance !== undefined || m.absoluteTolerance !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['test'], message: 'give either test or tolerance/absoluteTolerance, not both' });
    }
    if (m.alpha !== undefined && !m.test) ctx.addIssue({ code: 'custom', path: ['alpha'], message: 'alpha needs test: welch' });
  });

export const scheduleBlockSchema = z
  .strictObject({
    metrics: z.array(scheduleMetric).min(1, 'must list at least one metric').max(MAX_SCHEDULE_METRICS),
    baselineRuns: z.number().int().positive().max(MAX_BASELINE_RUNS).default(3),
    webhook: z
      .string()
      .max(MAX_WEBHOOK_URL_LENGTH)
      .superRefine((u, ctx) => {
        const issue = webhookUrlIssue(u);
        if (issue) ctx.addIssue({ code: 'custom', message: issue });
      })
      .optional(),
    overlap: z.enum(SCHEDULE_OVERLAPS).default('skip'),
    /** A scheduled run reruns every trial unless this is false (reuse would make a nightly run a no-op). */
    rerun: z.boolean().default(true),
  })
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.metrics.forEach((m, i) => {
      if (seen.has(m.metric)) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'metric'], message: `duplicate metric "${m.metric}"` });
      seen.add(m.metric);
    });
  });

export type ScheduleBlock = z.output<typeof scheduleBlockSchema>;
export type ScheduleMetric = ScheduleBlock['metrics'][number];

/** Default relative tolerance of a metric that names neither a test nor a tolerance. */
export const DEFAULT_TOLERANCE = 0.05;
export const DEFAULT_ALPHA = 0.05;
