import { Fragment, useEffect, useState } from 'react';
import { subscribe, useQuery } from '../api';
import { CurvesChart } from '../components/Charts';
import { ErrorNote, Json, LiveDot, Section, StatusBadge } from '../components/common';
import { formatNumber, formatScale, formatSeconds, formatTime, resultMetrics } from '../lib';
import { PROGRESS_SUBSCRIPTION, TRIAL_QUERY, type ProgressEvent, type TrialData } from '../queries';

/** One trial: config, result, curves (one chart per series), events. Reloads when its sweep changes. */
export function TrialPage({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const { data, error, loading } = useQuery<TrialData>(TRIAL_QUERY, { id }, [version]);
  const trial = data?.trial ?? null;
  const sweepId = trial?.sweep.id;
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!sweepId) return;
    let first = true;
    return subscribe<ProgressEvent>(PROGRESS_SUBSCRIPTION, { id: sweepId }, {
      onNext: () => {
        if (!first) setVersion((v) => v + 1);
        first = false;
      },
      onState: setLive,
    });
  }, [sweepId]);

  if (error && !trial) return <ErrorNote error={error} />;
  if (!trial) return <p className="muted">{loading ? 'loading…' : `No trial ${id}.`}</p>;
  return (
    <div>
      <div className="toolbar">
        <h1>
          <a href="#/">Sweeps</a> / <a href={`#/sweeps/${trial.sweep.id}`}>{trial.sweep.name}</a> / {trial.variantName} · seed {trial.seed} · {trial.rungName}
        </h1>
        <StatusBadge status={trial.status} />
        <LiveDot live={live} />
      </div>
      <div className="grid2">
        <Section title="Trial">
          <dl className="facts">
            <dt>id</dt>
            <dd><code>{trial.id}</code></dd>
            <dt>rung</dt>
            <dd>{trial.rungName} (scale {formatScale(trial.scaleValue)})</dd>
            <dt>attempts</dt>
            <dd>{trial.attempts} of {trial.maxAttempts}</dd>
            <dt>exit reason</dt>
            <dd>{trial.exitReason ?? '—'}</dd>
            <dt>started</dt>
            <dd>{formatTime(trial.timings.startedAt)}</dd>
            <dt>finished</dt>
            <dd>{formatTime(trial.timings.finishedAt)}</dd>
            <dt>wall / GPU</dt>
            <dd>{formatSeconds(trial.timings.wallSeconds)} / {formatSeconds(trial.timings.gpuSeconds)}</dd>
            {trial.reusedFrom ? (
              <>
                <dt>reused from</dt>
                <dd><a href={`#/trials/${trial.reusedFrom}`}>{trial.reusedFrom}</a></dd>
              </>
            ) : null}
            <dt>identity</dt>
            <dd><code className="small">{trial.identity}</code></dd>
          </dl>
        </Section>
        <Section title="Result">
          {trial.result ? (
            <>
              <dl className="facts" data-testid="result-metrics">
                {Object.entries(resultMetrics(trial.result)).map(([k, v]) => (
                  <Fragment key={k}>
                    <dt>{k}</dt>
                    <dd>{formatNumber(v)}</dd>
                  </Fragment>
                ))}
              </dl>
              <details>
                <summary>full result</summary>
                <Json value={trial.result} />
              </details>
            </>
          ) : (
            <p className="muted">No result yet.</p>
          )}
          <h3>Config</h3>
          <Json value={trial.config} />
        </Section>
      </div>
      <Section title="Curves">
        {trial.metrics.length ? (
          <div className="curves-grid">
            {trial.metrics.map((m) => (
              <div key={m.name}>
                <h3>
                  {m.name} <small className="muted">({m.totalPoints} points stored, {m.points.length} shown)</small>
                </h3>
                <CurvesChart lines={[{ label: m.name, series: m }]} height={220} testId={`curve-${m.name}`} />
              </div>
            ))}
          </div>
        ) : (
          <p className="muted">No metric points.</p>
        )}
      </Section>
      <Section title={`Events (${trial.events.length})`}>
        <table className="events" data-testid="events">
          <thead>
            <tr>
              <th>time</th>
              <th>type</th>
              <th>data</th>
            </tr>
          </thead>
          <tbody>
            {trial.events.map((e) => (
              <tr key={e.id}>
                <td>{formatTime(e.time)}</td>
                <td>{e.type}</td>
                <td><code className="small">{JSON.stringify(e.data)}</code></td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}
