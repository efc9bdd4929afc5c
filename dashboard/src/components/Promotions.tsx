import { betterText, formatNumber, NO_VALUE } from '../lib';
import type { RungPromotion } from '../queries';

function ruleMode(rule: unknown): 'min' | 'max' | null {
  const mode = rule && typeof rule === 'object' ? (rule as { mode?: unknown }).mode : null;
  return mode === 'min' || mode === 'max' ? mode : null;
}

export function Promotions({ promotions, rungNames }: { promotions: RungPromotion[]; rungNames: Record<number, string> }) {
  if (!promotions.length) return <p className="muted">No promotion decision yet.</p>;
  return (
    <div data-testid="promotions">
      {promotions.map((p) => (
        <div key={p.rungIndex} className="promotion">
          <h3>
            after {rungNames[p.rungIndex] ?? `rung ${p.rungIndex}`} <code>{JSON.stringify(p.rule)}</code>
          </h3>
          <table>
            {ruleMode(p.rule) ? <caption className="direction">ranked by mean, {betterText(ruleMode(p.rule)!)}</caption> : null}
            <thead>
              <tr>
                <th>variant</th>
                <th className="num">mean</th>
                <th className="num">rank</th>
                <th>decision</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {[...p.decisions]
                .sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9))
                .map((d) => (
                  <tr key={d.variantIndex} className={d.promoted ? 'promoted' : 'dropped'}>
                    <td>{d.variantName}</td>
                    <td className="num">{formatNumber(d.mean)}</td>
                    <td className="num">{d.rank ?? NO_VALUE}</td>
                    <td>{d.promoted ? '✔ promoted' : '✘ stopped'}</td>
                    <td className="reason">{d.reason}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      ))}
    </div>
  );
}
