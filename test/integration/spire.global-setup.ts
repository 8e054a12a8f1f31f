/**
 * Vitest globalSetup: provides spire-server and spire-agent (building them on a fresh machine, a
 * few minutes) once, before any worker starts, so no test hook has to wait for a build.
 * Each SPIRE test also calls ensureSpire() in its beforeAll, which is instant once this ran
 * (and which builds under a file lock if this setup is not configured).
 */
import { ensureSpire } from "../../scripts/install-spire.js";

export default async function setup(): Promise<void> {
  // Unit-only runs (npm run test:unit) need no SPIRE binaries.
  if (process.env.SPIRE_SETUP === "skip") return;
  await ensureSpire();
}
