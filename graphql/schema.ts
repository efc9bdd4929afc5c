/**
 * The GraphQL schema. This first cut answers what the CLI and the demo need (sweeps, their
 * progress and leaderboard); the full API (connections, filters, subscriptions, auth) builds on it.
 */
import { createSchema } from 'graphql-yoga';
import type { Db } from '../core/db/client';
import { getSweep, leaderboard, listSweeps, sweepProgress } from '../core/sweeps/store';

export interface GraphQLContext {
  db: Db;
}

const typeDefs = /* GraphQL */ `
  scalar JSON

  type Query {
    sweeps(first: Int = 20): [Sweep!]!
    sweep(id: ID!): Sweep
  }

  type Sweep {
    id: ID!
    project: String!
    name: String!
    kind: String!
    status: String!
    codeVersion: String!
    createdAt: String!
    finishedAt: String
    spec: JSON!
    progress: [RungProgress!]!
    leaderboard(metric: String!): [LeaderboardRow!]!
  }

  type RungProgress {
    rungIndex: Int!
    rungName: String!
    total: Int!
    counts: JSON!
    gpuSeconds: Float!
    wallSeconds: Float!
  }

  type LeaderboardRow {
    variantName: String!
    rungName: String!
    rungIndex: Int!
    mean: Float
    std: Float
    count: Int!
  }
`;

type SweepRow = NonNullable<Awaited<ReturnType<typeof getSweep>>>;

export function createLadderSchema() {
  return createSchema<GraphQLContext>({
    typeDefs,
    resolvers: {
      Query: {
        sweeps: (_: unknown, args: { first: number }, ctx: GraphQLContext) =>
          listSweeps(ctx.db, Math.min(Math.max(args.first, 1), 100)),
        sweep: (_: unknown, args: { id: string }, ctx: GraphQLContext) => getSweep(ctx.db, args.id),
      },
      Sweep: {
        project: (s: SweepRow) => s.projectId,
        createdAt: (s: SweepRow) => s.createdAt.toISOString(),
        finishedAt: (s: SweepRow) => s.finishedAt?.toISOString() ?? null,
        progress: (s: SweepRow, _: unknown, ctx: GraphQLContext) => sweepProgress(ctx.db, s.id),
        leaderboard: (s: SweepRow, args: { metric: string }, ctx: GraphQLContext) =>
          leaderboard(ctx.db, s.id, args.metric),
      },
    },
  });
}
