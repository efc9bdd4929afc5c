/**
 * `ladder lc-winrate SWEEP`: length-controlled win rates of an rlhf sweep's trials with
 * instruction difficulty estimated across the policies judged on the same instructions, as
 * LC-AlpacaEval estimates it across its leaderboard (issue 17).
 *
 * Each rlhf trial keeps its evaluation annotations in `result.meta.eval_annotations` (columns:
 * instruction identity, difficulty group, both lengths, one preference per judge; see
 * jobs/ladder_jobs/kinds/rlhf/lc_eval.py). Trials of a rung whose identity lists are equal were
 * judged on the same instructions against the same reference outputs by the same judges (the
 * same seed and evaluation settings, any method); each such group of K trials becomes one
 * alpaca_eval annotation set, piped to `python -m ladder_jobs lc-winrate -`, which pools
 * difficulty over all K. The trial's own LC win rate (difficulty from its own labels and one
 * fresh SFT sample) is printed beside it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../core/db/client';
import { trials } from '../core/db/schema';
import { NO_VALUE } from '../core/format';
import { getSweep } from '../core/sweeps/store';
import { metricValue } from '../core/sweeps/metric';
import { pythonPathWithJobs } from '../workers/executors/local/env';
import { cliPython } from './connections';
import { table } from './format';

/** `--glm` short names → alpaca_eval's GLM names (the job's `lc_glm` choices). */
export const GLMS = { v1: 'length_controlled_v1', noreg: 'length_controlled_noreg', minimal: 'length_controlled_minimal' } as const;
export type GlmShort = keyof typeof GLMS;

/** What `annotation_record` in lc_eval.py writes; anything else is reported, not pooled. */
const ANNOTATIONS_FORMAT = 1;
const MAX_ANNOTATIONS = 32_768;
const MAX_ID_LENGTH = 64;
/** Trials read in one run: each keeps up to ~330 KB of annotations, so a whole large sweep at once
 * could hold gigabytes; --rung reads one rung at a time. */
export const MAX_TRIALS_READ = 2_000;
/** The Python tool's answer for one group: a few hundred bytes per generator. */
const MAX_PYTHON_OUTPUT_BYTES = 4 * 1024 * 1024;
const PYTHON_TIMEOUT_MS = 10 * 60_000;
const JOBS_DIR = path.resolve(__dirname, '..', 'jobs');

export interface LcWinrateOptions {
  project: string;
  /** Rung index or name; every rung when absent. */
  rung?: string;
  /** At most this many succeeded trials are read (default MAX_TRIALS_READ). */
  maxTrials?: number;
  glm: GlmShort;
}

export interface LcRow {
  trialId: string;
  rungIndex: number;
  rungName: string;
  variant: string;
  seed: number;
  /** 1-based within the rung: trials with the same number were pooled together. */
  group: number | null;
  /** Trials in the group (policies the difficulty was pooled over). */
  k: number | null;
  /** Percent. */
  winRate: number | null;
  lcPooled: number | null;
  lcOwn: number | null;
  /** Why the row has no pooled figure, when it has none. */
  note: string | null;
}

export interface LcReport {
  sweep: string;
  glm: string;
  rows: LcRow[];
}

interface Annotations {
  judges: number;
  instruction: string[];
  group: number[];
  lengthModel: number[];
  lengthRef: number[];
  preference: number[];
}

/** Parses a trial's kept annotations (they come from a job: checked, never trusted), or says why not. */
export function parseAnnotations(raw: unknown): Annotations | string {
  if (raw === null || raw === undefined) return 'no annotations (re-run)';
  if (typeof raw !== 'object' || Array.isArray(raw)) return 'annotations unreadable: not an object';
  const a = raw as Record<string, unknown>;
  if (a.format !== ANNOTATIONS_FORMAT) return `annotations unreadable: format ${JSON.stringify(a.format)}, expected ${ANNOTATIONS_FORMAT}`;
  if (typeof a.omitted === 'string') return `annotations not kept: ${a.omitted.slice(0, 200)}`;
  const judges = a.judges;
  if (typeof judges !== 'number' || !Number.isInteger(judges) || judges < 1 || judges > MAX_ANNOTATIONS) return 'annotations unreadable: judges';
  const n = Array.isArray(a.instruction) ? a.instruction.length : -1;
  if (n < 1 || n * judges > MAX_ANNOTATIONS) return 'annotations unreadable: instruction';
  const ids = a.instruction as unknown[];
  if (!ids.every((s) => typeof s === 'string' && s.length > 0 && s.length <= MAX_ID_LENGTH && /^[\x21-\x7e]+$/.test(s))) {
    return 'annotations unreadable: instruction';
  }
  const numbers = (field: string, len: number, ok: (v: number) => boolean): number[] | null => {
    const v = a[field];
    return Array.isArray(v) && v.length === len && v.every((x) => typeof x === 'number' && Number.isFinite(x) && ok(x)) ? (v as number[]) : null;
  };
  const group = numbers('group', n, () => true);
  const lengthModel = numbers('length_model', n, (x) => x >= 0);
  const lengthRef = numbers('length_ref', n, (x) => x >= 0);
  const preference = numbers('preference', n * judges, (x) => x >= 0 && x <= 1);
  for (const [field, v] of [['group', group], ['length_model', lengthModel], ['length_ref', lengthRef], ['preference', preference]] as const) {
    if (!v) return `annotations unreadable: ${field}`;
  }
  return { judges, instruction: ids as string[], group: group!, lengthModel: lengthModel!, lengthRef: lengthRef!, preference: preference! };
}

/** The trial's annotations as alpaca_eval records (preference 1 + p: 2 = the trial's output wins). */
export function alpacaRecords(a: Annotations, generator: string): object[] {
  const out: object[] = [];
  for (let i = 0; i < a.instruction.length; i++) {
    for (let j = 0; j < a.judges; j++) {
      out.push({
        instruction: a.instruction[i],
        generator_1: 'sft_reference',
        generator_2: generator,
        length_1: a.lengthRef[i],
        length_2: a.lengthModel[i],
        preference: 1 + a.preference[i * a.judges + j]!,
        difficulty_group: String(a.group[i]),
      });
    }
  }
  return out;
}

interface PythonRow {
  win_rate: number;
  length_controlled_winrate: number;
}

/** Runs `python -m ladder_jobs lc-winrate - --glm G --json` on the records; its per-generator rows. */
export async function runLcTool(records: object[], glm: string): Promise<Map<string, PythonRow>> {
  const python = await cliPython();
  const env = { ...process.env };
  env.PYTHONPATH = pythonPathWithJobs(JOBS_DIR, env.PYTHONPATH);
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', 'ladder_jobs', 'lc-winrate', '-', '--glm', glm, '--json'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), PYTHON_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_PYTHON_OUTPUT_BYTES) child.kill('SIGKILL');
      else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      if (err.reduce((s, x) => s + x.length, 0) < 64 * 1024) err.push(b);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${python} (set LADDER_PYTHON to the Python of jobs/): ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code !== 0) {
        const why = signal ? `killed by ${signal}` : `exit ${code}`;
        reject(new Error(`python -m ladder_jobs lc-winrate failed (${why}): ${stderr.split('\n').slice(-1)[0] ?? ''}`));
        return;
      }
      try {
        // Generator names are variant names (a spec's): kept as Map keys, never object properties.
        const parsed = JSON.parse(Buffer.concat(out).toString('utf8')) as { generators: Record<string, PythonRow> };
        resolve(new Map(Object.entries(parsed.generators)));
      } catch (e) {
        reject(new Error(`python -m ladder_jobs lc-winrate printed no JSON: ${(e as Error).message}`));
      }
    });
    child.stdin.on('error', () => {}); // a tool that exits early closes the pipe; its exit code says why
    child.stdin.end(JSON.stringify(records));
  });
}

/**
 * The report. Throws `usage(message)` for a sweep that is not there (or not in `project`), not
 * rlhf, or a rung it does not have.
 */
export async function lcWinrate(
  db: Db,
  sweepId: string,
  opts: LcWinrateOptions,
  usage: (message: string) => Error,
  runTool: typeof runLcTool = runLcTool,
): Promise<LcReport> {
  const glm = GLMS[opts.glm];
  const sweep = await getSweep(db, sweepId);
  // Another project's sweep reads as absent: its existence is not this project's to learn.
  if (!sweep || sweep.projectId !== opts.project) throw usage(`sweep "${sweepId}" not found in project "${opts.project}"`);
  if (sweep.kind !== 'rlhf') throw usage(`lc-winrate reads rlhf sweeps; ${sweepId} is a ${sweep.kind} sweep`);

  const rungs = await db
    .selectDistinct({ index: trials.rungIndex, name: trials.rungName })
    .from(trials)
    .where(eq(trials.sweepId, sweepId))
    .orderBy(asc(trials.rungIndex));
  let rung: number | undefined;
  if (opts.rung !== undefined) {
    const found = rungs.find((r) => r.name === opts.rung || String(r.index) === opts.rung);
    if (!found) throw usage(`--rung "${opts.rung}" is not a rung of ${sweepId} (rungs: ${rungs.map((r) => `${r.index} ${r.name}`).join(', ')})`);
    rung = found.index;
  }

  const shortGlm = opts.glm;
  const selection = and(eq(trials.sweepId, sweepId), eq(trials.status, 'succeeded'), rung === undefined ? undefined : eq(trials.rungIndex, rung));
  const maxTrials = opts.maxTrials ?? MAX_TRIALS_READ;
  const [{ count } = { count: 0 }] = await db.select({ count: sql<number>`count(*)::int` }).from(trials).where(selection);
  if (count > maxTrials) {
    throw usage(`${count} succeeded trials${rung === undefined ? '' : ` at rung ${opts.rung}`} is over the ${maxTrials} read at once; pass --rung to read one rung at a time`);
  }
  const rowsDb = await db
    .select({
      id: trials.id,
      rungIndex: trials.rungIndex,
      rungName: trials.rungName,
      variantIndex: trials.variantIndex,
      variantName: trials.variantName,
      seed: trials.seed,
      lcOwn: metricValue(`lc_win_rate_${shortGlm}`),
      annotations: sql<unknown>`${trials.result} -> 'meta' -> 'eval_annotations'`,
    })
    .from(trials)
    .where(selection)
    .orderBy(asc(trials.rungIndex), asc(trials.variantIndex), asc(trials.seed));

  const rows: LcRow[] = [];
  const groups = new Map<string, Array<{ row: LcRow; ann: Annotations }>>();
  for (const t of rowsDb) {
    const row: LcRow = {
      trialId: t.id,
      rungIndex: t.rungIndex,
      rungName: t.rungName,
      variant: t.variantName,
      seed: t.seed,
      group: null,
      k: null,
      winRate: null,
      lcPooled: null,
      lcOwn: t.lcOwn === null ? null : 100 * t.lcOwn,
      note: null,
    };
    rows.push(row);
    const ann = parseAnnotations(t.annotations);
    if (typeof ann === 'string') {
      row.note = ann;
      continue;
    }
    // Same rung, same judges, same instruction identities in the same order: judged on the same instructions.
    const key = `${t.rungIndex}\u0000${ann.judges}\u0000${ann.instruction.join(',')}`;
    const members = groups.get(key) ?? [];
    members.push({ row, ann });
    groups.set(key, members);
  }

  const numberInRung = new Map<number, number>();
  for (const members of groups.values()) {
    const rungIndex = members[0]!.row.rungIndex;
    const group = (numberInRung.get(rungIndex) ?? 0) + 1;
    numberInRung.set(rungIndex, group);
    const generator = (r: LcRow) => `${r.variant} seed ${r.seed}`;
    for (const { row, ann } of members) {
      row.group = group;
      row.k = members.length;
      const p = ann.preference;
      row.winRate = (100 * p.reduce((s, x) => s + x, 0)) / p.length;
    }
    if (members.length === 1) {
      members[0]!.row.note = 'difficulty not pooled: no other trial of the rung was judged on the same instructions';
      continue;
    }
    const out = await runTool(members.flatMap(({ row, ann }) => alpacaRecords(ann, generator(row))), glm);
    for (const { row } of members) {
      const got = out.get(generator(row));
      if (!got) throw new Error(`python -m ladder_jobs lc-winrate returned no row for ${generator(row)}`);
      row.winRate = got.win_rate;
      row.lcPooled = got.length_controlled_winrate;
    }
  }
  return { sweep: sweepId, glm, rows };
}

const pct = (x: number | null) => (x === null ? NO_VALUE : x.toFixed(2));

/** Per rung: variant, seed, raw win rate, LC pooled over the group's K trials, the trial's own LC, K. */
export function formatLcReport(report: LcReport): string {
  if (report.rows.length === 0) return `no succeeded trials in ${report.sweep}`;
  const out = [`LC win rates (%) of ${report.sweep}, GLM ${report.glm}: "pooled" estimates instruction difficulty over`,
    `the K trials judged on the same instructions (same rung and seed), "own" over the trial and one SFT sample.`];
  const rungs = [...new Map(report.rows.map((r) => [r.rungIndex, r.rungName])).entries()].sort((a, b) => a[0] - b[0]);
  for (const [index, name] of rungs) {
    const rows = report.rows.filter((r) => r.rungIndex === index);
    out.push('', `rung ${name}`);
    out.push(
      table(
        ['variant', 'seed', 'group', 'win rate', 'LC pooled', 'LC own', 'K', ''],
        rows.map((r) => [r.variant, String(r.seed), r.group === null ? NO_VALUE : String(r.group), pct(r.winRate), pct(r.lcPooled), pct(r.lcOwn), r.k === null ? NO_VALUE : String(r.k), r.note ?? '']),
      ),
    );
  }
  return out.join('\n');
}
