/** Records every overheat alert a graphql-ws subscriber receives. */
import { OverheatAlertsDocument, type OverheatAlertsSubscription, type PipelineClient } from '../../client/index.js';

export type ReceivedAlert = OverheatAlertsSubscription['overheatAlerts'];

export interface AlertCollector {
  readonly alerts: ReceivedAlert[];
  readonly errors: unknown[];
  /** Cursor of the last alert received (to resume with). */
  lastCursor(): string | undefined;
  stop(): void;
}

export function collectAlerts(
  client: PipelineClient,
  variables: { sensorIds?: string[]; after?: string } = {},
): AlertCollector {
  const alerts: ReceivedAlert[] = [];
  const errors: unknown[] = [];
  const stop = client.subscribe(OverheatAlertsDocument, variables, {
    next: (data) => alerts.push(data.overheatAlerts),
    error: (err) => errors.push(err),
  });
  return { alerts, errors, lastCursor: () => alerts.at(-1)?.cursor ?? undefined, stop };
}
