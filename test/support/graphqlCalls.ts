/**
 * Raw GraphQL calls for tests that look at the wire: HTTP status, error codes, WebSocket close codes.
 * (The typed client in client/index.ts is what applications use.)
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface WireError {
  message: string;
  extensions?: Record<string, unknown>;
}

export interface HttpOutcome {
  status: number;
  headers: Headers;
  data?: Record<string, unknown> | null;
  errors?: WireError[];
  text: string;
}

export async function postGraphQL(
  url: string,
  body: unknown,
  credential?: string,
  extraHeaders: Record<string, string> = {},
): Promise<HttpOutcome> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(credential ? { authorization: credential } : {}),
      ...extraHeaders,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: { data?: Record<string, unknown> | null; errors?: WireError[] } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // not JSON: the text says why
  }
  return { status: res.status, headers: res.headers, data: parsed.data, errors: parsed.errors, text };
}

export interface WsOutcome {
  /** Results (`next` payloads) received before the operation ended or the wait was over. */
  results: { data?: Record<string, unknown> | null; errors?: WireError[] }[];
  /** The `error` message's errors, when the server refused the operation. */
  errors?: WireError[];
  /** Close code, when the server closed the connection. */
  closeCode?: number;
  completed: boolean;
}

/**
 * Runs one operation over graphql-ws and resolves when it completes, errors, the socket closes, or
 * `until` accepts the results so far (subscriptions never complete by themselves).
 */
export function wsGraphQL(
  url: string,
  payload: { query: string; variables?: Record<string, unknown> },
  connectionParams: Record<string, unknown> | undefined,
  until: (outcome: WsOutcome) => boolean = () => false,
  timeoutMs = 20_000,
): Promise<WsOutcome> {
  const outcome: WsOutcome = { results: [], completed: false };
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void Promise.resolve()
        .then(() => client.dispose())
        .catch(() => undefined);
      resolve(outcome);
    };
    const timer = setTimeout(finish, timeoutMs);
    const client = createClient({
      url: url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      connectionParams,
      on: {
        closed: (event) => {
          if (!done) outcome.closeCode = (event as { code?: number }).code;
          finish();
        },
      },
    });
    client.subscribe(payload, {
      next: (result) => {
        outcome.results.push(result as WsOutcome['results'][number]);
        if (until(outcome)) finish();
      },
      error: (err) => {
        if (Array.isArray(err)) outcome.errors = err as WireError[];
        else if (!done && typeof (err as { code?: unknown }).code === 'number')
          outcome.closeCode = (err as { code: number }).code;
        finish();
      },
      complete: () => {
        outcome.completed = true;
        finish();
      },
    });
  });
}

/** The codes of an outcome's errors, whichever way they came. */
export function codesOf(o: { errors?: WireError[]; results?: WsOutcome['results'] }): string[] {
  const errors = [...(o.errors ?? []), ...(o.results ?? []).flatMap((r) => r.errors ?? [])];
  return errors.map((e) => (typeof e.extensions?.code === 'string' ? e.extensions.code : 'NO_CODE'));
}
