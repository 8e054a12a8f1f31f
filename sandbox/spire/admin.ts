import { generateSvidKeyAndCsr } from "../../shared/spire/csr.js";
import type { SpireServer } from "../../shared/spire/types.js";

export interface AdminSvid {
  spiffeId: string;
  /** Leaf first. */
  certChainPem: string;
  /** PKCS#8 PEM. Secret. */
  keyPem: string;
  expiresAt: Date;
}

/**
 * Mints an X509-SVID for `spiffeId` through `server` (normally the local admin socket) from a
 * fresh key: what the TCP/mTLS client presents. The server accepts it as admin when the ID is in
 * its `admin_ids`.
 */
export async function mintAdminSvid(
  server: SpireServer,
  spiffeId: string,
  ttlSeconds = 3600,
): Promise<AdminSvid> {
  const { keyPem, csrDer } = await generateSvidKeyAndCsr(spiffeId);
  const svid = await server.mintX509Svid({ csrDer, ttlSeconds });
  return { spiffeId: svid.spiffeId, certChainPem: svid.certChainPem, keyPem, expiresAt: svid.expiresAt };
}

/** Where a TCP/mTLS Server API client presenting `admin` reaches `server` (GrpcSpireServer's target). */
export function adminTcpTarget(
  server: { bindAddress: string; port: number },
  trustBundlePem: string,
  admin: Pick<AdminSvid, "certChainPem" | "keyPem">,
) {
  return {
    kind: "tcp" as const,
    host: server.bindAddress,
    port: server.port,
    trustBundlePem,
    clientCertChainPem: admin.certChainPem,
    clientKeyPem: admin.keyPem,
  };
}
