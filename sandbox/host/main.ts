// Entry point of the local Functions host as a process:
//   node --import tsx sandbox/host/main.ts --app functions/index.ts --state-dir .sandbox/host [--port 7071]
//     [--time-scale 1] [--keys-file F] [--host-json host.json]
// Prints one line `HOST_READY {json}` when it serves; exits cleanly on SIGTERM/SIGINT.
import "./core-shim.js";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    app: { type: "string" },
    port: { type: "string", default: "7071" },
    "state-dir": { type: "string" },
    "time-scale": { type: "string", default: "1" },
    "clock-origin": { type: "string" },
    "keys-file": { type: "string" },
    "host-json": { type: "string" },
  },
});

if (!values.app || !values["state-dir"]) {
  process.stderr.write("usage: main.ts --app <entry> --state-dir <dir> [--port N] [--time-scale X]\n");
  process.exit(2);
}

const { FunctionsHost } = await import("./server.js");
try {
  const host = await FunctionsHost.start({
    appEntry: values.app,
    stateDir: values["state-dir"],
    port: Number(values.port),
    timeScale: Number(values["time-scale"]),
    clockOrigin: values["clock-origin"] ? Number(values["clock-origin"]) : undefined,
    keysFile: values["keys-file"],
    hostJsonPath: values["host-json"],
  });
  process.stdout.write(
    `HOST_READY ${JSON.stringify({ url: host.url, pid: process.pid, functions: host.describe() })}\n`,
  );
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await host.stop();
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
} catch (err) {
  process.stderr.write(`HOST_FAILED ${(err as Error).message}\n`);
  process.exit(1);
}
