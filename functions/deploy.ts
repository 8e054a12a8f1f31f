import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import { DEFAULT_MAX_PARALLEL, type DeployInput, MAX_PARALLEL_LIMIT } from "../orchestrations/deploy.js";
import {
  DEFAULT_SERVER_WAIT_SECONDS,
  DEPLOY_POLL_TIMING,
  startDeploy,
} from "../orchestrations/deploy.start.js";
import type { AppConfig } from "../shared/config.js";
import type { Discovered } from "../shared/containerapp/discover.js";
import { deployPlan } from "../shared/deploy/plan.js";
import { selectDeploy } from "../shared/deploy/selection.js";
import { createLogger } from "../shared/logging.js";
import { parseAppName } from "../shared/spiffe/index.js";
import type { Entry } from "../shared/spire/types.js";
import { json, problem, readValidBody } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

export interface DeployDeps {
  config: Pick<AppConfig, "apps" | "reattest" | "spire" | "deploy">;
  discover(): Promise<Discovered>;
  /** Every entry on the server (dry run only). */
  listEntries(): Promise<Entry[]>;
}

const appNameSchema = z.string().refine(
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

const bodySchema = z
  .object({
    apps: z.array(appNameSchema).min(1, "apps, when given, names at least one app").max(500).optional(),
    images: z
      .record(appNameSchema, z.record(z.string().min(1).max(64), z.string().min(1).max(512)))
      .optional(),
    maxParallel: z
      .number()
      .int("maxParallel is a whole number")
      .min(1, "maxParallel is at least 1")
      .max(MAX_PARALLEL_LIMIT, `maxParallel is at most ${MAX_PARALLEL_LIMIT}`)
      .optional(),
    dryRun: z.boolean().optional(),
    reason: z.string().max(500, "reason is at most 500 characters").optional(),
  })
  .strict();

const SHAPE =
  '{"apps"?: string[], "images"?: {"<app>": {"<container>": "<image>"}}, "maxParallel"?: 1-20, "dryRun"?: boolean, "reason"?: string}';

export function deployHttpHandler(deps: DeployDeps) {
  return async (
    request: HttpRequest,
    client: DurableClient,
    context: InvocationContext,
  ): Promise<HttpResponseInit> => {
    const log = createLogger(context);
    const parsed = await readValidBody(request, bodySchema, SHAPE);
    if (!parsed.ok) return parsed.response;
    const body = parsed.value;
    const found = await deps.discover();
    const selected = selectDeploy({
      verdicts: found.verdicts,
      apps: found.apps,
      requested: body.apps,
      images: body.images,
      resourceGroup: deps.config.apps.resourceGroup,
      managedTag: `${deps.config.apps.managedTag.name}=${deps.config.apps.managedTag.value}`,
    });
    if (!selected.ok) return problem(selected.status, selected.error);

    if (body.dryRun) {
      const plan = deployPlan({
        selection: selected.value,
        actual: await deps.listEntries(),
        x509SvidTtl: deps.config.apps.workloadX509TtlSeconds,
        armPages: found.pages,
        spireApi: deps.config.spire.api,
      });
      return json(200, { plan });
    }

    const input: DeployInput = {
      ...(body.apps && { apps: body.apps }),
      ...(body.images && { images: body.images }),
      maxParallel: body.maxParallel ?? DEFAULT_MAX_PARALLEL,
      ...(body.reason && { reason: body.reason }),
      reattestTiming: { ...deps.config.reattest, ...DEPLOY_POLL_TIMING },
      startSpacingSeconds: deps.config.deploy.attestSpacingMs / 1000,
      serverWaitSeconds: DEFAULT_SERVER_WAIT_SECONDS,
      spireAccess: deps.config.spire.api,
    };
    let outcome: Awaited<ReturnType<typeof startDeploy>>;
    try {
      outcome = await startDeploy(client, input);
    } catch (err) {
      const outage = unavailableResponse(err);
      if (!outage) throw err;
      log.warn("deploy not started: task hub unavailable");
      return outage;
    }
    if (outcome.kind === "running") {
      return problem(
        409,
        `A deploy is running (id "${outcome.instanceId}"); see GET /api/operations/${outcome.instanceId}.`,
      );
    }
    log.info("deploy started", { instanceId: outcome.instanceId, apps: selected.value.targets.length });
    const check = client.createCheckStatusResponse(request, outcome.instanceId);
    const links = client.createHttpManagementPayload(outcome.instanceId);
    return json(
      202,
      { ...links, apps: selected.value.targets.map((t) => t.name) },
      Object.fromEntries(check.headers.entries()),
    );
  };
}
