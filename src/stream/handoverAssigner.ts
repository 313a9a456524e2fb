/**
 * The alert path's partition assigner: round robin, as kafkajs's own, but a partition changes hands
 * only once its previous owner has stored everything it judged.
 *
 * Why: the alert path judges and publishes a batch while the batches before it are still being
 * stored (stream/storeBacklog.ts), and kafkajs does not wait for that backlog when the group
 * rebalances. Its store writes (alert pages, incidents, the tracker's state) are whole-document
 * writes that assume one writer per partition, so the next owner must not start before the last
 * one is done.
 *
 * How: a consumer cannot be fetching during a rebalance (kafkajs stops its fetchers before it
 * rejoins), so its backlog only shrinks from the moment it joins. Each member says in its join
 * metadata whether its backlog was empty then; one that was not records in the store when it is
 * (`handedOver`). The group leader, which computes the assignment for everyone, waits for those
 * records before it hands the assignment out, at most `maxWaitMs`: a member whose store is down
 * cannot finish, and its remaining writes are then given up at their next retry, since their
 * partition is no longer its own (groupMember's BatchOwner).
 *
 * The metadata also lists kafkajs's round robin assigner, so replicas of an older version, which
 * know only that one, can join the same group during a rolling upgrade (without the wait).
 */
import { AssignerProtocol, PartitionAssigners, type PartitionAssigner } from 'kafkajs';
import type { Logger } from '../logger.js';
import { sleep } from '../shared/retry.js';

export const HANDOVER_ASSIGNER = 'AlertPathHandover';

export interface HandoverDeps {
  /** This consumer, unique per process and consumer. */
  readonly instance: string;
  /** Whether this consumer has judged batches not stored yet. */
  busy(): boolean;
  /** Resolves once it has none. */
  idle(): Promise<void>;
  /** Stores the backlog as fast as the store allows (no interval between writes). */
  hurry(): void;
  /** Records, and reads, that a consumer's backlog of its `seq`-th join is stored. */
  handedOver(instance: string, seq: number): Promise<void>;
  handoverOf(instance: string): Promise<number | undefined>;
  /** How long the leader waits for the members' backlogs. */
  maxWaitMs: number;
  logger: Logger;
}

interface JoinState {
  instance: string;
  seq: number;
  busy: boolean;
}

const POLL_MS = 25;

export function handoverAssigner(deps: HandoverDeps): PartitionAssigner {
  const log = deps.logger.child({ module: 'stream.handover' });
  let seq = 0;

  /** Once the backlog this join found is stored, says so (a few tries: the leader waits a bounded time anyway). */
  const handOver = async (joinSeq: number): Promise<void> => {
    deps.hurry();
    await deps.idle();
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await deps.handedOver(deps.instance, joinSeq);
        return;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not record the handover; retrying');
        await sleep(250);
      }
    }
  };

  const waitFor = async (member: JoinState, deadline: number): Promise<boolean> => {
    if (member.instance === deps.instance) {
      await Promise.race([deps.idle(), sleep(Math.max(0, deadline - Date.now()))]);
      return !deps.busy();
    }
    while (Date.now() < deadline) {
      const done = await deps.handoverOf(member.instance).catch(() => undefined);
      if (done !== undefined && done >= member.seq) return true;
      await sleep(POLL_MS);
    }
    return false;
  };

  return ({ cluster, groupId, logger }) => {
    const roundRobin = PartitionAssigners.roundRobin({ cluster, groupId, logger });
    return {
      name: HANDOVER_ASSIGNER,
      version: 0,
      protocol({ topics }) {
        const state: JoinState = { instance: deps.instance, seq: ++seq, busy: deps.busy() };
        if (state.busy) void handOver(state.seq);
        return {
          name: HANDOVER_ASSIGNER,
          metadata: AssignerProtocol.MemberMetadata.encode({
            version: 0,
            topics,
            userData: Buffer.from(JSON.stringify(state)),
          }),
        };
      },
      async assign({ members, topics }) {
        const busy = members.flatMap(({ memberMetadata }) => {
          try {
            const { userData } = AssignerProtocol.MemberMetadata.decode(memberMetadata)!;
            const state = JSON.parse(userData.toString()) as JoinState;
            return state.busy ? [state] : [];
          } catch {
            return []; // not ours: nothing to wait for
          }
        });
        if (busy.length > 0) {
          const startedAt = Date.now();
          const deadline = startedAt + deps.maxWaitMs;
          const done = await Promise.all(busy.map((m) => waitFor(m, deadline)));
          const late = busy.filter((_, i) => !done[i]).map((m) => m.instance);
          if (late.length > 0)
            log.warn(
              { late, waitedMs: Date.now() - startedAt },
              'assigning partitions before every backlog was stored',
            );
          else
            log.info(
              { members: busy.length, waitedMs: Date.now() - startedAt },
              'backlogs stored; assigning partitions',
            );
        }
        return roundRobin.assign({ members, topics });
      },
    };
  };
}
