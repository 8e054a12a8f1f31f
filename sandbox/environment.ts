import { join, resolve } from "node:path";
import { type HostProcess, startHostProcess } from "./host/process.js";

/**
 * The local stand-in for Azure: the Functions host running the product's real registrations
 * (and, as later issues add them, real SPIRE and the Azure simulator), wired together by the
 * settings the product reads.
 */
export interface SandboxOptions {
  stateDir: string;
  port?: number;
  log(message: string): void;
}

export interface Sandbox {
  host: HostProcess;
  settings: Record<string, string>;
  describe(): string;
  stop(): Promise<void>;
}

const REPO_ROOT = resolve(import.meta.dirname, "..");

/** Settings the product needs, pointing at the local environment. */
export function sandboxSettings(stateDir: string): Record<string, string> {
  return {
    SPIRE_TRUST_DOMAIN: "sandbox.spire-autopilot.test",
    AZURE_SUBSCRIPTION_ID: "00000000-0000-4000-8000-000000000000",
    APPS_RESOURCE_GROUP: "rg-sandbox-apps",
    KEY_VAULT_URL: "https://sandbox-vault.vault.azure.net/",
    SPIRE_API: "grpc",
    SPIRE_SERVER_SOCKET: join(stateDir, "spire", "api.sock"),
    AZURE_CREDENTIAL: "sandbox",
  };
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const settings = sandboxSettings(opts.stateDir);
  opts.log("starting the local Functions host with the product app");
  const host = await startHostProcess({
    appEntry: join(REPO_ROOT, "functions/index.ts"),
    stateDir: join(opts.stateDir, "host"),
    port: opts.port ?? 7071,
    env: settings,
    echo: process.stderr,
  });
  return {
    host,
    settings,
    describe() {
      const lines = [
        "spire-autopilot sandbox",
        `  Functions host   ${host.url}  (keys: ${join(opts.stateDir, "host", "keys.json")})`,
        `  function key     ${host.keys.functionKeys.default ?? "(none)"}`,
        "  functions:",
        ...host.functions.map((f) => `    ${f.kind.padEnd(13)} ${f.name.padEnd(24)} ${f.detail}`),
        `  durable state    ${join(opts.stateDir, "host", "instances")}`,
      ];
      return lines.join("\n");
    },
    async stop() {
      await host.stop();
    },
  };
}
