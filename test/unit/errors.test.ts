import { RestError } from "@azure/core-rest-pipeline";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../shared/config.js";
import { SpecError } from "../../shared/containerapp/spec.js";
import { asActivityResult, classifyError, PermanentError, TransientError } from "../../shared/errors.js";
import { createLogger, registerSecret } from "../../shared/logging.js";
import { SpiffeIdError } from "../../shared/spiffe/ids.js";
import { SpireApiError, SpireInputError } from "../../shared/spire/errors.js";

const rest = (statusCode: number | undefined, code?: string, message = "boom") =>
  new RestError(message, { statusCode, code });

describe("classifyError", () => {
  it.each([
    ["408 timeout", rest(408), true, "Http408"],
    ["429 throttled", rest(429, "TooManyRequests"), true, "TooManyRequests"],
    ["500", rest(500, "InternalServerError"), true, "InternalServerError"],
    ["502", rest(502), true, "Http502"],
    ["503", rest(503, "ServiceUnavailable"), true, "ServiceUnavailable"],
    ["504", rest(504), true, "Http504"],
    ["501 is not coming back", rest(501), false, "Http501"],
    ["403 role propagation (#15)", rest(403, "AuthorizationFailed"), true, "AuthorizationFailed"],
    ["403 Key Vault RBAC propagation", rest(403, "ForbiddenByRbac"), true, "ForbiddenByRbac"],
    ["403 other", rest(403, "Forbidden"), false, "Forbidden"],
    ["400 validation", rest(400, "ContainerAppSecretInvalid"), false, "ContainerAppSecretInvalid"],
    ["404", rest(404, "ResourceNotFound"), false, "ResourceNotFound"],
    ["409 busy", rest(409, "ContainerAppOperationInProgress"), true, "ContainerAppOperationInProgress"],
    ["409 other conflict", rest(409, "Conflict"), false, "Conflict"],
    ["request not sent", rest(undefined, "REQUEST_SEND_ERROR"), true, "REQUEST_SEND_ERROR"],
  ])("%s", (_name, err, transient, code) => {
    expect(classifyError(err)).toMatchObject({ transient, code });
  });

  it("network errors, also as a cause", () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    expect(classifyError(reset)).toMatchObject({ transient: true, code: "ECONNRESET" });
    expect(classifyError(new Error("fetch failed", { cause: reset }))).toMatchObject({ transient: true });
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    expect(classifyError(abort)).toMatchObject({ transient: true, code: "AbortError" });
  });

  it("SPIRE errors by their retryable status", () => {
    expect(classifyError(new SpireApiError("Agent.ListAgents", "UNAVAILABLE", "down"))).toMatchObject({
      transient: true,
      code: "UNAVAILABLE",
    });
    expect(classifyError(new SpireApiError("Agent.ListAgents", "RESOURCE_EXHAUSTED", "x")).transient).toBe(
      true,
    );
    expect(classifyError(new SpireApiError("Entry.X", "INVALID_ARGUMENT", "bad"))).toMatchObject({
      transient: false,
      code: "INVALID_ARGUMENT",
    });
    expect(classifyError(new SpireInputError("id", "bad")).transient).toBe(false);
  });

  it("the product's own validation errors are permanent", () => {
    expect(classifyError(new SpecError("NoSidecar", "no sidecar"))).toEqual({
      transient: false,
      code: "NoSidecar",
      message: "no sidecar",
    });
    expect(classifyError(new SpiffeIdError("bad id", "x")).code).toBe("InvalidSpiffeId");
    expect(classifyError(new ConfigError([])).code).toBe("ConfigError");
    expect(classifyError(new PermanentError("AppNotManaged", "no")).transient).toBe(false);
    expect(classifyError(new TransientError("Http503", "later")).transient).toBe(true);
  });

  it("long-running operation failures by their code", () => {
    const lro = (code: string) => new Error(`The long-running operation has failed. ${code}. went wrong`);
    expect(classifyError(lro("ContainerAppOperationError"))).toMatchObject({
      transient: false,
      code: "ContainerAppOperationError",
    });
    expect(classifyError(lro("InternalServerError")).transient).toBe(true);
    expect(classifyError(new Error("The long-running operation has failed"))).toMatchObject({
      transient: false,
      code: "OperationFailed",
    });
  });

  it("anything else is permanent, named by its class", () => {
    expect(classifyError(new TypeError("x is undefined"))).toMatchObject({
      transient: false,
      code: "TypeError",
    });
    expect(classifyError(new Error("plain"))).toMatchObject({ transient: false, code: "Unexpected" });
    expect(classifyError("a string")).toMatchObject({ transient: false, message: "a string" });
  });

  it("redacts secrets and clips the message", () => {
    const token = registerSecret("3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
    const c = classifyError(rest(400, "Bad", `token ${token} refused\n${"x".repeat(5000)}`));
    expect(c.message).not.toContain(token);
    expect(c.message).toContain("[REDACTED]");
    expect(c.message.length).toBeLessThanOrEqual(1000);
    expect(c.message).not.toContain("\n");
  });
});

describe("asActivityResult", () => {
  const capture = () => {
    const lines: string[] = [];
    const push = (line: unknown) => lines.push(String(line));
    return { lines, log: createLogger({ debug: push, info: push, warn: push, error: push }) };
  };

  it("wraps a value", async () => {
    expect(await asActivityResult(async () => 42)).toEqual({ ok: true, value: 42 });
  });

  it("returns a permanent failure as a result", async () => {
    const { lines, log } = capture();
    const r = await asActivityResult(async () => {
      throw new SpecError("SecretWithoutValue", "secret x has no value");
    }, log);
    expect(r).toEqual({ ok: false, error: { code: "SecretWithoutValue", message: "secret x has no value" } });
    expect(lines.join("\n")).toContain("permanent failure");
  });

  it("rethrows a transient failure, redacted", async () => {
    const token = registerSecret("aa0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
    const { lines, log } = capture();
    const p = asActivityResult(async () => {
      throw rest(503, "ServiceUnavailable", `busy with ${token}`);
    }, log);
    await expect(p).rejects.toBeInstanceOf(TransientError);
    await expect(p).rejects.toMatchObject({ code: "ServiceUnavailable", message: "busy with [REDACTED]" });
    const err: unknown = await p.catch((e: unknown) => e);
    expect((err as Error).stack).not.toContain(token);
    expect(lines.join("\n")).not.toContain(token);
  });
});
