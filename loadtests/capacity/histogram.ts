/**
 * Latency histograms: hdr-histogram-js, in microseconds, 3 significant digits. Generators send
 * theirs compressed (base64) and the coordinator adds them, so percentiles of a distributed step
 * are of all its operations, not an average of per-generator percentiles.
 */
import * as hdr from 'hdr-histogram-js';

/** An hour in µs: anything slower is recorded as an hour (the timeout ends operations far sooner). */
const HIGHEST_US = 3_600_000_000;

export type LatencyHistogram = hdr.Histogram;

export function newHistogram(): LatencyHistogram {
  return hdr.build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3 });
}

export function recordMs(h: LatencyHistogram, ms: number): void {
  h.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000))));
}

export function encodeHistogram(h: LatencyHistogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Decodes a generator's histogram; throws on anything that is not one. */
export function decodeHistogram(text: string): LatencyHistogram {
  if (typeof text !== 'string' || text.length > 8 << 20) throw new Error('histogram: not an encoded histogram');
  return hdr.decodeFromCompressedBase64(text, 32);
}

export function mergeHistograms(parts: readonly LatencyHistogram[]): LatencyHistogram {
  const total = newHistogram();
  for (const p of parts) total.add(p);
  return total;
}

export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

const ms = (us: number) => Math.round(us) / 1000;

/** NaN everywhere for an empty histogram, so a latency threshold cannot pass on no data. */
export function percentileMs(h: LatencyHistogram, p: number): number {
  return h.totalCount === 0 ? Number.NaN : ms(h.getValueAtPercentile(p));
}

export function summarize(h: LatencyHistogram): LatencySummary {
  const empty = h.totalCount === 0;
  return {
    count: h.totalCount,
    minMs: empty ? Number.NaN : ms(h.minNonZeroValue),
    meanMs: empty ? Number.NaN : ms(h.mean),
    p50Ms: percentileMs(h, 50),
    p90Ms: percentileMs(h, 90),
    p95Ms: percentileMs(h, 95),
    p99Ms: percentileMs(h, 99),
    maxMs: empty ? Number.NaN : ms(h.maxValue),
  };
}
