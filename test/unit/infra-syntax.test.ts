import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import { bicepParser, loadTemplates, mutate, syntaxErrors } from "./infra/bicep.js";

const templates = loadTemplates();
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

describe("every .bicep file under infra/ parses with the Bicep grammar", () => {
  it("finds the templates", () => {
    expect([...templates.keys()]).toEqual(
      expect.arrayContaining(["infra/main.bicep", "infra/modules/functionapp.bicep"]),
    );
  });

  it.each([...templates.keys()])("%s has no syntax error", (path) => {
    expect(syntaxErrors(parser, new Map([[path, templates.get(path) ?? ""]]))).toEqual([]);
  });

  it.each([
    ["an unclosed object", (t: string) => t.replace(/\n}\n/, "\n\n")],
    [
      "a stray token in a resource body",
      (t: string) => t.replace("location: location", "location: location )"),
    ],
    ["a resource without its type", (t: string) => t.replace(/resource (\w+) '[^']+'/, "resource $1")],
  ])("names file:line for %s", (_what, edit) => {
    const broken = mutate(templates, "infra/modules/functionapp.bicep", edit);
    const problems = syntaxErrors(parser, broken);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^infra\/modules\/functionapp\.bicep:\d+: syntax error/);
  });
});
