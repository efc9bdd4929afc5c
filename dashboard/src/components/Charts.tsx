import { Area, CartesianGrid, ComposedChart, ErrorBar, Line, LineChart, ResponsiveContainer, Scatter, Tooltip, XAxis, YAxis } from 'recharts';
import { formatNumber, formatScale, scalingSeries, seriesColor, type ScalingAnalysis } from '../lib';
import type { Series } from '../queries';

/**
 * Metric against scale (log x): per variant the observed means (solid, dots), the fitted law
 * (dashed) and the extrapolation to the target with its interval (band + error bar).
 */
export function ScalingPlot({ analysis, logY = false }: { analysis: ScalingAnalysis; logY?: boolean }) {
  const series = scalingSeries(analysis);
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
            ticks={analysis.rungs}
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
                fillOpacity={0.15}
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
                strokeDasharray="5 4"
                strokeWidth={1.25}
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
              data={s.observed}
              dataKey="y"
              name={s.variant}
              stroke={seriesColor(i)}
              strokeWidth={2}
              dot={{ r: 3.5 }}
              isAnimationActive={false}
            />
          ))}
          {series.map((s, i) =>
            s.prediction ? (
              <Scatter
                key={`pred-${s.variant}`}
                data={[{ x: s.prediction.x, y: s.prediction.y, err: [s.prediction.y - s.prediction.lo, s.prediction.hi - s.prediction.y] }]}
                dataKey="y"
                name={`${s.variant} prediction`}
                fill={seriesColor(i)}
                shape="diamond"
                isAnimationActive={false}
                legendType="none"
              >
                <ErrorBar dataKey="err" direction="y" width={6} stroke={seriesColor(i)} />
              </Scatter>
            ) : null,
          )}
        </ComposedChart>
      </ResponsiveContainer>
      <Legend names={series.map((s) => s.variant)} />
    </div>
  );
}

export function Legend({ names }: { names: string[] }) {
  return (
    <div className="legend">
      {names.map((n, i) => (
        <span key={n}>
          <i style={{ background: seriesColor(i) }} /> {n}
        </span>
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
