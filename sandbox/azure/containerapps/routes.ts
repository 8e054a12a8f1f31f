import type { ArmRequest, RouteDef } from "../arm/router.js";
import { CONTAINER_APPS_API_VERSIONS } from "../arm/versions.js";
import type { JsonObject } from "../json.js";
import type { ContainerAppsService } from "./service.js";

const APP = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/containerApps/{name}";
const REVISION = `${APP}/revisions/{revision}`;

function p(req: ArmRequest, name: string): string {
  return req.params[name] ?? "";
}

export function containerAppsRoutes(svc: ContainerAppsService): RouteDef[] {
  const base = { apiVersions: CONTAINER_APPS_API_VERSIONS, resourceType: "containerApps" } as const;
  return [
    {
      ...base,
      method: "GET",
      template: "/subscriptions/{sub}/providers/Microsoft.App/containerApps",
      action: "Microsoft.App/containerApps/read",
      body: "none",
      handler: () => svc.list(),
    },
    {
      ...base,
      method: "GET",
      template: "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/containerApps",
      action: "Microsoft.App/containerApps/read",
      body: "none",
      handler: (req) => svc.list(p(req, "rg")),
    },
    {
      ...base,
      method: "GET",
      template: APP,
      action: "Microsoft.App/containerApps/read",
      body: "none",
      handler: (req) => svc.get(p(req, "rg"), p(req, "name")),
    },
    {
      ...base,
      method: "PUT",
      template: APP,
      action: "Microsoft.App/containerApps/write",
      body: "required",
      handler: (req) => svc.put(p(req, "rg"), p(req, "name"), req.body as JsonObject),
    },
    {
      ...base,
      method: "PATCH",
      template: APP,
      action: "Microsoft.App/containerApps/write",
      body: "required",
      handler: (req) => svc.patch(p(req, "rg"), p(req, "name"), req.body as JsonObject),
    },
    {
      ...base,
      method: "DELETE",
      template: APP,
      action: "Microsoft.App/containerApps/delete",
      body: "none",
      handler: (req) => svc.delete(p(req, "rg"), p(req, "name")),
    },
    {
      ...base,
      method: "POST",
      template: `${APP}/listSecrets`,
      action: "Microsoft.App/containerApps/listSecrets/action",
      body: "optional",
      handler: (req) => svc.listSecrets(p(req, "rg"), p(req, "name")),
    },
    {
      ...base,
      resourceType: "containerApps/revisions",
      method: "GET",
      template: `${APP}/revisions`,
      action: "Microsoft.App/containerApps/revisions/read",
      body: "none",
      handler: (req) => svc.listRevisions(p(req, "rg"), p(req, "name"), req.query("$filter")),
    },
    {
      ...base,
      resourceType: "containerApps/revisions",
      method: "GET",
      template: REVISION,
      action: "Microsoft.App/containerApps/revisions/read",
      body: "none",
      handler: (req) => svc.getRevision(p(req, "rg"), p(req, "name"), p(req, "revision")),
    },
    {
      ...base,
      resourceType: "containerApps/revisions",
      method: "POST",
      template: `${REVISION}/restart`,
      action: "Microsoft.App/containerApps/revisions/restart/action",
      body: "optional",
      handler: (req) => svc.restartRevision(p(req, "rg"), p(req, "name"), p(req, "revision")),
    },
    {
      ...base,
      resourceType: "containerApps/revisions",
      method: "POST",
      template: `${REVISION}/activate`,
      action: "Microsoft.App/containerApps/revisions/activate/action",
      body: "optional",
      handler: (req) => svc.setRevisionActive(p(req, "rg"), p(req, "name"), p(req, "revision"), true),
    },
    {
      ...base,
      resourceType: "containerApps/revisions",
      method: "POST",
      template: `${REVISION}/deactivate`,
      action: "Microsoft.App/containerApps/revisions/deactivate/action",
      body: "optional",
      handler: (req) => svc.setRevisionActive(p(req, "rg"), p(req, "name"), p(req, "revision"), false),
    },
    {
      ...base,
      resourceType: "containerApps/revisions/replicas",
      method: "GET",
      template: `${REVISION}/replicas`,
      action: "Microsoft.App/containerApps/revisions/replicas/read",
      body: "none",
      handler: (req) => svc.listReplicas(p(req, "rg"), p(req, "name"), p(req, "revision")),
    },
    {
      ...base,
      resourceType: "containerApps/revisions/replicas",
      method: "GET",
      template: `${REVISION}/replicas/{replica}`,
      action: "Microsoft.App/containerApps/revisions/replicas/read",
      body: "none",
      handler: (req) => svc.getReplica(p(req, "rg"), p(req, "name"), p(req, "revision"), p(req, "replica")),
    },
  ];
}
