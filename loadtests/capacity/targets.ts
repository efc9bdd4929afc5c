/**
 * What one operation of each scenario kind is. Preparation (trials, seeded data, an API token)
 * runs once, in the capacity workflow's prepare activity, and yields plain JSON, so a generator
 * activity on any loadgen worker builds the same operation from it without a database connection.
 *
 * That JSON is an activity result and input, so it is kept in Temporal's history: it carries no
 * secret. Generators make the tokens themselves from the deployment's ingest secret, which every
 * loadgen worker of an ingest/graphql/launch run has (LADDER_INGEST_SECRET): ingest tokens are
 * minted per trial as the worker does for a job; the run's API token is an HMAC of a random salt
 * under that secret, whose hash the prepare activity stored (`deriveRunApiToken`). With
 * LADDER_API_TOKEN set, each worker uses its own copy instead. Tokens made for the run are revoked
 * when it ends (workers/loadgen.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Database } from '../../core/db/client';
import { createApiToken, TOKEN_PREFIX } from '../../core/auth/tokens';
import { mintIngestToken } from '../../core/ingest/tokens';
import { parseSweepSpec } from '../../core/spec/spec';
import { createSweep } from '../../core/sweeps/store';
import { isFinishedTrial, type ApiTokenRole } from '../../core/db/schema';
import { curvesQuery, LEADERBOARD_QUERY, SWEEP_QUERY, SWEEPS_QUERY } from '../../dashboard/src/queries';
import type { Operation } from './executor';
import type { Scenario } from './scenario';

export interface PrepareEnv {
  /** Base URL of the Ladder API (or of the service, for http). */
  target?: string;
  /** Needed by ingest (trial rows) and graphql (seed data, a viewer token) and launch (an editor token). */
  database?: Database;
  /** The deployment's ingest secret (LADDER_INGEST_SECRET), to mint tokens of the trials ingest writes to. */
  ingestSecret?: string;
  /** An API token to use instead of creating one (LADDER_API_TOKEN). */
  apiToken?: string;
}

/**
 * How a generator gets the run's API token: its own LADDER_API_TOKEN (`env`), or derived from the
 * ingest secret and `salt` (`derived`; `tokenId` is the row revoked at the end).
 */
export type ApiAuth = { from: 'env' } | { from: 'derived'; salt: string; tokenId: string };

/** Everything a generator needs besides the scenario and its worker's secrets. Holds no secret (it is in Temporal's history). */
export type Prepared =
  | { kind: 'ingest'; target: string; trialIds: string[] }
  | { kind: 'graphql'; target: string; auth: ApiAuth; sweepIds: string[]; trialIds: string[]; metric: string }
  | { kind: 'launch'; target: string; auth: ApiAuth; project: string }
  | { kind: 'k8s'; runId: string }
  | { kind: 'http'; url: string };

/** The secrets of the loadgen worker a generator runs on (never in an activity's input or result). */
export interface GeneratorSecrets {
  /** LADDER_INGEST_SECRET: mints ingest tokens, derives the run's API token. */
  ingestSecret?: string;
  /** LADDER_API_TOKEN. */
  apiToken?: string;
}

/** The run's API token: `lad_` + HMAC-SHA256(ingest secret, label + salt), so only holders of the secret can make it. */
export function deriveRunApiToken(ingestSecret: string, salt: string): string {
  return TOKEN_PREFIX + createHmac('sha256', ingestSecret).update(`ladder-capacity-api-token:v1\n${salt}`).digest('base64url');
}

/** Stores the hash of a derived token as an API token of `project` (as createApiToken does for a random one). */
async function storeDerivedApiToken(db: Database, ingestSecret: string, options: { project: string; role: ApiTokenRole }): Promise<ApiAuth> {
  const salt = randomBytes(16).toString('hex');
  const { id: tokenId } = await createApiToken(db.db, { ...options, name: `capacity-${salt.slice(0, 6)}`, token: deriveRunApiToken(ingestSecret, salt) });
  return { from: 'derived', salt, tokenId };
}

/** The token id a run made (to revoke at its end), if any. */
export const preparedTokenId = (p: Prepared | null | undefined): string | undefined => (p && 'auth' in p && p.auth.from === 'derived' ? p.auth.tokenId : undefined);

const API_SECRET_NEEDED = 'this scenario needs an API token: set LADDER_API_TOKEN, or LADDER_INGEST_SECRET (the deployment\'s) so the run makes one';

/** The API token a generator sends, from its worker's secrets. */
function apiTokenOf(auth: ApiAuth, secrets: GeneratorSecrets): string {
  if (auth.from === 'env') return need(secrets.apiToken, `this loadgen worker has no LADDER_API_TOKEN, which the worker that prepared the run used`);
  return deriveRunApiToken(need(secrets.ingestSecret, `this loadgen worker has no LADDER_INGEST_SECRET: it derives the run's API token`), auth.salt);
}

const apiAuth = async (env: PrepareEnv, role: ApiTokenRole, what: string): Promise<ApiAuth> => {
  if (env.apiToken) return { from: 'env' };
  const db = need(env.database, `the ${what} scenario creates a ${role} token: set DATABASE_URL or LADDER_API_TOKEN`);
  return storeDerivedApiToken(db, need(env.ingestSecret, API_SECRET_NEEDED), { project: 'capacity', role });
};

export class TargetError extends Error {}

const need = <T>(value: T | undefined, what: string): T => {
  if (value === undefined || value === '') throw new TargetError(what);
  return value;
};

const SEED_METRIC = 'loss';

export async function prepareTarget(scenario: Scenario, env: PrepareEnv): Promise<Prepared> {
  const target = env.target ?? scenario.target;
  switch (scenario.scenario) {
    case 'http': {
      const spec = scenario.http!;
      const url = /^https?:\/\//.test(spec.url) ? spec.url : new URL(spec.url, need(target, 'http.url is a path: give target (or --target) as its base')).toString();
      return { kind: 'http', url };
    }
    case 'ingest': {
      const db = need(env.database, 'the ingest scenario creates trial rows: set DATABASE_URL (or run `ladder dev`)');
      // Checked here too, so a run without it fails before seeding anything.
      need(env.ingestSecret, 'the ingest scenario mints ingest tokens: set LADDER_INGEST_SECRET to the deployment\'s secret');
      const trialIds = await seedTrials(db, `capacity-ingest`, scenario.ingest!.jobs, 'running');
      return { kind: 'ingest', target: need(target, 'target (or --target): the API URL'), trialIds };
    }
    case 'graphql': {
      const db = need(env.database, 'the graphql scenario seeds data and creates a viewer token: set DATABASE_URL');
      const g = scenario.graphql!;
      let sweepIds: string[] = [];
      let trialIds: string[] = [];
      if (g.seedTrials > 0) {
        trialIds = await seedTrials(db, 'capacity-graphql', g.seedTrials, 'succeeded', g.seedPoints);
        const { rows } = await db.pool.query<{ sweep_id: string }>('select sweep_id from trials where id = $1', [trialIds[0]]);
        sweepIds = rows.map((r) => r.sweep_id);
      } else {
        const { rows } = await db.pool.query<{ id: string; sweep_id: string }>(
          'select id, sweep_id from trials where sweep_id = (select id from sweeps order by created_at desc limit 1) order by id limit 50',
        );
        if (!rows.length) throw new TargetError('graphql.seedTrials is 0 and the database has no sweep to read');
        sweepIds = [rows[0]!.sweep_id];
        trialIds = rows.map((r) => r.id);
      }
      const url = need(target, 'target (or --target): the API URL');
      return { kind: 'graphql', target: url, auth: await apiAuth(env, 'viewer', 'graphql'), sweepIds, trialIds, metric: SEED_METRIC };
    }
    case 'launch': {
      const url = need(target, 'target (or --target): the API URL');
      return { kind: 'launch', target: url, auth: await apiAuth(env, 'editor', 'launch'), project: 'capacity' };
    }
    case 'k8s':
      return { kind: 'k8s', runId: randomBytes(4).toString('hex') };
  }
}

/** Trials of a new sweep in project `capacity`, in `status` with attempt 1 (ingest writes only to a running attempt). */
async function seedTrials(db: Database, name: string, count: number, status: 'running' | 'succeeded', points = 0): Promise<string[]> {
  const spec = parseSweepSpec({ name, project: 'capacity', kind: 'synthetic', base: { steps: 1 }, seeds: count });
  const sweep = await createSweep(db.db, { spec, codeVersion: 'capacity', rerun: true });
  await db.pool.query(
    `update trials set status = $2, attempts = 1,
       result = case when $2 = 'succeeded' then jsonb_build_object('metrics', jsonb_build_object('${SEED_METRIC}', 1.0 / (1 + seed))) end
     where sweep_id = $1`,
    [sweep.id, status],
  );
  const { rows } = await db.pool.query<{ id: string }>('select id from trials where sweep_id = $1 order by seed', [sweep.id]);
  if (points > 0) {
    await db.pool.query(
      `insert into metric_points (trial_id, name, step, value)
       select t.id, '${SEED_METRIC}', s, 1.0 / (1 + s) from unnest($1::text[]) t(id), generate_series(0, $2 - 1) s`,
      [rows.map((r) => r.id), points],
    );
  }
  return rows.map((r) => r.id);
}

export interface BuiltOperation {
  operation: Operation;
  /** After the step: extra figures (launch: trials finished per second). */
  finish?(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export class HttpStatusError extends Error {
  override name = 'HttpError';
}

/** This generator's place among all of them, so ingest steps and ids never collide. */
export interface GeneratorSlot {
  index: number;
  count: number;
}

export function buildOperation(scenario: Scenario, prepared: Prepared, slot: GeneratorSlot, secrets: GeneratorSecrets = {}): BuiltOperation {
  const dispatcher = new Agent({ connections: Math.min(scenario.load.maxInFlight, 512), pipelining: 1 });
  const close = () => dispatcher.close();

  const call = async (url: string, init: { method: string; headers: Record<string, string>; body?: string }, signal: AbortSignal, ok = (s: number) => s >= 200 && s < 400) => {
    const res = await request(url, { ...init, method: init.method as 'GET', signal, dispatcher });
    const text = await res.body.text();
    if (!ok(res.statusCode)) throw new HttpStatusError(`HTTP ${res.statusCode}${text ? `: ${text.slice(0, 120)}` : ''}`);
    return text;
  };
  const graphql = async (p: { target: string; token: string }, query: string, variables: Record<string, unknown>, signal: AbortSignal) => {
    const text = await call(`${p.target}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${p.token}` }, body: JSON.stringify({ query, variables }) }, signal);
    const body = JSON.parse(text) as { data?: unknown; errors?: Array<{ message?: string }> };
    if (body.errors?.length) throw new Error(`GraphQL error: ${String(body.errors[0]?.message).slice(0, 160)}`);
    return body.data as Record<string, unknown>;
  };

  switch (prepared.kind) {
    case 'http': {
      const spec = scenario.http!;
      const body = spec.body === undefined ? undefined : typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body);
      const headers = { ...(typeof spec.body === 'object' ? { 'content-type': 'application/json' } : {}), ...spec.headers };
      const ok = spec.expectStatus ? (s: number) => spec.expectStatus!.includes(s) : undefined;
      return { operation: async (signal) => void (await call(prepared.url, { method: spec.method, headers, body }, signal, ok)), close };
    }
    case 'ingest': {
      const cfg = scenario.ingest!;
      const secret = need(secrets.ingestSecret, 'this loadgen worker has no LADDER_INGEST_SECRET: the ingest scenario mints ingest tokens on the generator');
      // Minted as the worker does for a job's attempt, valid as long as such a job could run.
      const jobs = prepared.trialIds.map((trialId) => ({ trialId, token: mintIngestToken(secret, { trialId, attempt: 1, timeoutSeconds: 24 * 3600 }) }));
      // Each simulated job sends its own series, steps rising batch after batch like a training
      // loop; generators interleave their steps so their points are new rows too.
      const next = jobs.map(() => 0);
      return {
        operation: async (signal, index) => {
          const j = index % jobs.length;
          const job = jobs[j]!;
          const batchNo = next[j]!++;
          const points = Array.from({ length: cfg.batch }, (_, k) => {
            const step = (batchNo * slot.count + slot.index) * cfg.batch + k;
            return { name: cfg.metrics[step % cfg.metrics.length]!, step, value: 1 / (1 + step) };
          });
          await call(`${prepared.target}/ingest/v1/trials/${encodeURIComponent(job.trialId)}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${job.token}` }, body: JSON.stringify({ points }) }, signal);
        },
        close,
      };
    }
    case 'graphql': {
      const g = scenario.graphql!;
      const api = { target: prepared.target, token: apiTokenOf(prepared.auth, secrets) };
      const mix = (['sweeps', 'sweep', 'leaderboard', 'curves'] as const).filter((k) => g.mix[k] > 0);
      const total = mix.reduce((s, k) => s + g.mix[k], 0);
      if (!total) throw new TargetError('graphql.mix: at least one weight must be above 0');
      const pick = (u: number) => {
        let acc = 0;
        for (const k of mix) if ((acc += g.mix[k] / total) > u) return k;
        return mix[mix.length - 1]!;
      };
      const curveIds = prepared.trialIds.slice(0, g.curveTrials);
      const curves = curvesQuery(curveIds.length);
      const curveVars = Object.fromEntries(curveIds.map((id, i) => [`t${i}`, id]));
      return {
        operation: async (signal, index) => {
          // A golden-ratio sequence, so every generator runs the same mix without a shared RNG.
          const which = pick(((index * 0.6180339887) + slot.index * 0.37) % 1);
          const id = prepared.sweepIds[index % prepared.sweepIds.length]!;
          if (which === 'sweeps') await graphql(api, SWEEPS_QUERY, { first: 20 }, signal);
          else if (which === 'sweep') await graphql(api, SWEEP_QUERY, { id }, signal);
          else if (which === 'leaderboard') await graphql(api, LEADERBOARD_QUERY, { id, metric: prepared.metric, mode: 'min' }, signal);
          else await graphql(api, curves, { ...curveVars, names: [prepared.metric], maxPoints: g.maxPoints }, signal);
        },
        close,
      };
    }
    case 'launch': {
      const cfg = scenario.launch!;
      const api = { target: prepared.target, token: apiTokenOf(prepared.auth, secrets) };
      const launched: string[] = [];
      let seenRunning = 0;
      const started = performance.now();
      const LAUNCH = 'mutation CapacityLaunch($spec: JSON!) { launchSweep(spec: $spec, rerun: true) { sweep { id } trials } }';
      const PROGRESS = 'query CapacityProgress($id: ID!) { sweep(id: $id) { status progress { total counts { running succeeded failed cancelled skipped } } } }';
      type Progress = { sweep: { status: string; progress: { total: number; counts: Record<string, number> } } | null };
      return {
        // The measured latency is submit → first trial running (or already past running).
        operation: async (signal, index) => {
          const spec = { name: `capacity-launch-${slot.index}-${index}`, project: prepared.project, kind: cfg.kind, base: cfg.config, seeds: cfg.trials };
          const data = (await graphql(api, LAUNCH, { spec }, signal)) as { launchSweep: { sweep: { id: string } } };
          const id = data.launchSweep.sweep.id;
          launched.push(id);
          for (;;) {
            const p = (await graphql(api, PROGRESS, { id }, signal)) as Progress;
            const c = p.sweep?.progress.counts ?? {};
            if ((c.running ?? 0) + (c.succeeded ?? 0) + (c.failed ?? 0) > 0) {
              seenRunning++;
              return;
            }
            await new Promise((r) => setTimeout(r, 25));
          }
        },
        finish: async () => {
          const deadline = Date.now() + cfg.drain;
          let finished = 0;
          let total = 0;
          const signal = AbortSignal.timeout(cfg.drain + 5000);
          for (;;) {
            finished = 0;
            total = 0;
            for (const id of launched) {
              const p = (await graphql(api, PROGRESS, { id }, signal).catch(() => ({ sweep: null }))) as Progress;
              const c = p.sweep?.progress.counts ?? {};
              total += p.sweep?.progress.total ?? 0;
              finished += Object.entries(c).filter(([status]) => isFinishedTrial(status as Parameters<typeof isFinishedTrial>[0])).reduce((s, [, n]) => s + n, 0);
            }
            if (finished >= total || Date.now() > deadline) break;
            await new Promise((r) => setTimeout(r, 200));
          }
          const seconds = (performance.now() - started) / 1000;
          return { sweepsLaunched: launched.length, sweepsSeenRunning: seenRunning, trialsFinished: finished, trialsPlanned: total, trialsPerSecond: finished / seconds };
        },
        close,
      };
    }
    case 'k8s':
      return buildK8sOperation(scenario, prepared, slot, close);
  }
}

function buildK8sOperation(scenario: Scenario, prepared: Extract<Prepared, { kind: 'k8s' }>, slot: GeneratorSlot, closeHttp: () => Promise<void>): BuiltOperation {
  // Loaded lazily: the client takes a while to load and only this scenario needs it.
  const k8s = require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
  const cfg = scenario.k8s!;
  const kc = new k8s.KubeConfig();
  if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig);
  else kc.loadFromDefault();
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const created: string[] = [];
  const label = `ladder-capacity=${prepared.runId}`;
  return {
    // Latency: Job created → its pod observed Running.
    operation: async (signal, index) => {
      const name = `cap-${prepared.runId}-${slot.index}-${index}`;
      await batch.createNamespacedJob({
        namespace: cfg.namespace,
        body: {
          metadata: { name, labels: { 'ladder-capacity': prepared.runId } },
          spec: {
            backoffLimit: 0,
            ttlSecondsAfterFinished: 60,
            template: {
              metadata: { labels: { 'ladder-capacity': prepared.runId }, annotations: cfg.podAnnotations },
              spec: {
                restartPolicy: 'Never',
                nodeSelector: cfg.nodeSelector,
                tolerations: cfg.tolerations,
                containers: [{ name: 'load', image: cfg.image, command: ['sleep', '30'] }],
              },
            },
          },
        },
      });
      created.push(name);
      while (!signal.aborted) {
        const pods = await core.listNamespacedPod({ namespace: cfg.namespace, labelSelector: `job-name=${name}` });
        if (pods.items.some((p) => p.status?.phase === 'Running' || p.status?.phase === 'Succeeded')) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: async () => {
      await batch.deleteCollectionNamespacedJob({ namespace: cfg.namespace, labelSelector: label, propagationPolicy: 'Background' }).catch(() => {});
      await closeHttp();
    },
  };
}
