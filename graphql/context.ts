/** What every resolver gets. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { ApiPrincipal } from '../core/auth/tokens';
import type { Db } from '../core/db/client';
import type { LogReader } from '../core/trials/logs';
import type { Loaders, SharedReadState } from './data';
import type { SweepNotifier } from './notify';

export interface LaunchSettings {
  temporal: Client;
  taskQueue: string;
  codeVersion: string;
  executor?: string;
}

export interface GraphQLContext {
  db: Db;
  pool: Pool;
  /** Per-request DataLoaders (a subscription renews them for every event it sends). */
  loaders: Loaders;
  /** The server's read caches, for loaders made later in a request (subscriptions). */
  readState?: SharedReadState;
  /** Set by use-auth: the token's principal, or null for an anonymous request. */
  auth?: ApiPrincipal | null;
  /** Absent when the server runs without Temporal: mutations that start workflows then fail. */
  launch?: LaunchSettings;
  notifier: SweepNotifier;
  /** Reads attempt logs through the executors; absent when this server cannot reach them (Trial.logs is then null). */
  readLogs?: LogReader;
}

/** The project a request may see: its token's, or null (every project) for an allowed anonymous read. */
export const scopeProject = (ctx: GraphQLContext): string | null => ctx.auth?.project ?? null;

export const canSee = (ctx: GraphQLContext, projectId: string): boolean => {
  const scope = scopeProject(ctx);
  return scope === null || scope === projectId;
};
