import { join, resolve } from "node:path";
import { ensureSpire } from "../scripts/install-spire.js";
import { type HostProcess, startHostProcess } from "./host/process.js";
import { type SpireServerHandle, startSpireServer } from "./spire/index.js";

/**
 * The local stand-in for Azure: a real SPIRE server and the Functions host running the product's
 * real registrations (the Azure simulator joins as later issues add it), wired together by the
 * settings the product reads.
 */
export interface SandboxOptions {
  stateDir: string;
  port?: number;
  log(message: string): void;
}

export interface Sandbox {
  host: HostProcess;
  spire: SpireServerHandle;
  settings: Record<string, string>;
  describe(): string;
  stop(): Promise<void>;
}

const REPO_ROOT = resolve(import.meta.dirname, "..");
export const SANDBOX_TRUST_DOMAIN = "sandbox.spire-autopilot.test";

/** Settings the product needs, pointing at the local environment. */
export function sandboxSettings(spireSocketPath: string): Record<string, string> {
  return {
    SPIRE_TRUST_DOMAIN: SANDBOX_TRUST_DOMAIN,
    AZURE_SUBSCRIPTION_ID: "00000000-0000-4000-8000-000000000000",
    APPS_RESOURCE_GROUP: "rg-sandbox-apps",
    KEY_VAULT_URL: "https://sandbox-vault.vault.azure.net/",
    SPIRE_API: "grpc",
    SPIRE_SERVER_SOCKET: spireSocketPath,
    AZURE_CREDENTIAL: "sandbox",
  };
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  opts.log("providing spire-server and spire-agent (built once, then cached in .tools/)");
  const bins = await ensureSpire({ log: (l) => opts.log(`install: ${l}`) });
  opts.log(`starting spire-server ${bins.version}`);
  // The server picks a short folder under /tmp: unix socket paths are limited to ~107 bytes.
  const spire = await startSpireServer({ trustDomain: SANDBOX_TRUST_DOMAIN, bins });
  let host: HostProcess;
  const settings = sandboxSettings(spire.socketPath);
  try {
    opts.log("starting the local Functions host with the product app");
    host = await startHostProcess({
      appEntry: join(REPO_ROOT, "functions/index.ts"),
      stateDir: join(opts.stateDir, "host"),
      port: opts.port ?? 7071,
      env: settings,
      echo: process.stderr,
    });
  } catch (err) {
    await spire.dispose();
    throw err;
  }
  return {
    host,
    spire,
    settings,
    describe() {
      const lines = [
        "spire-autopilot sandbox",
        `  Functions host   ${host.url}  (keys: ${join(opts.stateDir, "host", "keys.json")})`,
        `  function key     ${host.keys.functionKeys.default ?? "(none)"}`,
        "  functions:",
        ...host.functions.map((f) => `    ${f.kind.padEnd(13)} ${f.name.padEnd(24)} ${f.detail}`),
        `  durable state    ${join(opts.stateDir, "host", "instances")}`,
        `  spire-server     127.0.0.1:${spire.port}, admin socket ${spire.socketPath}, trust domain ${SANDBOX_TRUST_DOMAIN}`,
        `  spire logs       ${spire.logFile}`,
        `  spire CLI        ${spire.bins.serverBin} entry show -socketPath ${spire.socketPath}`,
      ];
      return lines.join("\n");
    },
    async stop() {
      await host.stop();
      await spire.dispose();
    },
  };
}
