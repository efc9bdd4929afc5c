/**
 * The API server: GraphQL at /graphql (GraphiQL outside production), the job ingest routes at
 * /ingest/v1/…, /healthz (process up) and /readiness (Postgres and Temporal reachable).
 * One node:http server so a deployment exposes one port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type * as GraphiQLPage from '@graphql-yoga/render-graphiql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { ApiTokenVerifier, type ApiTokenVerifierOptions } from '../core/auth/tokens';
import { codeVersion as currentCodeVersion } from '../core/code-version';
import type { Database } from '../core/db/client';
import type { LogReader } from '../core/trials/logs';
import type { GraphQLContext, LaunchSettings } from './context';
import { createLoaders, type SharedReadState } from './data';
import { createDashboardHandler } from './dashboard-static';
import { createIngestRoutes } from './ingest/routes';
import { SweepNotifier } from './notify';
import { LeaderboardCache, type LeaderboardCacheOptions } from './read-cache';
import { useAuth } from './plugins/use-auth';
import { readSetting } from '../core/settings';
import { useBodyLimit } from './plugins/use-body-limit';
import { useClientErrorStatus, useInputGuard } from './plugins/use-input-guard';
import { resolveLimits, useLimits, type LimitsOptions } from './plugins/use-limits';
import { maskedErrors } from './plugins/use-masking';
import { createOriginPolicy, loopbackHosts, useHostCheck } from './plugins/use-origin';
import { useReadiness } from './plugins/use-readiness';
import { createLadderSchema } from './schema';

export type { GraphQLContext } from './context';

export interface ApiServerOptions {
  database: Database;
  /** HMAC secret for per-trial ingest tokens; the worker must use the same one. */
  ingestSecret: string;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Needed by launchSweep, cancelSweep and retryTrial, and checked by /readiness. */
  temporal?: { client: Client; taskQueue: string };
  /** Code version of trials launched through the API; default `core/code-version.ts` (git commit or LADDER_CODE_VERSION). */
  codeVersion?: string;
  /** Executor name stored on sweeps launched through the API (default `local`). */
  executor?: string;
  /** Queries and subscriptions without a token, over every project (embedded dev only). Default false. */
  allowAnonymousRead?: boolean;
  /** Body size, token, alias, depth, field, cost and page-size limits (defaults in plugins/use-limits.ts). */
  limits?: LimitsOptions;
  /**
   * Origins whose pages may call the API cross-origin (with credentials). Default: the
   * comma-separated LADDER_ALLOWED_ORIGINS, else none (same-origin only).
   */
  allowedOrigins?: readonly string[];
  /**
   * Host header values this server answers (anything else: 421), against DNS rebinding.
   * `'loopback'`: 127.0.0.1, localhost and [::1] with the port `listen` binds (the embedded
   * stack). Default: the comma-separated LADDER_ALLOWED_HOSTS, else any host.
   */
  allowedHosts?: readonly string[] | 'loopback';
  /** GraphiQL at /graphql in a browser. Default: on unless NODE_ENV=production. */
  graphiql?: boolean;
  /** Reads attempt logs for `Trial.logs` (workers/executor-factory.ts createLogReader); without it the field is null. */
  readLogs?: LogReader;
  /** Cache of verified tokens (ttl: how late a revocation by another process may be noticed). */
  tokenCache?: ApiTokenVerifierOptions;
  /** Cache of finished sweeps' leaderboards, kept exact through `ladder_sweep` notifications. */
  leaderboardCache?: LeaderboardCacheOptions;
}

export interface ApiServer {
  server: Server;
  /** The GraphQL handler; `yoga.fetch` runs requests in-process (tests). */
  yoga: YogaServerInstance<object, GraphQLContext>;
  notifier: SweepNotifier;
  tokens: ApiTokenVerifier;
  leaderboards: LeaderboardCache;
  /** Listens and returns the base URL (`http://127.0.0.1:<port>`). */
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export function createApiServer(options: ApiServerOptions): ApiServer {
  const { database } = options;
  const handleIngest = createIngestRoutes({ pool: database.pool, secret: options.ingestSecret, log: options.log });
  const handleDashboard = createDashboardHandler();
  const notifier = new SweepNotifier({ connection: database.pool.options, log: options.log });
  const tokens = new ApiTokenVerifier(database.db, options.tokenCache);
  const leaderboards = new LeaderboardCache(notifier, options.leaderboardCache);
  const readState: SharedReadState = { leaderboardCache: leaderboards };
  // Revocations by other processes arrive as notifications; while none can be heard (the
  // connection dropped), cached tokens are dropped too, and the ttl bounds the rest.
  // Watched from the first token verified, so a server that is never asked opens no connection.
  let unwatchTokens: (() => void) | null = null;
  const verifyToken = (token: string) => {
    unwatchTokens ??= notifier.watch({ tokenRevoked: (id) => tokens.forget(id), reset: () => tokens.clear() });
    return tokens.verify(token);
  };
  let launch: LaunchSettings | undefined;
  const launchSettings = (): LaunchSettings | undefined => {
    if (!options.temporal) return undefined;
    launch ??= {
      temporal: options.temporal.client,
      taskQueue: options.temporal.taskQueue,
      codeVersion: options.codeVersion ?? currentCodeVersion(),
      executor: options.executor,
    };
    return launch;
  };

  const limits = resolveLimits(options.limits);
  const loopback = options.allowedHosts === 'loopback';
  // Until `listen` knows the port, a loopback-only server answers no host at all.
  const origin = createOriginPolicy({
    allowedOrigins: options.allowedOrigins,
    allowedHosts: loopback ? [] : (options.allowedHosts as readonly string[] | undefined),
  });

  const yoga = createYoga<object, GraphQLContext>({
    schema: createLadderSchema(),
    context: () => ({
      db: database.db,
      pool: database.pool,
      loaders: createLoaders(database.db, readState),
      readState,
      launch: launchSettings(),
      notifier,
      readLogs: options.readLogs,
    }),
    graphqlEndpoint: '/graphql',
    maxRequestBodySize: false, // useBodyLimit below: yoga's streams every body through a limiter
    cors: origin.cors,
    graphiql: options.graphiql ?? readSetting('NODE_ENV') !== 'production',
    // GraphiQL's scripts and styles come inlined from the package: yoga's default page loads them
    // from a public CDN and is blank on a machine without internet. Loaded on the first page
    // asked for: the bundle is ~9 MB of JavaScript that API-only processes never need.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    renderGraphiQL: (opts) => (require('@graphql-yoga/render-graphiql') as typeof GraphiQLPage).renderGraphiQL(opts),
    landingPage: false,
    logging: false,
    maskedErrors: maskedErrors({ log: options.log }),
    plugins: [
      useHostCheck(origin),
      useBodyLimit({ maxBytes: limits.maxBodyBytes }),
      useReadiness({ pool: database.pool, temporal: options.temporal?.client, log: options.log }),
      useAuth({ verify: verifyToken, allowAnonymousRead: options.allowAnonymousRead }),
      ...useLimits(limits),
      useInputGuard(),
      useClientErrorStatus(),
    ],
  });

  const server = createServer((req, res) => {
    // Before any route (ingest and the dashboard too), so a rebound name reaches nothing.
    const refusal = origin.checkHost(req.headers.host);
    if (refusal) {
      res.writeHead(refusal.status, { 'content-type': 'text/plain' }).end(refusal.message);
      return;
    }
    handleIngest(req, res)
      .then((handled) => {
        if (handled) return;
        if (req.url === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
          return;
        }
        return handleDashboard(req, res).then((served) => (served ? undefined : yoga(req, res)));
      })
      .catch((err: Error) => {
        options.log?.('request failed', { error: err.message });
        if (!res.headersSent) res.writeHead(500).end();
      });
  });

  return {
    server,
    yoga,
    notifier,
    tokens,
    leaderboards,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          if (loopback) origin.setAllowedHosts(loopbackHosts(address.port));
          resolve(`http://${host}:${address.port}`);
        });
      });
    },
    async close() {
      unwatchTokens?.();
      tokens.close();
      leaderboards.close();
      await notifier.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
