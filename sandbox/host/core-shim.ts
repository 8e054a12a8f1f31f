import Module, { createRequire } from "node:module";

/**
 * Stand-in for the `@azure/functions-core` module that the real Functions host injects into its
 * Node worker. @azure/functions requires it lazily the first time a function is registered; when
 * it is present, every `app.http/timer/generic` and `df.app.*` call reaches `registerFunction`
 * with the real metadata and the real (durable-wrapped) handler. Importing this file installs it,
 * so it must be imported before anything that loads @azure/functions.
 */
export interface CoreBinding {
  type: string;
  direction: "in" | "out";
  name?: string;
  [key: string]: unknown;
}

export interface CoreFunctionMetadata {
  name: string;
  bindings: Record<string, CoreBinding>;
  retryOptions?: unknown;
}

export type CoreHandler = (...args: unknown[]) => unknown;

export interface Registration {
  metadata: CoreFunctionMetadata;
  handler: CoreHandler;
}

const CORE_MODULE_ID = "@azure/functions-core";
const registrations: Registration[] = [];
const hooks: Record<string, unknown[]> = {};

const coreApi = {
  version: "4.x-local",
  hostVersion: "4.0.0-local",
  registerFunction(metadata: CoreFunctionMetadata, handler: CoreHandler) {
    if (registrations.some((r) => r.metadata.name === metadata.name)) {
      throw new Error(`A function named "${metadata.name}" is already registered.`);
    }
    registrations.push({ metadata, handler });
    return { dispose: () => undefined };
  },
  setProgrammingModel(_model: unknown) {},
  getProgrammingModel() {
    return undefined;
  },
  registerHook(name: string, callback: unknown) {
    hooks[name] ??= [];
    hooks[name].push(callback);
    return { dispose: () => undefined };
  },
  log(level: string, category: string, message: string) {
    if (level !== "debug" && level !== "trace")
      process.stderr.write(`[worker ${category}] ${level}: ${message}\n`);
  },
};

type ResolveFilename = (request: string, ...rest: unknown[]) => string;
const moduleInternals = Module as unknown as { _resolveFilename: ResolveFilename };

if (!(globalThis as { __spireAutopilotCoreShim?: boolean }).__spireAutopilotCoreShim) {
  (globalThis as { __spireAutopilotCoreShim?: boolean }).__spireAutopilotCoreShim = true;
  const original = moduleInternals._resolveFilename;
  moduleInternals._resolveFilename = function resolveWithCore(
    this: unknown,
    request: string,
    ...rest: unknown[]
  ) {
    if (request === CORE_MODULE_ID) return CORE_MODULE_ID;
    return original.call(this, request, ...rest);
  };
  const require = createRequire(import.meta.url);
  const fake = new Module(CORE_MODULE_ID);
  fake.filename = CORE_MODULE_ID;
  fake.loaded = true;
  fake.exports = coreApi;
  require.cache[CORE_MODULE_ID] = fake;
}

/** Everything the app registered so far, in registration order. */
export function getRegistrations(): readonly Registration[] {
  return registrations;
}
