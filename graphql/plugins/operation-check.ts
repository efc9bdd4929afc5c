import type { Plugin } from 'graphql-yoga';
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';

export interface OperationArgs {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variableValues?: Record<string, unknown> | null;
}

/**
 * A plugin that runs `check` on every query, mutation and subscription once its variables are
 * known, and answers with the error it returns instead of running the operation.
 */
export function useOperationCheck(check: (args: OperationArgs) => GraphQLError | null): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const error = check(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = check(args);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
