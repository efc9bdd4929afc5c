/** The end-of-run summary the CLI prints (after k6's): one line per step, each threshold, the knee. */
import { MAX_REPLICAS } from '../../core/capacity/scaling';
import type { CapacityRunRecord, CapacityRunWithSteps } from '../../core/capacity/store';

const num = (v: number | null | undefined, digits = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-');
const pct = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : '-');
const loads = (l: readonly number[] | undefined) => (l ? l.map((x) => x.toFixed(1)).join(' ') : '-');

export function formatRun(run: CapacityRunWithSteps): string {
  const lines: string[] = [];
  lines.push(`capacity run ${run.id}  [${run.status}]`);
  lines.push(`  scenario ....: ${run.scenario} (${run.kind})${run.target ? ` → ${run.target}` : ''}`);
  lines.push(`  mode ........: ${run.mode}   load average: ${loads(run.host?.loadavgStart)} → ${loads(run.host?.loadavgEnd)} (${run.host?.cpus ?? '?'} cpus)`);
  lines.push(`  thresholds ..: ${run.thresholds.join(', ') || 'none'}`);
  lines.push('');
  const head = ['step', 'gens', 'offered/s', 'achieved/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'dropped', 'result'];
  const rows = run.steps.map((s) => [
    String(s.idx + 1),
    String(s.generators),
    num(s.offered),
    num(s.achieved),
    num(s.p50Ms),
    num(s.p95Ms),
    num(s.p99Ms),
    pct(s.errorRate),
    pct(s.data.droppedRate),
    s.incomplete ? `incomplete: ${s.incomplete}` : s.passed ? '✓ passed' : `✗ ${s.data.thresholds.filter((t) => !t.passed).map((t) => t.threshold).join(', ')}${s.data.stoppedEarly ? ` (${s.data.stoppedEarly})` : ''}`,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const fmt = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : v.padStart(widths[c]!))).join('  ');
  lines.push(`  ${fmt(head)}`);
  for (const r of rows) lines.push(`  ${fmt(r)}`);
  const last = run.steps[run.steps.length - 1];
  if (last) {
    lines.push('');
    for (const t of last.data.thresholds) lines.push(`  ${t.passed ? '✓' : '✗'} ${t.threshold.padEnd(30)} actual ${num(t.actual, 3)} (limit ${num(t.limit, 3)}) in the last step`);
    const extra = Object.entries(last.data.extra);
    if (extra.length) lines.push(`  ${extra.map(([k, v]) => `${k}: ${num(v, 2)}`).join('   ')}`);
    const errs = run.steps.flatMap((s) => s.data.errors).slice(0, 5);
    for (const e of errs) lines.push(`  error ×${e.count}: ${e.message}`);
  }
  lines.push('');
  const knee = run.status === 'running' ? 'not yet (running)' : run.knee === null ? 'none (the first step failed)' : `${num(run.knee)} ops/s${run.kneeIsLowerBound ? ' or more' : ''}`;
  lines.push(`  knee: ${knee}   (stopped: ${run.stopReason ?? '-'})${run.error ? `   error: ${run.error}` : ''}`);
  const sc = run.scaling;
  if (sc) {
    lines.push(`  scaling: knees ${sc.samples.map((s) => `${s.replicas}×→${num(s.knee)}`).join(', ')}`);
    if (sc.fit.ok) {
      const [lo, hi] = sc.replicasInterval;
      lines.push(`  replicas for ${num(sc.forRate)} ops/s: ${sc.replicas ?? 'not reachable'}${sc.replicas !== null ? ` (${Math.round(sc.level * 100)}% interval ${lo ?? '-'}–${hi ?? `>${MAX_REPLICAS}`})` : ''}; saturates at ${sc.fit.saturatesAt === null ? 'no ceiling in the fit' : `${num(sc.fit.saturatesAt)} ops/s`}`);
    } else lines.push(`  scaling fit refused: ${sc.fit.reason}`);
    for (const n of sc.notes) lines.push(`  note: ${n}`);
  }
  return lines.join('\n');
}

export function formatRunList(runs: readonly CapacityRunRecord[]): string {
  if (!runs.length) return 'no capacity runs yet';
  const rows = runs.map((r) => [r.id, r.kind, r.status, r.startedAt.replace(/\.\d+Z$/, 'Z'), r.knee === null ? '-' : `${num(r.knee)}${r.kneeIsLowerBound ? '+' : ''}`, loads(r.host?.loadavgStart.slice(0, 1))]);
  const head = ['id', 'kind', 'status', 'started', 'knee/s', 'load'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [head, ...rows].map((r) => r.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}
