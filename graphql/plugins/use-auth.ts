/**
 * Bearer-token auth for the GraphQL endpoint.
 *
 * - `Authorization: Bearer lad_…` is verified once per request (the server's `ApiTokenVerifier`:
 *   a sha256 lookup in `api_tokens`, cached briefly); the principal goes to `context.auth`. A token that is present but unknown or revoked fails
 *   the request with UNAUTHENTICATED (HTTP 401), whatever the operation.
 * - Mutations need a token (UNAUTHENTICATED without) with role `editor` (FORBIDDEN for `viewer`).
 * - Queries and subscriptions need a token too, unless `allowAnonymousRead` (default false: only
 *   the embedded dev stack turns it on); an anonymous read sees every project. Operations made
 *   only of introspection fields (`__schema`, `__type`, `__typename`) never need a token, so
 *   GraphiQL loads its docs.
 * - Scoping to the token's project is done by the resolvers (`scopeProject`).
 *
 * Token values are never logged nor echoed in errors.
 */
import type { Plugin } from 'graphql-yoga';
import { getOperationAST, Kind, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import type { ApiPrincipal } from '../../core/auth/tokens';
import { apiError } from '../errors';

export interface AuthPluginOptions {
  /** Resolves a plaintext token to its principal, or null when unknown or revoked. */
  verify: (token: string) => Promise<ApiPrincipal | null>;
  /** Let requests without a token run queries and subscriptions (every project). Default false. */
  allowAnonymousRead?: boolean;
}

interface AuthContext {
  request: Request;
  auth?: ApiPrincipal | null;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function onlyIntrospection(op: OperationDefinitionNode): boolean {
  return op.selectionSet.selections.every((s) => s.kind === Kind.FIELD && s.name.value.startsWith('__'));
}

/** The error an operation meets under this principal, or null when it may run. */
export function authorize(
  document: DocumentNode,
  operationName: string | null | undefined,
  auth: ApiPrincipal | null | undefined,
  allowAnonymousRead: boolean,
) {
  const op = getOperationAST(document, operationName);
  if (!op) return null; // graphql-js reports the missing operation itself
  if (op.operation === 'mutation') {
    if (!auth) return apiError('UNAUTHENTICATED', 'mutations need an API token (Authorization: Bearer …)');
    if (auth.role !== 'editor') return apiError('FORBIDDEN', 'this API token may only read (role viewer); mutations need an editor token');
    return null;
  }
  if (!auth && !allowAnonymousRead && !onlyIntrospection(op)) {
    return apiError('UNAUTHENTICATED', 'this API needs a token (Authorization: Bearer …)');
  }
  return null;
}

export function useAuth(options: AuthPluginOptions): Plugin<AuthContext> {
  const allowAnonymousRead = options.allowAnonymousRead ?? false;
  return {
    async onContextBuilding({ context, extendContext }) {
      const header = context.request.headers.get('authorization');
      if (!header) {
        extendContext({ auth: null });
        return;
      }
      const match = BEARER.exec(header);
      const principal = match ? await options.verify(match[1]!) : null;
      if (!principal) throw apiError('UNAUTHENTICATED', 'invalid or revoked API token');
      extendContext({ auth: principal });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const error = authorize(args.document, args.operationName, (args.contextValue as AuthContext).auth, allowAnonymousRead);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = authorize(args.document, args.operationName, (args.contextValue as AuthContext).auth, allowAnonymousRead);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
