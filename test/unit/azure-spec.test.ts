/** Pure rules of the simulated Container Apps resource provider. */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMPUTE_API_VERSIONS, CONTAINER_APPS_API_VERSIONS } from "../../sandbox/azure/arm/versions.js";
import {
  applyPartialUpdateReset,
  checkSecretsComplete,
  containerView,
  isSidecar,
  PLACEHOLDER_IMAGE,
  randomSuffix,
  readSecrets,
  redactConfiguration,
  replicaCount,
  resolveEnv,
  templateIdentity,
  validateAppName,
  validateRevisionSuffix,
  validateTemplate,
  withTemplateDefaults,
} from "../../sandbox/azure/containerapps/spec.js";
import { EventLog } from "../../sandbox/azure/events.js";
import { Faults } from "../../sandbox/azure/faults.js";
import { canonicalJson, type JsonObject, mergePatch } from "../../sandbox/azure/json.js";
import { azureProfile, FAST_PROFILE, resolveProfile } from "../../sandbox/azure/profiles.js";
import { immediateExitCode } from "../../sandbox/azure/runtime/simulated.js";

const agent: JsonObject = { name: "agent", image: "repo/agent:1", env: [{ name: "MODE", value: "a" }] };
const sidecar: JsonObject = {
  name: "app-spiffe-proxy",
  image: "repo/proxy:1",
  env: [
    { name: "JOIN_TOKEN", secretRef: "join-token" },
    { name: "SPIRE_SERVER_ADDR", value: "10.0.0.4:8081" },
  ],
};
const template: JsonObject = { containers: [agent, sidecar] };

function errorOf(fn: () => void): { code?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error("expected an error");
}

describe("JSON merge patch (RFC 7386)", () => {
  it("merges objects, deletes with null, replaces arrays and scalars", () => {
    expect(
      mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1, 2] }, { b: { c: null, x: 1 }, e: [3], f: "n" }),
    ).toEqual({
      a: 1,
      b: { d: 3, x: 1 },
      e: [3],
      f: "n",
    });
    expect(mergePatch({ a: 1 }, ["x"])).toEqual(["x"]);
    expect(mergePatch(undefined, { a: { b: null } })).toEqual({ a: {} });
  });

  it("canonical JSON ignores key order", () => {
    expect(canonicalJson({ b: 1, a: { d: 1, c: 2 } })).toBe(canonicalJson({ a: { c: 2, d: 1 }, b: 1 }));
  });
});

describe("names", () => {
  it("app names: lowercase, letter first, alphanumeric last, no '--', at most 32", () => {
    for (const ok of ["a", "app-1", "budget-backend", "x".repeat(32)])
      expect(() => validateAppName(ok)).not.toThrow();
    for (const bad of ["A", "1app", "app-", "a--b", "x".repeat(33), "a_b"]) {
      expect(errorOf(() => validateAppName(bad)).code).toBe("ContainerAppInvalidName");
    }
  });

  it("revision suffixes: letter first, lowercase, no '--', app + '--' + suffix at most 54", () => {
    for (const ok of ["v1", "sa-0123456789ab", "a"])
      expect(() => validateRevisionSuffix("app", ok)).not.toThrow();
    expect(() => validateRevisionSuffix("a".repeat(32), "s".repeat(20))).not.toThrow();
    for (const bad of ["1v", "V1", "a--b", "end-", "s".repeat(50), "a.b"]) {
      const err = errorOf(() => validateRevisionSuffix("app", bad));
      expect(err.code).toBe("ContainerAppInvalidRevisionName");
      expect(err.message).toContain(`'app--${bad}'`);
    }
    expect(errorOf(() => validateRevisionSuffix("a".repeat(32), "s".repeat(21))).code).toBe(
      "ContainerAppInvalidRevisionName",
    );
  });

  it("random suffixes are valid and differ", () => {
    const suffixes = new Set(Array.from({ length: 50 }, () => randomSuffix()));
    expect(suffixes.size).toBeGreaterThan(45);
    for (const s of suffixes) expect(() => validateRevisionSuffix("app", s)).not.toThrow();
  });
});

describe("secrets", () => {
  it("needs a value or a Key Vault URL and identity, with Azure's message", () => {
    const secrets = readSecrets({
      secrets: [
        { name: "a", value: "x" },
        { name: "b", keyVaultUrl: "https://v.vault.azure.net/secrets/b", identity: "system" },
        { name: "c" },
        { name: "d", keyVaultUrl: "https://v.vault.azure.net/secrets/d" },
      ],
    });
    const err = errorOf(() => checkSecretsComplete(secrets));
    expect(err.code).toBe("ContainerAppSecretInvalid");
    expect(err.message).toBe(
      "Invalid Request: Container app secret(s) with name(s) 'c, d' are invalid: value or keyVaultUrl and identity should be provided.",
    );
  });

  it("refuses bad or duplicate secret names", () => {
    expect(errorOf(() => readSecrets({ secrets: [{ name: "Bad_Name", value: "x" }] })).message).toMatch(
      /Invalid secret name/,
    );
    expect(
      errorOf(() =>
        readSecrets({
          secrets: [
            { name: "a", value: "1" },
            { name: "a", value: "2" },
          ],
        }),
      ).message,
    ).toMatch(/more than once/);
  });

  it("GET shows names and Key Vault references, never values", () => {
    expect(
      redactConfiguration({
        activeRevisionsMode: "Single",
        secrets: [
          { name: "a", value: "hidden" },
          { name: "b", keyVaultUrl: "https://v/secrets/b", identity: "system" },
        ],
      }),
    ).toEqual({
      activeRevisionsMode: "Single",
      secrets: [{ name: "a" }, { name: "b", keyVaultUrl: "https://v/secrets/b", identity: "system" }],
    });
  });
});

describe("templates", () => {
  const secrets = [{ name: "join-token", value: "t" }];

  it("validates containers, env names, secret refs and volume mounts", () => {
    expect(() => validateTemplate(template, secrets)).not.toThrow();
    expect(errorOf(() => validateTemplate({ containers: [] }, secrets)).message).toMatch(
      /at least one container/,
    );
    expect(errorOf(() => validateTemplate(template, [])).code).toBe("ContainerAppSecretRefNotFound");
    expect(errorOf(() => validateTemplate({ containers: [agent, agent] }, secrets)).message).toMatch(
      /more than once/,
    );
    expect(errorOf(() => validateTemplate({ containers: [{ name: "x" }] }, secrets)).message).toMatch(
      /must have an image/,
    );
    expect(
      errorOf(() =>
        validateTemplate(
          { containers: [{ ...agent, volumeMounts: [{ volumeName: "nope", mountPath: "/m" }] }] },
          secrets,
        ),
      ).message,
    ).toMatch(/does not name a volume/);
  });

  it("defaults are what GET adds, and do not make an unchanged template look changed", () => {
    const withDefaults = withTemplateDefaults(template);
    expect((withDefaults.containers as JsonObject[])[0]?.resources).toEqual({
      cpu: 0.5,
      memory: "1Gi",
      ephemeralStorage: "2Gi",
    });
    expect(templateIdentity(withDefaults)).toBe(templateIdentity(template));
    expect(templateIdentity({ ...template, revisionSuffix: "v9" })).toBe(templateIdentity(template));
    expect(templateIdentity({ containers: [{ ...agent, image: "repo/agent:2" }, sidecar] })).not.toBe(
      templateIdentity(template),
    );
  });

  // The scaler's verdict: the load's demand (default one replica's worth) within min..max, so a
  // 1..3 app under load runs three replicas, each with its own agent.
  it.each([
    [undefined, undefined, 1],
    [{ minReplicas: 3 }, undefined, 3],
    [{ minReplicas: 0 }, undefined, 1],
    [{ minReplicas: 0 }, 0, 0],
    [{ minReplicas: 1, maxReplicas: 3 }, undefined, 1],
    [{ minReplicas: 1, maxReplicas: 3 }, 3, 3],
    [{ minReplicas: 1, maxReplicas: 3 }, 7, 3],
    [{ minReplicas: 1, maxReplicas: 1 }, 5, 1],
    [{ minReplicas: 1 }, 5, 5],
    [{ minReplicas: 0, maxReplicas: 30 }, 50, 10],
  ])("scale %j under demand %s runs %i replica(s)", (scale, demand, n) => {
    expect(replicaCount(scale ? { ...template, scale } : template, demand)).toBe(n);
  });

  it.each([
    [["false"], [], 1],
    [["/bin/false"], [], 1],
    [["sh"], ["-c", "exit 3"], 3],
    [["/bin/sh", "-c", "exit 0"], [], undefined],
    [["sh", "-c", "exit 1; echo"], [], undefined],
    [["/app/server"], ["--port", "8080"], undefined],
    [[], [], undefined],
  ])("a simulated container running %j %j exits at once with %s", (command, args, code) => {
    expect(immediateExitCode(command, args)).toBe(code);
  });

  it("the sidecar is the container with JOIN_TOKEN; its env resolves from secret values", () => {
    const view = containerView(sidecar);
    expect(isSidecar(view)).toBe(true);
    expect(isSidecar(containerView(agent))).toBe(false);
    expect(resolveEnv(view, new Map([["join-token", "tok"]]))).toEqual({
      env: { JOIN_TOKEN: "tok", SPIRE_SERVER_ADDR: "10.0.0.4:8081" },
      missing: [],
    });
    expect(resolveEnv(view, new Map()).missing).toEqual(["join-token"]);
  });
});

describe("partial update reset (#3, #29)", () => {
  it("a PATCH changing one container resets every other one to the placeholder", () => {
    const patch: JsonObject = { containers: [{ ...agent, env: [{ name: "MODE", value: "b" }] }] };
    const merged = mergePatch(template, patch) as JsonObject;
    const { template: out, reset } = applyPartialUpdateReset(template, patch, merged);
    expect(reset).toEqual(["app-spiffe-proxy"]);
    const containers = out.containers as JsonObject[];
    expect(containers.map((c) => c.name)).toEqual(["agent", "app-spiffe-proxy"]);
    expect(containers[0]?.env).toEqual([{ name: "MODE", value: "b" }]);
    expect(containers[1]).toEqual({ name: "app-spiffe-proxy", image: PLACEHOLDER_IMAGE });
  });

  it("sending every container with one changed (--set-env-vars) still resets the unchanged ones", () => {
    const patch: JsonObject = { containers: [{ ...agent, env: [{ name: "MODE", value: "b" }] }, sidecar] };
    const { reset } = applyPartialUpdateReset(template, patch, mergePatch(template, patch) as JsonObject);
    expect(reset).toEqual(["app-spiffe-proxy"]);
  });

  it("a template PATCH without containers resets them all", () => {
    const patch: JsonObject = { scale: { minReplicas: 2 } };
    const { reset } = applyPartialUpdateReset(template, patch, mergePatch(template, patch) as JsonObject);
    expect(reset).toEqual(["agent", "app-spiffe-proxy"]);
  });
});

describe("faults", () => {
  it("403 windows match ARM actions exactly or by glob, and expire", () => {
    let now = 1_000;
    const faults = new Faults({}, () => now);
    expect(faults.denies("Microsoft.App/containerApps/write")).toBe(false);
    faults.set({ authorizationFailed: { actions: ["Microsoft.App/containerApps/*"], forSeconds: 2 } });
    expect(faults.denies("Microsoft.App/containerApps/write")).toBe(true);
    expect(faults.denies("microsoft.app/containerapps/listSecrets/action")).toBe(true);
    expect(faults.denies("Microsoft.Compute/virtualMachines/runCommands/write")).toBe(false);
    now += 2_000;
    expect(faults.denies("Microsoft.App/containerApps/write")).toBe(false);
    expect(faults.settings.patchResetsOtherContainers).toBe(true);
    expect(() => faults.set({ wedgedRunCommands: "never" as "hang" })).toThrow();
    faults.reset();
    expect(faults.settings.authorizationFailed).toBeUndefined();
  });
});

describe("api-versions", () => {
  const require = createRequire(import.meta.url);
  const sdkDefault = (pkg: string, file: string) => {
    const root = dirname(require.resolve(`${pkg}/package.json`));
    const text = readFileSync(join(root, "dist", "esm", "api", file), "utf8");
    return /"api%2Dversion":\s*(?:context\.apiVersion \?\? )?"([0-9-]+(?:-preview)?)"/.exec(text)?.[1];
  };

  it("serves the versions the installed SDKs send", () => {
    expect(CONTAINER_APPS_API_VERSIONS[0]).toBe(
      sdkDefault("@azure/arm-appcontainers", "containerApps/operations.js"),
    );
    expect(COMPUTE_API_VERSIONS[0]).toBe(
      sdkDefault("@azure/arm-compute", "virtualMachineRunCommands/operations.js"),
    );
  });
});

describe("latency profiles", () => {
  it("azure uses typical latencies divided by the time scale; fast is for tests", () => {
    expect(azureProfile().revisionProvisionMs).toBe(45_000);
    expect(azureProfile(60).revisionProvisionMs).toBe(750);
    expect(azureProfile(60).retryAfterSeconds).toBe(1);
    expect(azureProfile(60).pollHoldMs).toBe(0);
    expect(resolveProfile("fast")).toEqual(FAST_PROFILE);
    expect(resolveProfile("azure", 10).name).toBe("azure/10");
    expect(() => azureProfile(0)).toThrow();
  });
});

describe("event log", () => {
  it("keeps the newest entries and pushes every new one to subscribers", () => {
    const log = new EventLog(3);
    const pushed: string[] = [];
    const off = log.subscribe({ console: (e) => pushed.push(e.log) });
    const base = {
      resourceGroup: "rg",
      app: "a",
      revision: "a--1",
      replica: "r",
      container: "c",
      stream: "stdout" as const,
    };
    for (const l of ["1", "2", "3", "4"]) log.addConsole({ ...base, log: l });
    off();
    log.addConsole({ ...base, log: "5" });
    expect(log.console.map((e) => e.log)).toEqual(["3", "4", "5"]);
    expect(pushed).toEqual(["1", "2", "3", "4"]);
  });
});
