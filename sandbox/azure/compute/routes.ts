import type { ArmRequest, RouteDef } from "../arm/router.js";
import { COMPUTE_API_VERSIONS } from "../arm/versions.js";
import type { JsonObject } from "../json.js";
import type { ComputeService } from "./service.js";

const VM = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}";

function p(req: ArmRequest, name: string): string {
  return req.params[name] ?? "";
}

function expandInstanceView(req: ArmRequest): boolean {
  return (req.query("$expand") ?? "").toLowerCase() === "instanceview";
}

export function computeRoutes(svc: ComputeService): RouteDef[] {
  const base = { apiVersions: COMPUTE_API_VERSIONS, resourceType: "virtualMachines" } as const;
  const runCommands = { ...base, resourceType: "virtualMachines/runCommands" } as const;
  return [
    {
      ...base,
      method: "GET",
      template: VM,
      action: "Microsoft.Compute/virtualMachines/read",
      body: "none",
      handler: (req) => svc.getVm(p(req, "rg"), p(req, "vm")),
    },
    ...(["deallocate", "start", "restart"] as const).map(
      (action): RouteDef => ({
        ...base,
        method: "POST",
        template: `${VM}/${action}`,
        action: `Microsoft.Compute/virtualMachines/${action}/action`,
        body: "optional",
        handler: (req) => svc.powerAction(p(req, "rg"), p(req, "vm"), action),
      }),
    ),
    {
      ...base,
      method: "POST",
      template: `${VM}/runCommand`,
      action: "Microsoft.Compute/virtualMachines/runCommand/action",
      body: "required",
      handler: (req) => svc.legacyRunCommand(p(req, "rg"), p(req, "vm"), req.body as JsonObject),
    },
    {
      ...runCommands,
      method: "GET",
      template: `${VM}/runCommands`,
      action: "Microsoft.Compute/virtualMachines/runCommands/read",
      body: "none",
      handler: (req) => svc.listRunCommands(p(req, "rg"), p(req, "vm"), expandInstanceView(req)),
    },
    {
      ...runCommands,
      method: "GET",
      template: `${VM}/runCommands/{name}`,
      action: "Microsoft.Compute/virtualMachines/runCommands/read",
      body: "none",
      handler: (req) =>
        svc.getRunCommand(p(req, "rg"), p(req, "vm"), p(req, "name"), expandInstanceView(req)),
    },
    {
      ...runCommands,
      method: "PUT",
      template: `${VM}/runCommands/{name}`,
      action: "Microsoft.Compute/virtualMachines/runCommands/write",
      body: "required",
      handler: (req) => svc.putRunCommand(p(req, "rg"), p(req, "vm"), p(req, "name"), req.body as JsonObject),
    },
    {
      ...runCommands,
      method: "DELETE",
      template: `${VM}/runCommands/{name}`,
      action: "Microsoft.Compute/virtualMachines/runCommands/delete",
      body: "none",
      handler: (req) => svc.deleteRunCommand(p(req, "rg"), p(req, "vm"), p(req, "name")),
    },
  ];
}
