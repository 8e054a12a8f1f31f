import { createHash } from "node:crypto";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { z } from "zod";
import { classifyApp, type ManagedApp } from "../shared/containerapp/apps.js";
import { asActivityResult, classifyError, PermanentError } from "../shared/errors.js";
import { createLogger, type LogFields, type Logger, type LogSink } from "../shared/logging.js";
import { getServices, type Services } from "../shared/services.js";
import { parseAppName, parseJoinTokenAgentId } from "../shared/spiffe/ids.js";
import type { ActivityResult } from "./contracts.js";

/* What every activity shares: input validation, logging with durations, the result envelope. */

/** A Container App name, checked before it reaches any ARM call. */
export const appName = z.string().refine(
  (s) => {
    try {
      parseAppName(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: "not a Container App name (2-32 lowercase letters, digits and '-')" },
);

export const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * How activities name an agent without naming it: the SHA-256 of its join token (the join-token
 * agent ID embeds the token, so the ID itself is a secret). An agent that did not attest with a
 * join token is named by the SHA-256 of its ID.
 */
export function agentRef(agentId: string): string {
  try {
    return sha256Hex(parseJoinTokenAgentId(agentId).token);
  } catch {
    return sha256Hex(agentId);
  }
}

/** Fields safe to put on every log line of an invocation, taken from the raw input. */
function inputFields(input: unknown): LogFields {
  const fields: LogFields = {};
  if (typeof input !== "object" || input === null) return fields;
  const raw = input as Record<string, unknown>;
  for (const key of ["app", "runId", "revisionName"]) {
    if (typeof raw[key] === "string") fields[key] = (raw[key] as string).slice(0, 200);
  }
  return fields;
}

/**
 * Runs one activity: validates its input (a bad one is a permanent failure), logs start and end
 * with the duration, returns permanent failures as results and rethrows transient ones.
 */
export async function runActivity<S extends z.ZodType, T>(
  name: string,
  schema: S,
  input: unknown,
  services: Services | undefined,
  sink: LogSink | undefined,
  work: (input: z.output<S>, services: Services, log: Logger) => Promise<T>,
): Promise<ActivityResult<T>> {
  const log = createLogger(sink ?? console, { activity: name, ...inputFields(input) });
  const started = performance.now();
  const durationMs = () => Math.round(performance.now() - started);
  try {
    const result = await asActivityResult(async () => {
      const parsed = schema.safeParse(input);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new PermanentError(
          "BadInput",
          `${name}: invalid input${issue ? ` at ${issue.path.join(".") || "(root)"}: ${issue.message}` : ""}`,
        );
      }
      return work(parsed.data, services ?? getServices(), log);
    }, log);
    if (result.ok) log.info(`${name} done`, { durationMs: durationMs() });
    else log.warn(`${name} failed`, { durationMs: durationMs(), code: result.error.code });
    return result;
  } catch (err) {
    log.warn(`${name} failed transiently`, { durationMs: durationMs(), code: classifyError(err).code });
    throw err;
  }
}

/** GET the app; a missing app is permanent. */
export async function getApp(services: Services, name: string): Promise<ContainerApp> {
  const rg = services.config.apps.resourceGroup;
  try {
    return await services.containerApps.containerApps.get(rg, name);
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) {
      throw new PermanentError("AppNotFound", `Container app ${name} was not found in resource group ${rg}.`);
    }
    throw err;
  }
}

/** The app as spire-autopilot manages it, or a permanent failure saying why it is not managed. */
export function requireManaged(app: ContainerApp, services: Services): ManagedApp {
  const { config } = services;
  const verdict = classifyApp(app, { trustDomain: config.spire.trustDomain, apps: config.apps });
  if (verdict.kind === "managed") return verdict.app;
  const tag = `${config.apps.managedTag.name}=${config.apps.managedTag.value}`;
  if (verdict.kind === "unmanaged") {
    throw new PermanentError(
      "AppNotManaged",
      `Container app ${verdict.name} is not managed by spire-autopilot: it lacks the tag ${tag}.`,
    );
  }
  throw new PermanentError(
    "AppSkipped",
    `Container app ${verdict.name} is tagged ${tag} but cannot be managed: ${verdict.reason}.`,
  );
}
