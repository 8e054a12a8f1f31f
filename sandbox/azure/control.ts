/**
 * The simulator's inspection and control API over HTTP, under /_sim/ (no ARM auth; the server
 * listens on 127.0.0.1 only), for scenario processes that do not hold the AzureSimulator object.
 * SimControlClient is its client. Routes:
 *   GET  /_sim/counters                          counters snapshot
 *   GET  /_sim/faults   PUT /_sim/faults         fault settings / update (FaultUpdate JSON)
 *   POST /_sim/reset                             forget apps, run-commands, counters, faults
 *   GET  /_sim/apps/{rg}/{app}/replicas          running replicas of the current revision
 *   POST /_sim/apps/{rg}/{app}/replicas/restart  {replica?}  recreate a replica (fresh data)
 *   POST /_sim/apps/{rg}/{app}/agent/{kill|pause|resume}  {replica?}
 *   GET  /_sim/apps/{rg}/{app}/logs?container=   console lines
 *   GET  /_sim/vms/{rg}/{vm}                     {wedged, wedgeReason, fresh, runCommands}
 *   POST /_sim/vms/{rg}/{vm}/{wedge|reset}
 *   POST /_sim/vms/{rg}/{vm}/spire-server/{pause|resume|restart}   the server hangs / recovers (#23)
 *   POST /_sim/vms/{rg}/{vm}/spire-server/replace  docker rm + docker run: empty data dir, new CA (#25)
 *   PUT  /_sim/keyvault/secrets                  {url, value}: a Key Vault-referenced secret's value
 */
import type { ServerResponse } from "node:http";
import { request } from "node:https";
import { sendJson } from "./arm/router.js";
import type { CounterSnapshot } from "./counters.js";
import type { FaultSettings, FaultUpdate } from "./faults.js";
import { asObject, asString } from "./json.js";
import type { AzureSimulator } from "./simulator.js";

class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function parse(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  try {
    const v: unknown = JSON.parse(raw.toString("utf8"));
    const o = asObject(v);
    if (!o) throw new Error("not an object");
    return o;
  } catch (err) {
    throw new ControlError(400, `body must be a JSON object: ${(err as Error).message}`);
  }
}

async function route(
  sim: AzureSimulator,
  method: string,
  path: string,
  url: URL,
  raw: Buffer,
): Promise<unknown> {
  const seg = path
    .split("/")
    .filter((s) => s !== "")
    .slice(1);
  const body = () => parse(raw);
  const is = (m: string, ...parts: (string | null)[]) =>
    method === m && seg.length === parts.length && parts.every((p, i) => p === null || p === seg[i]);

  if (is("GET", "counters")) return sim.counters.snapshot();
  if (is("GET", "faults")) return sim.faults.settings;
  if (is("PUT", "faults") || is("PATCH", "faults") || is("POST", "faults")) {
    try {
      sim.faults.set(body() as FaultUpdate);
    } catch (err) {
      throw new ControlError(400, (err as Error).message);
    }
    return sim.faults.settings;
  }
  if (is("POST", "reset")) {
    await sim.reset();
    return { reset: true };
  }
  if (seg[0] === "apps" && seg.length >= 4) {
    const rg = seg[1] ?? "";
    const app = seg[2] ?? "";
    if (is("GET", "apps", null, null, "replicas")) return { replicas: sim.containerApps.replicas(rg, app) };
    if (is("POST", "apps", null, null, "replicas", "restart")) {
      const replica = asString(body().replica);
      return { restarted: sim.containerApps.restartReplica(rg, app, replica) };
    }
    if (is("POST", "apps", null, null, "agent", null)) {
      const action = seg[4];
      const agent = sim.containerApps.agent(rg, app, asString(body().replica));
      if (action === "kill") agent.kill();
      else if (action === "pause") agent.pause();
      else if (action === "resume") agent.resume();
      else throw new ControlError(404, `unknown agent action ${action}`);
      return { pid: agent.pid ?? null, action };
    }
    if (is("GET", "apps", null, null, "logs")) {
      const container = url.searchParams.get("container");
      const lines = sim.events.console.filter(
        (e) =>
          e.resourceGroup.toLowerCase() === rg.toLowerCase() &&
          e.app.toLowerCase() === app.toLowerCase() &&
          (container === null || e.container === container),
      );
      return { lines: lines.map((e) => ({ ...e, time: e.time.toISOString() })) };
    }
  }
  if (seg[0] === "vms" && seg.length >= 3) {
    const vm = sim.compute.vm(seg[1] ?? "", seg[2] ?? "");
    if (is("GET", "vms", null, null)) {
      return {
        wedged: vm.wedged,
        wedgeReason: vm.wedgeReason ?? null,
        fresh: vm.fresh,
        runCommands: vm.runCommands(),
      };
    }
    if (is("POST", "vms", null, null, "wedge")) {
      vm.wedge(asString(body().reason));
      return { wedged: true };
    }
    if (is("POST", "vms", null, null, "reset")) {
      await vm.reset();
      return { wedged: vm.wedged };
    }
    if (is("POST", "vms", null, null, "spire-server", null)) {
      const server = vm.spireServer;
      if (!server) throw new ControlError(404, `VM ${vm.name} has no spire-server container`);
      const action = seg[4];
      if (action === "pause") server.pause();
      else if (action === "resume") server.resume();
      else if (action === "restart") await server.restart();
      else if (action === "replace") {
        await server.remove();
        await server.create();
      } else throw new ControlError(404, `unknown spire-server action ${action}`);
      return { action };
    }
  }
  if (is("PUT", "keyvault", "secrets")) {
    const b = body();
    const secretUrl = asString(b.url);
    const value = asString(b.value);
    if (!secretUrl || value === undefined) throw new ControlError(400, "need {url, value}");
    sim.keyVaultSecrets.set(secretUrl, value);
    return { set: secretUrl };
  }
  throw new ControlError(404, `no control route ${method} ${path}`);
}

export async function handleControl(
  sim: AzureSimulator,
  method: string,
  path: string,
  url: URL,
  raw: Buffer,
  res: ServerResponse,
): Promise<void> {
  try {
    sendJson(res, 200, await route(sim, method.toUpperCase(), path, url, raw));
  } catch (err) {
    const status = err instanceof ControlError ? err.status : 400;
    sendJson(res, status, { error: (err as Error).message });
  }
}

/** Client of the /_sim/ API for another process: needs the simulator's URL and CA. */
export class SimControlClient {
  constructor(
    readonly url: string,
    private readonly caPem: string,
  ) {}

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const target = new URL(path, this.url);
    const text = body === undefined ? "" : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        target,
        {
          method,
          ca: this.caPem,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
        },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            data += c;
          });
          res.on("end", () => {
            let parsed: unknown;
            try {
              parsed = data === "" ? undefined : JSON.parse(data);
            } catch {
              parsed = data;
            }
            if ((res.statusCode ?? 500) >= 300) {
              reject(new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(parsed)}`));
            } else {
              resolve(parsed as T);
            }
          });
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
      req.on("error", reject);
      req.end(text);
    });
  }

  counters(): Promise<CounterSnapshot> {
    return this.call("GET", "/_sim/counters");
  }

  faults(): Promise<FaultSettings> {
    return this.call("GET", "/_sim/faults");
  }

  setFaults(update: FaultUpdate): Promise<FaultSettings> {
    return this.call("PUT", "/_sim/faults", update);
  }

  reset(): Promise<void> {
    return this.call("POST", "/_sim/reset");
  }

  replicas(rg: string, app: string): Promise<{ replicas: string[] }> {
    return this.call("GET", `/_sim/apps/${encodeURIComponent(rg)}/${encodeURIComponent(app)}/replicas`);
  }

  restartReplica(rg: string, app: string, replica?: string): Promise<{ restarted: string }> {
    return this.call(
      "POST",
      `/_sim/apps/${encodeURIComponent(rg)}/${encodeURIComponent(app)}/replicas/restart`,
      {
        replica,
      },
    );
  }

  agent(
    rg: string,
    app: string,
    action: "kill" | "pause" | "resume",
    replica?: string,
  ): Promise<{ pid: number | null }> {
    return this.call(
      "POST",
      `/_sim/apps/${encodeURIComponent(rg)}/${encodeURIComponent(app)}/agent/${action}`,
      { replica },
    );
  }

  vm(
    rg: string,
    vm: string,
  ): Promise<{ wedged: boolean; wedgeReason: string | null; fresh: boolean; runCommands: string[] }> {
    return this.call("GET", `/_sim/vms/${encodeURIComponent(rg)}/${encodeURIComponent(vm)}`);
  }

  resetVm(rg: string, vm: string): Promise<{ wedged: boolean }> {
    return this.call("POST", `/_sim/vms/${encodeURIComponent(rg)}/${encodeURIComponent(vm)}/reset`);
  }

  spireServer(
    rg: string,
    vm: string,
    action: "pause" | "resume" | "restart" | "replace",
  ): Promise<{ action: string }> {
    return this.call(
      "POST",
      `/_sim/vms/${encodeURIComponent(rg)}/${encodeURIComponent(vm)}/spire-server/${action}`,
    );
  }

  setKeyVaultSecret(url: string, value: string): Promise<void> {
    return this.call("PUT", "/_sim/keyvault/secrets", { url, value });
  }
}
