/**
 * The API server: GraphQL at /graphql, the job ingest routes at /ingest/v1/…, and /healthz.
 * One node:http server so a deployment exposes one port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga } from 'graphql-yoga';
import type { Database } from '../core/db/client';
import { createIngestRoutes } from './ingest/routes';
import { createLadderSchema, type GraphQLContext } from './schema';

export interface ApiServerOptions {
  database: Database;
  /** HMAC secret for per-trial ingest tokens; the worker must use the same one. */
  ingestSecret: string;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface ApiServer {
  server: Server;
  /** Listens and returns the base URL (`http://127.0.0.1:<port>`). */
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export function createApiServer(options: ApiServerOptions): ApiServer {
  const handleIngest = createIngestRoutes({ pool: options.database.pool, secret: options.ingestSecret, log: options.log });
  const yoga = createYoga<object, GraphQLContext>({
    schema: createLadderSchema(),
    context: () => ({ db: options.database.db }),
    graphqlEndpoint: '/graphql',
    logging: false,
  });

  const server = createServer((req, res) => {
    handleIngest(req, res)
      .then((handled) => {
        if (handled) return;
        if (req.url === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
          return;
        }
        return yoga(req, res);
      })
      .catch((err: Error) => {
        options.log?.('request failed', { error: err.message });
        if (!res.headersSent) res.writeHead(500).end();
      });
  });

  return {
    server,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          resolve(`http://${host}:${address.port}`);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
