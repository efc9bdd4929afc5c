import { useEffect, useState } from 'react';
import { subscribe, useQuery } from '../api';
import { CountsText, ErrorNote, ProgressBar, StatusBadge } from '../components/common';
import { formatSeconds, formatTime } from '../lib';
import { PROGRESS_SUBSCRIPTION, SWEEPS_QUERY, type ProgressEvent, type SweepListItem, type SweepsData } from '../queries';

const ACTIVE = new Set(['pending', 'running']);
const PAGE = 50;

/** Newest sweeps first; sweeps still pending or running update live through `sweepProgress`. */
export function SweepsList() {
  const [status, setStatus] = useState('');
  const [name, setName] = useState('');
  const [after, setAfter] = useState<string[]>([]);
  const filter = { ...(status ? { status } : {}), ...(name ? { name } : {}) };
  const { data, error, loading } = useQuery<SweepsData>(SWEEPS_QUERY, { first: PAGE, after: after.at(-1) ?? null, filter });
  const [live, setLive] = useState<Record<string, Partial<SweepListItem>>>({});

  const activeIds = (data?.sweeps.edges ?? []).map((e) => e.node).filter((s) => ACTIVE.has(s.status)).map((s) => s.id).slice(0, 20);
  const activeKey = activeIds.join(',');
  useEffect(() => {
    const stops = activeIds.map((id) =>
      subscribe<ProgressEvent>(PROGRESS_SUBSCRIPTION, { id }, {
        onNext: (d) => {
          if (d.sweepProgress) setLive((m) => ({ ...m, [id]: d.sweepProgress! }));
        },
      }),
    );
    return () => stops.forEach((s) => s());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [activeKey]);

  const sweeps = (data?.sweeps.edges ?? []).map((e) => ({ ...e.node, ...(live[e.node.id] ?? {}) }) as SweepListItem);
  return (
    <div>
      <div className="toolbar">
        <h1>Sweeps {data ? <small className="muted">({data.sweeps.totalCount})</small> : null}</h1>
        <input placeholder="filter by name" value={name} onChange={(e) => (setName(e.target.value), setAfter([]))} />
        <select value={status} onChange={(e) => (setStatus(e.target.value), setAfter([]))}>
          <option value="">any status</option>
          {['pending', 'running', 'succeeded', 'failed', 'cancelled', 'imported'].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </div>
      <ErrorNote error={error} />
      {loading && !data ? <p className="muted">loading…</p> : null}
      {data && !sweeps.length ? <p className="muted">No sweeps yet. Launch one with <code>ladder launch spec.yaml</code>.</p> : null}
      {sweeps.length ? (
        <table className="sweeps" data-testid="sweeps">
          <thead>
            <tr>
              <th>name</th>
              <th>project</th>
              <th>kind</th>
              <th>status</th>
              <th style={{ width: '22%' }}>progress</th>
              <th>trials</th>
              <th className="num" title="trial run time summed; GPU time in brackets when trials used GPUs">run time</th>
              <th>created</th>
            </tr>
          </thead>
          <tbody>
            {sweeps.map((s) => (
              <tr key={s.id} data-sweep-id={s.id}>
                <td>
                  <a href={`#/sweeps/${s.id}`}>{s.name}</a>
                </td>
                <td>{s.project}</td>
                <td>{s.kind}</td>
                <td>
                  <StatusBadge status={s.status} />
                </td>
                <td>
                  <ProgressBar counts={s.progress.counts} total={s.progress.total} />
                </td>
                <td>
                  <CountsText counts={s.progress.counts} /> <span className="muted">/ {s.progress.total}</span>
                </td>
                <td className="num">
                  {formatSeconds(s.progress.wallSeconds)}
                  {s.progress.gpuSeconds > 0 ? <small className="muted"> (GPU {formatSeconds(s.progress.gpuSeconds)})</small> : null}
                </td>
                <td>{formatTime(s.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="pager">
        {after.length ? <button onClick={() => setAfter((a) => a.slice(0, -1))}>← newer</button> : null}
        {data?.sweeps.pageInfo.hasNextPage ? <button onClick={() => setAfter((a) => [...a, data.sweeps.pageInfo.endCursor!])}>older →</button> : null}
      </div>
    </div>
  );
}
