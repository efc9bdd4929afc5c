/**
 * The one SQL expression for "a trial's value of a final-result metric". Every reader (the
 * leaderboard, promotion, scaling analyses, GraphQL) uses it, so they agree on what counts: a
 * JSON number under `result.metrics.<name>`; a string, boolean or missing key is no value (null),
 * never a cast error that fails the whole query.
 */
import { sql, type Placeholder, type SQL } from 'drizzle-orm';
import { trials } from '../db/schema';

/**
 * Per-variant score columns over the succeeded trials of a `group by variant` select: the mean of
 * the metric and how many trials have a value. Promotion and ASHA rank variants by these.
 */
export function variantScoreColumns(metric: string) {
  const value = metricValue(metric);
  return {
    variantIndex: trials.variantIndex,
    variantName: trials.variantName,
    mean: sql<number | null>`avg(${value}) filter (where ${trials.status} = 'succeeded')`,
    count: sql<number>`count(${value}) filter (where ${trials.status} = 'succeeded')::int`,
  };
}

/** `metric` may be a prepared statement's placeholder (`sql.placeholder('metric')`). */
export function metricValue(metric: string | Placeholder): SQL<number | null> {
  return sql<number | null>`(case when jsonb_typeof(${trials.result} -> 'metrics' -> ${metric}::text) = 'number'
    then (${trials.result} -> 'metrics' ->> ${metric}::text)::float8 end)`;
}
