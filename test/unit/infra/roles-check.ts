/** Role assignments against the role facts: every API granted at its scope, nothing more. */
import type { Parser } from "web-tree-sitter";
import { declarations, objectProps, type Templates } from "./bicep.js";

export interface RoleFact {
  api: string;
  action: string;
  role: string;
  /** Built-in role definition id, or absent for the template's custom role. */
  roleId?: string;
  /** The module holding the assignment. */
  module: string;
  /** Type of the resource the assignment is scoped to; "resourceGroup" for the module's group. */
  scopeType: string;
  /** The scope main.bicep deploys that module to, when it matters. */
  mainScope?: string;
  source: string;
}

export interface Assignment {
  file: string;
  symbol: string;
  line: number;
  roleId?: string;
  /** Actions of the custom role definition it assigns. */
  customActions?: string[];
  scopeType: string;
  comment: string;
}

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

export function roleAssignments(parser: Parser, templates: Templates): Assignment[] {
  const decls = declarations(parser, templates);
  const out: Assignment[] = [];
  for (const d of decls) {
    if (
      d.kind !== "resource" ||
      d.existing ||
      !d.target?.startsWith("Microsoft.Authorization/roleAssignments@")
    )
      continue;
    const inFile = decls.filter((x) => x.file === d.file);
    const scopeSymbol = objectProps(d.body).get("scope")?.text;
    const scoped = scopeSymbol ? inFile.find((x) => x.symbol === scopeSymbol) : undefined;
    const scopeType = scopeSymbol
      ? (scoped?.target?.split("@")[0] ?? `unknown scope ${scopeSymbol}`)
      : "resourceGroup";
    const roleDef = objectProps(objectProps(d.body).get("properties")).get("roleDefinitionId")?.text ?? "";
    const guid = GUID.exec(roleDef)?.[0];
    let customActions: string[] | undefined;
    const custom = /^(\w+)\.id$/.exec(roleDef)?.[1];
    if (custom) {
      const def = inFile.find((x) => x.symbol === custom);
      const perms = objectProps(def?.body).get("properties");
      customActions = (def?.body?.text.match(/'Microsoft\.[^']+'/g) ?? []).map((s) => s.slice(1, -1));
      if (!perms) customActions = [];
    }
    out.push({
      file: d.file,
      symbol: d.symbol,
      line: d.line,
      ...(guid && { roleId: guid.toLowerCase() }),
      ...(customActions && { customActions }),
      scopeType,
      comment: d.comment,
    });
  }
  return out;
}

/** Roles far broader than any API the product calls needs. */
export const FORBIDDEN_ROLES: Record<string, string> = {
  "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
  "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
  "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
  "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
  "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
};

export function rolesProblems(parser: Parser, templates: Templates, facts: readonly RoleFact[]): string[] {
  const problems: string[] = [];
  const assignments = roleAssignments(parser, templates);
  const modules = declarations(parser, templates).filter(
    (d) => d.kind === "module" && d.file === "infra/main.bicep",
  );
  for (const f of facts) {
    const file = `infra/modules/${f.module}`;
    const match = assignments.find(
      (a) =>
        a.file === file &&
        a.scopeType === f.scopeType &&
        (f.roleId ? a.roleId === f.roleId.toLowerCase() : (a.customActions ?? []).includes(f.action)),
    );
    if (!match) {
      problems.push(
        `${f.api} needs ${f.action} (${f.role}) on ${f.scopeType} in ${file}: no such role assignment`,
      );
      continue;
    }
    if (f.mainScope !== undefined) {
      const m = modules.find((d) => d.target === `modules/${f.module}`);
      if (!m) problems.push(`infra/main.bicep: module ${f.module} is not deployed`);
      else if ((m.scopeText ?? "").replace(/\s+/g, "") !== f.mainScope.replace(/\s+/g, "")) {
        problems.push(
          `infra/main.bicep:${m.line}: ${f.module} is deployed to ${m.scopeText ?? "(no scope)"}, ${f.api} needs ${f.mainScope}`,
        );
      }
    }
  }
  for (const a of assignments) {
    const where = `${a.file}:${a.line}`;
    if (a.roleId && FORBIDDEN_ROLES[a.roleId])
      problems.push(`${where}: ${FORBIDDEN_ROLES[a.roleId]} is broader than needed`);
    const explained = facts.some(
      (f) =>
        `infra/modules/${f.module}` === a.file &&
        f.scopeType === a.scopeType &&
        (f.roleId ? f.roleId.toLowerCase() === a.roleId : (a.customActions ?? []).includes(f.action)),
    );
    if (!explained)
      problems.push(`${where}: role assignment ${a.symbol} is not needed by any API in the fixture`);
    if (a.comment.replace(/^\s*\/\/\s*/gm, "").trim().length < 20) {
      problems.push(`${where}: role assignment ${a.symbol} has no comment saying why it exists`);
    }
    if (a.customActions) {
      const needed = new Set(
        facts.filter((f) => !f.roleId && `infra/modules/${f.module}` === a.file).map((f) => f.action),
      );
      for (const action of a.customActions) {
        if (!needed.has(action)) problems.push(`${where}: custom role grants ${action}, which no API needs`);
      }
    }
  }
  return problems;
}
