import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EventType, type HistoryEvent } from "../host/durable/history.js";
import type { InstanceRecord } from "../host/durable/store.js";
import { startHostProcess } from "../host/process.js";
import { readJournal } from "../host/samples/journal.js";
import type { Scenario } from "./types.js";

const SAMPLE_APP = resolve(import.meta.dirname, "../host/samples/app.ts");
const STEPS = 8;
const STEP_DELAY_MS = 400;

async function pollStatus(url: string, key: string, id: string, timeoutMs: number, signal: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal.aborted) {
    const res = await fetch(`${url}/api/samples/status/${id}?code=${key}`);
    if (res.status === 200) {
      const status = (await res.json()) as { runtimeStatus: string; output: unknown };
      if (["Completed", "Failed", "Terminated"].includes(status.runtimeStatus)) return status;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`instance ${id} did not finish within ${timeoutMs} ms`);
}

/** Sequence numbers whose completion the killed host had made durable. */
function durablyCompleted(stateDir: string, instanceId: string): Set<number> {
  const file = join(stateDir, "instances", `${Buffer.from(instanceId).toString("base64url")}.json`);
  const record = JSON.parse(readFileSync(file, "utf8")) as InstanceRecord;
  const events: HistoryEvent[] = [...record.history, ...record.inbox];
  const seqs = new Set<number>();
  for (const e of events) if (e.EventType === EventType.TaskCompleted) seqs.add(e.TaskScheduledId as number);
  return seqs;
}

export const hostResume: Scenario = {
  name: "host-resume",
  description: `Start an ${STEPS}-step orchestration over HTTP, SIGKILL the host mid-run, restart it, and check it finishes without re-running completed activities.`,
  timeoutSeconds: 120,
  async run(ctx) {
    const started = Date.now();
    const stateDir = join(ctx.workDir, "host");
    const journal = join(ctx.workDir, "journal.ndjson");
    const env = { SAMPLE_JOURNAL: journal, SAMPLE_TICK_SCHEDULE: "0 0 0 1 1 *" };

    ctx.log("starting the local Functions host with the sample app");
    const first = await startHostProcess({ appEntry: SAMPLE_APP, stateDir, env });
    const key = first.keys.functionKeys.default!;
    const res = await fetch(`${first.url}/api/samples/start/sampleSequence?code=${key}`, {
      method: "POST",
      body: JSON.stringify({ steps: STEPS, delayMs: STEP_DELAY_MS }),
    });
    if (res.status !== 202) throw new Error(`start answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    ctx.log(`started instance ${id}; waiting for 3 steps before killing the host`);

    const deadline = Date.now() + 30_000;
    while (readJournal(journal).filter((e) => e.event === "done").length < 3) {
      if (Date.now() > deadline) throw new Error("the orchestration did not reach step 3 within 30 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    await first.kill("SIGKILL");
    const completedBeforeKill = durablyCompleted(stateDir, id);
    ctx.log(
      `SIGKILLed the host (pid ${first.pid}) with ${completedBeforeKill.size} activity results on disk`,
    );

    const second = await startHostProcess({ appEntry: SAMPLE_APP, stateDir, env });
    ctx.log(`restarted the host (pid ${second.pid}); waiting for the instance to finish`);
    let status: { runtimeStatus: string; output: unknown };
    try {
      status = await pollStatus(second.url, key, id, 60_000, ctx.signal);
    } finally {
      await second.stop();
    }

    // Sample steps are scheduled as sequence numbers 0..STEPS-1 in order, so seq n is step n.
    const restartedRuns = readJournal(journal).filter((e) => e.pid === second.pid && e.event === "start");
    const activitiesRerun = restartedRuns.filter((e) => completedBeforeKill.has(Number(e.key))).length;
    const expected = Array.from({ length: STEPS }, (_, i) => i * 10);
    const resumed =
      status.runtimeStatus === "Completed" && JSON.stringify(status.output) === JSON.stringify(expected);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    ctx.log(
      `instance ${status.runtimeStatus}; ${restartedRuns.length} activities ran after the restart, ${activitiesRerun} of them had completed before`,
    );
    return {
      resumed,
      activitiesRerun,
      completedBeforeKill: completedBeforeKill.size,
      activitiesAfterRestart: restartedRuns.length,
      seconds,
      pass: resumed && activitiesRerun === 0 && completedBeforeKill.size >= 3,
    };
  },
};
