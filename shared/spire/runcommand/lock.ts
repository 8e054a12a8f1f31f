/**
 * One run-command at a time per VM, across every worker: the port the executor takes, so the
 * create → poll → delete → cooldown cycle of one worker never overlaps another's (learnings #20,
 * #34). The real one is a blob lease in the Functions host's storage account
 * (../../azure/blob-lease.ts); `inProcessVmLock` serializes only within one process (tests).
 */

export interface HeldVmLock {
  /** False once a renewal failed: another worker may hold the VM now. */
  readonly held: boolean;
  /** Gives the VM up at once (idempotent; never throws). */
  release(): Promise<void>;
}

export interface VmLock {
  /** Waits for the VM; throws VmLockTimeoutError when it cannot be had in time. */
  acquire(): Promise<HeldVmLock>;
}

export class VmLockTimeoutError extends Error {
  override name = "VmLockTimeoutError";
}

/** A lock only this process honours: enough when one adapter is the only client of the VM. */
export function inProcessVmLock(): VmLock {
  let tail: Promise<void> = Promise.resolve();
  return {
    acquire() {
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      const previous = tail;
      tail = previous.then(() => released);
      return previous.then(() => {
        let held = true;
        return {
          get held() {
            return held;
          },
          async release() {
            if (!held) return;
            held = false;
            release();
          },
        };
      });
    },
  };
}
