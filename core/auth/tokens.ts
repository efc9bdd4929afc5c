/**
 * API tokens: bearer tokens of the GraphQL API, scoped to one project with a role.
 *
 * A token is `lad_` + 43 base64url characters (256 random bits). Only its sha256 is stored, so a
 * leaked database does not leak usable tokens; the plaintext is returned once by
 * `createApiToken` and never logged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { LRUCache } from 'lru-cache';
import type { Db } from '../db/client';
import { apiTokens, projects, type ApiTokenRole } from '../db/schema';

export const TOKEN_PREFIX = 'lad_';

export interface ApiPrincipal {
  tokenId: string;
  project: string;
  role: ApiTokenRole;
  name: string;
}

export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export async function createApiToken(
  db: Db,
  /**
   * `token`: a value the caller derived itself (a capacity run's token, made again from a secret
   * where it is used, so it never travels); default a random one. Only its hash is stored.
   */
  options: { project: string; role: ApiTokenRole; name: string; token?: string },
): Promise<{ id: string; token: string }> {
  const token = options.token ?? TOKEN_PREFIX + randomBytes(32).toString('base64url');
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) throw new Error(`an API token starts with ${TOKEN_PREFIX} and has at most 200 characters`);
  const id = `tok_${randomBytes(8).toString('hex')}`;
  await db.insert(projects).values({ id: options.project, name: options.project }).onConflictDoNothing();
  await db.insert(apiTokens).values({
    id,
    projectId: options.project,
    role: options.role,
    name: options.name,
    tokenHash: hashApiToken(token),
  });
  return { id, token };
}

/** The principal of a valid, unrevoked token, or null. Stamps `last_used_at` in the same statement. */
export async function verifyApiToken(db: Db, token: string): Promise<ApiPrincipal | null> {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
  const [row] = await db
    .update(apiTokens)
    .set({ lastUsedAt: sql`now()` })
    .where(and(eq(apiTokens.tokenHash, hashApiToken(token)), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id, project: apiTokens.projectId, role: apiTokens.role, name: apiTokens.name });
  return row ? { tokenId: row.id, project: row.project, role: row.role, name: row.name } : null;
}

/**
 * Revokes a token. The verifiers of this process forget it at once; an API server in another
 * process stops accepting it within its cache's ttl (`ApiTokenVerifier`), and at once when it
 * hears the `ladder_api_token` notification sent here.
 */
export async function revokeApiToken(db: Db, id: string): Promise<boolean> {
  const rows = await db.execute<{ id: string }>(
    sql`with revoked as (
          update ${apiTokens} set revoked_at = now() where ${apiTokens.id} = ${id} and ${apiTokens.revokedAt} is null returning id
        )
        select id, pg_notify(${TOKEN_CHANNEL}, id) from revoked`,
  );
  for (const verifier of liveVerifiers) verifier.forget(id);
  return rows.rows.length > 0;
}

/** Channel of revocations: the payload is the token id (never the token or its hash). */
export const TOKEN_CHANNEL = 'ladder_api_token';

export interface ApiTokenVerifierOptions {
  /**
   * How long a verified token is trusted without asking the database, ms (default 30 000): the
   * longest a revocation made in another process can go unnoticed here when its notification is
   * missed. Unknown and revoked tokens are never cached.
   */
  ttlMs?: number;
  /** Most tokens cached at once (default 10 000; least recently used go first). */
  max?: number;
  /** `last_used_at` is written at most once per this interval per token, ms (default 60 000). */
  touchIntervalMs?: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

interface CachedToken {
  principal: ApiPrincipal;
  expiresAt: number;
}

const liveVerifiers = new Set<ApiTokenVerifier>();

/**
 * Verifies bearer tokens for a long-running server: a verified token is cached briefly, keyed by
 * the sha256 of the token (the plaintext is never kept), so a read costs no statement; the
 * `last_used_at` stamp is a separate, rare write.
 */
export class ApiTokenVerifier {
  private readonly ttlMs: number;
  private readonly touchIntervalMs: number;
  private readonly now: () => number;
  private readonly cache: LRUCache<string, CachedToken>;
  /** Per token id: when this process last stamped last_used_at (outlives cache entries). */
  private readonly touched: LRUCache<string, number>;
  private readonly lookup;
  private readonly touch;
  /** Statements run by this verifier (tests and benchmarks count them). */
  statements = 0;

  constructor(
    db: Db,
    options: ApiTokenVerifierOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.touchIntervalMs = options.touchIntervalMs ?? 60_000;
    this.now = options.now ?? Date.now;
    const max = options.max ?? 10_000;
    this.cache = new LRUCache({ max });
    this.touched = new LRUCache({ max });
    this.lookup = db
      .select({ id: apiTokens.id, project: apiTokens.projectId, role: apiTokens.role, name: apiTokens.name })
      .from(apiTokens)
      .where(and(eq(apiTokens.tokenHash, sql.placeholder('hash')), isNull(apiTokens.revokedAt)))
      .prepare('ladder_api_token_lookup');
    // Conditional on the stored stamp too, so several API processes together still write about
    // once per interval; the time is this process's clock (the one the interval is measured on).
    this.touch = db
      .update(apiTokens)
      .set({ lastUsedAt: sql`${sql.placeholder('at')}::timestamptz` })
      .where(
        and(
          eq(apiTokens.id, sql.placeholder('id')),
          sql`(${apiTokens.lastUsedAt} is null or ${apiTokens.lastUsedAt} <= ${sql.placeholder('at')}::timestamptz - make_interval(secs => ${sql.placeholder('interval')}::float8))`,
        ),
      )
      .prepare('ladder_api_token_touch');
    liveVerifiers.add(this);
  }

  /** The principal of a valid, unrevoked token, or null. */
  async verify(token: string): Promise<ApiPrincipal | null> {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
    const hash = hashApiToken(token);
    const now = this.now();
    let principal = this.cache.get(hash);
    if (!principal || principal.expiresAt <= now) {
      this.cache.delete(hash);
      this.statements++;
      const [row] = await this.lookup.execute({ hash });
      if (!row) return null;
      principal = { principal: { tokenId: row.id, project: row.project, role: row.role, name: row.name }, expiresAt: now + this.ttlMs };
      this.cache.set(hash, principal);
    }
    const id = principal.principal.tokenId;
    const last = this.touched.get(id);
    if (last === undefined || now - last >= this.touchIntervalMs) {
      this.touched.set(id, now);
      this.statements++;
      await this.touch.execute({ id, at: new Date(now).toISOString(), interval: this.touchIntervalMs / 1000 });
    }
    return principal.principal;
  }

  /** Drops a token from the cache (revoked here or, by notification, elsewhere). */
  forget(tokenId: string): void {
    for (const [hash, entry] of this.cache.entries()) if (entry.principal.tokenId === tokenId) this.cache.delete(hash);
  }

  /** Drops every cached token: revocations may have been missed (the notification link dropped). */
  clear(): void {
    this.cache.clear();
  }

  close(): void {
    liveVerifiers.delete(this);
    this.cache.clear();
  }
}
