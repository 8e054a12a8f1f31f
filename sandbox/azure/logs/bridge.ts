/**
 * Forwards what the Container Apps simulator records (sandbox/azure's EventLog: replica console
 * lines and platform events) into the logs store, polling, until the simulator pushes into a
 * LogIngestion itself. Entries already forwarded are remembered by identity, so the EventLog may
 * drop its oldest entries meanwhile.
 */
import type { ConsoleLogInput, LogIngestion, SystemLogInput } from "./store.js";

export interface EventSource {
  readonly console: readonly (ConsoleLogInput & { time: Date })[];
  readonly system: readonly (SystemLogInput & { time: Date })[];
}

export interface EventForwarder {
  /** Forwards whatever is new now. */
  flush(): void;
  stop(): void;
  readonly forwarded: number;
}

export function forwardEvents(source: EventSource, logs: LogIngestion, pollMs = 100): EventForwarder {
  const seen = new WeakSet<object>();
  let forwarded = 0;
  const fresh = <T extends object>(list: readonly T[]): T[] => {
    const out: T[] = [];
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i] as T;
      if (seen.has(e)) break;
      out.push(e);
    }
    return out.reverse();
  };
  const flush = () => {
    for (const e of fresh(source.console)) {
      seen.add(e);
      logs.ingestConsole(e);
      forwarded += 1;
    }
    for (const e of fresh(source.system)) {
      seen.add(e);
      logs.ingestSystem(e);
      forwarded += 1;
    }
  };
  const timer = setInterval(flush, pollMs);
  timer.unref();
  return {
    flush,
    stop() {
      clearInterval(timer);
      flush();
    },
    get forwarded() {
      return forwarded;
    },
  };
}
