import { describe, expect, it } from "vitest";
import { tcpBootstrap } from "../../shared/spire/tcp-bootstrap.js";
import { silentLogger, type TrustBundle } from "../../shared/spire/types.js";

const bundle: TrustBundle = {
  trustDomain: "td.test",
  pem: "",
  roots: [],
  sequenceNumber: 7,
  refreshHintSeconds: 0,
};
// Nothing listens here: only the paths that never reach the TLS client, or fail it, are taken.
const target = { host: "127.0.0.1", port: 1 };

describe("tcpBootstrap", () => {
  it.each([
    ["no bundle in Key Vault yet", async () => undefined, /holds no trust bundle/],
    [
      "the server does not answer over TLS",
      async () => "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      /./,
    ],
  ])("%s: reads the bundle on the VM, saying why", async (_n, readVaultBundle, why) => {
    let vmCalls = 0;
    const tcp = tcpBootstrap({
      target,
      trustDomain: "td.test",
      logger: silentLogger,
      readVaultBundle,
      callTimeoutMs: 2_000,
      vm: async () => ({
        getBundle: async () => {
          vmCalls++;
          return bundle;
        },
        mintX509SvidWithKey: async () => {
          throw new Error("not used");
        },
      }),
    });
    const got = await tcp.getBundle();
    expect(got).toMatchObject({ via: "run-command", bundle: { sequenceNumber: 7 } });
    expect(got.apiError).toMatch(why);
    expect(vmCalls).toBe(1);
  });

  it("without a VM: GetBundle's failure and the bootstrap say what to configure", async () => {
    const tcp = tcpBootstrap({
      target,
      trustDomain: "td.test",
      logger: silentLogger,
      readVaultBundle: async () => undefined,
    });
    await expect(tcp.getBundle()).rejects.toThrow(/no SPIRE VM is configured to fall back to/);
    await expect(tcp.mintOnVm("spiffe://td.test/spire-autopilot/admin", 60)).rejects.toThrow(
      /set SPIRE_VM_RESOURCE_GROUP and SPIRE_VM_NAME/,
    );
  });
});
