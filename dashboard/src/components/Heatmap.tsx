import { formatNumber, formatScale, heatColor, heatTextColor, NO_VALUE } from '../lib';

const LEGEND_STOPS = [-1, -0.5, 0, 0.5, 1];

/** The colour scale of `heatColor`: red −1 (reversed ranking), white 0, blue +1; grey = undefined. */
function HeatLegend({ width, id }: { width: number; id: string }) {
  const bar = Math.max(120, width - 80);
  return (
    <svg width={bar + 90} height={34} className="heat-legend" data-testid="heat-legend" role="img" aria-label="colour scale from -1 (red) through 0 (white) to +1 (blue); grey: undefined">
      <defs>
        <linearGradient id={id}>
          {LEGEND_STOPS.map((v) => (
            <stop key={v} offset={`${((v + 1) / 2) * 100}%`} stopColor={heatColor(v)} />
          ))}
        </linearGradient>
      </defs>
      <rect x={8} y={4} width={bar} height={10} fill={`url(#${id})`} stroke="#d1d5db" />
      {LEGEND_STOPS.map((v) => (
        <text key={v} x={8 + ((v + 1) / 2) * bar} y={27} textAnchor="middle">
          {v > 0 ? `+${v}` : v}
        </text>
      ))}
      <rect x={bar + 20} y={4} width={10} height={10} fill={heatColor(null)} />
      <text x={bar + 34} y={13}>n/a</text>
    </svg>
  );
}

/** A rungs × rungs matrix (R², Spearman…) as an SVG grid. */
export function Heatmap({ title, matrix, rungs, testId }: { title: string; matrix: (number | null)[][]; rungs: number[]; testId: string }) {
  const cell = 56;
  const left = 64;
  const top = 28;
  const n = rungs.length;
  return (
    <figure className="heatmap" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <svg width={left + n * cell + 4} height={top + n * cell + 4} role="img" aria-label={title}>
        {rungs.map((r, j) => (
          <text key={`c${j}`} x={left + j * cell + cell / 2} y={top - 8} textAnchor="middle" className="axis">
            {formatScale(r)}
          </text>
        ))}
        {rungs.map((r, i) => (
          <g key={`r${i}`}>
            <text x={left - 6} y={top + i * cell + cell / 2 + 4} textAnchor="end" className="axis">
              {formatScale(r)}
            </text>
            {rungs.map((_, j) => {
              const v = matrix[i]?.[j] ?? null;
              return (
                <g key={j}>
                  <rect x={left + j * cell} y={top + i * cell} width={cell - 2} height={cell - 2} fill={heatColor(v)} rx={3}>
                    <title>{`${formatScale(rungs[i])} vs ${formatScale(rungs[j])}: ${formatNumber(v, 3)}`}</title>
                  </rect>
                  <text x={left + j * cell + cell / 2 - 1} y={top + i * cell + cell / 2 + 3} textAnchor="middle" fill={heatTextColor(v)} className="cell">
                    {v === null ? NO_VALUE : v.toFixed(2)}
                  </text>
                </g>
              );
            })}
          </g>
        ))}
      </svg>
      <HeatLegend width={left + n * cell} id={`${testId}-scale`} />
    </figure>
  );
}
