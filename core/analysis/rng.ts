/**
 * A tiny seeded PRNG. Bootstrap intervals must be reproducible (the same sweep analysed twice,
 * in an activity retry or by the CLI, must print the same interval), so nothing here uses
 * Math.random. mulberry32 is a well-known 32-bit generator: fast, tiny state, and good enough for
 * resampling indices and simulation noise (not for cryptography).
 */

/** Returns a function yielding uniform floats in [0, 1), fully determined by `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n). */
export function randomIndex(rand: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(rand() * n));
}

/** A standard normal draw (Box–Muller), from the uniform stream `rand`. */
export function gaussian(rand: () => number): number {
  // 1 - u keeps the log argument in (0, 1].
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Mixes integers into one 32-bit seed, so sub-streams (per variant, per replicate) differ. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A stable 32-bit hash of a string (FNV-1a), to derive per-variant streams from names. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
