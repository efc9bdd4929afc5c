/** GraphQL errors that reach clients as they are (everything else is masked by use-masking). */
import { GraphQLError } from 'graphql';

export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'QUERY_TOO_DEEP'
  | 'QUERY_TOO_COSTLY'
  | 'QUERY_TOO_LARGE';

// A client's mistake is a 4xx, so proxies, retries and dashboards never take it for an outage.
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  BAD_USER_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  QUERY_TOO_DEEP: 400,
  QUERY_TOO_COSTLY: 400,
  QUERY_TOO_LARGE: 400,
};

export function apiError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  const status = HTTP_STATUS[code];
  // spec: false keeps yoga from answering 200 for `accept: application/json` (its legacy mode).
  return new GraphQLError(message, { extensions: { code, ...extensions, ...(status ? { http: { status, spec: false } } : {}) } });
}

export function isGraphQLError(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError || (error instanceof Error && error.name === 'GraphQLError');
}
