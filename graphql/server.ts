/**
 * The API server: GraphQL at /graphql (GraphiQL outside production), the job ingest routes at
 * /ingest/v1/…, /healthz (process up) and /readiness (Postgres and Temporal reachable).
 * One node:http server so a deployment exposes one port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { verifyApiToken } from '../core/auth/tokens';
import { codeVersion as currentCodeVersion } from '../core/code-version';
import type { Database } from '../core/db/client';
import type { GraphQLContext, LaunchSettings } from './context';
import { createLoaders } from './data';
import { createDashboardHandler } from './dashboard-static';
import { createIngestRoutes } from './ingest/routes';
import { SweepNotifier } from './notify';
import { useAuth } from './plugins/use-auth';
import { useLimits, type LimitsOptions } from './plugins/use-limits';
import { maskedErrors } from './plugins/use-masking';
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
  /** Depth, cost and page-size limits (see plugins/use-limits.ts for the defaults). */
  limits?: LimitsOptions;
  /** GraphiQL at /graphql in a browser. Default: on unless NODE_ENV=production. */
  graphiql?: boolean;
}

export interface ApiServer {
  server: Server;
  /** The GraphQL handler; `yoga.fetch` runs requests in-process (tests). */
  yoga: YogaServerInstance<object, GraphQLContext>;
  notifier: SweepNotifier;
  /** Listens and returns the base URL (`http://127.0.0.1:<port>`). */
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export function createApiServer(options: ApiServerOptions): ApiServer {
  const { database } = options;
  const handleIngest = createIngestRoutes({ pool: database.pool, secret: options.ingestSecret, log: options.log });
  const handleDashboard = createDashboardHandler();
  const notifier = new SweepNotifier({ connection: database.pool.options, log: options.log });
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

  const yoga = createYoga<object, GraphQLContext>({
    schema: createLadderSchema(),
    context: () => ({
      db: database.db,
      pool: database.pool,
      loaders: createLoaders(database.db),
      launch: launchSettings(),
      notifier,
    }),
    graphqlEndpoint: '/graphql',
    graphiql: options.graphiql ?? process.env.NODE_ENV !== 'production',
    landingPage: false,
    logging: false,
    maskedErrors: maskedErrors({ log: options.log }),
    plugins: [
      useReadiness({ pool: database.pool, temporal: options.temporal?.client, log: options.log }),
      useAuth({ verify: (token) => verifyApiToken(database.db, token), allowAnonymousRead: options.allowAnonymousRead }),
      useLimits(options.limits),
    ],
  });

  const server = createServer((req, res) => {
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
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          resolve(`http://${host}:${address.port}`);
        });
      });
    },
    async close() {
      await notifier.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
