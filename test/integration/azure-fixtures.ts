/** Shared bits of the Azure simulator tests: app specs, raw HTTPS calls, bounded waits. */
import { request } from "node:https";
import type { ContainerApp, ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import type { AzureSimulator } from "../../sandbox/azure/index.js";

export const RG = "rg-apps";

export function envId(sim: AzureSimulator): string {
  return `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`;
}

export interface AppSpecOptions {
  joinToken?: string;
  bundle?: string;
  image?: string;
  suffix?: string;
  extraEnv?: { name: string; value: string }[];
  /** Default 1..1, the only scale a join-token app is managed at. */
  scale?: { minReplicas: number; maxReplicas: number };
  serverAddr?: string;
  command?: string[];
}

/** The seed's shape: the agent app plus `<app>-spiffe-proxy`, JOIN_TOKEN through a secret. */
export function appSpec(sim: AzureSimulator, app: string, opts: AppSpecOptions = {}): ContainerApp {
  return {
    location: "eastus",
    tags: { "spire-autopilot": "managed", "agent-oid": `oid-${app}` },
    environmentId: envId(sim),
    configuration: {
      activeRevisionsMode: "Single",
      secrets: [{ name: "join-token", value: opts.joinToken ?? "token-1" }],
    },
    template: {
      ...(opts.suffix !== undefined && { revisionSuffix: opts.suffix }),
      containers: [
        {
          name: "agent",
          image: opts.image ?? "example.azurecr.io/agent:1",
          ...(opts.command && { command: opts.command }),
          env: [{ name: "MODE", value: "agent" }, ...(opts.extraEnv ?? [])],
        },
        {
          name: `${app}-spiffe-proxy`,
          image: "example.azurecr.io/spiffe-proxy:1",
          env: [
            { name: "CONTAINER_MODE", value: "agent-proxy" },
            { name: "JOIN_TOKEN", secretRef: "join-token" },
            {
              name: "SPIRE_TRUST_BUNDLE",
              value: opts.bundle ?? "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
            },
            { name: "SPIRE_SERVER_ADDR", value: opts.serverAddr ?? "10.0.0.4:8081" },
          ],
        },
      ],
      scale: opts.scale ?? { minReplicas: 1, maxReplicas: 1 },
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A raw HTTPS call to the simulator (trusting its CA), for what the SDK would not send. */
export function raw(
  sim: AzureSimulator,
  method: string,
  path: string,
  opts: { body?: string; token?: string | null; contentType?: string } = {},
): Promise<RawResponse> {
  const url = new URL(path, sim.url);
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? "sandbox-token.test"}`;
  if (opts.body !== undefined) {
    headers["content-type"] = opts.contentType ?? "application/json";
    headers["content-length"] = String(Buffer.byteLength(opts.body));
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: sim.caPem }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => {
        let body: unknown = text;
        try {
          body = text === "" ? undefined : JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Polls `check` until it returns a value, at most `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function revisions(client: ContainerAppsAPIClient, app: string) {
  const out = [];
  for await (const r of client.containerAppsRevisions.listRevisions(RG, app)) out.push(r);
  return out;
}

export async function replicas(client: ContainerAppsAPIClient, app: string, revision: string) {
  const res = await client.containerAppsRevisionReplicas.listReplicas(RG, app, revision);
  return res.value ?? [];
}

/** Waits until the app's latest revision is ready and the only active one. */
export async function waitForReadyRevision(
  client: ContainerAppsAPIClient,
  app: string,
  timeoutMs = 10_000,
): Promise<string> {
  return waitFor(
    `${app}'s latest revision to run alone`,
    async () => {
      const a = await client.containerApps.get(RG, app);
      const revs = await revisions(client, app);
      const active = revs.filter((r) => r.active);
      const latest = revs.find((r) => r.name === a.latestRevisionName);
      return a.latestReadyRevisionName === a.latestRevisionName &&
        latest?.runningState === "Running" &&
        active.length === 1
        ? (a.latestRevisionName as string)
        : undefined;
    },
    timeoutMs,
  );
}
