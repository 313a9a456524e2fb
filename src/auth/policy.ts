/**
 * Who may do what. Every root field of the schema maps to one permission, and every role holds a
 * set of permissions; a root field missing from the table is refused (fail closed). The check runs
 * on the parsed operation before it executes, over HTTP and WebSocket alike, and the resolvers
 * check sensor scope on their arguments.
 *
 * | role     | may                                         |
 * |----------|---------------------------------------------|
 * | viewer   | queries and subscriptions                   |
 * | operator | a viewer's, plus spawn and stop sensors, set thresholds, acknowledge incidents |
 * | device   | only ingestReadings, for its own sensors    |
 * | admin    | everything, including stopSensors without ids |
 */
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { ErrorCode } from '../errors.js';
import type { Principal, Role } from './credentials.js';

export type Permission = 'read' | 'operate' | 'ingest';

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  viewer: new Set(['read']),
  operator: new Set(['read', 'operate']),
  device: new Set(['ingest']),
  admin: new Set(['read', 'operate', 'ingest']),
};

/** Every root field and the permission it takes. */
export const ROOT_FIELD_PERMISSIONS: Readonly<Record<string, Permission>> = {
  'Query.readings': 'read',
  'Query.readingStats': 'read',
  'Query.alerts': 'read',
  'Query.alertsCursor': 'read',
  'Query.sensors': 'read',
  'Query.incidents': 'read',
  'Query.sensorThresholds': 'read',
  'Mutation.setThreshold': 'operate',
  'Mutation.acknowledgeIncident': 'operate',
  'Subscription.overheatAlerts': 'read',
  'Subscription.incidentUpdates': 'read',
  'Subscription.readingUpdates': 'read',
  'Mutation.spawnSensors': 'operate',
  'Mutation.stopSensors': 'operate',
  'Mutation.ingestReadings': 'ingest',
};

const ROOT_TYPE = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' } as const;

export function forbidden(message: string, extra: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.FORBIDDEN, http: { status: 403 }, ...extra } });
}

/** Root field names of an operation, through fragments (a fragment cycle is left to validation). */
export function rootFields(document: DocumentNode, operation: OperationDefinitionNode): string[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const names = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode): void => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) names.add(s.name.value);
      else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet);
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const f = fragments.get(s.name.value);
        if (f) walk(f.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return [...names];
}

/**
 * Refuses an operation any of whose root fields the principal may not use. `introspection` says
 * whether `__schema` and `__type` are served at all. A field the schema does not have is left to
 * validation (which refuses it with a better message); one it has but the table lacks is refused.
 */
export function authorizeOperation(
  principal: Principal,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  introspection: boolean,
  schema: GraphQLSchema,
): GraphQLError | undefined {
  const typeName = ROOT_TYPE[operation.operation];
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return undefined;
  const existing = rootType.getFields();
  const allowed = ROLE_PERMISSIONS[principal.role];
  const denied: string[] = [];
  for (const field of rootFields(document, operation)) {
    if (field === '__typename') continue;
    if (field === '__schema' || field === '__type') {
      if (!introspection)
        return forbidden(
          'Introspection is disabled on this server (GRAPHQL_INTROSPECTION); use the published schema.graphql',
          { field },
        );
      continue;
    }
    if (!(field in existing)) continue;
    const permission = ROOT_FIELD_PERMISSIONS[`${typeName}.${field}`];
    if (!permission || !allowed.has(permission)) denied.push(field);
  }
  if (denied.length === 0) return undefined;
  return forbidden(`The ${principal.role} role may not use ${denied.map((f) => `${typeName}.${f}`).join(', ')}`, {
    role: principal.role,
    fields: denied,
  });
}

/** The caller of an operation; the front door sets it on every context, so its absence is a bug: refuse. */
export function principalOf(context: { principal?: Principal | undefined }): Principal {
  if (!context.principal)
    throw new GraphQLError('Not authenticated', {
      extensions: { code: ErrorCode.UNAUTHENTICATED, http: { status: 401 } },
    });
  return context.principal;
}

/** Refuses sensor ids outside a scoped principal's sensors. */
export function checkScope(principal: Principal | undefined, sensorIds: readonly string[], field: string): void {
  const scope = principal?.sensors;
  if (!scope) return;
  const outside = [...new Set(sensorIds.filter((id) => !scope.has(id)))];
  if (outside.length > 0) {
    throw forbidden(
      `This credential may not access sensor${outside.length > 1 ? 's' : ''} ${outside.slice(0, 5).join(', ')}${outside.length > 5 ? ', …' : ''}`,
      { field },
    );
  }
}
