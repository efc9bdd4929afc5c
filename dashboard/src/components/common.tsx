import type { ReactNode } from 'react';
import { doneFraction, TRIAL_STATUSES, type StatusCounts } from '../lib';

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status}`} data-status={status}>{status}</span>;
}

const STATUS_COLOURS: Record<string, string> = {
  succeeded: '#16a34a',
  running: '#2563eb',
  failed: '#dc2626',
  cancelled: '#9ca3af',
  skipped: '#d1d5db',
  planned: '#f3f4f6',
};

/** One stacked bar of trial counts by status. */
export function ProgressBar({ counts, total }: { counts: StatusCounts; total: number }) {
  const title = TRIAL_STATUSES.filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join(', ');
  return (
    <div className="progress" title={title} data-done={Math.round(doneFraction(counts, total) * 100)}>
      {total > 0 &&
        TRIAL_STATUSES.map((s) =>
          counts[s] ? <div key={s} className={`seg seg-${s}`} style={{ width: `${(100 * counts[s]) / total}%`, background: STATUS_COLOURS[s] }} /> : null,
        )}
    </div>
  );
}

export function CountsText({ counts }: { counts: StatusCounts }) {
  return (
    <span className="counts">
      {TRIAL_STATUSES.filter((s) => counts[s]).map((s) => (
        <span key={s} className={`count count-${s}`}>
          {counts[s]} {s}
        </span>
      ))}
    </span>
  );
}

export function Section({ title, children, right, id }: { title: string; children: ReactNode; right?: ReactNode; id?: string }) {
  return (
    <section className="card" id={id}>
      <header>
        <h2>{title}</h2>
        {right}
      </header>
      {children}
    </section>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function ErrorNote({ error }: { error: string | null }) {
  return error ? <div className="error">{error}</div> : null;
}

/** Whether live updates flow; `ended`: the server closed them because the sweep is over, so nothing more will change. */
export function LiveDot({ live, ended = false }: { live: boolean; ended?: boolean }) {
  if (ended && !live) return <span className="live ended" data-live="ended">■ final</span>;
  return <span className={`live ${live ? 'on' : 'off'}`} data-live={live}>{live ? '● live' : '○ offline'}</span>;
}
