import { useState } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useQuery } from '../api';
import type * as G from '../generated/graphql';
import { Legend } from '../components/Charts';
import { ErrorNote, Section, StatusBadge } from '../components/common';
import { formatNumber, formatTime, seriesColor } from '../lib';

/** `#/schedules` and `#/schedules/<name>`; null for any other hash. */
export function parseScheduleRoute(hash: string): { id: string | null } | null {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] !== 'schedules') return null;
  try {
    return { id: parts[1] ? decodeURIComponent(parts[1]) : null };
  } catch {
    return { id: null };
  }
}

const SCHEDULES_QUERY = /* GraphQL */ `query DashboardSchedules($first: Int, $after: String) {
  schedules(first: $first, after: $after) {
    edges { node { id project cron every paused overlap nextRunTimes runs(first: 1) { id status regressions improvements startedAt } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

// Result types generated from the schema (npm run gen:graphql), as for the other pages.
type ScheduleListItem = G.DashboardSchedulesQuery['schedules']['edges'][number]['node'];

const SCHEDULE_QUERY = /* GraphQL */ `query DashboardSchedule($id: ID!) {
  schedule(id: $id) {
    id project cron every paused overlap rerun baselineRuns webhookOrigin nextRunTimes
    metrics { metric direction tolerance absoluteTolerance test alpha }
    runs(first: 100) { id sweepId codeVersion status regressions improvements notified startedAt finishedAt results { variant rung metric mean values } }
    findings(first: 100) { id runId kind variant rung metric value baseline relativeChange method threshold pValue }
  }
}`;

type ScheduleDetail = NonNullable<G.DashboardScheduleQuery['schedule']>;
type ScheduleRun = ScheduleDetail['runs'][number];
type Finding = ScheduleDetail['findings'][number];

/** One chart row per run (oldest first): the run's mean per series, and which series regressed or improved in it. */
export function scheduleChartRows(runs: readonly ScheduleRun[], findings: readonly Finding[], metric: string) {
  const seriesName = (r: { variant: string; rung: string }) => (r.rung === 'default' ? r.variant : `${r.variant} @ ${r.rung}`);
  const series: string[] = [];
  const rows = [...runs].reverse().map((run, i) => {
    const values = new Map<string, number>();
    for (const r of run.results) {
      if (r.metric !== metric) continue;
      const name = seriesName(r);
      if (!series.includes(name)) series.push(name);
      values.set(name, r.mean);
    }
    const marks = new Map<string, 'regression' | 'improvement'>();
    for (const f of findings) {
      if (f.runId !== run.id || f.metric !== metric) continue;
      if (f.kind === 'regression' || f.kind === 'improvement') marks.set(seriesName(f), f.kind);
    }
    return { n: i + 1, runId: run.id, codeVersion: run.codeVersion, values, marks };
  });
  return { series, rows };
}

export function SchedulePage({ id }: { id: string | null }) {
  return id ? <ScheduleView id={id} /> : <ScheduleList />;
}

function timing(s: { cron: string | null; every: string | null }) {
  return s.cron ? `cron ${s.cron}` : `every ${s.every}`;
}

function ScheduleList() {
  const [after, setAfter] = useState<string[]>([]);
  const { data, error, loading } = useQuery<G.DashboardSchedulesQuery>(SCHEDULES_QUERY, { first: 50, after: after.at(-1) ?? null });
  const items = (data?.schedules.edges ?? []).map((e) => e.node);
  return (
    <div>
      <h1>Schedules</h1>
      <ErrorNote error={error} />
      {loading && !data ? <p className="muted">loading…</p> : null}
      {data && !items.length ? <p className="muted">No schedules yet: `ladder schedule create SPEC --every 6h`.</p> : null}
      <table>
        <thead>
          <tr><th>schedule</th><th>project</th><th>when</th><th>state</th><th>next run</th><th>last run</th></tr>
        </thead>
        <tbody>
          {items.map((s) => {
            const last = s.runs[0];
            return (
              <tr key={s.id}>
                <td><a href={`#/schedules/${encodeURIComponent(s.id)}`}>{s.id}</a></td>
                <td>{s.project}</td>
                <td>{timing(s)}</td>
                <td>{s.paused ? 'paused' : 'active'}</td>
                <td>{s.nextRunTimes?.[0] ? formatTime(s.nextRunTimes[0]) : '–'}</td>
                <td>{last ? <><StatusBadge status={last.status} /> {last.regressions ? <span className="bad">{last.regressions} regression(s)</span> : null} {formatTime(last.startedAt)}</> : 'none yet'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data?.schedules.pageInfo.hasNextPage ? <button onClick={() => setAfter((a) => [...a, data.schedules.pageInfo.endCursor!])}>more</button> : null}
    </div>
  );
}

/** A run's point: a filled red triangle on a regression, a green circle on an improvement, else a small dot. */
function RunDot(props: { cx?: number; cy?: number; payload?: { marks: Map<string, string> }; name: string; color: string }) {
  const { cx, cy, payload, name, color } = props;
  if (cx === undefined || cy === undefined) return null;
  const mark = payload?.marks.get(name);
  if (mark === 'regression') return <path d={`M${cx},${cy - 7} L${cx + 6},${cy + 5} L${cx - 6},${cy + 5} Z`} fill="#dc2626" stroke="#7f1d1d" data-testid="regression-mark" />;
  if (mark === 'improvement') return <circle cx={cx} cy={cy} r={5} fill="#16a34a" stroke="#14532d" data-testid="improvement-mark" />;
  return <circle cx={cx} cy={cy} r={2.5} fill={color} />;
}

function HistoryChart({ runs, findings, metric }: { runs: ScheduleRun[]; findings: Finding[]; metric: string }) {
  const { series, rows } = scheduleChartRows(runs, findings, metric);
  const data = rows.map((r) => ({ ...Object.fromEntries([...r.values].map(([k, v]) => [`v:${k}`, v])), n: r.n, runId: r.runId, marks: r.marks }));
  if (!rows.length) return <p className="muted">No runs yet.</p>;
  return (
    <div className="chart" data-testid="schedule-history">
      <ResponsiveContainer width="100%" height={300}>
        <LineChart data={data} margin={{ top: 10, right: 24, bottom: 10, left: 10 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="n" type="number" domain={['dataMin', 'dataMax']} allowDecimals={false} label={{ value: 'run', position: 'insideBottomRight', offset: -4 }} />
          <YAxis type="number" domain={['auto', 'auto']} tickFormatter={(v: number) => formatNumber(v, 3)} width={64} />
          <Tooltip formatter={(v) => formatNumber(Number(v))} labelFormatter={(n) => `run ${n} (#${rows[Number(n) - 1]?.runId ?? ''}, code ${rows[Number(n) - 1]?.codeVersion.slice(0, 12) ?? ''})`} />
          {series.map((s, i) => (
            <Line key={s} dataKey={`v:${s}`} name={s} stroke={seriesColor(i)} strokeWidth={1.5} isAnimationActive={false} connectNulls dot={(p: object) => <RunDot key={`${s}-${(p as { index?: number }).index}`} {...(p as object)} name={s} color={seriesColor(i)} />} />
          ))}
        </LineChart>
      </ResponsiveContainer>
      <Legend names={series} />
      <p className="muted">▲ red: regression · ● green: improvement, against the mean of the previous runs.</p>
    </div>
  );
}

function ScheduleView({ id }: { id: string }) {
  const { data, error, loading } = useQuery<G.DashboardScheduleQuery>(SCHEDULE_QUERY, { id });
  const s = data?.schedule;
  const [chosen, setChosen] = useState<string | null>(null);
  if (loading && !data) return <p className="muted">loading…</p>;
  if (error) return <ErrorNote error={error} />;
  if (!s) return <p>No schedule “{id}”.</p>;
  const metric = chosen ?? s.metrics[0]?.metric ?? '';
  const rule = s.metrics.find((m) => m.metric === metric);
  return (
    <div>
      <h1>Schedule {s.id}</h1>
      <p className="muted">
        {s.project} · {timing(s)} · {s.paused ? 'paused' : 'active'} · overlap {s.overlap} · {s.rerun ? 'reruns every trial' : 'reuses results'} · baseline: last {s.baselineRuns} run(s)
        {s.webhookOrigin ? ` · webhook ${s.webhookOrigin}` : ''}
        {s.nextRunTimes?.[0] ? ` · next ${formatTime(s.nextRunTimes[0])}` : ''}
      </p>
      <Section
        title="History"
        right={
          s.metrics.length > 1 ? (
            <select value={metric} onChange={(e) => setChosen(e.target.value)}>
              {s.metrics.map((m) => <option key={m.metric} value={m.metric}>{m.metric}</option>)}
            </select>
          ) : null
        }
      >
        {rule ? <p className="muted">{rule.metric}: {rule.direction === 'min' ? 'lower' : 'higher'} is better; {rule.test ? `Welch's t-test over the seeds, alpha ${rule.alpha ?? 0.05}` : `a move beyond ${rule.tolerance !== null ? `${(rule.tolerance * 100).toFixed(1)}%` : ''}${rule.absoluteTolerance !== null ? ` or ${rule.absoluteTolerance}` : ''} counts`}</p> : null}
        <HistoryChart runs={s.runs} findings={s.findings} metric={metric} />
      </Section>
      <Section title="Regressions and improvements">
        {s.findings.length ? (
          <table>
            <thead><tr><th>run</th><th>kind</th><th>variant</th><th>rung</th><th>metric</th><th>value</th><th>baseline</th><th>change</th><th>decided by</th></tr></thead>
            <tbody>
              {s.findings.map((f) => (
                <tr key={f.id} className={f.kind === 'regression' ? 'bad' : 'good'}>
                  <td>#{f.runId}</td>
                  <td>{f.kind}</td>
                  <td>{f.variant}</td>
                  <td>{f.rung}</td>
                  <td>{f.metric}</td>
                  <td>{formatNumber(f.value)}</td>
                  <td>{formatNumber(f.baseline)}</td>
                  <td>{f.relativeChange === null ? '–' : `${(f.relativeChange * 100).toFixed(1)}%`}</td>
                  <td>{f.method === 'welch' ? `Welch p=${f.pValue?.toExponential(2)}` : `tolerance ±${formatNumber(f.threshold ?? 0)}`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <p className="muted">None so far.</p>}
      </Section>
      <Section title="Runs">
        <table>
          <thead><tr><th>run</th><th>status</th><th>sweep</th><th>code version</th><th>started</th><th>regressions</th><th>improvements</th><th>webhook</th></tr></thead>
          <tbody>
            {s.runs.map((r) => (
              <tr key={r.id}>
                <td>#{r.id}</td>
                <td><StatusBadge status={r.status} /></td>
                <td>{r.sweepId ? <a href={`#/sweeps/${encodeURIComponent(r.sweepId)}`}>{r.sweepId}</a> : '–'}</td>
                <td className="muted">{r.codeVersion}</td>
                <td>{formatTime(r.startedAt)}</td>
                <td>{r.regressions}</td>
                <td>{r.improvements}</td>
                <td>{r.notified ? 'sent' : '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}
