import { describe, expect, it } from "vitest";
import { compileRoute } from "../../sandbox/host/routes.js";

describe("route templates", () => {
  const cases: Array<[string, string, Record<string, string> | undefined]> = [
    ["apps/{app}/reattest", "apps/web-1/reattest", { app: "web-1" }],
    ["apps/{app}/reattest", "/apps/web-1/reattest/", { app: "web-1" }],
    ["apps/{app}/reattest", "APPS/Web/REATTEST", { app: "Web" }],
    ["apps/{app}/reattest", "apps/reattest", undefined],
    ["apps/{app}/reattest", "apps/a/b/reattest", undefined],
    ["apps/{app}/reattest", "apps/a/reattest/extra", undefined],
    ["operations/{id}", "operations/abc%20def", { id: "abc def" }],
    ["samples/echo/{name?}", "samples/echo", {}],
    ["samples/echo/{name?}", "samples/echo/bob", { name: "bob" }],
    ["items/{id:int}", "items/42", { id: "42" }],
    ["items/{id:int}", "items/forty", undefined],
    ["files/{*rest}", "files/a/b/c", { rest: "a/b/c" }],
    ["files/{*rest}", "files", undefined],
    ["health", "health", {}],
    ["health", "healthz", undefined],
  ];
  it.each(cases)("%s matches %s -> %j", (template, path, expected) => {
    expect(compileRoute(template).match(path)).toEqual(expected);
  });

  it("rejects templates it cannot honour, naming the segment", () => {
    expect(() => compileRoute("a/{b")).toThrow(/unsupported segment "\{b"/);
    expect(() => compileRoute("a/{b:nope}")).toThrow(/unknown constraint "nope"/);
  });
});
