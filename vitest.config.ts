import { defineConfig } from "vitest/config";

// Integration tests start real processes (the local Functions host, SPIRE); give them room,
// but every wait inside a test is bounded on its own.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default"],
  },
});
