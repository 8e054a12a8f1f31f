/**
 * VM managed run-commands through the real @azure/arm-compute client against the simulator:
 * both state machines with the lag between them (#20), real bash scripts in the VM's sandbox
 * folder, the docker shim reaching a real spire-server, output tails, timeouts, the wedge faults
 * (#20, #34), and the legacy POST runCommand (#8, #17).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ComputeManagementClient, VirtualMachineRunCommand } from "@azure/arm-compute";
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { spireServerContainer } from "../../sandbox/azure/compute/spire-container.js";
import { SimControlClient } from "../../sandbox/azure/control.js";
import { type AzureSimulator, FAST_PROFILE, startAzureSimulator } from "../../sandbox/azure/index.js";
import { startAzurite } from "../../sandbox/emulators/azurite.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { blobOutputStore } from "../../shared/azure/runcommand-storage.js";
import { waitFor } from "./azure-fixtures.js";

const RG = "rg-spire";
const VM = "vm-spire";
const WARM_VM = "vm-warm";

let server: SpireServerHandle;
let sim: AzureSimulator;
let compute: ComputeManagementClient;

function body(script: string, extra: Partial<VirtualMachineRunCommand> = {}): VirtualMachineRunCommand {
  return { location: "eastus", source: { script }, timeoutInSeconds: 60, ...extra };
}

/** Creates, waits for both state machines to be terminal (the safe way), returns the instance view. */
async function run(name: string, script: string, extra: Partial<VirtualMachineRunCommand> = {}, vm = VM) {
  await compute.virtualMachineRunCommands.createOrUpdate(RG, vm, name, body(script, extra)).submitted();
  const view = await waitFor(`${name} to finish`, async () => {
    const v = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, vm, name, {
      expand: "instanceView",
    });
    const exec = v.instanceView?.executionState;
    const terminal = ["Succeeded", "Failed", "TimedOut", "Canceled"];
    return terminal.includes(exec ?? "") && terminal.includes(v.provisioningState ?? "") ? v : undefined;
  });
  await compute.virtualMachineRunCommands.delete(RG, vm, name).pollUntilDone();
  return view;
}

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: "rc.sandbox.test", bins, logLevel: "INFO" });
  sim = await startAzureSimulator({
    // Runs stay fresh throughout, so #34's cooldown rule applies to every create in this file.
    profile: { ...FAST_PROFILE, vmFreshMs: 3_600_000, wedgeCooldownMs: 300, provisioningLagMs: 250 },
    vms: [
      { resourceGroup: RG, name: VM, spireServer: spireServerContainer(server) },
      { resourceGroup: RG, name: WARM_VM, startedAgoMs: 3_600_000 * 2 },
    ],
  });
  compute = sim.clients().compute;
}, 30 * 60_000);

afterAll(async () => {
  await sim?.stop();
  await server?.dispose();
});

beforeEach(async () => {
  await sim.reset();
  // Tests below start on a VM that is not wedged and has no recent delete.
});

describe("Azure simulator: managed run-commands", () => {
  it("hands protectedParameters to the script but never returns them, as Azure does", async () => {
    const secret = "a1b2c3d4-0000-4000-8000-protected000";
    const view = await run("prot", 'echo "plain=$PLAIN"; test "$HIDDEN" = "$EXPECT" && echo same', {
      parameters: [
        { name: "PLAIN", value: "visible" },
        { name: "EXPECT", value: secret },
      ],
      protectedParameters: [{ name: "HIDDEN", value: secret }],
    });
    expect(view.instanceView?.output).toBe("plain=visible\nsame\n");
    expect(view.protectedParameters).toBeUndefined();
    const served = sim.transcript.runCommandResponses();
    expect(served.length).toBeGreaterThanOrEqual(3);
    // The value the test put in plain parameters shows, the protected one never does.
    expect(served.filter((b) => b.includes(secret)).length).toBe(
      served.filter((b) => b.includes("EXPECT")).length,
    );
    expect(served.some((b) => b.includes("protectedParameters"))).toBe(false);
  });

  it("writes the whole output to outputBlobUri (an append blob in Azurite, through its SAS)", async () => {
    const azurite = await startAzurite();
    try {
      const store = blobOutputStore({
        service: BlobServiceClient.fromConnectionString(azurite.connectionString),
        vmName: VM,
      });
      const uri = await store.outputBlobUriFor("big");
      // 20 KB: the instance view keeps only the last 4 KB.
      const view = await run("big", 'for i in $(seq 1 2000); do echo "line $i xxxxx"; done', {
        outputBlobUri: uri,
      });
      const whole = await store.read(uri);
      expect(whole.split("\n")[0]).toBe("line 1 xxxxx");
      expect(whole.length).toBeGreaterThan(20_000);
      expect(Buffer.byteLength(view.instanceView?.output ?? "")).toBeLessThanOrEqual(4096);
      expect(sim.counters.snapshot().runCommands.outputBlobsWritten).toBe(1);
    } finally {
      await azurite.stop();
    }
  });

  it("counts the most run-commands alive at once on a VM", async () => {
    await compute.virtualMachineRunCommands.createOrUpdate(RG, WARM_VM, "c1", body("sleep 0.3")).submitted();
    await compute.virtualMachineRunCommands.createOrUpdate(RG, WARM_VM, "c2", body("sleep 0.3")).submitted();
    expect(sim.counters.snapshot().runCommands.maxConcurrent).toBe(2);
    for (const n of ["c1", "c2"]) {
      await waitFor(`${n} to finish`, async () => {
        const v = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, WARM_VM, n, {
          expand: "instanceView",
        });
        return v.provisioningState === "Succeeded" ? v : undefined;
      });
      await compute.virtualMachineRunCommands.delete(RG, WARM_VM, n).pollUntilDone();
    }
  });

  it("runs the script with bash and reports both state machines, provisioning lagging behind execution (#20)", async () => {
    const seen: string[] = [];
    await compute.virtualMachineRunCommands
      .createOrUpdate(RG, VM, "rc1", body("echo hello; echo oops >&2; exit 3"))
      .submitted();
    const final = await waitFor("both states terminal", async () => {
      const v = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "rc1", {
        expand: "instanceView",
      });
      const pair = `${v.instanceView?.executionState}/${v.provisioningState}`;
      if (seen.at(-1) !== pair) seen.push(pair);
      return v.provisioningState === "Succeeded" ? v : undefined;
    });
    expect(seen[0]).toMatch(/^(Pending|Running)\/Creating$/);
    expect(seen).toContain("Failed/Creating");
    expect(seen.at(-1)).toBe("Failed/Succeeded");
    expect(final.instanceView).toMatchObject({
      executionState: "Failed",
      exitCode: 3,
      output: "hello\n",
      error: "oops\n",
      executionMessage: "Execution failed with exit code 3",
    });
    expect(final.instanceView?.startTime).toBeInstanceOf(Date);
    expect(final.instanceView?.endTime).toBeInstanceOf(Date);
    // Without $expand there is no instance view.
    const plain = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "rc1");
    expect(plain.instanceView).toBeUndefined();
    const listed = [];
    for await (const r of compute.virtualMachineRunCommands.listByVirtualMachine(RG, VM)) listed.push(r.name);
    expect(listed).toEqual(["rc1"]);
    await compute.virtualMachineRunCommands.delete(RG, VM, "rc1").pollUntilDone();
    expect(sim.counters.wedges).toBe(0);
    await expect(
      compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "rc1", { expand: "instanceView" }),
    ).rejects.toMatchObject({ statusCode: 404, code: "ResourceNotFound" });
  });

  it("the create LRO completes when provisioning does; treatFailureAsDeploymentFailure fails it", async () => {
    const ok = await compute.virtualMachineRunCommands
      .createOrUpdate(RG, VM, "ok", body("true"))
      .pollUntilDone();
    expect(ok.provisioningState).toBe("Succeeded");
    await compute.virtualMachineRunCommands.delete(RG, VM, "ok").pollUntilDone();
    await sleepPastCooldown();
    const poller = compute.virtualMachineRunCommands.createOrUpdate(
      RG,
      VM,
      "bad",
      body("exit 7", { treatFailureAsDeploymentFailure: true }),
    );
    await expect(poller.pollUntilDone()).rejects.toThrow(/Execution failed with exit code 7/);
    const v = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "bad", {
      expand: "instanceView",
    });
    expect(v.provisioningState).toBe("Failed");
    await compute.virtualMachineRunCommands.delete(RG, VM, "bad").pollUntilDone();
    expect(sim.counters.wedges).toBe(0);
  });

  it("passes parameters as environment variables, never echoes protected ones, and hides the simulator's environment", async () => {
    process.env.SIM_TEST_HOST_SECRET = "host-only";
    try {
      await compute.virtualMachineRunCommands
        .createOrUpdate(
          RG,
          VM,
          "env",
          body(
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
            'echo "$GREETING $SECRET_PARAM"; echo "host=${SIM_TEST_HOST_SECRET:-unset}"; pwd; echo "$PATH"',
            {
              parameters: [{ name: "GREETING", value: "hi; rm -rf / $(id)" }],
              protectedParameters: [{ name: "SECRET_PARAM", value: "p4ss" }],
            },
          ),
        )
        .submitted();
      const v = await waitFor("env to run", async () => {
        const r = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "env", {
          expand: "instanceView",
        });
        return r.provisioningState === "Succeeded" ? r : undefined;
      });
      const lines = (v.instanceView?.output ?? "").split("\n");
      expect(lines[0]).toBe("hi; rm -rf / $(id) p4ss");
      expect(lines[1]).toBe("host=unset");
      expect(lines[2]).toMatch(new RegExp(`^${join(sim.compute.vm(RG, VM).dir, "runs")}/[0-9]+$`));
      expect(lines[3]?.split(":")[0]).toBe(join(sim.compute.vm(RG, VM).dir, "bin"));
      expect(v.parameters).toEqual([{ name: "GREETING", value: "hi; rm -rf / $(id)" }]);
      expect(JSON.stringify(v)).not.toContain('p4ss"');
      expect(v.protectedParameters).toBeUndefined();
      await compute.virtualMachineRunCommands.delete(RG, VM, "env").pollUntilDone();
    } finally {
      delete process.env.SIM_TEST_HOST_SECRET;
    }
  });

  it("refuses names and parameters that could not be files or variables", async () => {
    await expect(
      compute.virtualMachineRunCommands.createOrUpdate(RG, VM, "has space", body("true")).submitted(),
    ).rejects.toMatchObject({ statusCode: 400 });
    await expect(
      compute.virtualMachineRunCommands
        .createOrUpdate(RG, VM, "p", body("true", { parameters: [{ name: "A=B; x", value: "1" }] }))
        .submitted(),
    ).rejects.toMatchObject({ statusCode: 400, code: "InvalidParameter" });
    await expect(
      compute.virtualMachineRunCommands.createOrUpdate(RG, "no-such-vm", "x", body("true")).submitted(),
    ).rejects.toMatchObject({ statusCode: 404, code: "ResourceNotFound" });
  });

  it("keeps the last 4 KB of output and error", async () => {
    const v = await run(
      "big",
      "for i in $(seq 1 2000); do printf 'line%05d\\n' $i; done; printf 'E%.0s' $(seq 1 5000) >&2",
    );
    const out = v.instanceView?.output ?? "";
    expect(Buffer.byteLength(out)).toBe(4096);
    expect(out.endsWith("line02000\n")).toBe(true);
    expect(Buffer.byteLength(v.instanceView?.error ?? "")).toBe(4096);
  });

  it("timeoutInSeconds kills the script and everything it started", async () => {
    const started = Date.now();
    const v = await run("slow", "sleep 30 & echo $! > child.pid; echo started; wait", {
      timeoutInSeconds: 1,
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(v.instanceView).toMatchObject({ executionState: "TimedOut", output: "started\n" });
    expect(sim.counters.snapshot().runCommands.timedOut).toBe(1);
  });

  describe("the docker shim on the VM", () => {
    it("docker exec spire-server /opt/spire/bin/spire-server reaches the real server", async () => {
      const v = await run(
        "exec",
        [
          "docker exec spire-server /opt/spire/bin/spire-server healthcheck",
          "docker exec -i spire-server /opt/spire/bin/spire-server token generate -spiffeID spiffe://rc.sandbox.test/agent/a1 -output json",
          'docker exec spire-server cat /etc/passwd; echo "cat exit $?"',
          'docker exec nope /opt/spire/bin/spire-server healthcheck; echo "nope exit $?"',
          "docker ps",
        ].join("\n"),
      );
      const out = v.instanceView?.output ?? "";
      expect(out).toContain("Server is healthy.");
      expect(out).toMatch(/"value":\s*"[0-9a-f-]{36}"/);
      expect(out).toContain("cat exit 126");
      expect(out).toContain("nope exit 1");
      expect(v.instanceView?.error).toContain("No such container: nope");
      expect(out).toMatch(/spire-server\s*$/m);
      const agents = await server.cli(["entry", "show", "-spiffeID", "spiffe://rc.sandbox.test/agent/a1"]);
      expect(agents.stdout).toContain("spiffe://rc.sandbox.test/agent/a1");
    });

    it("docker restart keeps the server's data and CA", async () => {
      const before = await server.bundlePem();
      const v = await run(
        "restart",
        "docker restart spire-server && docker exec spire-server /opt/spire/bin/spire-server healthcheck",
      );
      expect(v.instanceView?.output).toContain("Server is healthy.");
      expect(await server.bundlePem()).toBe(before);
    });

    it("a hung server (paused) makes CLI calls hang until the run-command times out; resume recovers (#23)", async () => {
      const spire = sim.compute.vm(RG, VM).spireServer;
      if (!spire) throw new Error("the VM has no spire-server container");
      spire.pause();
      try {
        const v = await run(
          "hung",
          "docker ps; docker exec spire-server /opt/spire/bin/spire-server healthcheck",
          {
            timeoutInSeconds: 2,
          },
        );
        expect(v.instanceView?.executionState).toBe("TimedOut");
        // Docker still says the container is up: the hang is invisible from outside.
        expect(v.instanceView?.output).toMatch(/Up\s+spire-server/);
      } finally {
        spire.resume();
      }
      await sleepPastCooldown();
      const ok = await run(
        "healthy-again",
        "docker exec spire-server /opt/spire/bin/spire-server healthcheck",
      );
      expect(ok.instanceView?.output).toContain("Server is healthy.");
    });

    it("docker stop, rm and run destroy the data dir: a new CA (#25)", async () => {
      const before = await server.bundlePem();
      const v = await run(
        "recreate",
        [
          'docker rm spire-server; echo "rm running: $?"',
          "docker stop spire-server && docker rm spire-server",
          'docker exec spire-server /opt/spire/bin/spire-server healthcheck; echo "exec gone: $?"',
          "docker run -d --name spire-server --log-driver=syslog ghcr.io/spiffe/spire-server:1.15.3 >/dev/null",
          "docker exec spire-server /opt/spire/bin/spire-server healthcheck",
        ].join("\n"),
      );
      const out = v.instanceView?.output ?? "";
      expect(out).toContain("rm running: 1");
      expect(out).toContain("exec gone: 1");
      expect(out).toContain("Server is healthy.");
      expect(v.instanceView?.error).toContain("You cannot remove a running container");
      expect(await server.bundlePem()).not.toBe(before);
    });
  });

  describe("wedges (#20, #34)", () => {
    it("deleting while provisioningState is not terminal wedges the guest agent; later run-commands hang until the VM is deallocated", async () => {
      await compute.virtualMachineRunCommands.createOrUpdate(RG, VM, "naive", body("echo done")).submitted();
      await waitFor("executionState Succeeded", async () => {
        const v = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "naive", {
          expand: "instanceView",
        });
        return v.instanceView?.executionState === "Succeeded" ? v : undefined;
      });
      // The naive client deletes now, while ARM still says Creating.
      await compute.virtualMachineRunCommands.delete(RG, VM, "naive").pollUntilDone();
      expect(sim.counters.wedges).toBe(1);
      expect(sim.compute.vm(RG, VM).wedgeReason).toMatch(/provisioningState was Creating/);
      const control = new SimControlClient(sim.url, sim.caPem);
      expect(await control.vm(RG, VM)).toMatchObject({ wedged: true, fresh: true });

      await compute.virtualMachineRunCommands.createOrUpdate(RG, VM, "after", body("echo never")).submitted();
      await new Promise((r) => setTimeout(r, 1_000));
      const stuck = await compute.virtualMachineRunCommands.getByVirtualMachine(RG, VM, "after", {
        expand: "instanceView",
      });
      expect(stuck.provisioningState).toBe("Creating");
      expect(stuck.instanceView?.executionState).toBe("Unknown");
      expect(stuck.instanceView?.output).toBe("");

      // The legacy API answers Conflict; with the conflict behaviour so does the managed one.
      await expect(
        compute.virtualMachines
          .runCommand(RG, VM, { commandId: "RunShellScript", script: ["true"] })
          .submitted(),
      ).rejects.toMatchObject({ statusCode: 409, code: "Conflict" });
      sim.faults.set({ wedgedRunCommands: "conflict" });
      await expect(
        compute.virtualMachineRunCommands.createOrUpdate(RG, VM, "after2", body("true")).submitted(),
      ).rejects.toMatchObject({ statusCode: 409, code: "Conflict" });
      // A restart goes through the wedged agent and never completes; force-deallocate does.
      const restart = compute.virtualMachines.restart(RG, VM);
      await restart.submitted();
      await compute.virtualMachines.deallocate(RG, VM).pollUntilDone();
      await compute.virtualMachines.start(RG, VM).pollUntilDone();
      expect(await control.vm(RG, VM)).toMatchObject({ wedged: false, fresh: true });
      const v = await run("recovered", "echo back");
      expect(v.instanceView?.output).toBe("back\n");
      expect(sim.counters.snapshot().runCommands.blockedByWedge).toBeGreaterThanOrEqual(3);
    });

    it("creating right after a delete on a fresh VM wedges it; on a warm VM it does not", async () => {
      await run("first", "true");
      await compute.virtualMachineRunCommands.createOrUpdate(RG, VM, "second", body("true")).submitted();
      expect(sim.counters.wedges).toBe(1);
      expect(sim.compute.vm(RG, VM).wedgeReason).toMatch(/after a delete on a fresh VM/);
      await sim.compute.vm(RG, VM).reset();

      await run("w1", "true", {}, WARM_VM);
      await run("w2", "true", {}, WARM_VM);
      expect(sim.counters.wedges).toBe(1);
    });

    it("with the wedge rules off, nothing wedges", async () => {
      sim.faults.set({ runCommandWedges: false });
      await compute.virtualMachineRunCommands.createOrUpdate(RG, VM, "x", body("sleep 0.2")).submitted();
      await compute.virtualMachineRunCommands.delete(RG, VM, "x").pollUntilDone();
      await run("y", "true");
      expect(sim.counters.wedges).toBe(0);
    });
  });

  describe("legacy POST runCommand", () => {
    it("returns 'Enable succeeded' output, runs one at a time, and has no timeout (#8, #17)", async () => {
      const first = compute.virtualMachines.runCommand(RG, VM, {
        commandId: "RunShellScript",
        script: ["echo out-$GREETING", "echo err >&2", "sleep 0.5"],
        parameters: [{ name: "GREETING", value: "x" }],
      });
      await first.submitted();
      await expect(
        compute.virtualMachines
          .runCommand(RG, VM, { commandId: "RunShellScript", script: ["true"] })
          .submitted(),
      ).rejects.toMatchObject({ statusCode: 409, code: "Conflict" });
      const result = await first.pollUntilDone();
      expect(result.value?.[0]).toMatchObject({
        code: "ProvisioningState/succeeded",
        level: "Info",
        displayStatus: "Provisioning succeeded",
        message: "Enable succeeded: \n[stdout]\nout-x\n\n[stderr]\nerr\n\n",
      });
      expect(sim.counters.snapshot().runCommands).toMatchObject({ legacyInvocations: 2, legacyConflicts: 1 });

      // A script that never ends holds the single slot until the VM is deallocated.
      const marker = join(sim.compute.vm(RG, VM).dir, "home", "legacy-running");
      await compute.virtualMachines
        .runCommand(RG, VM, { commandId: "RunShellScript", script: [`touch ${marker}`, "sleep 600"] })
        .submitted();
      await waitFor("the legacy script to start", () => (existsSync(marker) ? true : undefined));
      await expect(
        compute.virtualMachines
          .runCommand(RG, VM, { commandId: "RunShellScript", script: ["true"] })
          .submitted(),
      ).rejects.toMatchObject({ statusCode: 409 });
      await compute.virtualMachines.deallocate(RG, VM).pollUntilDone();
      await compute.virtualMachines.start(RG, VM).pollUntilDone();
      const again = await compute.virtualMachines
        .runCommand(RG, VM, { commandId: "RunShellScript", script: ["echo free"] })
        .pollUntilDone();
      expect(again.value?.[0]?.message).toContain("[stdout]\nfree\n");
      expect(readFileSync(marker, "utf8")).toBe("");
    });
  });
});

/** The fresh-VM cooldown of the simulator profile used in this file, plus margin. */
function sleepPastCooldown(): Promise<void> {
  return new Promise((r) => setTimeout(r, 400));
}
