/**
 * Importing results from outside Ladder (published tables, old runs) as a read-only sweep, so the
 * scaling analyses run on them exactly as on native sweeps.
 *
 * CSV: a header `variant,scale,seed,<metric>,…` (scale numeric; seed an integer; metric cells
 * numeric or empty). JSON: an array of records with the same keys. Every problem is reported with
 * its row and column, and nothing is stored unless the whole file is valid.
 */
import { createHash } from 'node:crypto';
import { CsvError, parse as parseCsv } from 'csv-parse/sync';
import type { Db } from '../db/client';
import { events, projects, sweeps, trials } from '../db/schema';
import { parseSweepSpecShape, type SweepSpec } from '../spec/spec';
import { newSweepId } from './store';

export interface ImportRecord {
  variant: string;
  scale: number;
  seed: number;
  metrics: Record<string, number>;
}

export class ImportError extends Error {
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? `cannot import: ${problems[0]}`
        : `cannot import (${problems.length} problems): ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`,
    );
    this.name = 'ImportError';
  }
}

const REQUIRED = ['variant', 'scale', 'seed'] as const;

function parseRows(rows: Array<Record<string, unknown>>, firstRowNumber: number): ImportRecord[] {
  const problems: string[] = [];
  const records: ImportRecord[] = [];
  const seen = new Set<string>();
  rows.forEach((row, i) => {
    const where = `row ${i + firstRowNumber}`;
    for (const key of REQUIRED) {
      if (row[key] === undefined || row[key] === '') problems.push(`${where}, column ${key}: missing`);
    }
    const variant = String(row.variant ?? '').trim();
    const scale = Number(row.scale);
    const seed = Number(row.seed);
    if (row.scale !== undefined && row.scale !== '' && (!Number.isFinite(scale) || scale <= 0)) {
      problems.push(`${where}, column scale: ${JSON.stringify(row.scale)} is not a positive number`);
    }
    if (row.seed !== undefined && row.seed !== '' && (!Number.isInteger(seed) || seed < 0)) {
      problems.push(`${where}, column seed: ${JSON.stringify(row.seed)} is not a non-negative integer`);
    }
    // No prototype: a column named like `__proto__` stays a metric name, not a property of Object.
    const metrics: Record<string, number> = Object.create(null);
    for (const [key, raw] of Object.entries(row)) {
      if ((REQUIRED as readonly string[]).includes(key) || raw === '' || raw === null || raw === undefined) continue;
      const value = typeof raw === 'number' ? raw : Number(raw);
      if (!Number.isFinite(value)) problems.push(`${where}, column ${key}: ${JSON.stringify(raw)} is not a number`);
      else metrics[key] = value;
    }
    const id = `${variant}\u0000${scale}\u0000${seed}`;
    if (seen.has(id)) problems.push(`${where}: duplicate of an earlier row (variant ${variant}, scale ${scale}, seed ${seed})`);
    seen.add(id);
    records.push({ variant, scale, seed, metrics });
  });
  if (rows.length === 0) problems.push('no rows');
  if (problems.length) throw new ImportError(problems);
  return records;
}

/**
 * CSV per RFC 4180 (csv-parse): quoted cells may hold commas, doubled quotes and line breaks.
 * Lines starting with `#` are comments; blank lines are skipped; cells are trimmed.
 */
export function parseImportCsv(text: string): ImportRecord[] {
  let table: string[][];
  try {
    table = parseCsv(text, {
      bom: true,
      comment: '#',
      comment_no_infix: true, // only a line starting with '#' is a comment, not "a#b" in a cell
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true, // counted below, to name the row in the error
    }) as string[][];
  } catch (err) {
    if (err instanceof CsvError) throw new ImportError([`not valid CSV: ${err.message}`]);
    throw err;
  }
  if (table.length === 0) throw new ImportError(['the file is empty']);
  const header = table[0]!;
  const missing = REQUIRED.filter((k) => !header.includes(k));
  if (missing.length) {
    throw new ImportError([`the header must name ${REQUIRED.join(', ')} (missing: ${missing.join(', ')})`]);
  }
  const repeated = header.filter((h, i) => header.indexOf(h) !== i);
  if (repeated.length) throw new ImportError([`the header names ${[...new Set(repeated)].join(', ')} more than once`]);
  if (header.length === REQUIRED.length) throw new ImportError(['the header names no metric column']);
  const rows = table.slice(1).map((cells, i) => {
    if (cells.length !== header.length) {
      throw new ImportError([`row ${i + 2}: ${cells.length} cells, the header has ${header.length}`]);
    }
    return Object.fromEntries(header.map((h, j) => [h, cells[j]]));
  });
  return parseRows(rows, 2);
}

export function parseImportJson(text: string): ImportRecord[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ImportError([`not valid JSON: ${(err as Error).message}`]);
  }
  if (!Array.isArray(doc) || doc.some((r) => typeof r !== 'object' || r === null || Array.isArray(r))) {
    throw new ImportError(['JSON must be an array of records like {"variant": …, "scale": …, "seed": …, "<metric>": …}']);
  }
  return parseRows(doc as Array<Record<string, unknown>>, 1);
}

export interface ImportOptions {
  name: string;
  records: ImportRecord[];
  /** Metric the analyses use; must be present in the records. */
  metric: string;
  mode: 'min' | 'max';
  project?: string;
  source?: string;
}

/** Stores the records as a read-only sweep with status `imported`; returns its id. */
export async function importSweep(db: Db, options: ImportOptions): Promise<{ id: string; trials: number; spec: SweepSpec }> {
  const { records, metric, mode } = options;
  if (!records.some((r) => metric in r.metrics)) {
    const known = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
    throw new ImportError([`metric "${metric}" is in no row (columns: ${known.join(', ')})`]);
  }
  const scales = [...new Set(records.map((r) => r.scale))].sort((a, b) => a - b);
  const variants = [...new Set(records.map((r) => r.variant))];
  const seeds = [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b);
  // Shape only: `imported` names no job kind, and an imported sweep never runs a trial.
  const spec = parseSweepSpecShape({
    name: options.name,
    project: options.project ?? 'default',
    kind: 'imported',
    description: options.source ? `imported from ${options.source}` : 'imported results',
    variants: variants.map((name) => ({ name, config: {} })),
    seeds,
    scale: { key: 'scale', rungs: scales },
    analysis: { metric, mode },
  });
  const id = newSweepId(spec.name);
  const sourceHash = createHash('sha256').update(JSON.stringify(records)).digest('hex').slice(0, 16);
  const now = new Date();
  const rows = records.map((r) => {
    const rungIndex = scales.indexOf(r.scale);
    const variantIndex = variants.indexOf(r.variant);
    return {
      id: `${id}-r${rungIndex}-v${variantIndex}-s${r.seed}`,
      sweepId: id,
      rungIndex,
      rungName: String(r.scale),
      scaleValue: r.scale,
      variantIndex,
      variantName: r.variant,
      variant: {},
      seed: r.seed,
      config: { scale: r.scale, seed: r.seed },
      identity: createHash('sha256').update(`imported:${sourceHash}:${variantIndex}:${rungIndex}:${r.seed}`).digest('hex'),
      status: 'succeeded' as const,
      maxAttempts: 0,
      startedAt: now,
      finishedAt: now,
      exitReason: 'imported',
      result: { metrics: r.metrics, config: {}, meta: { imported: true, source: options.source ?? null } },
    };
  });
  await db.transaction(async (tx) => {
    await tx.insert(projects).values({ id: spec.project, name: spec.project }).onConflictDoNothing();
    await tx.insert(sweeps).values({
      id,
      projectId: spec.project,
      name: spec.name,
      kind: 'imported',
      spec,
      status: 'imported',
      codeVersion: `import:${sourceHash}`,
      executor: 'none',
      currentRung: scales.length - 1,
      startedAt: now,
      finishedAt: now,
    });
    for (let i = 0; i < rows.length; i += 1000) await tx.insert(trials).values(rows.slice(i, i + 1000));
    await tx.insert(events).values({ sweepId: id, type: 'sweep.imported', data: { rows: rows.length, source: options.source ?? null } });
  });
  return { id, trials: rows.length, spec };
}
