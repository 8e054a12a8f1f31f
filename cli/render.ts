import { stripVTControlCharacters } from "node:util";
import type { Colors } from "picocolors/types.js";
import { type OperationView, progressOf } from "./wait.js";

/*
 * Text for a person. Shapes are read loosely (the API may add fields); anything missing prints
 * as "-", never as "undefined".
 */

type Row = Record<string, unknown>;

const s = (v: unknown) => (v === null || v === undefined || v === "" ? "-" : String(v));

export function table(headers: string[], rows: string[][]): string {
  // Widths from the visible text: colour codes take no room on screen.
  const visible = stripVTControlCharacters;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c + " ".repeat(Math.max(0, (widths[i] ?? 0) - visible(c).length)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export function verdictColor(verdict: string, c: Colors): string {
  if (verdict === "healthy") return c.green(verdict);
  if (["unknown", "not-swept", "not-deployed", "skipped"].includes(verdict)) return c.yellow(verdict);
  return c.red(verdict);
}

/** "in 42m", "in 3h 5m", "expired 2m ago". */
export function until(iso: unknown, now = Date.now()): string {
  if (typeof iso !== "string") return "-";
  const ms = Date.parse(iso) - now;
  if (Number.isNaN(ms)) return "-";
  const abs = Math.abs(ms) / 1000;
  const text =
    abs >= 86400
      ? `${Math.floor(abs / 86400)}d ${Math.floor((abs % 86400) / 3600)}h`
      : abs >= 3600
        ? `${Math.floor(abs / 3600)}h ${Math.floor((abs % 3600) / 60)}m`
        : abs >= 60
          ? `${Math.floor(abs / 60)}m`
          : `${Math.floor(abs)}s`;
  return ms >= 0 ? `in ${text}` : `expired ${text} ago`;
}

export function renderApps(fleet: unknown, c: Colors): string {
  const apps = ((fleet as { apps?: Row[] } | null)?.apps ?? []) as Row[];
  if (apps.length === 0) return "no apps";
  return table(
    ["APP", "VERDICT", "SINCE", "AGENT SVID", "WORKLOAD SVID", "LAST RUN", "RUNNING"],
    apps.map((a) => {
      const last = (a.lastRun ?? null) as Row | null;
      const running = (a.running ?? null) as Row | null;
      return [
        s(a.app),
        verdictColor(s(a.skipped ? "skipped" : a.verdict), c),
        s(a.since),
        until(a.agentExpiresAt),
        until(a.workloadExpiresAt),
        last ? `${s(last.outcome)} ${s(last.finishedAt)}` : "-",
        running ? `${s(running.kind)} ${s(running.step)}` : "-",
      ];
    }),
  );
}

export function renderBundle(bundle: unknown, c: Colors): string {
  const b = (bundle ?? {}) as Row;
  const server = (b.server ?? {}) as Row;
  const vault = (b.vault ?? {}) as Row;
  const match = b.match === true ? c.green("yes") : b.match === false ? c.red("NO") : c.yellow("unknown");
  const fps = (x: Row) =>
    Array.isArray(x.fingerprints) ? x.fingerprints.map((f) => String(f).slice(0, 16)) : [];
  return [
    `server roots   ${fps(server).join(", ") || s(server.error)}  (earliest expiry ${s(server.earliestExpiry)})`,
    `Key Vault      ${s(b.secretName)} version ${s(vault.version)}  ${fps(vault).join(", ") || s(vault.error)}`,
    `match          ${match}`,
    `last rotation  ${s((b.lastRotation as Row | null)?.lastRunAt)} ${s((b.lastRotation as Row | null)?.lastRunAction)}`,
  ].join("\n");
}

export function renderStatus(
  view: { fleet: unknown; bundle: unknown; running: unknown[] | null },
  c: Colors,
): string {
  const fleet = (view.fleet ?? null) as Row | null;
  const server = (fleet?.server ?? {}) as Row;
  const apps = (fleet?.apps ?? []) as Row[];
  const counts = new Map<string, number>();
  for (const a of apps) {
    const v = a.skipped ? "skipped" : s(a.verdict);
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const lines = [
    fleet
      ? `server  ${verdictColor(s(server.verdict), c)}  ${s(server.reason)}`
      : c.yellow("server  (fleet view not available)"),
    fleet && server.lastSweep
      ? `sweep   ${s((server.lastSweep as Row).at)} (${s((server.lastSweep as Row).mode)})`
      : fleet
        ? "sweep   none yet"
        : "",
    ...(Array.isArray(server.errors) ? server.errors.map((e) => c.red(`problem ${s(e)}`)) : []),
    fleet
      ? `apps    ${apps.length}: ${[...counts].map(([v, n]) => `${n} ${verdictColor(v, c)}`).join(", ") || "none"}`
      : "",
    view.bundle
      ? `bundle  match ${renderBundle(view.bundle, c)
          .split("\n")[2]
          ?.replace(/^match\s+/, "")}`
      : "",
    `running ${view.running === null ? "-" : view.running.length}`,
    ...((view.running ?? []) as Row[]).map((o) => `  ${s(o.kind)} ${s(o.id)} step ${s(o.step)}`),
  ];
  return lines.filter((l) => l !== "").join("\n");
}

export function renderRuns(ops: OperationView[], history: unknown[] | null, c: Colors): string {
  const rows = (ops as unknown as Row[]).map((o) => [
    s(o.kind),
    s(o.id),
    o.running ? c.cyan(s(o.runtimeStatus)) : s(o.runtimeStatus),
    s(o.step),
    s(o.outcome),
    s(o.createdTime),
  ]);
  const out = [table(["KIND", "ID", "STATUS", "STEP", "OUTCOME", "CREATED"], rows)];
  if (history && history.length > 0) {
    out.push("", "ledger:");
    out.push(
      table(
        ["FINISHED", "TRIGGER", "OUTCOME", "FAILURE"],
        (history as Row[]).map((h) => [s(h.finishedAt), s(h.trigger), s(h.outcome), s(h.failure)]),
      ),
    );
  }
  return out.join("\n");
}

export function renderOperation(op: OperationView, seconds: number, ok: boolean, c: Colors): string {
  const out = (op.output && typeof op.output === "object" ? op.output : {}) as Row;
  const progress = progressOf(op);
  return [
    `${ok ? c.green("succeeded") : c.red("failed")}  ${op.id} (${s(op.name)}) ${op.runtimeStatus} in ${seconds.toFixed(1)} s`,
    progress ? `apps ${progress.done}/${progress.total}` : "",
    out.failure ? `failure: ${s(out.failure)}` : "",
    out.stepSeconds
      ? `steps: ${Object.entries(out.stepSeconds as Row)
          .map(([k, v]) => `${k} ${v}s`)
          .join(", ")}`
      : "",
  ]
    .filter((l) => l !== "")
    .join("\n");
}
