/**
 * `GET /readiness`: 200 when Postgres answers `select 1` and (when configured) Temporal answers
 * `getSystemInfo`, else 503. The body says which dependency is down, never why (no addresses or
 * messages): `{"postgres":"ok","temporal":"down"}`. Each check times out after `timeoutMs`
 * (default 2000).
 */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { useReadinessCheck, type Plugin } from 'graphql-yoga';

export interface ReadinessOptions {
  pool: Pool;
  temporal?: Client;
  /** Default `/readiness`. */
  endpoint?: string;
  /** Per check, default 2000 ms. */
  timeoutMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return 'ok';
  } finally {
    clearTimeout(timer);
  }
}

export function useReadiness(options: ReadinessOptions): Plugin {
  const timeoutMs = options.timeoutMs ?? 2000;
  const run = async (name: string, check: () => Promise<unknown>): Promise<'ok' | 'down'> => {
    try {
      return await probe(check, timeoutMs);
    } catch (err) {
      options.log?.('readiness: dependency down', { dependency: name, error: (err as Error).message });
      return 'down';
    }
  };
  return useReadinessCheck({
    endpoint: options.endpoint ?? '/readiness',
    async check({ fetchAPI }) {
      const [postgres, temporal] = await Promise.all([
        run('postgres', () => options.pool.query('select 1')),
        options.temporal ? run('temporal', () => options.temporal!.workflowService.getSystemInfo({})) : Promise.resolve(undefined),
      ]);
      const body = { postgres, ...(temporal ? { temporal } : {}) };
      const ok = postgres === 'ok' && (temporal === undefined || temporal === 'ok');
      return new fetchAPI.Response(JSON.stringify(body), { status: ok ? 200 : 503, headers: { 'content-type': 'application/json' } });
    },
  });
}
