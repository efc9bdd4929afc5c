import { useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useQuery } from '../api';
import { capacityChartRows, generatorCounts, hostLoadStart, replicaScaling, thresholdLines } from '../capacity-lib';
import { ErrorNote, Json, Section, StatusBadge } from '../components/common';
import { formatTime } from '../lib';
import { CAPACITY_RUN_QUERY, CAPACITY_RUNS_QUERY, type CapacityRunData, type CapacityRunsData } from '../queries';

const num = (v: number | null | undefined, digits = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');

/** `#/capacity`: capacity runs, newest first; `#/capacity/<id>`: one run's charts. */
export function CapacityPage({ id }: { id: string | null }) {
  return id ? <CapacityRunView id={id} /> : <CapacityRunList />;
}

function CapacityRunList() {
  const [after, setAfter] = useState<string[]>([]);
  const { data, error, loading } = useQuery<CapacityRunsData>(CAPACITY_RUNS_QUERY, { first: 50, after: after.at(-1) ?? null });
  const runs = (data?.capacityRuns.edges ?? []).map((e) => e.node);
  return (
    <div>
      <h1>Capacity runs</h1>
      <ErrorNote error={error} />
      {loading && !data ? <p className="muted">loading…</p> : null}
      {data && !runs.length ? <p className="muted">No capacity runs yet: `ladder capacity run loadtests/scenarios/http.yaml --local`.</p> : null}
      <table>
        <thead>
          <tr><th>run</th><th>kind</th><th>status</th><th>knee (ops/s)</th><th>stopped</th><th>started</th><th>load</th></tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id}>
              <td><a href={`#/capacity/${encodeURIComponent(r.id)}`}>{r.id}</a></td>
              <td>{r.kind}</td>
              <td><StatusBadge status={r.status} /></td>
              <td>{r.knee === null ? '–' : `${num(r.knee)}${r.kneeIsLowerBound ? '+' : ''}`}</td>
              <td>{r.stopReason ?? ''}</td>
              <td>{formatTime(r.startedAt)}</td>
              <td className="muted">{num(hostLoadStart(r.host))}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data?.capacityRuns.pageInfo.hasNextPage ? <button onClick={() => setAfter((a) => [...a, data.capacityRuns.pageInfo.endCursor!])}>older</button> : null}
    </div>
  );
}

function CapacityRunView({ id }: { id: string }) {
  const { data, error, loading } = useQuery<CapacityRunData>(CAPACITY_RUN_QUERY, { id });
  const run = data?.capacityRun;
  const counts = run ? generatorCounts(run.steps) : [];
  const [gens, setGens] = useState<number | null>(null);
  const shown = gens ?? counts.at(-1);
  if (loading && !data) return <p className="muted">loading…</p>;
  if (error) return <ErrorNote error={error} />;
  if (!run) return <p>No capacity run “{id}”.</p>;
  const rows = capacityChartRows(run.steps, shown);
  const lines = thresholdLines(run.thresholds);
  const scaling = replicaScaling(run.scaling);
  const maxOffered = Math.max(1, ...rows.map((r) => r.offered));
  // Relative achieved thresholds are lines through the origin: drawn as a series on the same rows.
  const throughputRows = rows.map((r) => ({ ...r, ...Object.fromEntries(lines.flatMap((l, i) => (l.chart === 'throughput' && 'factor' in l ? [[`t${i}`, l.factor * r.offered]] : []))) }));
  const knee = counts.length > 1 && shown !== counts.at(-1) ? null : run.knee;
  return (
    <div>
      <h1>
        Capacity run <code>{run.id}</code> <StatusBadge status={run.status} />
      </h1>
      <p>
        {run.scenario} ({run.kind}){run.target ? ` → ${run.target}` : ''} · knee{' '}
        <strong>{run.knee === null ? 'none' : `${num(run.knee)} ops/s${run.kneeIsLowerBound ? ' or more' : ''}`}</strong> · stopped: {run.stopReason ?? '–'} · thresholds: {run.thresholds.join(', ')}
      </p>
      {run.error ? <ErrorNote error={run.error} /> : null}
      {counts.length > 1 ? (
        <p>
          generators:{' '}
          {counts.map((g) => (
            <button key={g} className={g === shown ? 'active' : ''} onClick={() => setGens(g)}>
              {g}
            </button>
          ))}
        </p>
      ) : null}
      <Section title="Latency against offered rate (ms)">
        <ResponsiveContainer width="100%" height={280}>
          <LineChart data={rows}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="offered" type="number" domain={[0, maxOffered]} name="offered ops/s" />
            <YAxis />
            <Tooltip />
            <Legend />
            <Line dataKey="p50" name="p50" stroke="#4c78a8" dot />
            <Line dataKey="p95" name="p95" stroke="#f58518" dot />
            <Line dataKey="p99" name="p99" stroke="#e45756" dot />
            {lines.map((l, i) => (l.chart === 'latency' ? <ReferenceLine key={i} y={l.ms} stroke="#999" strokeDasharray="4 4" label={l.label} /> : null))}
            {knee !== null ? <ReferenceLine x={knee} stroke="#54a24b" label={`knee ${num(knee)}`} /> : null}
          </LineChart>
        </ResponsiveContainer>
      </Section>
      <Section title="Achieved against offered rate (ops/s)">
        <ResponsiveContainer width="100%" height={280}>
          <LineChart data={throughputRows}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="offered" type="number" domain={[0, maxOffered]} />
            <YAxis />
            <Tooltip />
            <Legend />
            <Line dataKey="achieved" name="achieved" stroke="#4c78a8" dot />
            {lines.map((l, i) =>
              l.chart !== 'throughput' ? null : 'factor' in l ? (
                <Line key={i} dataKey={`t${i}`} name={l.label} stroke="#999" strokeDasharray="4 4" dot={false} />
              ) : (
                <ReferenceLine key={i} y={l.rate} stroke="#999" strokeDasharray="4 4" label={l.label} />
              ),
            )}
            {knee !== null ? <ReferenceLine x={knee} stroke="#54a24b" label={`knee ${num(knee)}`} /> : null}
          </LineChart>
        </ResponsiveContainer>
      </Section>
      <Section title="Steps">
        <table>
          <thead>
            <tr><th>#</th><th>gens</th><th>offered</th><th>achieved</th><th>p50</th><th>p95</th><th>p99</th><th>errors</th><th>result</th></tr>
          </thead>
          <tbody>
            {run.steps.map((s) => (
              <tr key={s.index}>
                <td>{s.index + 1}</td>
                <td>{s.generators}</td>
                <td>{num(s.offered)}</td>
                <td>{num(s.achieved)}</td>
                <td>{num(s.p50Ms)}</td>
                <td>{num(s.p95Ms)}</td>
                <td>{num(s.p99Ms)}</td>
                <td>{num(s.errorRate * 100, 2)}%</td>
                <td>{s.incomplete ? `incomplete: ${s.incomplete}` : s.passed ? '✓' : `✗ ${s.thresholds.filter((t) => !t.passed).map((t) => t.threshold).join(', ')}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      {scaling ? (
        <Section title="Replicas">
          <p>
            For {num(scaling.forRate)} ops/s: <strong>{scaling.replicas ?? 'not reachable'}</strong> replicas ({scaling.level === null ? '?' : Math.round(scaling.level * 100)}% interval {scaling.replicasInterval[0] ?? '–'}–{scaling.replicasInterval[1] ?? '–'})
          </p>
          {scaling.notes.map((n) => (
            <p key={n} className="muted">{n}</p>
          ))}
          <Json value={run.scaling} />
        </Section>
      ) : null}
    </div>
  );
}
