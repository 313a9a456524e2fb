/**
 * A subscriber that behaves as docs/guarantees.md tells clients to: it remembers the cursor of the last
 * alert received and, whenever its subscription ends (replica died, too slow), resubscribes with
 * `after` set to it, on whichever replica is alive.
 */
import { OverheatAlertsDocument, createPipelineClient, type PipelineClient } from '../../client/index.js';
import type { ReceivedAlert } from './alertCollector.js';

export interface ResumableSubscriber {
  readonly alerts: ReceivedAlert[];
  resumes(): number;
  stop(): Promise<void>;
}

export function resumableSubscriber(
  pickUrl: () => string,
  options: { sensorIds?: string[]; after: string; onAlert?: (alert: ReceivedAlert) => void },
): ResumableSubscriber {
  const alerts: ReceivedAlert[] = [];
  let cursor = options.after;
  let resumes = 0;
  let stopped = false;
  let client: PipelineClient | undefined;
  let unsubscribe: (() => void) | undefined;

  const reconnect = (): void => {
    if (stopped) return;
    resumes++;
    const old = client;
    void old?.dispose().catch(() => undefined);
    setTimeout(connect, 250);
  };

  function connect(): void {
    if (stopped) return;
    client = createPipelineClient(pickUrl(), { retryAttempts: 0 });
    unsubscribe = client.subscribe(
      OverheatAlertsDocument,
      { sensorIds: options.sensorIds, after: cursor },
      {
        next: (data) => {
          alerts.push(data.overheatAlerts);
          options.onAlert?.(data.overheatAlerts);
          if (data.overheatAlerts.cursor) cursor = data.overheatAlerts.cursor;
        },
        error: reconnect,
        complete: reconnect,
      },
    );
  }
  connect();

  return {
    alerts,
    resumes: () => resumes,
    async stop() {
      stopped = true;
      unsubscribe?.();
      await client?.dispose().catch(() => undefined);
    },
  };
}
