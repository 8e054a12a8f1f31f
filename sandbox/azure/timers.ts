/**
 * Every delayed step of the simulator goes through one Timers instance, so `reset()` and
 * `stop()` cancel all pending work at once and nothing fires into a torn-down simulator.
 */
export class Timers {
  private readonly pending = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly onError: (err: unknown) => void) {}

  /** Runs `fn` after `ms`; errors go to onError. Returns a cancel function. */
  after(ms: number, fn: () => void | Promise<void>): () => void {
    if (this.closed) return () => {};
    const t = setTimeout(
      () => {
        this.pending.delete(t);
        try {
          const out = fn();
          if (out instanceof Promise) out.catch(this.onError);
        } catch (err) {
          this.onError(err);
        }
      },
      Math.max(0, ms),
    );
    this.pending.add(t);
    return () => {
      clearTimeout(t);
      this.pending.delete(t);
    };
  }

  /** A promise that resolves after `ms`, or never if the timers are cleared first (callers must not rely on it then). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.after(ms, resolve);
    });
  }

  clearAll(): void {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }

  close(): void {
    this.closed = true;
    this.clearAll();
  }

  get size(): number {
    return this.pending.size;
  }
}
