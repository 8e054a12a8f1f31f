import { defineConfig } from "vitest/config";

// Integration tests start real processes (the local Functions host, SPIRE); give them room,
// but every wait inside a test is bounded on its own.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // SPIRE is built (once, a few minutes on a fresh machine) before any worker starts, so no test
    // hook waits on a build under its own timeout.
    globalSetup: ["test/integration/spire.global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default"],
  },
});
