/**
 * The dashboard's only way to the server: GraphQL over `fetch` (POST /graphql) and the
 * `sweepProgress` subscription over server-sent events (POST with `Accept: text/event-stream`,
 * read with a small hand-written parser so the bearer token can go in a header, which
 * `EventSource` cannot send).
 *
 * Token: anonymous by default (the embedded demo allows anonymous reads). A token given once as
 * `?token=lad_…` in the page URL, or stored under localStorage `ladder.token`, is sent as
 * `Authorization: Bearer …`.
 */
import { useEffect, useRef, useState } from 'react';
import { parseSseBlock } from './lib';

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

function headers(accept: string): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json', accept };
  const t = token();
  if (t) h.authorization = `Bearer ${t}`;
  return h;
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
    headers: headers('application/graphql-response+json, application/json'),
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

/**
 * Subscribes over SSE; `onNext` gets each result's data. Reconnects with backoff when the stream
 * drops (not on `complete`). Returns the function that stops it.
 */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  handlers: { onNext: (data: T) => void; onError?: (message: string) => void; onState?: (live: boolean) => void; onComplete?: () => void },
): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let retryMs = 500;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const connect = async () => {
    controller = new AbortController();
    let completed = false;
    try {
      const res = await fetch('/graphql', {
        method: 'POST',
        headers: headers('text/event-stream'),
        body: JSON.stringify({ query, variables }),
        signal: controller.signal,
      });
      if (!res.ok || !res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
        let message = `HTTP ${res.status}`;
        try {
          message = firstError((await res.json()) as GraphQLResponse<unknown>) ?? message;
        } catch {
          /* not JSON */
        }
        handlers.onError?.(message);
        if (res.status === 401 || res.status === 403 || res.status === 400) completed = true;
        return;
      }
      handlers.onState?.(true);
      retryMs = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let m: RegExpExecArray | null;
        while ((m = /\r?\n\r?\n/.exec(buffer))) {
          const block = buffer.slice(0, m.index);
          buffer = buffer.slice(m.index + m[0].length);
          const msg = parseSseBlock(block);
          if (!msg) continue;
          if (msg.event === 'complete') {
            completed = true;
            handlers.onComplete?.();
            break;
          }
          if (msg.event === 'next' || msg.event === 'message') {
            const body = JSON.parse(msg.data) as GraphQLResponse<T>;
            const err = firstError(body);
            if (err) handlers.onError?.(err);
            else if (body.data) handlers.onNext(body.data);
          }
        }
        if (completed) break;
      }
    } catch (e) {
      if (stopped) return;
      handlers.onError?.((e as Error).message);
    } finally {
      handlers.onState?.(false);
      if (!stopped && !completed) {
        timer = setTimeout(() => void connect(), retryMs);
        retryMs = Math.min(retryMs * 2, 10_000);
      }
    }
  };
  void connect();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    controller?.abort();
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
