import { Area, CartesianGrid, ComposedChart, ErrorBar, Line, LineChart, ResponsiveContainer, Scatter, Tooltip, XAxis, YAxis } from 'recharts';
import { useState } from 'react';
import { formatNumber, formatScale, scalingSeries, seriesColor, seriesDash, type ScalingAnalysis, type SeedSpread } from '../lib';
import type { Series } from '../queries';

/**
 * Metric against scale (log x): per variant the observed means with ± 1 sd over seeds (colour and
 * dash pattern per variant), the fitted law (thin, dotted) and the extrapolation to the target
 * with its interval (band + error bar). Hovering or clicking a legend entry brings that variant
 * forward and fades the others.
 */
export function ScalingPlot({ analysis, spread = [], logY = false }: { analysis: ScalingAnalysis; spread?: readonly SeedSpread[]; logY?: boolean }) {
  const series = scalingSeries(analysis, spread);
  const [pinned, setPinned] = useState<string | null>(null);
  const [hovered, setHovered] = useState<string | null>(null);
  const focus = hovered ?? pinned;
  const opacity = (v: string) => (focus === null || focus === v ? 1 : 0.15);
  const xs = [...analysis.rungs, ...(analysis.target ? [analysis.target] : [])];
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  return (
    <div className="chart" data-testid="scaling-plot">
      <ResponsiveContainer width="100%" height={340}>
        <ComposedChart margin={{ top: 10, right: 24, bottom: 10, left: 10 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis
            dataKey="x"
            type="number"
            scale="log"
            domain={[xMin / 1.5, xMax * 1.5]}
            allowDataOverflow
            ticks={xs}
            tickFormatter={(v: number) => formatScale(v)}
            label={{ value: 'scale', position: 'insideBottomRight', offset: -4 }}
          />
          <YAxis
            type="number"
            scale={logY ? 'log' : 'auto'}
            domain={['auto', 'auto']}
            tickFormatter={(v: number) => formatNumber(v, 3)}
            width={64}
            label={{ value: analysis.metric, angle: -90, position: 'insideLeft' }}
          />
          <Tooltip formatter={(v) => (Array.isArray(v) ? v.map((x) => formatNumber(Number(x))).join(' – ') : formatNumber(Number(v)))} labelFormatter={(v) => `scale ${formatScale(Number(v))}`} />
          {series.map((s, i) =>
            s.band.length ? (
              <Area
                key={`band-${s.variant}`}
                data={s.band.map((b) => ({ x: b.x, range: [b.lo, b.hi] }))}
                dataKey="range"
                name={`${s.variant} interval`}
                stroke="none"
                fill={seriesColor(i)}
                fillOpacity={0.15 * opacity(s.variant)}
                isAnimationActive={false}
                legendType="none"
              />
            ) : null,
          )}
          {series.map((s, i) =>
            s.fit.length ? (
              <Line
                key={`fit-${s.variant}`}
                data={s.fit}
                dataKey="y"
                name={`${s.variant} fit`}
                stroke={seriesColor(i)}
                strokeOpacity={0.7 * opacity(s.variant)}
                strokeDasharray="2 2"
                strokeWidth={1}
                dot={false}
                activeDot={false}
                isAnimationActive={false}
                legendType="none"
              />
            ) : null,
          )}
          {series.map((s, i) => (
            <Line
              key={`obs-${s.variant}`}
              className="scaling-line"
              data={s.observed.map((p) => ({ ...p, err: p.sd ?? 0 }))}
              dataKey="y"
              name={s.variant}
              stroke={seriesColor(i)}
              strokeOpacity={opacity(s.variant)}
              strokeDasharray={seriesDash(i)}
              strokeWidth={focus === s.variant ? 3 : 2}
              dot={{ r: 3.5, fillOpacity: opacity(s.variant), strokeOpacity: opacity(s.variant) }}
              isAnimationActive={false}
            >
              {s.observed.some((p) => p.sd !== undefined) ? (
                <ErrorBar dataKey="err" direction="y" width={5} stroke={seriesColor(i)} strokeOpacity={opacity(s.variant)} />
              ) : null}
            </Line>
          ))}
          {series.map((s, i) =>
            s.prediction ? (
              <Scatter
                key={`pred-${s.variant}`}
                data={[{ x: s.prediction.x, y: s.prediction.y, err: [s.prediction.y - s.prediction.lo, s.prediction.hi - s.prediction.y] }]}
                dataKey="y"
                name={`${s.variant} prediction`}
                fill={seriesColor(i)}
                fillOpacity={opacity(s.variant)}
                shape="diamond"
                isAnimationActive={false}
                legendType="none"
              >
                <ErrorBar dataKey="err" direction="y" width={6} stroke={seriesColor(i)} strokeOpacity={opacity(s.variant)} />
              </Scatter>
            ) : null,
          )}
        </ComposedChart>
      </ResponsiveContainer>
      <Legend names={series.map((s) => s.variant)} dashed focus={focus} onHover={setHovered} onToggle={(n) => setPinned((p) => (p === n ? null : n))} />
    </div>
  );
}

/** Colour (and dash pattern) key; with handlers, an entry highlights its line on hover and pins it on click. */
export function Legend({
  names,
  dashed = false,
  focus = null,
  onHover,
  onToggle,
}: {
  names: string[];
  dashed?: boolean;
  focus?: string | null;
  onHover?: (name: string | null) => void;
  onToggle?: (name: string) => void;
}) {
  return (
    <div className="legend" data-testid="legend">
      {names.map((n, i) => (
        <button
          type="button"
          key={n}
          className={`legend-item${focus === n ? ' focus' : ''}`}
          aria-pressed={onToggle ? focus === n : undefined}
          disabled={!onToggle}
          onMouseEnter={() => onHover?.(n)}
          onMouseLeave={() => onHover?.(null)}
          onClick={() => onToggle?.(n)}
        >
          <svg width="28" height="10" aria-hidden="true">
            <line x1="1" y1="5" x2="27" y2="5" stroke={seriesColor(i)} strokeWidth="3" strokeDasharray={dashed ? seriesDash(i) : undefined} />
          </svg>{' '}
          {n}
        </button>
      ))}
    </div>
  );
}

/** Metric curves (value against step), one line per (trial, series). */
export function CurvesChart({ lines, height = 280, testId = 'curves' }: { lines: { label: string; series: Series }[]; height?: number; testId?: string }) {
  return (
    <div className="chart" data-testid={testId}>
      <ResponsiveContainer width="100%" height={height}>
        <LineChart margin={{ top: 10, right: 24, bottom: 10, left: 10 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="step" type="number" domain={['dataMin', 'dataMax']} label={{ value: 'step', position: 'insideBottomRight', offset: -4 }} />
          <YAxis type="number" domain={['auto', 'auto']} tickFormatter={(v: number) => formatNumber(v, 3)} width={64} />
          <Tooltip formatter={(v) => formatNumber(Number(v))} labelFormatter={(v) => `step ${v}`} />
          {lines.map((l, i) => (
            <Line
              key={l.label}
              data={l.series.points}
              dataKey="value"
              name={l.label}
              stroke={seriesColor(i)}
              strokeWidth={1.5}
              dot={l.series.points.length < 30}
              isAnimationActive={false}
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
      <Legend names={lines.map((l) => l.label)} />
    </div>
  );
}
