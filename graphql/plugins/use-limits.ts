/**
 * The one home of the API's request limits. Every bound below has a typed option and a default
 * in `LIMIT_DEFAULTS`; `createApiServer({ limits })` overrides any of them.
 *
 * Checked in the order a request meets them, each refusing before the next does any work:
 *
 * 1. body: a POST body above `maxBodyBytes` (default 1 MiB) → HTTP 413 before it is parsed
 *    (`use-body-limit.ts`, which server.ts sets from here; it counts streamed bodies too).
 * 2. tokens (GraphQL Armor max-tokens, at parse): above `maxTokens` (default 5000) the parser stops,
 *    so validation never sees a huge document → HTTP 400.
 * 3. validation (GraphQL Armor rules, reported with our codes → HTTP 400): aliases above
 *    `maxAliases` (default 100: the dashboard asks for up to 100 aliased trials at once),
 *    depth above `maxDepth` (default 10, root fields are depth 1) → QUERY_TOO_DEEP, directives
 *    above `maxDirectives` (default 20).
 * 4. before execution, with the variables: page size (`first` above `maxPageSize`, default 100;
 *    `maxPoints` above `maxPoints`, default 5000 → BAD_USER_INPUT), the number of fields with
 *    fragments expanded (above `maxFields`, default 2000 → QUERY_TOO_LARGE; the walk stops there,
 *    so a fragment that spreads another twice, nested, cannot make it exponential), and cost:
 *
 *      cost(field) = weight + Σ cost(child) × (n if the child returns a list, else 1)
 *
 *    where n is the field's `first` or `maxPoints` (its default when omitted), weight is
 *    `totalCountCost` (default 100: a count(*) over the filtered rows) for `totalCount`, n for a
 *    field that takes `first` (it fetches n + 1 rows whatever is selected), and 1 otherwise.
 *    Above `maxCost` (default 250 000) → QUERY_TOO_COSTLY. A 100-trial page with 500-point curves
 *    costs about 100 000; 100 aliases of `sweeps(first: 100) { totalCount }` cost 20 000.
 *
 * Introspection fields (`__schema`, `__type`, `__typename`) are exempt from depth and cost, so
 * GraphiQL works.
 */
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import type { Plugin } from 'graphql-yoga';
import {
  getNamedType,
  getNullableType,
  getOperationAST,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  valueFromAST,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { apiError, type ErrorCode } from '../errors';
import { useOperationCheck } from './operation-check';
import { MAX_PAGE_SIZE, MAX_POINTS } from '../schema';

export interface LimitsOptions {
  /** Largest POST body in bytes (HTTP 413 above). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most lexical tokens in one document. Default 5000. */
  maxTokens?: number;
  /** Most aliases in one operation, fragments included. Default 100. */
  maxAliases?: number;
  /** Deepest field nesting allowed (root fields are depth 1). Default 10. */
  maxDepth?: number;
  /** Most directives in one operation. Default 20. */
  maxDirectives?: number;
  /** Most fields in one operation once fragments are expanded. Default 2000. */
  maxFields?: number;
  /**
   * Most fields sharing one response name in one selection set (inline fragments flattened).
   * Default 10. graphql-js's "fields can be merged" rule is quadratic in this count, so 1,000
   * copies of `sweeps { totalCount }` in 5,000 tokens would hold the event loop for seconds.
   */
  maxSameNameFields?: number;
  /** Highest query cost allowed (see above). Default 250 000. */
  maxCost?: number;
  /** Weight of one `totalCount` (a count query). Default 100. */
  totalCountCost?: number;
  /** Largest `first` of a connection. Default 100 (the resolvers' own bound). */
  maxPageSize?: number;
  /** Largest `maxPoints` of a metric series. Default 5000 (the resolvers' own bound). */
  maxPoints?: number;
}

export type Limits = Required<LimitsOptions>;

export const LIMIT_DEFAULTS: Readonly<Limits> = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  maxTokens: 5000,
  maxAliases: 100,
  maxDepth: 10,
  maxDirectives: 20,
  maxFields: 2000,
  maxSameNameFields: 10,
  maxCost: 250_000,
  totalCountCost: 100,
  maxPageSize: MAX_PAGE_SIZE,
  maxPoints: MAX_POINTS,
});

/** The defaults with the given overrides; a bound that is not a positive integer is a programming error. */
export function resolveLimits(options: LimitsOptions = {}): Limits {
  const limits: Limits = { ...LIMIT_DEFAULTS };
  for (const key of Object.keys(LIMIT_DEFAULTS) as (keyof Limits)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`limits.${key} must be a positive integer (got ${String(value)})`);
    limits[key] = value;
  }
  return limits;
}

export interface QueryMeasure {
  depth: number;
  cost: number;
  fields: number;
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
  limits: Limits,
): QueryMeasure | null {
  const op = getOperationAST(document, operationName);
  if (!op) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const root = op.operation === 'mutation' ? schema.getMutationType() : op.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  let maxDepth = 0;
  let visited = 0;

  const visit = () => {
    // Counts spreads as well as fields: a document of fragments that only spread each other
    // must hit this bound too, or the walk would be exponential in the document's size.
    if (++visited > limits.maxFields) {
      throw new LimitError(
        apiError('QUERY_TOO_LARGE', `the operation selects more than ${limits.maxFields} fields (fragments expanded)`, { maxFields: limits.maxFields }),
      );
    }
  };

  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | null | undefined, depth: number, listSize: number, seen: Set<string>): number => {
    let cost = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        visit();
        const frag = fragments.get(sel.name.value);
        if (!frag || seen.has(frag.name.value)) continue;
        cost += walk(frag.selectionSet, schema.getType(frag.typeCondition.name.value), depth, listSize, new Set([...seen, frag.name.value]));
        continue;
      }
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        visit();
        cost += walk(sel.selectionSet, sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent, depth, listSize, seen);
        continue;
      }
      const name = sel.name.value;
      if (name.startsWith('__')) continue;
      visit();
      const fieldDepth = depth + 1;
      maxDepth = Math.max(maxDepth, fieldDepth);
      const field: GraphQLField<unknown, unknown> | undefined =
        parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
      let size: number | null = null;
      let weight = name === 'totalCount' ? limits.totalCountCost : 1;
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
        size = Math.max(size ?? 0, value);
        if (argName === 'first') weight = Math.max(weight, value);
      }
      const children = sel.selectionSet
        ? walk(sel.selectionSet, field ? getNamedType(field.type) : null, fieldDepth, size ?? 1, seen)
        : 0;
      const own = weight + children;
      cost += field && isListType(getNullableType(field.type)) ? listSize * own : own;
      if (cost > limits.maxCost) break; // already refused; no need to finish the sum
    }
    return cost;
  };

  const cost = walk(op.selectionSet, root, 0, 1, new Set());
  if (cost > limits.maxCost) {
    throw new LimitError(apiError('QUERY_TOO_COSTLY', `query cost ${cost} exceeds ${limits.maxCost}`, { cost, maxCost: limits.maxCost }));
  }
  return { depth: maxDepth, cost, fields: visited };
}

/**
 * The largest number of fields that share a response name in any one selection set of the
 * document, inline fragments flattened into their parent. Linear in the document's size, so it
 * can run before validation.
 */
export function maxSameNameFieldCount(document: DocumentNode): number {
  let worst = sameNameCounts.get(document);
  if (worst === undefined) sameNameCounts.set(document, (worst = countSameNameFields(document)));
  return worst;
}

/** Per document: yoga's parser cache hands every request with the same text the same DocumentNode. */
const sameNameCounts = new WeakMap<DocumentNode, number>();

function countSameNameFields(document: DocumentNode): number {
  let worst = 0;
  const countSet = (set: SelectionSetNode) => {
    const counts = new Map<string, number>();
    const stack: SelectionSetNode[] = [set];
    while (stack.length) {
      for (const sel of stack.pop()!.selections) {
        if (sel.kind === Kind.INLINE_FRAGMENT) {
          stack.push(sel.selectionSet);
        } else if (sel.kind === Kind.FIELD) {
          const key = (sel.alias ?? sel.name).value;
          const n = (counts.get(key) ?? 0) + 1;
          counts.set(key, n);
          if (n > worst) worst = n;
        }
      }
    }
  };
  const visitAll = (set: SelectionSetNode) => {
    countSet(set);
    for (const sel of set.selections) if (sel.kind !== Kind.FRAGMENT_SPREAD && sel.selectionSet) visitAll(sel.selectionSet);
  };
  for (const def of document.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION || def.kind === Kind.FRAGMENT_DEFINITION) visitAll(def.selectionSet);
  }
  return worst;
}

/** Armor's rules report with our codes and messages, so clients see one error shape. */
function rejectAs(code: ErrorCode, message: string, extensions: Record<string, unknown>) {
  return (context: ValidationContext | null) => {
    context?.reportError(apiError(code, message, extensions));
  };
}

/** The request limits as yoga plugins, in the order they apply. */
export function useLimits(options: LimitsOptions | Limits = {}): Plugin[] {
  const limits = resolveLimits(options);
  const check = (args: { schema: GraphQLSchema; document: DocumentNode; operationName?: string | null; variableValues?: Record<string, unknown> | null }) => {
    try {
      measureOperation(args.schema, args.document, args.operationName, args.variableValues, limits);
      return null;
    } catch (err) {
      if (err instanceof LimitError) return err.graphqlError;
      throw err;
    }
  };
  const measure = useOperationCheck(check);
  const sameName: Plugin = {
    onValidate({ params, setResult }) {
      const worst = maxSameNameFieldCount(params.documentAST);
      if (worst > limits.maxSameNameFields) {
        setResult([
          apiError('QUERY_TOO_LARGE', `a selection set repeats one field ${worst} times (at most ${limits.maxSameNameFields})`, {
            maxSameNameFields: limits.maxSameNameFields,
          }),
        ]);
      }
    },
  };
  return [
    maxTokensPlugin({ n: limits.maxTokens }) as Plugin,
    sameName,
    maxAliasesPlugin({
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: [rejectAs('QUERY_TOO_LARGE', `the operation has more than ${limits.maxAliases} aliases`, { maxAliases: limits.maxAliases })],
    }) as Plugin,
    maxDepthPlugin({
      n: limits.maxDepth,
      // A fragment spread is not a level of the result; counting it would refuse shallow queries.
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: [rejectAs('QUERY_TOO_DEEP', `query depth exceeds ${limits.maxDepth}`, { maxDepth: limits.maxDepth })],
    }) as Plugin,
    maxDirectivesPlugin({
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: [rejectAs('QUERY_TOO_LARGE', `the operation has more than ${limits.maxDirectives} directives`, { maxDirectives: limits.maxDirectives })],
    }) as Plugin,
    measure,
  ];
}
