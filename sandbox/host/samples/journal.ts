import { appendFileSync, existsSync, readFileSync } from "node:fs";

/** An append-only record of what the sample functions did, shared with the test that reads it. */
export interface JournalEntry {
  fn: string;
  event: "start" | "done" | "fail" | "tick";
  key: string;
  pid: number;
  at: number;
}

export function journalPath(): string | undefined {
  return process.env.SAMPLE_JOURNAL;
}

export function record(fn: string, event: JournalEntry["event"], key: string): void {
  const path = journalPath();
  if (!path) return;
  const entry: JournalEntry = { fn, event, key, pid: process.pid, at: Date.now() };
  appendFileSync(path, `${JSON.stringify(entry)}\n`);
}

export function readJournal(path: string): JournalEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
}
