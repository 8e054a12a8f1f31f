/**
 * What Container Apps would ship to Log Analytics: console lines of every container
 * (ContainerAppConsoleLogs) and platform events (ContainerAppSystemLogs). Bounded; the oldest
 * entries drop first.
 */
export interface ConsoleLogEntry {
  time: Date;
  resourceGroup: string;
  app: string;
  revision: string;
  replica: string;
  container: string;
  stream: "stdout" | "stderr";
  log: string;
}

export interface SystemLogEntry {
  time: Date;
  resourceGroup: string;
  app: string;
  revision: string;
  replica: string;
  reason: string;
  type: "Normal" | "Warning";
  log: string;
}

export interface EventListener {
  console?(entry: ConsoleLogEntry): void;
  system?(entry: SystemLogEntry): void;
}

export class EventLog {
  readonly console: ConsoleLogEntry[] = [];
  readonly system: SystemLogEntry[] = [];
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly max = 20_000) {}

  /** Called with every new entry (e.g. to push into a logs store); returns the unsubscribe. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  addConsole(entry: Omit<ConsoleLogEntry, "time">): void {
    const full = { time: new Date(), ...entry };
    this.console.push(full);
    if (this.console.length > this.max) this.console.splice(0, this.console.length - this.max);
    for (const l of this.listeners) l.console?.(full);
  }

  addSystem(entry: Omit<SystemLogEntry, "time">): void {
    const full = { time: new Date(), ...entry };
    this.system.push(full);
    if (this.system.length > this.max) this.system.splice(0, this.system.length - this.max);
    for (const l of this.listeners) l.system?.(full);
  }

  clear(): void {
    this.console.length = 0;
    this.system.length = 0;
  }
}
