/**
 * A batch sent partition by partition (stream/kafka.ts PartitionedBatch), on a fake producer: each
 * request carries one partition, a partition acknowledged is never sent again, and the one that
 * failed is sent again with exactly the same messages (what lets the broker recognise a copy it
 * already holds). The test/cluster suite runs it through real leader changes.
 */
import { Partitioners, type Message, type Producer, type ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PartitionedBatch, producerStateLost } from '../../src/stream/kafka.js';

/** A producer that records each send and fails those `fail` says should. */
function fakeProducer(fail: (record: ProducerRecord) => boolean): { producer: Producer; sends: ProducerRecord[] } {
  const sends: ProducerRecord[] = [];
  const producer = {
    send(record: ProducerRecord) {
      sends.push(record);
      return fail(record)
        ? Promise.reject(Object.assign(new Error('connection refused'), { retriable: true }))
        : Promise.resolve([]);
    },
  } as unknown as Producer;
  return { producer, sends };
}

const messages: Message[] = Array.from({ length: 60 }, (_, i) => ({ key: `sensor-${i % 20}`, value: `reading ${i}` }));
const partitionOf = (m: Message): number | undefined => m.partition;

describe('a partitioned batch', () => {
  it('sends each partition in a request of its own, on the partition the default partitioner gives its key', async () => {
    const { producer, sends } = fakeProducer(() => false);
    await new PartitionedBatch('readings', messages, 6).send(producer);

    const metadata = Array.from({ length: 6 }, (_, partitionId) => ({
      partitionId,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [],
      isr: [],
    }));
    const expected = Partitioners.DefaultPartitioner();
    for (const send of sends) {
      const partitions = new Set(send.messages.map(partitionOf));
      expect(partitions.size).toBe(1);
      for (const m of send.messages)
        expect(m.partition).toBe(
          expected({ topic: 'readings', partitionMetadata: metadata, message: { key: m.key, value: m.value } }),
        );
      expect(send.acks).toBe(-1);
    }
    expect(sends.flatMap((s) => s.messages.map((m) => m.value)).sort()).toEqual(messages.map((m) => m.value).sort());
  });

  it('keeps each partition in the order the messages were given', async () => {
    const { producer, sends } = fakeProducer(() => false);
    await new PartitionedBatch('readings', messages, 6).send(producer);
    for (const send of sends) {
      const order = send.messages.map((m) => Number(String(m.value).split(' ')[1]));
      expect(order).toEqual([...order].sort((x, y) => x - y));
    }
  });

  it('after a failure, sends again only the partitions not acknowledged, with the same messages', async () => {
    let failing = true;
    const { producer, sends } = fakeProducer((r) => failing && r.messages[0]!.partition === 2);
    const batch = new PartitionedBatch('readings', messages, 6);

    await expect(batch.send(producer)).rejects.toThrow('connection refused');
    const first = sends.splice(0);
    const failed = first.find((s) => s.messages[0]!.partition === 2)!;
    expect(failed).toBeDefined();

    failing = false;
    await batch.send(producer);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.messages).toEqual(failed.messages);

    await batch.send(producer); // all acknowledged: nothing left to send
    expect(sends).toHaveLength(1);
  });

  it('waits for every request of an attempt before reporting its failure', async () => {
    let slowDone = false;
    const producer = {
      async send(record: ProducerRecord) {
        if (record.messages[0]!.partition === 0) throw new Error('refused');
        await new Promise((r) => setTimeout(r, 20));
        slowDone = true;
        return [];
      },
    } as unknown as Producer;
    await expect(new PartitionedBatch('readings', messages, 6).send(producer)).rejects.toThrow('refused');
    expect(slowDone).toBe(true);
  });
});

describe('a producer whose idempotence state is lost', () => {
  it('is recognised from the broker error, bare or wrapped by kafkajs', () => {
    const outOfOrder = Object.assign(new Error('out of order'), { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(producerStateLost(outOfOrder)).toBe(true);
    expect(producerStateLost(Object.assign(new Error('wrapped'), { cause: outOfOrder }))).toBe(true);
    expect(producerStateLost(Object.assign(new Error('gone'), { type: 'UNKNOWN_PRODUCER_ID' }))).toBe(true);
    expect(producerStateLost(Object.assign(new Error('moved'), { type: 'NOT_LEADER_OR_FOLLOWER' }))).toBe(false);
    expect(producerStateLost(new Error('connection refused'))).toBe(false);
  });
});
