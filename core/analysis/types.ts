/**
 * Shared input and output types of the scaling-consistency analyses.
 *
 * Every analysis in this folder is a pure function of `Observation`s: one final metric value of
 * one trial, identified by its design variant, its rung's scale value (the x of scaling fits, e.g.
 * the parameter count) and its seed. The DB layer, an import of a published table and the
 * simulator all produce this one shape, so the maths never sees where the numbers came from.
 */

export interface Observation {
  /** Name of the design variant (the thing whose ranking should transfer across scales). */
  variant: string;
  /** The rung's numeric scale value (model size, tokens, steps…); must be > 0 for fits. */
  scale: number;
  seed: number;
  /** The metric's final value for that trial. */
  value: number;
}

/** Whether a lower ('min', e.g. loss) or a higher ('max', e.g. accuracy) metric is better. */
export type Mode = 'min' | 'max';

/** A closed interval [low, high]. */
export type Interval = [number, number];
