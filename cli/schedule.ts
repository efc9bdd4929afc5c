/**
 * `ladder schedule`: recurring sweeps on Temporal Schedules (core/schedules).
 *
 *   ladder schedule create SPEC (--cron "0 3 * * *" | --every 6h) [--name N] [--paused] [--json]
 *   ladder schedule list [--json]
 *   ladder schedule history NAME [--runs N] [--json]   runs, their results and regressions
 *   ladder schedule pause NAME · resume NAME · trigger NAME · delete NAME
 *
 * Postgres and Temporal come from DATABASE_URL / TEMPORAL_ADDRESS, else a running `ladder dev`.
 * Bad input (timing, name, spec) exits 2 with the field, before anything is stored or dialled.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { example } from './help';

const print = (line = '') => process.stdout.write(`${line}\n`);

/** `usage` is the caller's usage-error factory, so bad input exits 2 like the other commands. */
export function registerScheduleCommands(program: Command, usage: (message: string) => Error): void {
  const schedule = program.command('schedule').description('recurring sweeps: run a spec on a cron or an interval and flag regressions run over run');
  example(schedule, 'npx ladder schedule create examples/nightly.yaml --cron "0 3 * * *"', 'npx ladder schedule history nightly');

  /** Domain input errors become usage errors (exit 2) naming the option. */
  const asUsage = (err: unknown): never => {
    const { ScheduleInputError } = require('../core/schedules/timing') as typeof import('../core/schedules/timing');
    const { ScheduleConflictError, ScheduleNotFoundError } = require('../core/schedules/store') as typeof import('../core/schedules/store');
    if (err instanceof ScheduleInputError) throw usage(`--${err.field}: ${err.message.slice(err.field.length + 2)}`);
    if (err instanceof ScheduleConflictError || err instanceof ScheduleNotFoundError) throw usage(err.message);
    throw err;
  };

  example(
    schedule
      .command('create')
      .description('create a schedule from a spec with a schedule block')
      .argument('<spec>', 'sweep spec file (YAML or JSON) with a `schedule:` block')
      .option('--cron <expr>', 'five-field cron expression, e.g. "0 3 * * *" (UTC)')
      .option('--every <duration>', 'interval, e.g. 30m, 6h, 1d')
      .option('--name <name>', "the schedule's name (default: the spec's name)")
      .option('--paused', 'create it paused')
      .option('--json', 'print one JSON object'),
    'npx ladder schedule create nightly.yaml --every 6h --name ttt-6h',
  ).action(async (file: string, opts: { cron?: string; every?: string; name?: string; paused?: boolean; json?: boolean }) => {
    const { parseTiming, checkScheduleName } = require('../core/schedules/timing') as typeof import('../core/schedules/timing');
    try {
      parseTiming(opts);
      if (opts.name !== undefined) checkScheduleName(opts.name);
    } catch (err) {
      asUsage(err);
    }
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const { parseScheduledSpec } = require('../core/schedules/service') as typeof import('../core/schedules/service');
    const spec = parseScheduledSpec(text, executorSetting()); // SpecError exits 2 with the path
    await withSchedules(usage, async (ctx) => {
      const { createSchedule } = require('../core/schedules/service') as typeof import('../core/schedules/service');
      const row = await createSchedule(ctx, { spec, cron: opts.cron, every: opts.every, name: opts.name, paused: opts.paused }).catch(asUsage);
      if (opts.json) print(JSON.stringify({ id: row.id, project: row.projectId, cron: row.cron, every: row.every, paused: row.paused }));
      else print(`schedule ${row.id} created (${row.cron ? `cron "${row.cron}"` : `every ${row.every}`}${row.paused ? ', paused' : ''}): npx ladder schedule trigger ${row.id} runs it now`);
    });
  });

  example(schedule.command('list').description('schedules, by name').option('--json', 'machine-readable output'), 'npx ladder schedule list').action(async (opts: { json?: boolean }) => {
    await withSchedules(usage, async (ctx) => {
      const { listSchedules, scheduleRunsOf } = require('../core/schedules/store') as typeof import('../core/schedules/store');
      const { nextRunTimes } = require('../core/schedules/service') as typeof import('../core/schedules/service');
      const rows = await listSchedules(ctx.db, { project: null, first: 200 });
      const items = await Promise.all(
        rows.map(async (r) => {
          const [last] = await scheduleRunsOf(ctx.db, r.id, 1);
          const next = await nextRunTimes(ctx.temporal, r.id).catch(() => null);
          return { id: r.id, project: r.projectId, when: r.cron ? `cron ${r.cron}` : `every ${r.every}`, paused: r.paused, next: next?.[0]?.toISOString() ?? null, lastRun: last ? { id: last.id, status: last.status, regressions: last.regressions, improvements: last.improvements } : null };
        }),
      );
      if (opts.json) return print(JSON.stringify(items));
      if (!items.length) return print('no schedules: npx ladder schedule create SPEC --every 6h');
      for (const i of items) {
        const last = i.lastRun ? `last run #${i.lastRun.id} ${i.lastRun.status}, ${i.lastRun.regressions} regression(s)` : 'no runs yet';
        print(`${i.id.padEnd(24)} ${i.when.padEnd(22)} ${i.paused ? 'paused ' : 'active '} next ${i.next ?? '–'}  ${last}`);
      }
    });
  });

  example(
    schedule
      .command('history')
      .description("a schedule's runs: code version, per-variant results and regressions")
      .argument('<name>')
      .option('--runs <n>', 'how many runs, newest first (at most 200)', '20')
      .option('--json', 'machine-readable output'),
    'npx ladder schedule history nightly --runs 5',
  ).action(async (name: string, opts: { runs: string; json?: boolean }) => {
    const n = Number(opts.runs);
    if (!Number.isInteger(n) || n < 1 || n > 200) throw usage(`--runs must be a whole number from 1 to 200, not "${opts.runs}"`);
    await withDatabaseOnly(usage, async (db) => {
      const { requireSchedule, scheduleRunsOf, findingsOf } = require('../core/schedules/store') as typeof import('../core/schedules/store');
      const row = await requireSchedule(db, name).catch(asUsage);
      const runs = await scheduleRunsOf(db, row.id, n);
      const findings = await findingsOf(db, { scheduleIds: [row.id], first: 200 });
      if (opts.json) return print(JSON.stringify({ schedule: row.id, runs, findings }));
      print(formatHistory(row.id, runs, findings));
    });
  });

  const simple = (verb: 'pause' | 'resume' | 'trigger' | 'delete', description: string, done: string) =>
    example(schedule.command(verb).description(description).argument('<name>'), `npx ladder schedule ${verb} nightly`).action(async (name: string) => {
      await withSchedules(usage, async (ctx) => {
        const service = require('../core/schedules/service') as typeof import('../core/schedules/service');
        const fn = { pause: service.pauseSchedule, resume: service.resumeSchedule, trigger: service.triggerSchedule, delete: service.deleteSchedule }[verb];
        await fn(ctx, name).catch(asUsage);
        print(`schedule ${name} ${done}`);
      });
    });
  simple('pause', 'stop firing until resumed', 'paused');
  simple('resume', 'fire again on its cron or interval', 'resumed');
  simple('trigger', 'start a run now (under the overlap policy)', 'triggered: npx ladder schedule history ' + '<name> shows the run');
  simple('delete', 'delete the schedule and its run history (the sweeps stay)', 'deleted');
}

type Run = import('../core/schedules/store').ScheduleRunRow;
type FindingRow = import('../core/schedules/store').ScheduleFindingRow;

/** Runs oldest first, one line per run and variant, with the findings beneath. */
export function formatHistory(id: string, runs: readonly Run[], findings: readonly FindingRow[]): string {
  if (!runs.length) return `schedule ${id}: no runs yet`;
  const lines = [`schedule ${id}: ${runs.length} run(s), oldest first`];
  const fmt = (x: number) => (Math.abs(x) >= 1000 || Math.abs(x) < 0.001 ? x.toExponential(3) : x.toFixed(4));
  for (const run of [...runs].reverse()) {
    lines.push(`run #${run.id}  ${run.status.padEnd(9)} sweep ${run.sweepId ?? '–'}  code ${run.codeVersion.slice(0, 20)}  started ${run.startedAt.toISOString()}  regressions ${run.regressions}  improvements ${run.improvements}${run.notifiedAt ? '  webhook sent' : ''}`);
    const mine = findings.filter((f) => f.runId === run.id);
    for (const r of run.results as import('../core/schedules/compare').RunResult[]) {
      const f = mine.find((x) => x.variant === r.variant && x.rung === r.rung && x.metric === r.metric);
      const mark = f ? `  << ${f.kind.toUpperCase()} vs baseline ${fmt(f.baseline)} (${f.baseline === 0 ? '' : `${(((f.value - f.baseline) / Math.abs(f.baseline)) * 100).toFixed(1)}%, `}${f.method}${f.pValue !== null ? ` p=${f.pValue.toExponential(2)}` : ` threshold ${fmt(f.threshold ?? 0)}`})` : '';
      lines.push(`    ${`${r.variant} @ ${r.rung}`.padEnd(28)} ${r.metric.padEnd(10)} ${fmt(r.mean)}  (seeds: ${r.values.map(fmt).join(', ')})${mark}`);
    }
  }
  return lines.join('\n');
}

function executorSetting(): string {
  return (require('../core/settings') as typeof import('../core/settings')).readSettings().LADDER_EXECUTOR;
}

function connectionSettings(usage: (message: string) => Error, needTemporal: boolean) {
  return (require('./connections') as typeof import('./connections')).resolveConnections({ temporal: needTemporal }, usage);
}

async function withDatabaseOnly<T>(usage: (message: string) => Error, fn: (db: import('../core/db/client').Db) => Promise<T>): Promise<T> {
  const conn = connectionSettings(usage, false);
  const { openDatabase, migrateDatabase } = require('../core/db/client') as typeof import('../core/db/client');
  const database = openDatabase(conn.databaseUrl);
  try {
    await migrateDatabase(database);
    return await fn(database.db);
  } finally {
    await database.close();
  }
}

async function withSchedules<T>(usage: (message: string) => Error, fn: (ctx: import('../core/schedules/service').ScheduleContext) => Promise<T>): Promise<T> {
  const conn = connectionSettings(usage, true);
  const { Client, Connection } = require('@temporalio/client') as typeof import('@temporalio/client');
  const { TEMPORAL_CALL_DEADLINE_MS, TemporalUnreachableError } = require('../core/sweeps/launch') as typeof import('../core/sweeps/launch');
  let connection: Awaited<ReturnType<typeof Connection.connect>>;
  try {
    connection = await Connection.connect({ address: conn.temporalAddress, connectTimeout: TEMPORAL_CALL_DEADLINE_MS });
  } catch (err) {
    throw new TemporalUnreachableError(conn.temporalAddress, err);
  }
  try {
    return await withDatabaseOnly(usage, (db) => fn({ db, temporal: new Client({ connection, namespace: conn.namespace }), taskQueue: conn.taskQueue, executor: conn.executor }));
  } finally {
    await connection.close();
  }
}
