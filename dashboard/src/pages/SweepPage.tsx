import { useEffect, useMemo, useRef, useState } from 'react';
import { gql, subscribe, useQuery } from '../api';
import { CurvesChart, ScalingPlot } from '../components/Charts';
import { CountsText, ErrorNote, Json, LiveDot, ProgressBar, Section, StatusBadge } from '../components/common';
import { Heatmap } from '../components/Heatmap';
import { Leaderboard } from '../components/Leaderboard';
import { Promotions } from '../components/Promotions';
import { VerdictCard } from '../components/Verdict';
import { betterText, chooseMetric, formatNumber, formatScale, formatSeconds, formatTime, metricNames, resultMetrics, wallClockEta, NO_VALUE } from '../lib';
import {
  curvesQuery,
  LEADERBOARD_QUERY,
  PROGRESS_SUBSCRIPTION,
  SERIES_NAMES_QUERY,
  SWEEP_QUERY,
  type CurveTrial,
  type LeaderboardData,
  type ProgressEvent,
  type SeriesNamesData,
  type SweepData,
  type SweepProgressFields,
  type TrialListItem,
} from '../queries';

type Mode = 'min' | 'max';

function specConcurrency(spec: unknown): number {
  const c = spec && typeof spec === 'object' ? (spec as { concurrency?: unknown }).concurrency : undefined;
  return typeof c === 'number' && c >= 1 ? c : 1;
}

/**
 * One sweep: progress per rung, leaderboard, scaling plot, consistency heatmaps, promotions,
 * trials and their curves. `sweepProgress` pushes status changes; each one that changes the
 * counts reloads the sweep's details and leaderboard (no timer, no polling).
 */
export function SweepPage({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const sweepQ = useQuery<SweepData>(SWEEP_QUERY, { id }, [version]);
  const sweep = sweepQ.data?.sweep ?? null;
  const [progress, setProgress] = useState<SweepProgressFields | null>(null);
  const [live, setLive] = useState(false);
  const [ended, setEnded] = useState(false);
  const [updates, setUpdates] = useState(0);

  // Live: the subscription's first event is the sweep now, later ones follow every change.
  const lastKey = useRef<string>('');
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    lastKey.current = '';
    setEnded(false);
    const stop = subscribe<ProgressEvent>(PROGRESS_SUBSCRIPTION, { id }, {
      onNext: (d) => {
        const p = d.sweepProgress;
        if (!p) return;
        setProgress(p);
        setUpdates((n) => n + 1);
        const key = JSON.stringify([p.status, p.currentRung, p.progress.counts]);
        if (lastKey.current && key !== lastKey.current) {
          if (timer) clearTimeout(timer);
          timer = setTimeout(() => setVersion((v) => v + 1), 250);
        }
        lastKey.current = key;
      },
      onState: setLive,
      onComplete: () => setEnded(true),
    });
    return () => {
      if (timer) clearTimeout(timer);
      stop();
    };
  }, [id]);

  const results = useMemo(() => (sweep?.trials.edges ?? []).map((e) => e.node.result), [sweep]);
  const names = useMemo(() => metricNames(results), [results]);
  const defaults = chooseMetric(sweep?.spec, names);
  const [metricChoice, setMetric] = useState<string | null>(null);
  const [modeChoice, setMode] = useState<Mode | null>(null);
  // Until a trial reports a metric, an undeclared default would only show an empty table.
  const metric = metricChoice ?? (names.length || defaults.source === 'analysis' || defaults.source === 'promotion' ? defaults.metric : null);
  const mode: Mode = modeChoice ?? defaults.mode;

  const [board, setBoard] = useState<LeaderboardData['sweep'] | null>(null);
  const [boardError, setBoardError] = useState<string | null>(null);
  useEffect(() => {
    if (!metric) return;
    const controller = new AbortController();
    gql<LeaderboardData>(LEADERBOARD_QUERY, { id, metric, mode }, controller.signal)
      .then((d) => (setBoard(d.sweep), setBoardError(null)))
      .catch((e: Error) => !controller.signal.aborted && setBoardError(e.message));
    return () => controller.abort();
  }, [id, metric, mode, version]);

  // The seed spread of the analysed metric, for the scaling plot's error bars.
  const analysisKey = sweep?.scalingAnalysis ? `${sweep.scalingAnalysis.metric}\u0000${sweep.scalingAnalysis.mode}` : null;
  const [spread, setSpread] = useState<LeaderboardData['sweep'] | null>(null);
  useEffect(() => {
    if (!analysisKey) return;
    const [aMetric, aMode] = analysisKey.split('\u0000');
    const controller = new AbortController();
    gql<LeaderboardData>(LEADERBOARD_QUERY, { id, metric: aMetric, mode: aMode }, controller.signal)
      .then((d) => setSpread(d.sweep))
      .catch(() => {}); // the plot is drawn without error bars then
    return () => controller.abort();
  }, [id, analysisKey, version]);

  if (sweepQ.error && !sweep) return <ErrorNote error={sweepQ.error} />;
  if (!sweep) return <p className="muted">{sweepQ.loading ? 'loading…' : `No sweep ${id}.`}</p>;
  const now = { ...sweep, ...(progress ?? {}) };
  const analysis = sweep.scalingAnalysis;
  const imported = now.status === 'imported';
  const running = now.status === 'running' || now.status === 'pending';
  const concurrency = specConcurrency(sweep.spec);
  const rungNames = Object.fromEntries(now.progress.rungs.map((r) => [r.rungIndex, r.rungName]));

  return (
    <div>
      <div className="toolbar">
        <h1>
          <a href="#/">Sweeps</a> / <span data-testid="sweep-name">{sweep.name}</span>
        </h1>
        <StatusBadge status={now.status} />
        <LiveDot live={live} ended={ended} />
        <span className="muted" data-testid="updates" data-updates={updates}>
          {sweep.project} · {sweep.kind} · {sweep.executor} · code {sweep.codeVersion.slice(0, 10)} · created {formatTime(sweep.createdAt)}
        </span>
      </div>
      <ErrorNote error={sweepQ.error} />

      <Section title="Verdict" id="verdict">
        {analysis ? <VerdictCard analysis={analysis} imported={imported} /> : <p className="muted">No scaling analysis yet (it is computed after each rung).</p>}
      </Section>

      <Section title="Progress" id="progress">
        <table className="rungs" data-testid="rung-progress">
          <thead>
            <tr>
              <th>rung</th>
              <th style={{ width: '30%' }}>trials</th>
              <th>by status</th>
              <th className="num">run time</th>
              <th className="num">GPU time</th>
              <th className="num" title="wall clock, from the mean time of finished trials and the concurrency">est. remaining</th>
            </tr>
          </thead>
          <tbody>
            {now.progress.rungs.map((r) => (
              <tr key={r.rungIndex} data-rung={r.rungIndex} className={r.rungIndex === now.currentRung ? 'current' : ''}>
                <td>
                  {r.rungName} {r.rungIndex === now.currentRung && now.status === 'running' ? <small>(current)</small> : null}
                </td>
                <td>
                  <ProgressBar counts={r.counts} total={r.total} />
                </td>
                <td data-testid={`rung-counts-${r.rungIndex}`}>
                  <CountsText counts={r.counts} /> <span className="muted">/ {r.total}</span>
                </td>
                <td className="num">{formatSeconds(r.wallSeconds)}</td>
                <td className="num">{r.gpuSeconds > 0 ? formatSeconds(r.gpuSeconds) : NO_VALUE}</td>
                <td className="num" data-testid={`rung-eta-${r.rungIndex}`}>{running ? formatSeconds(wallClockEta([r], concurrency)) : ''}</td>
              </tr>
            ))}
            <tr className="total">
              <td>all</td>
              <td>
                <ProgressBar counts={now.progress.counts} total={now.progress.total} />
              </td>
              <td data-testid="total-counts">
                <CountsText counts={now.progress.counts} /> <span className="muted">/ {now.progress.total}</span>
              </td>
              <td className="num">{formatSeconds(now.progress.wallSeconds)}</td>
              <td className="num">{now.progress.gpuSeconds > 0 ? formatSeconds(now.progress.gpuSeconds) : NO_VALUE}</td>
              <td className="num" data-testid="total-eta">{running ? formatSeconds(wallClockEta(now.progress.rungs, concurrency)) : ''}</td>
            </tr>
          </tbody>
        </table>
      </Section>

      <Section
        title="Leaderboard"
        id="leaderboard"
        right={
          <span className="controls">
            <label>
              metric{' '}
              <select data-testid="metric-picker" value={metric ?? ''} onChange={(e) => setMetric(e.target.value)}>
                {[...new Set([...(metric ? [metric] : []), ...names])].map((n) => (
                  <option key={n}>{n}</option>
                ))}
              </select>
            </label>
            <label>
              best{' '}
              <select data-testid="mode-picker" value={mode} onChange={(e) => setMode(e.target.value as Mode)}>
                <option value="min">min</option>
                <option value="max">max</option>
              </select>
            </label>
          </span>
        }
      >
        <ErrorNote error={boardError} />
        {metric ? board ? <Leaderboard rows={board.leaderboard} mode={mode} /> : <p className="muted">loading…</p> : <p className="muted">No results yet.</p>}
        <p className="muted small">mean ± sample std over seeds of the final result; n = seeds; {betterText(mode)}.</p>
      </Section>

      <div className="grid2">
        <Section title={analysis ? `Scaling: ${analysis.metric} against scale` : 'Scaling'} id="scaling">
          {analysis && analysis.rungs.length ? (
            <>
              <ScalingPlot analysis={analysis} spread={spread?.leaderboard ?? []} />
              <p className="muted small">
                thick lines (colour and dash per variant): mean over seeds per rung, bars ± 1 sd over seeds; thin dotted: fitted law; ◆ with bar and band:
                prediction at {formatScale(analysis.target)} with its interval. {betterText(analysis.mode)}. Hover or click a legend entry to pick out a variant.
              </p>
            </>
          ) : (
            <p className="muted">{analysis ? 'This sweep has no scale rungs to plot.' : 'No scaling analysis yet (it is computed after each rung).'}</p>
          )}
        </Section>
        <Section title="Consistency between rungs" id="consistency">
          {analysis && analysis.rungs.length ? (
            <div className="heatmaps">
              <Heatmap title="R² of variant means" matrix={analysis.consistency.r2} rungs={analysis.rungs} testId="heatmap-r2" />
              <Heatmap title="Spearman rank correlation" matrix={analysis.consistency.spearman} rungs={analysis.rungs} testId="heatmap-spearman" />
            </div>
          ) : (
            <p className="muted">{analysis ? 'Consistency needs at least two scale rungs.' : 'No analysis yet.'}</p>
          )}
          <p className="muted small">cells: each pair of rungs compared over the variants run at both; red = reversed ranking.</p>
        </Section>
      </div>

      {imported ? null : (
        <Section title="Promotion decisions" id="promotions">
          <Promotions promotions={sweep.promotions} rungNames={rungNames} />
        </Section>
      )}

      <TrialsAndCurves trials={sweep.trials.edges.map((e) => e.node)} total={sweep.trials.totalCount} metric={metric} version={version} />

      <Section title="Spec" id="spec">
        <details>
          <summary>validated spec</summary>
          <Json value={sweep.spec} />
        </details>
      </Section>
    </div>
  );
}

function TrialsAndCurves({ trials, total, metric, version }: { trials: TrialListItem[]; total: number; metric: string | null; version: number }) {
  const [selected, setSelected] = useState<string[] | null>(null);
  const defaultSelection = useMemo(() => {
    const done = trials.filter((t) => t.status === 'succeeded');
    const top = Math.max(...done.map((t) => t.rungIndex), 0);
    return done.filter((t) => t.rungIndex === top).slice(0, 4).map((t) => t.id);
  }, [trials]);
  const chosen = selected ?? defaultSelection;
  const [seriesName, setSeriesName] = useState<string | null>(null);
  const [available, setAvailable] = useState<string[]>([]);
  const [curves, setCurves] = useState<CurveTrial[]>([]);
  const [error, setError] = useState<string | null>(null);

  const first = chosen[0];
  useEffect(() => {
    if (!first) return;
    gql<SeriesNamesData>(SERIES_NAMES_QUERY, { id: first })
      .then((d) => setAvailable((d.trial?.metrics ?? []).map((m) => m.name)))
      .catch((e: Error) => setError(e.message));
  }, [first, version]);
  const name = seriesName ?? (metric && available.includes(metric) ? metric : available[0]) ?? null;

  const chosenKey = chosen.join(',');
  useEffect(() => {
    if (!name || !chosen.length) {
      setCurves([]);
      return;
    }
    const vars: Record<string, unknown> = { names: [name], maxPoints: 300 };
    chosen.forEach((id, i) => (vars[`t${i}`] = id));
    const controller = new AbortController();
    gql<Record<string, CurveTrial | null>>(curvesQuery(chosen.length), vars, controller.signal)
      .then((d) => (setCurves(Object.values(d).filter((t): t is CurveTrial => t !== null)), setError(null)))
      .catch((e: Error) => !controller.signal.aborted && setError(e.message));
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [chosenKey, name, version]);

  const toggle = (id: string) => setSelected((s) => {
    const cur = s ?? defaultSelection;
    return cur.includes(id) ? cur.filter((x) => x !== id) : [...cur, id].slice(-10);
  });
  const lines = curves.flatMap((t) => t.metrics.map((m) => ({ label: `${t.variantName} s${t.seed} ${t.rungName}`, series: m })));

  return (
    <div className="grid2">
      <Section title={`Trials (${trials.length}${total > trials.length ? ` of ${total}` : ''})`} id="trials">
        <div className="scroll">
          <table className="trials" data-testid="trials">
            <thead>
              <tr>
                <th />
                <th>rung</th>
                <th>variant</th>
                <th className="num">seed</th>
                <th>status</th>
                <th className="num">{metric ?? 'result'}</th>
              </tr>
            </thead>
            <tbody>
              {trials.map((t) => (
                <tr key={t.id} data-trial-id={t.id}>
                  <td>
                    <input type="checkbox" checked={chosen.includes(t.id)} onChange={() => toggle(t.id)} aria-label={`plot ${t.id}`} />
                  </td>
                  <td>{t.rungName}</td>
                  <td>
                    <a href={`#/trials/${t.id}`}>{t.variantName}</a>
                  </td>
                  <td className="num">{t.seed}</td>
                  <td>
                    <StatusBadge status={t.status} />
                  </td>
                  <td className="num">{metric ? formatNumber(resultMetrics(t.result)[metric]) : NO_VALUE}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <Section
        title="Curves of selected trials"
        id="curves"
        right={
          <select data-testid="series-picker" value={name ?? ''} onChange={(e) => setSeriesName(e.target.value)}>
            {available.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        }
      >
        <ErrorNote error={error} />
        {lines.length ? <CurvesChart lines={lines} /> : <p className="muted">Select succeeded trials to plot their curves.</p>}
      </Section>
    </div>
  );
}
