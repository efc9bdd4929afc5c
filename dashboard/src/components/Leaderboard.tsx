import { useMemo, useState } from 'react';
import { betterText, formatMeanStd, formatScale, pivotLeaderboard, sortPivotRows, type LeaderboardRow, type SortKey, NO_VALUE } from '../lib';

/** Variants × rungs, mean ± std over seeds; click a header to sort (again to reverse). */
export function Leaderboard({ rows, mode }: { rows: LeaderboardRow[]; mode: 'min' | 'max' }) {
  const pivot = useMemo(() => pivotLeaderboard(rows), [rows]);
  const lastRung = pivot.rungs.at(-1)?.rungIndex;
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean } | null>(null);
  const effective = sort ?? { key: lastRung === undefined ? ({ by: 'variant' } as SortKey) : { by: 'rung', rungIndex: firstRungWithValues(pivot, lastRung) }, desc: false };
  const sorted = sortPivotRows(pivot.rows, effective.key, mode, effective.desc);
  const click = (key: SortKey) =>
    setSort((s) => ({ key, desc: s !== null && JSON.stringify(s.key) === JSON.stringify(key) ? !s.desc : false }));
  const arrow = (key: SortKey) => (JSON.stringify(effective.key) === JSON.stringify(key) ? (effective.desc ? ' ▾' : ' ▴') : '');
  if (!rows.length) return <p className="muted">No succeeded trial reports this metric yet.</p>;
  return (
    <table className="leaderboard" data-testid="leaderboard">
      <caption className="direction" data-testid="leaderboard-direction">
        {betterText(mode)}; bold = best in its rung
      </caption>
      <thead>
        <tr>
          <th className="sortable" onClick={() => click({ by: 'variant' })}>
            variant{arrow({ by: 'variant' })}
          </th>
          {pivot.rungs.map((r) => (
            <th key={r.rungIndex} className="sortable num" onClick={() => click({ by: 'rung', rungIndex: r.rungIndex })} data-rung={r.rungIndex}>
              {r.rungName}
              {r.scaleValue !== null ? <small> ({formatScale(r.scaleValue)})</small> : null}
              {arrow({ by: 'rung', rungIndex: r.rungIndex })}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {sorted.map((v) => (
          <tr key={v.variantIndex} data-variant={v.variantName}>
            <td>{v.variantName}</td>
            {pivot.rungs.map((r) => {
              const c = v.cells[r.rungIndex];
              return (
                <td
                  key={r.rungIndex}
                  className={`num ${c?.rank === 1 ? 'best' : ''}`}
                  data-rung={r.rungIndex}
                  data-mean={c?.mean ?? ''}
                  title={c ? `n = ${c.count}${c.rank ? `, rank ${c.rank}` : ''}` : ''}
                >
                  {c ? formatMeanStd(c.mean, c.std) : NO_VALUE}
                  {c && c.count ? <small className="n"> n={c.count}</small> : null}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The largest rung at which some variant has a value (promotion leaves upper rungs sparse). */
function firstRungWithValues(pivot: ReturnType<typeof pivotLeaderboard>, fallback: number): number {
  for (let i = pivot.rungs.length - 1; i >= 0; i--) {
    const r = pivot.rungs[i]!.rungIndex;
    if (pivot.rows.some((v) => v.cells[r]?.mean !== null && v.cells[r]?.mean !== undefined)) return r;
  }
  return fallback;
}
