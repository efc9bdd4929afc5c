/**
 * When a schedule fires: `--cron "0 3 * * *"` or `--every 6h`, checked here so a typo is refused
 * with the field and the reason before anything is stored (Temporal checks cron again on create).
 */

export class ScheduleInputError extends Error {
  /** `field` is the option or argument at fault (cron, every, name, spec). */
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ScheduleInputError';
  }
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MIN_EVERY_MS = 1000;
export const MAX_EVERY_MS = 366 * UNIT_MS.d;

/** `6h`, `90m`, `1h30m`, `1d` → milliseconds. */
export function parseEvery(text: string): number {
  const t = text.trim();
  if (t.length > 40 || !/^(\d+[smhd])+$/.test(t)) {
    throw new ScheduleInputError('every', `must be a duration like 30m, 6h, 1d or 1h30m (units s, m, h, d), not "${text.slice(0, 40)}"`);
  }
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smhd])/g)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (ms < MIN_EVERY_MS) throw new ScheduleInputError('every', 'must be at least 1s');
  if (ms > MAX_EVERY_MS) throw new ScheduleInputError('every', 'must be at most 366d');
  return ms;
}

const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

/** A standard five-field cron expression (or @daily and its kin); returns it trimmed. */
export function parseCron(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  if (t.length === 0 || t.length > 200) throw new ScheduleInputError('cron', 'must be a cron expression like "0 3 * * *" (at most 200 characters)');
  if (t.startsWith('@')) {
    if (!MACROS.has(t.toLowerCase())) throw new ScheduleInputError('cron', `unknown macro "${t}" (known: ${[...MACROS].join(', ')})`);
    return t;
  }
  const parts = t.split(' ');
  if (parts.length !== 5) throw new ScheduleInputError('cron', `must have 5 fields (minute hour day-of-month month day-of-week), not ${parts.length}: "${t}"`);
  parts.forEach((part, i) => {
    const f = FIELDS[i]!;
    const bad = (why: string): never => {
      throw new ScheduleInputError('cron', `field ${i + 1} (${f.name}) "${part}": ${why}`);
    };
    for (const item of part.split(',')) {
      const [range, step, extra] = item.split('/');
      if (extra !== undefined) bad('more than one /');
      if (step !== undefined && !/^[1-9]\d{0,3}$/.test(step)) bad('a step after / must be a positive whole number');
      if (range === '*' || (range === '?' && (i === 2 || i === 4))) continue;
      const ends = range!.split('-');
      if (ends.length > 2 || ends.some((e) => e === '')) bad('must be *, a value, a range a-b, a list a,b or a step */n');
      for (const end of ends) {
        const named = 'names' in f ? (f.names as readonly string[]).indexOf(end.toLowerCase()) : -1;
        if (named >= 0) continue;
        if (!/^\d{1,2}$/.test(end)) bad(`"${end}" is not a number${'names' in f ? ' or a name' : ''}`);
        const n = Number(end);
        if (n < f.min || n > f.max) bad(`${n} is out of range ${f.min}-${f.max}`);
      }
    }
  });
  return t;
}

export type Timing = { cron: string; every: null; everyMs: null } | { cron: null; every: string; everyMs: number };

/** Exactly one of cron and every. */
export function parseTiming(input: { cron?: string | null; every?: string | null }): Timing {
  const hasCron = input.cron !== undefined && input.cron !== null;
  const hasEvery = input.every !== undefined && input.every !== null;
  if (hasCron === hasEvery) throw new ScheduleInputError(hasCron ? 'cron' : 'every', 'give exactly one of cron and every');
  if (hasCron) return { cron: parseCron(input.cron!), every: null, everyMs: null };
  const every = input.every!.trim();
  return { cron: null, every, everyMs: parseEvery(every) };
}

const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
export function checkScheduleName(name: string): string {
  if (name.length < 1 || name.length > 63 || !NAME.test(name)) {
    throw new ScheduleInputError('name', `must be 1-63 lowercase letters, digits and dashes (like nightly-ttt), not "${name.slice(0, 80)}"`);
  }
  return name;
}
