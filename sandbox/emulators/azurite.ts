/**
 * Azurite (the npm package) as a child process: Blob, Queue and Table on free loopback ports,
 * in-memory, any API version. Table Storage holds the fleet ledger; the connection string also
 * serves as the host's AzureWebJobsStorage.
 */
import * as fs from "node:fs/promises";
import { createRequire } from "node:module";
import * as path from "node:path";
import { ManagedProcess, makeShortTempDir, removeOwnedDir } from "../spire/process.js";

/** Azurite's well-known development account (public, documented by Microsoft). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface AzuriteHandle {
  /** http://127.0.0.1:<port>/devstoreaccount1 */
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
  accountName: string;
  accountKey: string;
  /** For AzureWebJobsStorage and TableClient.fromConnectionString (with allowInsecureConnection). */
  connectionString: string;
  pid: number;
  /** Milliseconds from spawn to all three services answering. */
  startMs: number;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Bound for starting (default 30 s). */
  timeoutMs?: number;
  /** MB of in-memory blob extents (default 64). */
  extentMemoryLimitMb?: number;
}

function azuriteEntry(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("azurite/package.json")), "dist", "src", "azurite.js");
}

const LISTENING =
  /Azurite (Blob|Queue|Table) service is successfully listening at (http:\/\/127\.0\.0\.1:(\d+))/g;

async function probe(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return true; // any HTTP answer (Azurite says 400/403 without auth) means it serves
  } catch {
    return false;
  }
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteHandle> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const dir = makeShortTempDir("azurite-");
  const consoleFile = path.join(dir, "console.log");
  const proc = new ManagedProcess(
    "azurite",
    process.execPath,
    [
      azuriteEntry(),
      "--blobHost",
      "127.0.0.1",
      "--queueHost",
      "127.0.0.1",
      "--tableHost",
      "127.0.0.1",
      // Port 0: the OS picks free ports and Azurite prints them, so there is no race for a port.
      "--blobPort",
      "0",
      "--queuePort",
      "0",
      "--tablePort",
      "0",
      "--inMemoryPersistence",
      "--extentMemoryLimit",
      String(options.extentMemoryLimitMb ?? 64),
      "--skipApiVersionCheck",
      "--disableProductStyleUrl",
      "--disableTelemetry",
      "--silent",
    ],
    { cwd: dir, consoleFile },
  );

  const fail = async (why: string): Promise<never> => {
    await proc.stop(2_000);
    const output = await fs.readFile(consoleFile, "utf8").catch(() => "");
    await removeOwnedDir(dir);
    throw new Error(`Azurite did not start: ${why}\n${output.split("\n").slice(-15).join("\n")}`);
  };

  const ports = new Map<string, string>();
  const deadline = started + timeoutMs;
  while (ports.size < 3) {
    if (!proc.running) return fail(`it exited (${JSON.stringify(proc.exitStatus)})`);
    if (Date.now() > deadline) return fail(`no listening ports within ${timeoutMs} ms`);
    const output = await fs.readFile(consoleFile, "utf8").catch(() => "");
    for (const m of output.matchAll(LISTENING)) ports.set(m[1] ?? "", m[2] ?? "");
    if (ports.size < 3) await new Promise((r) => setTimeout(r, 50));
  }
  const endpoint = (service: string) => `${ports.get(service)}/${AZURITE_ACCOUNT}`;
  const blobEndpoint = endpoint("Blob");
  const queueEndpoint = endpoint("Queue");
  const tableEndpoint = endpoint("Table");
  for (const url of [blobEndpoint, queueEndpoint, tableEndpoint]) {
    while (!(await probe(url))) {
      if (!proc.running) return fail("it exited while starting");
      if (Date.now() > deadline) return fail(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  let stopped = false;
  return {
    blobEndpoint,
    queueEndpoint,
    tableEndpoint,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
      `BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};TableEndpoint=${tableEndpoint};`,
    pid: proc.pid,
    startMs: Date.now() - started,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc.stop(3_000);
      await removeOwnedDir(dir);
    },
  };
}
