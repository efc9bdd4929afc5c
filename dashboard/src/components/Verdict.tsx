import { betterText, formatInterval, formatNumber, formatScale, formatSeconds, formatShare, NO_VALUE } from '../lib';
import type { ScalingAnalysis } from '../queries';


/**
 * The sweep's verdict, first on the page: the sentence the CLI prints, the critical rung in a few
 * readable numbers, and the numbers behind them one click away.
 */
export function VerdictCard({ analysis, imported }: { analysis: ScalingAnalysis; imported: boolean }) {
  const cr = analysis.criticalRung;
  const c = analysis.consistency;
  const budget = !imported && analysis.budget && analysis.budget.spent > 0 ? analysis.budget : null;
  const unit = budget?.unit === 'gpu-seconds' ? 'GPU time' : 'device time';
  return (
    <div data-testid="verdict">
      <p className="verdict" data-testid="verdict-text">
        {analysis.verdict || 'No verdict recorded for this analysis.'}
      </p>
      <div className="verdict-facts" data-testid="critical-rung">
        <span>
          critical rung <b>{cr.scale === null ? 'none' : formatScale(cr.scale)}</b>
        </span>
        {cr.r2 !== null ? (
          <span>
            R² <b>{formatNumber(cr.r2, 3)}</b> {cr.interval ? formatInterval(cr.interval) : cr.intervalNote ? <small className="muted">({cr.intervalNote})</small> : null}
          </span>
        ) : null}
        {cr.spearman !== null ? (
          <span>
            ρ <b>{formatNumber(cr.spearman, 2)}</b>
          </span>
        ) : null}
        {cr.sameWinner !== null ? <span>{cr.sameWinner ? 'same winner' : 'the winner changes'}</span> : null}
        {cr.topKAgreement !== null ? (
          <span>
            top-{cr.topK} agree <b>{formatShare(cr.topKAgreement)}</b>
          </span>
        ) : null}
        <span className="muted">
          {analysis.metric}, {betterText(analysis.mode)}; threshold R² ≥ {formatNumber(c.threshold, 2)} with a positive correlation
        </span>
      </div>
      {cr.scale === null ? <p className="muted small">{cr.reason}</p> : null}
      {budget ? (
        <p className="small" data-testid="budget">
          spent {formatSeconds(budget.spent)} of {unit}
          {budget.fullGrid !== null ? ` of the full grid's ${formatSeconds(budget.fullGrid)} (saved ${formatShare(budget.savedShare)})` : ' (the full grid cost is unknown)'}
        </p>
      ) : null}
      <details data-testid="verdict-details">
        <summary>numbers behind the verdict</summary>
        <table className="small">
          <caption className="direction">each rung against the largest ({formatScale(analysis.rungs.at(-1))})</caption>
          <thead>
            <tr>
              <th>rung</th>
              <th className="num">variants</th>
              <th className="num">R²</th>
              <th>interval</th>
              <th className="num">r</th>
              <th className="num">ρ</th>
              <th>winner</th>
              <th className="num">top-{c.topK}</th>
              <th>consistent</th>
            </tr>
          </thead>
          <tbody>
            {c.againstLargest.map((r) => (
              <tr key={r.scale} data-scale={r.scale}>
                <td>{formatScale(r.scale)}</td>
                <td className="num">{r.shared}</td>
                <td className="num">{formatNumber(r.r2, 3)}</td>
                <td>{r.interval ? formatInterval(r.interval) : (r.intervalNote ?? NO_VALUE)}</td>
                <td className="num">{formatNumber(r.pearson, 2)}</td>
                <td className="num">{formatNumber(r.spearman, 2)}</td>
                <td>
                  {r.winner ?? NO_VALUE}
                  {r.sameWinner === false ? ` (largest: ${r.largestWinner})` : ''}
                </td>
                <td className="num">{formatShare(r.topKAgreement)}</td>
                <td>{r.consistent ? 'yes' : `no: ${r.why}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table className="small" data-testid="predictions">
          <caption className="direction">{analysis.targetNote}</caption>
          <thead>
            <tr>
              <th>variant</th>
              <th className="num">prediction</th>
              <th>interval</th>
              <th>method</th>
            </tr>
          </thead>
          <tbody>
            {analysis.extrapolations.map((e) => (
              <tr key={e.variant}>
                <td>{e.variant}</td>
                <td className="num">{e.ok ? formatNumber(e.prediction) : NO_VALUE}</td>
                <td>{e.ok ? formatInterval(e.interval) : e.reason}</td>
                <td className="muted">{e.ok ? `${e.intervalMethod ?? ''}${e.predictSeeds ? `, mean of ${e.predictSeeds} seeds` : ''}` : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </div>
  );
}
