/**
 * What each job kind accepts, from the committed core/spec/job-kinds.json (written by
 * scripts/gen-job-kinds.ts from `python -m ladder_jobs kinds --json`, checked for drift by a test).
 *
 * The checks mirror jobs/ladder_jobs/config.py so a config refused here is exactly one the job
 * would exit 2 on: unknown top-level keys, `preset` naming no preset, and values whose type is
 * not the type of the key's default (int accepted for float; a None default takes anything).
 * Range checks a kind's own `validate` does stay with the job.
 */
import jobKindsJson from './job-kinds.json';

export type ConfigType = 'bool' | 'int' | 'float' | 'str' | 'list' | 'object' | 'any';

export interface JobKind {
  keys: Record<string, ConfigType>;
  presets: string[];
}

export interface JobKindsFile {
  kinds: Record<string, JobKind>;
}

/** The key a config uses to pick a preset (PRESET_KEY in config.py). */
export const PRESET_KEY = 'preset';

// A Map, so a kind named like an Object.prototype member is simply unknown.
const KINDS: ReadonlyMap<string, JobKind> = new Map(Object.entries((jobKindsJson as JobKindsFile).kinds));

export function jobKind(name: string): JobKind | undefined {
  return KINDS.get(name);
}

export function jobKindNames(): string[] {
  return [...KINDS.keys()];
}

/** The declared type of a config key, `preset` included; undefined when the kind lacks the key. */
export function keyType(kind: JobKind, key: string): ConfigType | 'preset' | undefined {
  if (key === PRESET_KEY) return 'preset';
  return Object.hasOwn(kind.keys, key) ? kind.keys[key] : undefined;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'str';
  return 'object';
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * Why `value` cannot be the value of a key of this type, or undefined when it can.
 * An int past 2^53 would reach Python as a float (JSON writes it with an exponent), so it is
 * refused here rather than there.
 */
export function valueProblem(kindName: string, kind: JobKind, type: ConfigType | 'preset', value: unknown): string | undefined {
  let ok: boolean;
  switch (type) {
    case 'any':
      return undefined;
    case 'preset':
      if (typeof value !== 'string') return `expects str (a preset name), got ${typeName(value)} (${show(value)})`;
      return kind.presets.includes(value)
        ? undefined
        : `unknown preset ${show(value)} of kind "${kindName}" (known: ${kind.presets.join(', ') || 'none'})`;
    case 'bool':
      ok = typeof value === 'boolean';
      break;
    case 'int':
      ok = typeof value === 'number' && Number.isSafeInteger(value);
      break;
    case 'float':
      ok = typeof value === 'number' && Number.isFinite(value);
      break;
    case 'str':
      ok = typeof value === 'string';
      break;
    case 'list':
      ok = Array.isArray(value);
      break;
    case 'object':
      ok = typeof value === 'object' && value !== null && !Array.isArray(value);
      break;
  }
  return ok ? undefined : `expects ${type}, got ${typeName(value)} (${show(value)})`;
}

export function unknownKeyMessage(kindName: string, kind: JobKind): string {
  return `unknown key of kind "${kindName}" (known: ${[...Object.keys(kind.keys), PRESET_KEY].sort().join(', ')})`;
}
