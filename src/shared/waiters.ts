/** Callers waiting for a condition another part of the code makes true (room in a queue, idle). */
export class Waiters {
  private waiting: (() => void)[] = [];

  /** Resolves at the next `wakeAll` (or `wakeOne`). */
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  wakeAll(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w();
  }

  /** Wakes the oldest waiter; false when nobody waits. */
  wakeOne(): boolean {
    const w = this.waiting.shift();
    w?.();
    return w !== undefined;
  }

  get size(): number {
    return this.waiting.length;
  }
}
