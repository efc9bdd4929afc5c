import { Fragment, useEffect, useState } from 'react';
import { gql, subscribe, useQuery } from '../api';
import { CurvesChart } from '../components/Charts';
import { ErrorNote, Json, LiveDot, Section, StatusBadge } from '../components/common';
import { formatNumber, formatScale, formatSeconds, formatTime, resultMetrics, NO_VALUE } from '../lib';
import { PROGRESS_SUBSCRIPTION, TRIAL_LOGS_QUERY, TRIAL_QUERY, type ProgressEvent, type TrialData, type TrialLogsData } from '../queries';

/** Bytes of log asked for; enough for the last lines shown. */
const LOG_TAIL_BYTES = 8000;
const LOG_LINES = 40;

function lastLines(text: string, n: number): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.slice(-n).join('\n');
}

/**
 * One trial: why it failed and the end of its log first (when it did), then config, result,
 * curves (one chart per series), events. Reloads when its sweep changes.
 */
export function TrialPage({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const { data, error, loading } = useQuery<TrialData>(TRIAL_QUERY, { id }, [version]);
  const trial = data?.trial ?? null;
  const sweepId = trial?.sweep.id;
  const [live, setLive] = useState(false);
  const [ended, setEnded] = useState(false);
  useEffect(() => {
    if (!sweepId) return;
    setEnded(false);
    let first = true;
    return subscribe<ProgressEvent>(PROGRESS_SUBSCRIPTION, { id: sweepId }, {
      onNext: () => {
        if (!first) setVersion((v) => v + 1);
        first = false;
      },
      onState: setLive,
      onComplete: () => setEnded(true),
    });
  }, [sweepId]);

  // Asked apart from the trial: a log the executor cannot give must not hide the rest of the page.
  const attempts = trial?.attempts ?? 0;
  const [log, setLog] = useState<{ text: string | null; error: string | null } | null>(null);
  useEffect(() => {
    if (attempts < 1) return;
    const controller = new AbortController();
    gql<TrialLogsData>(TRIAL_LOGS_QUERY, { id, tail: LOG_TAIL_BYTES }, controller.signal)
      .then((d) => setLog({ text: d.trial?.logs ?? null, error: null }))
      .catch((e: Error) => !controller.signal.aborted && setLog({ text: null, error: e.message }));
    return () => controller.abort();
  }, [id, attempts, version]);

  if (error && !trial) return <ErrorNote error={error} />;
  if (!trial) return <p className="muted">{loading ? 'loading…' : `No trial ${id}.`}</p>;
  const logLines = log?.text ? lastLines(log.text, LOG_LINES) : null;
  return (
    <div>
      <div className="toolbar">
        <h1>
          <a href="#/">Sweeps</a> / <a href={`#/sweeps/${trial.sweep.id}`}>{trial.sweep.name}</a> / {trial.variantName} · seed {trial.seed} · {trial.rungName}
        </h1>
        <StatusBadge status={trial.status} />
        <LiveDot live={live} ended={ended} />
      </div>
      {trial.status === 'failed' ? (
        <Section title="Failed" id="failure">
          <p className="failure" data-testid="failure-reason">
            {trial.exitReason ?? 'No reason was recorded.'} <span className="muted">(attempt {trial.attempts} of {trial.maxAttempts})</span>
          </p>
        </Section>
      ) : null}
      {attempts > 0 ? (
        <Section title={`Log (last ${LOG_LINES} lines of the latest attempt)`} id="log">
          {log?.error ? <ErrorNote error={log.error} /> : null}
          {logLines ? (
            <pre className="log-tail" data-testid="log-tail">
              {logLines}
            </pre>
          ) : (
            <p className="muted" data-testid="log-none">
              {log ? 'No log from this trial’s executor.' : 'loading…'}
            </p>
          )}
        </Section>
      ) : null}
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
            <dd>{trial.exitReason ?? NO_VALUE}</dd>
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
