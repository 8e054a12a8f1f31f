import { describe, expect, it } from "vitest";
import { debugHidden, type ServerLogLevelSummary } from "../../shared/kql/server-log-level.js";

const SINCE = new Date("2026-12-01T10:00:00Z");
const after = new Date("2026-12-01T10:01:00Z");
const before = new Date("2026-12-01T09:59:00Z");
const at = (o: Partial<ServerLogLevelSummary>): ServerLogLevelSummary => ({
  lines: 10,
  debugLines: 0,
  infoLines: 10,
  signings: 0,
  lastLine: after,
  ...o,
});

describe("debugHidden", () => {
  it.each<[string, ServerLogLevelSummary | undefined, boolean]>([
    ["INFO lines since the run began and no DEBUG line: hidden", at({}), true],
    ["no server lines at all: not proof (ingestion may lag)", undefined, false],
    ["INFO lines only from before the run: not proof yet", at({ lastLine: before }), false],
    ["one DEBUG line in the window: the server is at DEBUG", at({ debugLines: 1, lines: 11 }), false],
    ["a signing in the window: visible", at({ signings: 1, debugLines: 1 }), false],
    ["only WARN/ERROR lines: no INFO proof", at({ infoLines: 0 }), false],
    ["no last line time", at({ lastLine: undefined }), false],
  ])("%s", (_what, summary, hidden) => {
    expect(debugHidden(summary, SINCE)).toBe(hidden);
  });
});
