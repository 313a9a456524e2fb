/**
 * Identical reads asked for in the same turn of the event loop go to the store once.
 *
 * Many subscriptions act on the same event together: thousands open at once, or hear the same
 * progress notice, and each reads the watermarks and the replay pages. On FerretDB every read by
 * `_id` is a table scan, so six thousand subscriptions starting together cost six thousand scans of
 * the same documents. Here the first read of a key waits for the end of the current turn (the I/O
 * phase: `setImmediate`), every read of that key asked for meanwhile joins it, and one query answers
 * them all. Only reads asked for before the query is sent share it, so each caller sees the store as
 * it was at its call or later, as if it had read alone. A failure reaches every caller of that query.
 */
export function sharedReads<V>(read: (key: string) => Promise<V>): (key: string) => Promise<V> {
  let gathering: Map<string, Promise<V>> | undefined;
  return (key) => {
    if (!gathering) {
      const batch = (gathering = new Map<string, Promise<V>>());
      setImmediate(() => {
        if (gathering === batch) gathering = undefined;
      });
    }
    let shared = gathering.get(key);
    if (!shared) {
      // Sent once the turn ends: whoever asks for this key until then is answered by this query.
      shared = new Promise<void>((resolve) => setImmediate(resolve)).then(() => read(key));
      gathering.set(key, shared);
    }
    return shared;
  };
}
