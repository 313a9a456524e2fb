/**
 * Graceful shutdown on SIGTERM: WebSocket clients are told "going away" (1001), in-flight work
 * finishes, and the process exits 0 within its deadline.
 */
import { describe, expect, it } from 'vitest';
import { AlertsCursorDocument, IngestReadingsDocument, createPipelineClient } from '../../client/index.js';
import { collectAlerts } from '../support/alertCollector.js';
import { isolatedEnv, uniqueName } from '../support/env.js';
import { historyCaughtUp, historyPartitionsAssignedTo } from '../support/consumerLag.js';
import { spawnReplica } from '../support/pipeline.js';
import { eventually } from '../support/wait.js';

describe('graceful shutdown', () => {
  it('closes subscriptions with 1001, commits what it consumed, and exits 0', async () => {
    const env = isolatedEnv('shutdown');
    const replica = await spawnReplica(env);
    const listener = createPipelineClient(replica.url, { retryAttempts: 0 });
    // From the current cursor: the alert below reaches it however long the subscription takes to start.
    const { alertsCursor } = await replica.client.request(AlertsCursorDocument, {});
    const subscriber = collectAlerts(listener, { after: alertsCursor });
    const sensorId = uniqueName('last-words');
    await replica.client.request(IngestReadingsDocument, {
      readings: [
        {
          sensorId,
          ts: new Date(Date.now() - 500).toISOString(),
          temperature: 99,
          humidity: 10,
          location: { lat: 0, lon: 0 },
        },
      ],
    });
    await eventually(
      () => subscriber.alerts.length,
      (n) => n === 1,
      { what: 'the alert before shutdown' },
    );

    const started = Date.now();
    const code = await replica.stop('SIGTERM');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    await eventually(
      () => subscriber.errors.length,
      (n) => n === 1,
      { what: 'the subscription to end' },
    );
    expect((subscriber.errors[0] as { code?: number }).code).toBe(1001);

    // A new replica in the same group does not see the consumed message again: the offset was committed.
    const next = await spawnReplica(env);
    const metrics = async () =>
      (await (await fetch(next.url.replace('/graphql', '/metrics'))).text()).match(
        /iot_readings_stored_total (\d+)/,
      )?.[1];
    // It took over the partitions, and has caught up with the topic: it stored nothing again.
    expect(await historyPartitionsAssignedTo(env, next.replicaId)).toBeGreaterThan(0);
    await historyCaughtUp(env);
    expect(await metrics()).toBe('0');
    await next.stop('SIGTERM');
    await listener.dispose();
  }, 120_000);
});
