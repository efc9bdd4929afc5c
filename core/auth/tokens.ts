/**
 * API tokens: bearer tokens of the GraphQL API, scoped to one project with a role.
 *
 * A token is `lad_` + 43 base64url characters (256 random bits). Only its sha256 is stored, so a
 * leaked database does not leak usable tokens; the plaintext is returned once by
 * `createApiToken` and never logged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
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
  options: { project: string; role: ApiTokenRole; name: string },
): Promise<{ id: string; token: string }> {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
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

export async function revokeApiToken(db: Db, id: string): Promise<boolean> {
  const rows = await db
    .update(apiTokens)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return rows.length > 0;
}
