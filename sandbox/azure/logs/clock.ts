/**
 * The simulated clock the logs store, the alert rules and the Key Vault reference cache share.
 * sandbox/host's HostClock fits this shape, so one clock can drive the Functions host and these.
 */
export interface ScaledClock {
  /** Simulated milliseconds per real millisecond. */
  readonly scale: number;
  /** Simulated now, ms since epoch. */
  now(): number;
}

export const REAL_TIME: ScaledClock = { scale: 1, now: () => Date.now() };

/** A clock running `scale` times faster than real time, starting at the real now. */
export function scaledClock(scale: number): ScaledClock {
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new Error(`time scale must be a positive number, got ${scale}`);
  const realStart = Date.now();
  return { scale, now: () => realStart + (Date.now() - realStart) * scale };
}

/** The simulated instant of a real one (an event that happened `d` real ms ago happened `d*scale` ago). */
export function simulatedTime(clock: ScaledClock, real: Date | number): number {
  const realMs = typeof real === "number" ? real : real.getTime();
  return clock.now() - (Date.now() - realMs) * clock.scale;
}

/** Real milliseconds until `simMs` simulated milliseconds have passed. */
export function realDelay(clock: ScaledClock, simMs: number): number {
  return Math.max(0, simMs / clock.scale);
}
