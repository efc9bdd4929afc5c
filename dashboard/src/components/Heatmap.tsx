import { formatNumber, formatScale, heatColor, heatTextColor } from '../lib';

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
                    {v === null ? '—' : v.toFixed(2)}
                  </text>
                </g>
              );
            })}
          </g>
        ))}
      </svg>
    </figure>
  );
}
