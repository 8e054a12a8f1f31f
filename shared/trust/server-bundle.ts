import type { Services } from "../services.js";
import type { TrustBundle } from "../spire/types.js";

/**
 * The SPIRE server's bundle the way this app can always read it: in TCP/mTLS mode without the
 * admin SVID (GetBundle needs no client certificate; a CA reset or a first deploy falls back to
 * `bundle show` on the VM), so a missing or refused admin SVID never hides the bundle.
 */
export async function readServerBundle(
  s: Pick<Services, "spire" | "tcpBootstrap">,
  options: { vmFallback?: boolean } = {},
): Promise<TrustBundle> {
  if (s.tcpBootstrap) return (await s.tcpBootstrap.getBundle(options)).bundle;
  return (await s.spire()).getBundle();
}
