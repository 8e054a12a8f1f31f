import { describe, expect, it } from "vitest";
import { classifyRevision, type ReportedRevision } from "../../shared/containerapp/revision-state.js";

const provisioned = (runningState: string | undefined, extra: Partial<ReportedRevision> = {}) => ({
  provisioningState: "Provisioned",
  runningState,
  healthState: "Healthy",
  replicas: 1,
  ...extra,
});

describe("classifyRevision", () => {
  // Every running state Azure is known to report, including those its REST spec omits.
  it.each([
    ["Running", "Running"],
    ["RunningAtMaxScale", "Running"],
    ["Processing", "Pending"],
    ["Activating", "Pending"],
    ["Provisioning", "Pending"],
    ["Unknown", "Pending"],
    ["Failed", "Failed"],
    ["Degraded", "Failed"],
    ["ActivationFailed", "Failed"],
    ["ScaledToZero", "Failed"],
    ["Stopped", "Failed"],
  ])("a provisioned revision running %s is %s", (runningState, state) => {
    expect(classifyRevision(provisioned(runningState)).state).toBe(state);
  });

  it("says why a revision whose containers never start failed", () => {
    const v = classifyRevision(provisioned("ActivationFailed", { healthState: "Unhealthy", replicas: 0 }));
    expect(v).toEqual({
      state: "Failed",
      detail:
        "its containers never started (ActivationFailed): provisioning Provisioned, running ActivationFailed, health Unhealthy, 0 replica(s)",
    });
  });

  it("keeps waiting on a running state it does not know, and names it", () => {
    const v = classifyRevision(provisioned("Hibernating"));
    expect(v.state).toBe("Pending");
    expect(v.detail).toMatch(/^unrecognised running state "Hibernating", still waiting: /);
  });

  it("keeps waiting on a provisioning state it does not know, and names it", () => {
    const v = classifyRevision({ provisioningState: "Reticulating", runningState: "Running" });
    expect(v.state).toBe("Pending");
    expect(v.detail).toMatch(/unrecognised provisioning state "Reticulating"/);
  });

  it.each([
    [{ provisioningState: "Provisioning", runningState: "Running" }, "Pending"],
    [{ provisioningState: "Provisioning", runningState: "ActivationFailed" }, "Failed"],
    [{ provisioningState: "Failed", runningState: "Running", provisioningError: "bad image" }, "Failed"],
    [{ provisioningState: "Deprovisioned", runningState: "Running" }, "Failed"],
    [{ provisioningState: "Provisioned" }, "Pending"],
    [{}, "Pending"],
  ])("combines provisioning and running state: %j is %s", (r, state) => {
    expect(classifyRevision(r).state).toBe(state);
  });

  it("carries the provisioning error into the detail", () => {
    const v = classifyRevision({ provisioningState: "Failed", provisioningError: "image not found" });
    expect(v.detail).toMatch(/^it failed to provision: .*image not found$/);
  });
});
