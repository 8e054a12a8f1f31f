/**
 * Following log files that real processes append to, line by line, into the logs store:
 * spire-server's JSON log into Syslog, and (for callers that run replicas) any container's
 * output into ContainerAppConsoleLogs.
 */
import * as fs from "node:fs/promises";
import type { ConsoleLogInput, LogIngestion } from "./store.js";
import { jsonLogFields } from "./store.js";

export interface FileFollower {
  readonly file: string;
  /** Complete lines handed on so far. */
  readonly lines: number;
  /** Reads whatever is in the file now and hands on every complete line. */
  flush(): Promise<void>;
  /** Flushes once more, then stops polling. Safe to call twice. */
  stop(): Promise<void>;
}

export interface FollowOptions {
  /** Poll interval, default 200 ms. */
  pollMs?: number;
  /** Start at the current end of the file instead of its beginning. */
  fromEnd?: boolean;
}

/** Calls `onLine` for every complete line appended to `file` (which may not exist yet). */
export async function followFile(
  file: string,
  onLine: (line: string) => void,
  options: FollowOptions = {},
): Promise<FileFollower> {
  let offset = 0;
  let partial = "";
  let count = 0;
  let stopped = false;
  let reading: Promise<void> | undefined;
  if (options.fromEnd)
    offset = await fs.stat(file).then(
      (s) => s.size,
      () => 0,
    );

  const readNew = async (): Promise<void> => {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, "r");
    } catch {
      return; // not there yet
    }
    try {
      const { size } = await fh.stat();
      if (size < offset) {
        // Truncated or replaced: start over.
        offset = 0;
        partial = "";
      }
      while (offset < size) {
        const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const parts = (partial + buf.subarray(0, bytesRead).toString("utf8")).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) {
          const trimmed = line.replace(/\r$/, "");
          if (trimmed.trim() === "") continue;
          count += 1;
          onLine(trimmed);
        }
      }
    } finally {
      await fh.close();
    }
  };

  const flush = (): Promise<void> => {
    // One read at a time; a flush during a read waits for it and then reads again.
    const next = (reading ?? Promise.resolve()).then(readNew);
    reading = next.catch(() => undefined);
    return next;
  };

  const timer = setInterval(() => {
    if (!stopped) void flush().catch(() => undefined);
  }, options.pollMs ?? 200);
  timer.unref();
  await flush();

  return {
    file,
    get lines() {
      return count;
    },
    flush,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await flush().catch(() => undefined);
    },
  };
}

/** spire-server's log file → Syslog rows (ProcessName spire-server, time from each JSON line). */
export function followSpireServerLog(
  file: string,
  logs: LogIngestion,
  options: FollowOptions & { processId?: number; computer?: string } = {},
): Promise<FileFollower> {
  return followFile(
    file,
    (line) => {
      logs.ingestSyslog(line, jsonLogFields(line).time, {
        processName: "spire-server",
        processId: options.processId,
        computer: options.computer,
      });
    },
    options,
  );
}

/** A container's output file → ContainerAppConsoleLogs rows, time from JSON lines when present. */
export function followContainerOutput(
  file: string,
  logs: LogIngestion,
  labels: Omit<ConsoleLogInput, "log" | "time">,
  options: FollowOptions = {},
): Promise<FileFollower> {
  return followFile(
    file,
    (line) => logs.ingestConsole({ ...labels, log: line, time: jsonLogFields(line).time }),
    options,
  );
}
