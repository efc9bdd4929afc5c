/**
 * Query guards, checked before execution with the operation's variables:
 *
 * - depth: fields nested deeper than `maxDepth` (default 10) → QUERY_TOO_DEEP;
 * - page size: a `first` above `maxPageSize` (default 100) or a `maxPoints` above `maxPoints`
 *   (default 5000) → BAD_USER_INPUT (the resolvers check the same bounds again);
 * - cost: cost(field) = 1 + m × Σ cost(children), where m is the field's `first` or `maxPoints`
 *   argument (its default when omitted; 1 for other fields). Above `maxCost` (default 250 000)
 *   → QUERY_TOO_COSTLY. A 100-trial page with 500-point curves costs about 200 000.
 *
 * Introspection fields (`__schema`, `__type`) are exempt, so GraphiQL works.
 */
import type { Plugin } from 'graphql-yoga';
import {
  getNamedType,
  getOperationAST,
  isObjectType,
  isInterfaceType,
  Kind,
  valueFromAST,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import { apiError } from '../errors';

export interface LimitsOptions {
  /** Deepest field nesting allowed (root fields are depth 1). Default 10. */
  maxDepth?: number;
  /** Highest query cost allowed (see above). Default 250 000. */
  maxCost?: number;
  /** Largest `first` of a connection. Default 100. */
  maxPageSize?: number;
  /** Largest `maxPoints` of a metric series. Default 5000. */
  maxPoints?: number;
}

export const LIMIT_DEFAULTS: Required<LimitsOptions> = { maxDepth: 10, maxCost: 250_000, maxPageSize: 100, maxPoints: 5000 };

export interface QueryMeasure {
  depth: number;
  cost: number;
}

class LimitError extends Error {
  constructor(readonly graphqlError: GraphQLError) {
    super(graphqlError.message);
  }
}

/** Measures an operation; throws (as LimitError) at the first bound it breaks. */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  limits: Required<LimitsOptions>,
): QueryMeasure | null {
  const op = getOperationAST(document, operationName);
  if (!op) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const root = op.operation === 'mutation' ? schema.getMutationType() : op.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  let maxDepth = 0;

  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | null | undefined, depth: number, seen: Set<string>): number => {
    let cost = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const frag = fragments.get(sel.name.value);
        if (!frag || seen.has(frag.name.value)) continue;
        cost += walk(frag.selectionSet, schema.getType(frag.typeCondition.name.value), depth, new Set([...seen, frag.name.value]));
        continue;
      }
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        cost += walk(sel.selectionSet, sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent, depth, seen);
        continue;
      }
      const name = sel.name.value;
      if (name.startsWith('__')) continue;
      const fieldDepth = depth + 1;
      maxDepth = Math.max(maxDepth, fieldDepth);
      if (fieldDepth > limits.maxDepth) {
        throw new LimitError(apiError('QUERY_TOO_DEEP', `query depth exceeds ${limits.maxDepth}`, { maxDepth: limits.maxDepth }));
      }
      const field: GraphQLField<unknown, unknown> | undefined =
        parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
      let multiplier = 1;
      for (const argName of ['first', 'maxPoints'] as const) {
        const def = field?.args.find((a) => a.name === argName);
        if (!def) continue;
        const node = sel.arguments?.find((a) => a.name.value === argName);
        const value = node ? valueFromAST(node.value, def.type, variables ?? undefined) : def.defaultValue;
        if (typeof value !== 'number') continue;
        const bound = argName === 'first' ? limits.maxPageSize : limits.maxPoints;
        if (value > bound) {
          throw new LimitError(apiError('BAD_USER_INPUT', `${argName} must be at most ${bound}`, { argument: argName, max: bound }));
        }
        multiplier = Math.max(multiplier, value);
      }
      const children = sel.selectionSet ? walk(sel.selectionSet, field ? getNamedType(field.type) : null, fieldDepth, seen) : 0;
      cost += 1 + multiplier * children;
    }
    return cost;
  };

  const cost = walk(op.selectionSet, root, 0, new Set());
  if (cost > limits.maxCost) {
    throw new LimitError(apiError('QUERY_TOO_COSTLY', `query cost ${cost} exceeds ${limits.maxCost}`, { cost, maxCost: limits.maxCost }));
  }
  return { depth: maxDepth, cost };
}

export function useLimits(options: LimitsOptions = {}): Plugin {
  const limits = { ...LIMIT_DEFAULTS, ...options };
  const check = (args: { schema: GraphQLSchema; document: DocumentNode; operationName?: string | null; variableValues?: Record<string, unknown> | null }) => {
    try {
      measureOperation(args.schema, args.document, args.operationName, args.variableValues, limits);
      return null;
    } catch (err) {
      if (err instanceof LimitError) return err.graphqlError;
      throw err;
    }
  };
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
