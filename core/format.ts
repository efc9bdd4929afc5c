/**
 * The one home of number formatting for people: the CLI (`ladder results`, `ladder analyze`),
 * the analyses' reason texts and the dashboard all print values through these functions, so the
 * same value reads the same everywhere (1e6 is `1e6` in every table, never `1000000` in one and
 * `1.00e+6` in another).
 *
 * Pure and dependency-free on purpose: the dashboard bundles this file (vite) and type-checks it
 * under its DOM-only tsconfig, so it must not import Node or server modules.
 */

/** What a table cell shows when there is no value (null, undefined, NaN, ±Infinity). */
export const NO_VALUE = '–';

/** Below this magnitude, and from EXP_LARGE up, numbers switch to exponent notation. */
const EXP_SMALL = 1e-3;
const EXP_LARGE = 1e4;

/**
 * `value` at `digits` significant digits, trailing zeros dropped; exponent notation without a `+`
 * (`1e6`, `1.235e7`, `2.62e-4`) for magnitudes ≥ 1e4 or < 1e-3, so scales like 3e5 stay short.
 */
export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NO_VALUE;
  // Decide on the rounded value, so 9999.6 at 4 digits reads 1e4 like 10000 does.
  const rounded = Number(value.toPrecision(digits));
  if (rounded === 0) return '0';
  const abs = Math.abs(rounded);
  if (abs >= EXP_LARGE || abs < EXP_SMALL) {
    const [mantissa, exponent] = rounded.toExponential(digits - 1).split('e');
    return `${Number(mantissa)}e${Number(exponent)}`;
  }
  return String(rounded);
}

/**
 * `value` printed beside the bound it was compared with: at `digits` significant digits, or more
 * where fewer would round it onto (or across) the bound, so a sentence never reads "R² 0.9 < 0.9"
 * for 0.896 against 0.9. Exact equality prints as equal.
 */
export function formatAgainst(value: number, bound: number, digits = 2): string {
  const side = Math.sign(value - bound);
  for (let d = digits; d < 15; d++) {
    if (Math.sign(Number(value.toPrecision(d)) - bound) === side) return formatNumber(value, d);
  }
  return formatNumber(value, 15);
}

/** A scale value (model size, tokens, steps): the same rule as every number, 4 significant digits. */
export function formatScale(value: number | null | undefined): string {
  return formatNumber(value, 4);
}

/** `mean ± std`, the spread at 2 significant digits; std omitted when null (a single seed). */
export function formatMeanStd(mean: number | null | undefined, std: number | null | undefined): string {
  if (mean === null || mean === undefined || !Number.isFinite(mean)) return NO_VALUE;
  return std === null || std === undefined ? formatNumber(mean) : `${formatNumber(mean)} ± ${formatNumber(std, 2)}`;
}

/** An interval as `[lo, hi]` at `digits` significant digits (GraphQL hands it over as a plain list). */
export function formatInterval(iv: readonly number[] | null | undefined, digits = 3): string {
  return iv && iv.length === 2 ? `[${formatNumber(iv[0], digits)}, ${formatNumber(iv[1], digits)}]` : NO_VALUE;
}

/** A share as a whole percentage: 0.337 → "34%" (below 1%, one decimal). */
export function formatShare(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return NO_VALUE;
  const p = x * 100;
  return `${Math.abs(p) < 1 && p !== 0 ? p.toFixed(1) : Math.round(p)}%`;
}
