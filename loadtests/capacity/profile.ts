/**
 * Load-profile arithmetic, with no imports: the capacity workflow (workflows/capacity.ts) runs
 * it inside Temporal's deterministic sandbox, where zod and node modules have no place.
 */
import type { LoadProfile } from './scenario';

/** Total duration of a load profile in ms. */
export function profileDurationMs(load: LoadProfile): number {
  return load.stages ? load.stages.reduce((s, st) => s + st.duration, 0) : load.duration!;
}

/** The same profile at a constant rate (a search step), or scaled by a factor (one generator's share). */
export function constantProfile(load: LoadProfile, rate: number, durationMs: number): LoadProfile {
  return { ...load, rate, duration: durationMs, stages: undefined, startRate: 0 };
}

export function scaleProfile(load: LoadProfile, factor: number): LoadProfile {
  if (load.stages) return { ...load, startRate: load.startRate * factor, stages: load.stages.map((s) => ({ ...s, rate: s.rate * factor })) };
  return { ...load, rate: load.rate! * factor };
}

/** Mean offered rate of a profile (ops/s): planned operations ÷ duration. */
export function offeredRate(load: LoadProfile): number {
  const ms = profileDurationMs(load);
  return plannedOperations(load, ms) / (ms / 1000);
}

/**
 * Operations due by `tMs` into the profile: the integral of the (piecewise linear) rate. The
 * executor starts operation i when this passes i, so it never waits on the target.
 */
export function plannedOperations(load: LoadProfile, tMs: number): number {
  if (!load.stages) return load.rate! * (Math.min(tMs, load.duration!) / 1000);
  let total = 0;
  let from = load.startRate;
  let elapsed = 0;
  for (const st of load.stages) {
    const span = Math.min(st.duration, Math.max(0, tMs - elapsed));
    if (span <= 0) break;
    const rateAtEnd = from + ((st.rate - from) * span) / st.duration;
    total += ((from + rateAtEnd) / 2) * (span / 1000);
    elapsed += st.duration;
    from = st.rate;
  }
  return total;
}
