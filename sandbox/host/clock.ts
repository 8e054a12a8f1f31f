/**
 * The host's notion of time. Timer triggers, durable timers and orchestration timestamps all use
 * it, so a test can run the host faster than real time (`scale` virtual ms per real ms) and still
 * see a consistent, monotonic clock across restarts.
 */
export class HostClock {
  private readonly realStart: number;
  private readonly virtualStart: number;

  /**
   * `origin` (real ms) lets several processes share one scaled clock, each computing
   * origin + (now - origin) * scale; without it the clock starts at the real time of construction.
   * It never starts behind `notBefore` (a restarted host must not go back in time).
   */
  constructor(
    readonly scale = 1,
    notBefore = 0,
    origin?: number,
  ) {
    if (!(scale > 0) || !Number.isFinite(scale))
      throw new Error(`time scale must be a positive number, got ${scale}`);
    this.realStart = origin ?? Date.now();
    const elapsed = (Date.now() - this.realStart) * scale;
    this.virtualStart = Math.max(this.realStart, notBefore - elapsed);
  }

  now(): number {
    return this.virtualStart + (Date.now() - this.realStart) * this.scale;
  }

  /** Real milliseconds until the virtual instant `at`. */
  realDelayUntil(at: number): number {
    return Math.max(0, (at - this.now()) / this.scale);
  }
}

const MAX_TIMEOUT_MS = 2_147_483_647;

/** setTimeout against the host clock; long waits re-arm so they never overflow. */
export function setVirtualTimeout(clock: HostClock, at: number, fn: () => void): { cancel(): void } {
  let handle: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const delay = clock.realDelayUntil(at);
    if (delay > MAX_TIMEOUT_MS) {
      handle = setTimeout(arm, MAX_TIMEOUT_MS);
    } else {
      // Timers round to whole milliseconds, which at a large scale is a noticeable slice of
      // virtual time: never call back before the virtual instant has really come.
      handle = setTimeout(() => {
        if (cancelled) return;
        if (clock.now() < at) arm();
        else fn();
      }, Math.ceil(delay));
    }
    handle.unref?.();
  };
  arm();
  return {
    cancel() {
      cancelled = true;
      if (handle) clearTimeout(handle);
    },
  };
}
