import { TableClient, TableServiceClient } from "@azure/data-tables";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AzuriteHandle, startAzurite } from "../../sandbox/emulators/azurite.js";
import {
  lastBundleWrite,
  noteBundleWrite,
  readLastRotation,
  recordRotation,
} from "../../shared/trust/ledger.js";

// The note a bundle write leaves in the fleet table (Azurite, the real Table wire) and how the
// Key Vault event trigger reads it back.

let azurite: AzuriteHandle;
let table: TableClient;

beforeAll(async () => {
  azurite = await startAzurite();
  await TableServiceClient.fromConnectionString(azurite.connectionString, {
    allowInsecureConnection: true,
  }).createTable("fleet");
  table = TableClient.fromConnectionString(azurite.connectionString, "fleet", {
    allowInsecureConnection: true,
  });
});

afterAll(async () => {
  await azurite?.stop();
});

describe("the bundle's own-write note", () => {
  it("knows no version before anything was written", async () => {
    expect(await lastBundleWrite(table)).toBeUndefined();
  });

  it("reads back the version just written, and when", async () => {
    await noteBundleWrite(table, { version: "v1", at: "2026-12-02T05:00:00.000Z" });
    expect(await lastBundleWrite(table)).toEqual({ version: "v1", at: "2026-12-02T05:00:00.000Z" });
  });

  it("keeps the run's other summary fields when a later write is noted, and reads back the later one", async () => {
    await recordRotation(table, {
      runId: "r1",
      trigger: "deploy",
      reason: "deploy",
      startedAt: "2026-12-02T05:00:00.000Z",
      finishedAt: "2026-12-02T05:00:01.000Z",
      action: "first-write",
      version: "v1",
      written: true,
      serverFingerprints: ["a".repeat(64)],
      vaultFingerprints: [],
    });
    await noteBundleWrite(table, { version: "v2", at: "2026-12-02T06:00:00.000Z" });
    const last = await readLastRotation(table);
    expect(last).toMatchObject({
      lastRunTrigger: "deploy",
      lastWriteAction: "first-write",
      lastWriteVersion: "v2",
    });
    expect(await lastBundleWrite(table)).toEqual({ version: "v2", at: "2026-12-02T06:00:00.000Z" });
  });
});
