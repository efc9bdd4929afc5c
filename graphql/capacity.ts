/**
 * GraphQL for capacity runs (`ladder capacity run`, workflows/capacity.ts): `capacityRuns`
 * (a connection, newest first) and `capacityRun(id)`, with steps, thresholds and the knee.
 * Merged into the schema by schema.ts (`typeDefs: [typeDefs, capacityTypeDefs]`, `resolvers:
 * [resolvers, capacityResolvers]`); it uses that file's PageInfo, JSON and DateTime.
 *
 * Visibility: capacity runs load a deployment, not a project, so every request that reaches the
 * resolvers (a valid token of any project, or an allowed anonymous read) may read them. Target
 * URLs are stored without credentials or query; tokens are never stored.
 */
import { getCapacityRun, getCapacitySteps, listCapacityRuns, MAX_RUNS_PAGE, UnknownCapacityRunError, type CapacityRunRecord, type CapacityStepRow } from '../core/capacity/store';
import type { GraphQLContext } from './context';
import { decodeCursor, encodeCursor } from './data';
import { apiError } from './errors';

const DEFAULT_RUNS_PAGE = 20;

export const capacityTypeDefs = /* GraphQL */ `
  extend type Query {
    "Capacity load-test runs, newest first."
    capacityRuns(first: Int = ${DEFAULT_RUNS_PAGE}, after: String): CapacityRunConnection!
    "One capacity run with its steps; null when there is none with this id."
    capacityRun(id: ID!): CapacityRun
  }

  "A page of capacity runs, newest first."
  type CapacityRunConnection {
    edges: [CapacityRunEdge!]!
    pageInfo: PageInfo!
  }
  type CapacityRunEdge { cursor: String! node: CapacityRun! }

  "A capacity run: a load profile run once, or the search for the knee (several searches when it scales generators)."
  type CapacityRun {
    id: ID!
    "The scenario's name and kind (ingest, graphql, launch, k8s, http)."
    scenario: String!
    kind: String!
    "running, finished, cancelled or failed."
    status: String!
    "profile, search or scaling."
    mode: String!
    "Target URL without credentials."
    target: String
    "Thresholds as written, e.g. 'p95 < 250ms'."
    thresholds: [String!]!
    "Highest offered rate (ops/s) that held every threshold; null when the first step failed or the run is not over."
    knee: Float
    "The search reached search.max: the knee is only a lower bound."
    kneeIsLowerBound: Boolean!
    stopReason: String
    error: String
    startedAt: DateTime!
    finishedAt: DateTime
    "CPUs, load averages at start and end, Node version of the machine that prepared the run."
    host: JSON
    "Scaling runs: the knee per generator count and the fitted replicas-for-rate answer with its interval."
    scaling: JSON
    steps: [CapacityStep!]!
  }

  "One step: a constant offered rate split across generators, their histograms merged."
  type CapacityStep {
    index: Int!
    generators: Int!
    "Offered and achieved (succeeded ÷ duration) rates, ops/s."
    offered: Float!
    achieved: Float!
    "Latency percentiles of succeeded operations, ms; null when none succeeded."
    p50Ms: Float
    p95Ms: Float
    p99Ms: Float
    errorRate: Float!
    droppedRate: Float!
    passed: Boolean!
    "Why the step is not a measurement (a generator lost or cancelled); null when whole."
    incomplete: String
    thresholds: [CapacityThresholdResult!]!
    "Scenario figures, e.g. launch's trialsPerSecond."
    extra: JSON
  }

  type CapacityThresholdResult {
    threshold: String!
    "The step's value; null when it had none (no latency measured)."
    actual: Float
    limit: Float!
    passed: Boolean!
  }
`;

type Ctx = GraphQLContext;
type RunNode = CapacityRunRecord & { steps?: CapacityStepRow[] };

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const RUN_ID = /^[a-z0-9][a-z0-9._-]{0,120}$/;

function decodeRunCursor(cursor: string): { startedAt: string; id: string } {
  const key = decodeCursor(cursor);
  const [startedAt, id] = key ?? [];
  if (!key || key.length !== 2 || typeof startedAt !== 'string' || !ISO.test(startedAt) || typeof id !== 'string' || !RUN_ID.test(id)) {
    throw apiError('BAD_USER_INPUT', 'invalid cursor', { argument: 'after' });
  }
  return { startedAt, id };
}

const finiteOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export const capacityResolvers = {
  Query: {
    capacityRuns: async (_: unknown, args: { first?: number | null; after?: string | null }, ctx: Ctx) => {
      const first = args.first ?? DEFAULT_RUNS_PAGE;
      if (!Number.isInteger(first) || first < 0 || first > MAX_RUNS_PAGE) throw apiError('BAD_USER_INPUT', `first must be between 0 and ${MAX_RUNS_PAGE}`, { argument: 'first' });
      const after = args.after ? decodeRunCursor(args.after) : null;
      // One more than asked: whether another page follows.
      const rows = first === 0 ? [] : await listCapacityRuns(ctx.db, { first: first + 1, after });
      const edges = rows.slice(0, first).map((node) => ({ cursor: encodeCursor([node.startedAt, node.id]), node }));
      return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },
    capacityRun: async (_: unknown, args: { id: string }, ctx: Ctx): Promise<RunNode | null> => {
      if (!RUN_ID.test(args.id)) return null;
      try {
        return await getCapacityRun(ctx.db, args.id);
      } catch (err) {
        if (err instanceof UnknownCapacityRunError) return null;
        throw err;
      }
    },
  },
  CapacityRun: {
    steps: (run: RunNode, _: unknown, ctx: Ctx) => run.steps ?? getCapacitySteps(ctx.db, run.id),
  },
  CapacityStep: {
    index: (s: CapacityStepRow) => s.idx,
    droppedRate: (s: CapacityStepRow) => s.data.droppedRate ?? 0,
    thresholds: (s: CapacityStepRow) => s.data.thresholds.map((t) => ({ ...t, actual: finiteOrNull(t.actual), limit: finiteOrNull(t.limit) ?? 0 })),
    extra: (s: CapacityStepRow) => s.data.extra ?? {},
  },
};
