/**
 * Masked internal errors: a client sees `Unexpected error.` (code INTERNAL_SERVER_ERROR) for
 * anything that is not a deliberate GraphQLError (bad input, auth, not found, limits); the
 * detail (message, stack, field path) goes only to the server log. Dev mode changes nothing here:
 * no detail leaks to clients in any mode.
 *
 * `maskedErrors(options)` is the value for yoga's `maskedErrors` option: yoga installs it as its
 * masked-errors plugin, applied to execution results and to errors raised outside execution
 * (e.g. while building the context), which a plain envelop plugin would not see.
 */
import { GraphQLError } from 'graphql';
import { isGraphQLError } from '../errors';

export interface MaskingOptions {
  /** The message clients see. Default `Unexpected error.` */
  message?: string;
  /** Where the detail goes. Default: nowhere. */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export const MASKED_MESSAGE = 'Unexpected error.';

export function maskedErrors(options: MaskingOptions = {}) {
  const message = options.message ?? MASKED_MESSAGE;
  const maskError = (error: unknown): Error => {
    if (isGraphQLError(error)) {
      const original = error.originalError;
      if (!original || isGraphQLError(original)) return error; // deliberate, safe to show
      options.log?.('graphql: internal error', { error: original.message, stack: original.stack, path: error.path?.join('.') });
      return new GraphQLError(message, { nodes: error.nodes, path: error.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }
    options.log?.('graphql: internal error', { error: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack });
    return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR', http: { status: 500 } } });
  };
  return { maskError, errorMessage: message };
}
