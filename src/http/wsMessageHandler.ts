/**
 * What our graphql-transport-ws server (subscriptionServer.ts) does with a client's message:
 * connection_init (the credential, the per-credential limit, the ack), ping / pong, subscribe (limits,
 * admission, then the direct path or graphql-js; next / error / complete) and complete.
 */
import { GraphQLError, OperationTypeNode, execute, getOperationAST, subscribe, type ExecutionResult } from 'graphql';
import { ErrorCode } from '../errors.js';
import { SINK_LOW_WATER_BYTES } from '../fanout/alertFeed.js';
import { createSocketBudget } from '../fanout/socketBudget.js';
import type { Logger } from '../logger.js';
import { sleep } from '../shared/retry.js';
import type { GraphQLRequestText } from './admission.js';
import { CloseCode, closeReason, parseClientMessage } from './graphqlTransportWs.js';
import { subscribeDirect } from './overheatAlertsFastPath.js';
import type { SubscriptionServerOptions } from './subscriptionServerOptions.js';
import { asGraphQLError, expire, Phase, type Connection, type Shared, type Tally } from './wsConnection.js';

/** Longest timer Node keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function isAsyncIterable(v: unknown): v is AsyncIterableIterator<ExecutionResult> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function';
}

/** The handler of one server's client messages; `perKey` counts its connections per credential. */
export function createMessageHandler(
  o: SubscriptionServerOptions,
  shared: Shared,
  perKey: Tally,
  log: Logger,
): (c: Connection, text: string) => Promise<void> {
  /** connection_init: the credential, then the per-credential limit, then the ack. */
  const initialise = async (c: Connection, params: Record<string, unknown> | null | undefined): Promise<void> => {
    const auth = await o.authenticator.authenticate(params?.authorization ?? params?.Authorization);
    if (c.socket.readyState !== c.socket.OPEN) return;
    if (!auth.ok) {
      log.info({ reason: auth.reason }, 'WebSocket refused at connection_init');
      return c.close(CloseCode.Forbidden, 'Forbidden');
    }
    const principal = auth.principal;
    if (perKey.get(principal.id) >= o.maxConnectionsPerKey)
      return c.close(CloseCode.TryAgainLater, 'Too many connections for this credential');
    perKey.bump(principal.id, 1);
    c.principal = principal;
    c.budget = createSocketBudget(o.socketBudgetBytes, (used) =>
      shared.closeOverBudget(c, `alerts queued for its subscriptions: ${used} bytes > ${o.socketBudgetBytes}`),
    );
    c.context = { ...o.context, principal, budget: c.budget };
    if (principal.expiresAt !== undefined) {
      c.timer = setTimeout(expire, Math.min(MAX_TIMER_MS, Math.max(0, principal.expiresAt - Date.now())), c);
      c.timer.unref();
    }
    c.phase = Phase.Ready;
    c.send('{"type":"connection_ack"}');
  };

  /** subscribe: limits and admission, then the direct path or graphql-js; next / error / complete. */
  const start = async (c: Connection, id: string, payload: GraphQLRequestText): Promise<void> => {
    const operations = c.operations!;
    const refuse = (errors: readonly GraphQLError[]): void => {
      if (operations.delete(id)) c.error(id, errors);
    };
    if (operations.size > o.maxSubscriptionsPerSocket) {
      return refuse([
        new GraphQLError(
          `At most ${o.maxSubscriptionsPerSocket} subscriptions per connection; open another connection or narrow them with sensorIds`,
          { extensions: { code: ErrorCode.LIMIT_EXCEEDED, limit: o.maxSubscriptionsPerSocket } },
        ),
      ]);
    }
    const admitted = await o.admission.admit(c.principal!, payload);
    if (!admitted.ok) return refuse([admitted.error]);
    const invalid = o.admission.validate(admitted.document);
    if (invalid.length > 0) return refuse(invalid);
    const operationName = typeof payload.operationName === 'string' ? payload.operationName : undefined;
    const operation = getOperationAST(admitted.document, operationName);
    if (!operation) return refuse([new GraphQLError('Unable to identify operation')]);
    if (!operations.has(id)) return; // completed by the client meanwhile
    const args = {
      schema: o.schema,
      document: admitted.document,
      operationName,
      variableValues: payload.variables as Record<string, unknown> | undefined,
      contextValue: c.context,
    };
    if (operation.operation === OperationTypeNode.SUBSCRIPTION) {
      const direct = subscribeDirect(args, c, id);
      if (direct && 'running' in direct) {
        operations.set(id, direct.running);
        return;
      }
      if (direct) {
        if (operations.delete(id)) {
          c.next(id, { errors: direct.errors });
          c.complete(id);
        }
        return;
      }
    }
    const result = operation.operation === OperationTypeNode.SUBSCRIPTION ? await subscribe(args) : await execute(args);
    if (!isAsyncIterable(result)) {
      if (operations.delete(id)) {
        c.next(id, result);
        c.complete(id);
      }
      return;
    }
    if (!operations.has(id)) {
      void result.return?.();
      return;
    }
    operations.set(id, { stop: () => void result.return?.() });
    try {
      for await (const r of result) {
        if (!operations.has(id)) break;
        c.next(id, r);
        // A reader that falls behind is not pulled from: its backlog stays in the subscription's
        // queue, charged to its budget (4008 past it), as on the direct path (alertFeed.ts).
        while (c.backlog() > SINK_LOW_WATER_BYTES && c.socket.readyState === c.socket.OPEN) await sleep(10);
      }
    } catch (err) {
      if (operations.delete(id)) c.error(id, [asGraphQLError(err)]);
      return;
    }
    if (operations.delete(id)) c.complete(id);
  };

  const receive = async (c: Connection, text: string): Promise<void> => {
    const message = parseClientMessage(text);
    if (typeof message === 'string') return c.close(CloseCode.BadRequest, message);
    switch (message.type) {
      case 'connection_init':
        if (c.phase !== Phase.New)
          return c.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
        c.phase = Phase.Initialising;
        clearTimeout(c.timer);
        c.timer = undefined;
        return initialise(c, message.payload);
      case 'ping':
        return c.send(message.payload ? JSON.stringify({ type: 'pong', payload: message.payload }) : '{"type":"pong"}');
      case 'pong':
        return;
      case 'subscribe': {
        if (c.phase !== Phase.Ready) return c.close(CloseCode.Unauthorized, 'Unauthorized');
        const operations = (c.operations ??= new Map());
        if (operations.has(message.id))
          return c.close(
            CloseCode.SubscriberAlreadyExists,
            closeReason(`Subscriber for ${message.id} already exists`, 'Subscriber already exists'),
          );
        operations.set(message.id, null);
        return start(c, message.id, message.payload);
      }
      case 'complete': {
        const running = c.operations?.get(message.id);
        c.operations?.delete(message.id);
        running?.stop();
        return;
      }
    }
  };

  return receive;
}
