import { SingleBar } from "cli-progress";
import { type ApiTarget, callApi } from "./api.js";

/*
 * Waiting for an operation: polls GET /api/operations/{id} until it ends or the bound passes,
 * drawing one live line (step, apps done/total, elapsed) when stderr is a terminal.
 */

export interface OperationView {
  id: string;
  name?: string;
  runtimeStatus: string;
  step: string | null;
  status: Record<string, unknown> | null;
  output: Record<string, unknown> | string | null;
}

export const TERMINAL = ["Completed", "Failed", "Terminated", "Canceled"];

/** An ended operation succeeded when it completed and its output does not say otherwise. */
export function succeeded(op: OperationView): boolean {
  if (op.runtimeStatus !== "Completed") return false;
  const out = op.output;
  if (out && typeof out === "object") {
    if (typeof out.outcome === "string" && ["failed", "refused", "partial"].includes(out.outcome))
      return false;
    if (out.pass === false || out.ok === false) return false;
  }
  return true;
}

export function progressOf(op: OperationView): { done: number; total: number } | undefined {
  const s = op.status ?? {};
  const p = (s.progress ?? {}) as Record<string, unknown>;
  const pairs: Array<[unknown, unknown]> = [
    [p.done, p.total],
    [s.appsDone, s.appsTotal],
    [s.done, s.total],
  ];
  for (const [d, t] of pairs)
    if (typeof d === "number" && typeof t === "number") return { done: d, total: t };
  return undefined;
}

export interface WaitOptions {
  target: ApiTarget;
  id: string;
  timeoutMs: number;
  intervalMs: number;
  /** Draw the live line (stderr is a TTY and the output is not --json). */
  live: boolean;
  stream: NodeJS.WritableStream;
}

export async function waitForOperation(opts: WaitOptions): Promise<OperationView | undefined> {
  const started = Date.now();
  const bar = opts.live
    ? new SingleBar({
        stream: opts.stream,
        format: "{id}  step {step}  apps {value}/{total}  {elapsed}s",
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      })
    : undefined;
  bar?.start(0, 0, { id: opts.id, step: "starting", elapsed: "0" });
  try {
    while (Date.now() - started < opts.timeoutMs) {
      const answer = await callApi(opts.target, "GET", `api/operations/${encodeURIComponent(opts.id)}`);
      if (answer.status === 200) {
        const op = answer.body as OperationView;
        const progress = progressOf(op);
        bar?.setTotal(progress?.total ?? 0);
        bar?.update(progress?.done ?? 0, {
          step: op.step ?? op.runtimeStatus,
          elapsed: ((Date.now() - started) / 1000).toFixed(0),
        });
        if (TERMINAL.includes(op.runtimeStatus)) return op;
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs));
    }
    return undefined;
  } finally {
    bar?.stop();
  }
}
