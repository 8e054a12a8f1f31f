import { TableClient, TableServiceClient } from "@azure/data-tables";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AzuriteHandle, startAzurite } from "../../sandbox/emulators/azurite.js";

let azurite: AzuriteHandle;

beforeAll(async () => {
  azurite = await startAzurite();
});

afterAll(async () => {
  await azurite?.stop();
});

describe("Azurite for Table Storage", () => {
  it("starts on free loopback ports and serves @azure/data-tables", async () => {
    expect(azurite.tableEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    const service = TableServiceClient.fromConnectionString(azurite.connectionString, {
      allowInsecureConnection: true,
    });
    await service.createTable("fleet");
    const table = TableClient.fromConnectionString(azurite.connectionString, "fleet", {
      allowInsecureConnection: true,
    });
    await table.upsertEntity({ partitionKey: "app", rowKey: "app-a", verdict: "healthy", reattests: 0 });
    await table.upsertEntity({ partitionKey: "app", rowKey: "app-b", verdict: "stalled", reattests: 2 });
    const a = await table.getEntity<{ verdict: string; reattests: number }>("app", "app-a");
    expect(a.verdict).toBe("healthy");

    const stalled: string[] = [];
    for await (const e of table.listEntities<{ verdict: string }>({
      queryOptions: { filter: "verdict eq 'stalled'" },
    })) {
      stalled.push(e.rowKey ?? "");
    }
    expect(stalled).toEqual(["app-b"]);

    // Optimistic concurrency: a stale ETag is refused, as the ledger relies on.
    await table.updateEntity({ partitionKey: "app", rowKey: "app-a", verdict: "stalled" }, "Merge", {
      etag: a.etag,
    });
    await expect(
      table.updateEntity({ partitionKey: "app", rowKey: "app-a", verdict: "healthy" }, "Merge", {
        etag: a.etag,
      }),
    ).rejects.toMatchObject({ statusCode: 412 });
  });

  it("stops cleanly: the process exits and the port closes", async () => {
    const second = await startAzurite();
    await second.stop();
    expect(() => process.kill(second.pid, 0)).toThrow();
    await expect(fetch(second.tableEndpoint, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  });
});
