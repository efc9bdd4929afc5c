/** Shared by the GraphQL test files: requests through `yoga.fetch`, seeding, tokens. */
import { createApiToken } from '../core/auth/tokens';
import type { Db } from '../core/db/client';
import type { ApiServer } from '../graphql/server';

export interface GqlResponse<T = Record<string, any>> {
  status: number;
  data?: T;
  errors?: { message: string; path?: string[]; extensions?: Record<string, any> }[];
}

export function gqlClient(api: ApiServer) {
  return async <T = Record<string, any>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GqlResponse<T>> => {
    const res = await api.yoga.fetch('http://ladder.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as Omit<GqlResponse<T>, 'status'>;
    return { status: res.status, ...body };
  };
}

export async function tokens(db: Db) {
  const make = async (project: string, role: 'viewer' | 'editor') => (await createApiToken(db, { project, role, name: `${project}-${role}` })).token;
  return {
    alphaEditor: await make('alpha', 'editor'),
    alphaViewer: await make('alpha', 'viewer'),
    betaEditor: await make('beta', 'editor'),
    betaViewer: await make('beta', 'viewer'),
  };
}

/** Reads server-sent events from a streaming response: `next()` resolves the next `data:` payload. */
export function sseReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next(timeoutMs = 10_000): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const cut = buffer.indexOf('\n\n');
        if (cut >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n');
          if (data) return JSON.parse(data);
          continue; // keep-alive or event without data
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no server-sent event in time');
        let timer: NodeJS.Timeout | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no server-sent event in time')), left))),
        ]).finally(() => clearTimeout(timer));
        if (chunk.done) throw new Error('event stream ended');
        buffer += decoder.decode(chunk.value, { stream: true });
      }
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}
