/**
 * The dashboard's only way to the server: GraphQL over `fetch` (POST /graphql) and the
 * `sweepProgress` subscription over server-sent events with the `graphql-sse` client. GraphQL
 * Yoga speaks that protocol's "distinct connections mode" (one POST with `Accept:
 * text/event-stream` per subscription, `next` and `complete` events) without a plugin, and the
 * client sends the bearer token as a header, which `EventSource` cannot.
 *
 * Queries keep the small `useQuery` below rather than urql or TanStack Query: neither is a
 * dependency, and the pages need nothing beyond "run on key change, reload on demand".
 *
 * Token: anonymous by default (the embedded demo allows anonymous reads). A token given once as
 * `?token=lad_…` in the page URL, or stored under localStorage `ladder.token`, is sent as
 * `Authorization: Bearer …`.
 */
import { useEffect, useRef, useState } from 'react';
import { createClient } from 'graphql-sse';

const TOKEN_KEY = 'ladder.token';

function token(): string | null {
  try {
    const fromUrl = new URLSearchParams(window.location.search).get('token');
    if (fromUrl) window.localStorage.setItem(TOKEN_KEY, fromUrl);
    return fromUrl ?? window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function authorization(): Record<string, string> {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

export class GraphQLRequestError extends Error {}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

function firstError(body: GraphQLResponse<unknown>): string | null {
  if (!body.errors?.length) return null;
  const e = body.errors[0]!;
  return e.extensions?.code ? `${e.message} (${e.extensions.code})` : e.message;
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...authorization() },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  let body: GraphQLResponse<T>;
  try {
    body = (await res.json()) as GraphQLResponse<T>;
  } catch {
    throw new GraphQLRequestError(`HTTP ${res.status} from /graphql`);
  }
  const err = firstError(body);
  if (err) throw new GraphQLRequestError(err);
  if (!body.data) throw new GraphQLRequestError(`no data (HTTP ${res.status})`);
  return body.data;
}

/** Statuses that another try would only repeat: a bad operation, no token, a token without access. */
const FINAL_STATUSES = new Set([400, 401, 403]);

/**
 * Subscribes over SSE; `onNext` gets each result's data. Reconnects with backoff (0.5 s doubling
 * to 10 s, for as long as the page is open) when the stream drops, but not on `complete` and not
 * when the server refused the request itself. Returns the function that stops it.
 */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  handlers: { onNext: (data: T) => void; onError?: (message: string) => void; onState?: (live: boolean) => void; onComplete?: () => void },
): () => void {
  // The client sees a refused request only as a status: the fetch below keeps the server's reason.
  let refused: { status: number; message: string } | null = null;
  // Aborting makes the client call `complete`: after stop() nothing reaches the page.
  let stopped = false;
  const client = createClient({
    url: '/graphql',
    headers: authorization,
    retryAttempts: Number.POSITIVE_INFINITY,
    retry: async (retries) => {
      if (refused) {
        // Thrown here (not a NetworkError), the client reports it through `error` and stops.
        if (FINAL_STATUSES.has(refused.status)) throw new Error(refused.message);
        if (!stopped) handlers.onError?.(refused.message);
      }
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** retries, 10_000)));
    },
    fetchFn: async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await fetch(input, init);
      refused = null;
      if (!res.ok) {
        let message = `HTTP ${res.status}`;
        try {
          message = firstError((await res.clone().json()) as GraphQLResponse<unknown>) ?? message;
        } catch {
          /* not JSON */
        }
        refused = { status: res.status, message };
      }
      return res;
    },
  });
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (stopped) return;
        const err = firstError(result as GraphQLResponse<unknown>);
        if (err) handlers.onError?.(err);
        else if (result.data) handlers.onNext(result.data);
      },
      error: (e) => {
        if (stopped) return;
        handlers.onState?.(false);
        handlers.onError?.(e instanceof Error ? e.message : String(e));
      },
      complete: () => {
        if (stopped) return;
        handlers.onState?.(false);
        handlers.onComplete?.();
      },
    },
    { connecting: () => !stopped && handlers.onState?.(false), connected: () => !stopped && handlers.onState?.(true) },
  );
  return () => {
    stopped = true;
    stop();
    client.dispose();
  };
}

/** Runs a query when its key changes; `reload()` runs it again. */
export function useQuery<T>(query: string, variables: Record<string, unknown>, deps: readonly unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [version, setVersion] = useState(0);
  const varsKey = JSON.stringify(variables);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    gql<T>(query, JSON.parse(varsKey) as Record<string, unknown>, controller.signal)
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e: Error) => {
        if (!controller.signal.aborted) setError(e.message);
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [query, varsKey, version, ...deps]);
  const reload = useRef(() => setVersion((v) => v + 1)).current;
  return { data, error, loading, reload };
}
