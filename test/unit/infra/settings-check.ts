/** The Function App's app settings against the config table (shared/config/settings.ts). */
import type { Parser } from "web-tree-sitter";
import { declarations, objectProps, type Templates } from "./bicep.js";

export interface SettingsSpec {
  /** Every name the config table knows, with its presence. */
  table: ReadonlyArray<{ name: string; presence: "required" | "default" | "optional" }>;
  /** Settings the Functions host (not the product's config) reads. */
  hostKnown: readonly string[];
}

export const FUNCTION_APP = "infra/modules/functionapp.bicep";

export function appSettingNames(parser: Parser, templates: Templates): { product: string[]; host: string[] } {
  const vars = declarations(parser, new Map([[FUNCTION_APP, templates.get(FUNCTION_APP) ?? ""]]));
  const keysOf = (name: string) => [...objectProps(vars.find((d) => d.symbol === name)?.value).keys()];
  return { product: keysOf("productSettings"), host: keysOf("hostSettings") };
}

export function settingsProblems(parser: Parser, templates: Templates, spec: SettingsSpec): string[] {
  const problems: string[] = [];
  const { product, host } = appSettingNames(parser, templates);
  if (product.length === 0) problems.push(`${FUNCTION_APP}: no productSettings object found`);
  const known = new Map(spec.table.map((s) => [s.name, s.presence]));
  for (const s of spec.table) {
    if (s.presence === "required" && !product.includes(s.name)) {
      problems.push(`${FUNCTION_APP}: required setting ${s.name} is not set on the Function App`);
    }
  }
  for (const name of product) {
    if (!known.has(name))
      problems.push(`${FUNCTION_APP}: ${name} is not a setting of shared/config/settings.ts`);
  }
  for (const name of host) {
    if (!spec.hostKnown.includes(name))
      problems.push(`${FUNCTION_APP}: host setting ${name} is not one the host reads`);
    if (known.has(name)) problems.push(`${FUNCTION_APP}: ${name} belongs in productSettings`);
  }
  // The product's settings must reach the site: the appSettings built from both objects.
  const text = templates.get(FUNCTION_APP) ?? "";
  if (!/union\(productSettings,\s*hostSettings\)/.test(text) || !/appSettings:\s*appSettings/.test(text)) {
    problems.push(
      `${FUNCTION_APP}: siteConfig.appSettings is not built from productSettings and hostSettings`,
    );
  }
  return problems;
}
