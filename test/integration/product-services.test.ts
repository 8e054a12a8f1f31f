import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sandboxSettings } from "../../sandbox/environment.js";
import { FunctionsHost } from "../../sandbox/host/server.js";
import { getServices, type Services, setServicesForTest } from "../../shared/services.js";

/*
 * One composition root per process: the product's HTTP triggers reach Azure through the same
 * Services the activities use (shared/services.ts), not a second set of clients. The product runs
 * in-process under the local host, so the bundle set here is the one its triggers must use.
 */

const PRODUCT_APP = resolve(import.meta.dirname, "../../functions/index.ts");
let dir: string;
let host: FunctionsHost;
const looked: string[] = [];
const saved = { ...process.env };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "product-services-"));
  Object.assign(process.env, sandboxSettings("/tmp/spire-autopilot-test/api.sock"));
  const fake = {
    containerApps: {
      containerApps: {
        get: async (_rg: string, name: string) => {
          looked.push(name);
          throw Object.assign(new Error("not here"), { statusCode: 404 });
        },
      },
    },
  } as unknown as Services;
  setServicesForTest(fake);
  host = await FunctionsHost.start({
    appEntry: PRODUCT_APP,
    port: 0,
    stateDir: join(dir, "state"),
    hostJsonPath: resolve(import.meta.dirname, "../../host.json"),
    log: () => undefined,
  });
}, 60_000);

afterAll(async () => {
  await host?.stop();
  setServicesForTest(undefined);
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
  rmSync(dir, { recursive: true, force: true });
});

it("looks apps up through the process's one Services bundle", async () => {
  const res = await fetch(`${host.url}/api/apps/budget/reattest?code=${host.keys.functionKeys.default}`, {
    method: "POST",
  });
  expect(res.status).toBe(404);
  expect(looked).toEqual(["budget"]);
  expect(getServices()).toBeDefined();
});
