/**
 * Expands a validated spec into trials: variants (listed × grid × random samples) × seeds × rungs.
 *
 * Deterministic by construction: the order of trials depends only on the spec, so the same spec
 * always yields the same trial ids and identities, which is what makes reuse and idempotent
 * resubmission possible.
 */
import { canonicalJson, trialIdentity } from './identity';
import type { SweepSpec } from './spec';
import { assertTrialCount, FORBIDDEN_KEYS, isCommandSpec, rungNames, SpecError } from './spec';
import { readCommandLimits } from './limits';
import { samplePoints } from './search';
import { expandCommand, TemplateError } from './template';

export type Config = Record<string, unknown>;

export interface PlannedVariant {
  index: number;
  /** Human-readable, unique within the sweep: listed name and/or `key=value,…`. */
  name: string;
  /** The overrides that make this variant (listed config merged with the grid point). */
  overrides: Config;
}

export interface PlannedRung {
  index: number;
  name: string;
  /** The value of the scale key; numeric values are the x of scaling fits. */
  value: string | number | null;
  overrides: Config;
}

export interface PlannedTrial {
  /** Suffix of the trial id within its sweep: `r<rung>-v<variant>-s<seed>`. */
  key: string;
  rung: PlannedRung;
  variant: PlannedVariant;
  seed: number;
  /** Fully resolved config: base ← variant ← rung ← seed. */
  config: Config;
  identity: string;
}

export interface Plan {
  variants: PlannedVariant[];
  rungs: PlannedRung[];
  seeds: number[];
  trials: PlannedTrial[];
}

export function seedList(spec: SweepSpec): number[] {
  return typeof spec.seeds === 'number' ? Array.from({ length: spec.seeds }, (_, i) => i) : [...spec.seeds];
}

export function planVariants(spec: SweepSpec): PlannedVariant[] {
  const listed = spec.variants ?? [{ name: '', config: {} }];
  const gridKeys = Object.keys(spec.grid ?? {}).sort();
  let points: Array<Array<[string, unknown]>> = [[]];
  for (const key of gridKeys) {
    const values = spec.grid![key]!;
    points = points.flatMap((p) => values.map((v) => [...p, [key, v] as [string, unknown]]));
  }
  // Without a random block, one empty sample: the grid alone, as before.
  const samples: Array<Array<[string, unknown]> | null> = spec.search?.random ? samplePoints(spec.search) : [null];
  const variants: PlannedVariant[] = [];
  for (const base of listed) {
    for (const point of points) {
      samples.forEach((sample, sampleIndex) => {
        const overrides = deepMerge(emptyConfig(), base.config);
        for (const [key, value] of [...point, ...(sample ?? [])]) setPath(overrides, key, value);
        const gridName = point.map(([k, v]) => `${k}=${formatValue(v)}`).join(',');
        // The sample number keeps names unique and says where a variant came from.
        const sampleName = sample ? `#${sampleIndex} ${sample.map(([k, v]) => `${k}=${formatValue(v)}`).join(',')}` : '';
        const name = [base.name, gridName, sampleName].filter(Boolean).join(' ') || 'base';
        variants.push({ index: variants.length, name, overrides: plainJson(overrides) as Config });
      });
    }
  }
  return variants;
}

export function planRungs(spec: SweepSpec): PlannedRung[] {
  if (!spec.scale) return [{ index: 0, name: 'default', value: null, overrides: {} }];
  const names = rungNames(spec);
  return spec.scale.rungs.map((r, index) => {
    const value = typeof r === 'object' ? r.value : r;
    const overrides = deepMerge(emptyConfig(), typeof r === 'object' ? (r.config ?? {}) : {});
    setPath(overrides, spec.scale!.key, value);
    return { index, name: names[index]!, value, overrides: plainJson(overrides) as Config };
  });
}

export function planSweep(spec: SweepSpec, codeVersion: string): Plan {
  // Before anything is built: a spec stored under a higher limit, or built without parsing,
  // must not make this process materialise billions of trials.
  assertTrialCount(spec);
  const variants = planVariants(spec);
  const rungs = planRungs(spec);
  const seeds = seedList(spec);
  const trials: PlannedTrial[] = [];
  for (const rung of rungs) {
    for (const variant of variants) {
      for (const seed of seeds) {
        const built = deepMerge(deepMerge(deepMerge(emptyConfig(), spec.base), variant.overrides), rung.overrides);
        built.seed = seed;
        const config = plainJson(built) as Config;
        trials.push({
          key: `r${rung.index}-v${variant.index}-s${seed}`,
          rung,
          variant,
          seed,
          config,
          identity: trialIdentity({
            kind: spec.kind,
            config,
            seed,
            codeVersion,
            command: spec.command,
            image: spec.image,
            workdirVersion: spec.workdirVersion,
          }),
        });
      }
    }
  }
  // Two variants that resolve to the same config (a rung's config replacing the object a grid key
  // writes into, say) would be the same trial twice: a spec error, not something to run.
  const seen = new Map<string, PlannedTrial>();
  for (const t of trials) {
    const twin = seen.get(t.identity);
    if (twin) {
      throw new SpecError([
        {
          path: spec.scale ? `scale.rungs[${t.rung.index}]` : 'grid',
          message: `variants "${twin.variant.name}" and "${t.variant.name}" resolve to the same config on rung "${t.rung.name}"`,
        },
      ]);
    }
    seen.set(t.identity, t);
  }
  if (isCommandSpec(spec)) assertCommandsExpand(spec.command, trials);
  return { variants, rungs, seeds, trials };
}

/**
 * Every trial's command must expand (each `{key}` names a key of its config) and fit the argument
 * size limit: a spec error at submit, not a failure of every attempt later.
 */
function assertCommandsExpand(command: string[], trials: PlannedTrial[]): void {
  const maxBytes = readCommandLimits().LADDER_MAX_COMMAND_BYTES;
  for (const t of trials) {
    let argv: string[];
    try {
      argv = expandCommand(command, t.config);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      throw new SpecError([{ path: `command[${err.index}]`, message: `${err.message} (trial ${t.key}, variant "${t.variant.name}")` }]);
    }
    const bytes = argv.reduce((n, a) => n + Buffer.byteLength(a, 'utf8') + 1, 0);
    if (bytes > maxBytes) {
      throw new SpecError([
        { path: 'command', message: `trial ${t.key} expands to ${bytes} bytes of arguments; the limit is ${maxBytes} (LADDER_MAX_COMMAND_BYTES)` },
      ]);
    }
  }
}

function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : canonicalJson(v);
}

function isPlainObject(v: unknown): v is Config {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Configs are built on null-prototype objects: a key from a user then can only ever be an own
 * property, never a way into Object.prototype. plainJson turns the result back into ordinary
 * JSON values for storage and hashing.
 */
function emptyConfig(): Config {
  return Object.create(null) as Config;
}

function assertSafeKey(key: string, path: string): void {
  if (FORBIDDEN_KEYS.has(key)) throw new SpecError([{ path, message: `"${key}" is not allowed as a key` }]);
}

/** A deep copy on null-prototype objects. */
function cloneJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneJson);
  if (!isPlainObject(value)) return value;
  const out = emptyConfig();
  for (const [k, v] of Object.entries(value)) {
    assertSafeKey(k, k);
    out[k] = cloneJson(v);
  }
  return out;
}

/** A deep copy on ordinary objects; Object.fromEntries defines keys, it never assigns through setters. */
export function plainJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainJson);
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainJson(v)]));
}

/** Merges `patch` into `target` (objects recursively, everything else replaced); returns target. */
export function deepMerge(target: Config, patch: Config): Config {
  for (const [key, value] of Object.entries(patch)) {
    assertSafeKey(key, key);
    // Own properties only: an inherited member must never be mistaken for a nested config.
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (isPlainObject(current) && isPlainObject(value)) deepMerge(current, value);
    else target[key] = cloneJson(value);
  }
  return target;
}

/** Sets a dotted path (`optimizer.lr`), creating objects on the way. */
export function setPath(target: Config, path: string, value: unknown): void {
  const parts = path.split('.');
  for (const part of parts) assertSafeKey(part, path);
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = Object.hasOwn(node, part) ? node[part] : undefined;
    if (!isPlainObject(next)) node[part] = emptyConfig();
    node = node[part] as Config;
  }
  node[parts[parts.length - 1]!] = cloneJson(value);
}
