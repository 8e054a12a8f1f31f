import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { z } from "zod";
import { PermanentError } from "../shared/errors.js";
import { type Logger, type LogSink, registerSecret } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { generateSvidKeyAndCsr } from "../shared/spire/csr.js";
import { SpireApiError } from "../shared/spire/errors.js";
import type { TcpBootstrap } from "../shared/spire/tcp-bootstrap.js";
import {
  type AdminSvidDecision,
  adminSvidRenewAt,
  decideAdminSvid,
} from "../shared/trust/admin-svid-decision.js";
import { type AdminSvidFacts, readAdminSecret, writeAdminSecret } from "../shared/trust/admin-vault.js";
import {
  Activities,
  type ActivityResult,
  type AdminSvidEnsureInput,
  type AdminSvidEnsureOutput,
} from "./contracts.js";
import { runActivity } from "./run.js";

/*
 * Ensures the product's admin X509-SVID in Key Vault (TCP/mTLS mode), one side effect: at most one
 * new secret version. The new SVID's key is made here and never leaves this activity but into
 * Key Vault; its CSR is signed over the Server API by a caller that is already an admin:
 *  - bootstrap (no usable SVID): a short-lived SVID minted on the VM by run-command, whose key
 *    crosses ARM only sealed, authenticates this one call and is dropped (it expires by itself);
 *  - rotate: the current SVID authenticates the call, no run-command; if the server refuses it
 *    (a CA reset, say), the bootstrap path runs instead.
 * Idempotent: the version written is tagged with the run; a retry that finds its own run's version
 * current returns it instead of minting again, and the vault is re-read just before writing.
 */

/** The bootstrap SVID lives just long enough for one API call, even on a slow VM. */
export const BOOTSTRAP_TTL_SECONDS = 300;

const Schema = z.object({
  runId: z.string().min(1).max(200),
});

type Minted = AdminSvidEnsureOutput["minted"];

function output(
  decision: AdminSvidDecision,
  lastAction: AdminSvidEnsureOutput["lastAction"],
  facts: AdminSvidFacts | undefined,
  minted: Minted,
  extra: Partial<AdminSvidEnsureOutput> = {},
): AdminSvidEnsureOutput {
  // The decision's (it also weighs an earlier Key Vault expiresOn), else the certificate's half-life.
  const renewAt =
    decision.renewAt ??
    (facts &&
      new Date(
        Date.parse(facts.notBefore) + (Date.parse(facts.expiresAt) - Date.parse(facts.notBefore)) / 2,
      ));
  return {
    lastAction,
    reason: decision.reason,
    minted,
    ...(facts
      ? {
          version: facts.version,
          spiffeId: facts.spiffeId,
          notBefore: facts.notBefore,
          expiresAt: facts.expiresAt,
          renewAt: renewAt?.toISOString(),
          serial: facts.serial,
        }
      : {}),
    ...extra,
  };
}

/**
 * Whether a failed API mint means the server will not take the current SVID (refused, not
 * trusted, or a TLS handshake it rejected after a CA reset), rather than being unreachable.
 */
export function refusedCredential(err: unknown): boolean {
  if (!(err instanceof SpireApiError)) return true;
  if (!err.retryable) return true;
  return /certificate|handshake|ssl|tls|alert/i.test(err.message);
}

/** Mints over the API with the given SVID, from a fresh key made here. */
async function mintWith(
  tcp: TcpBootstrap,
  auth: { certChainPem: string; keyPem: string },
  bundlePem: string,
  spiffeId: string,
  ttlSeconds: number,
): Promise<{ certChainPem: string; keyPem: string }> {
  const fresh = await generateSvidKeyAndCsr(spiffeId);
  registerSecret(fresh.keyPem);
  const client = tcp.clientWith(auth, bundlePem);
  try {
    const svid = await client.mintX509Svid({ csrDer: fresh.csrDer, ttlSeconds });
    return { certChainPem: svid.certChainPem, keyPem: fresh.keyPem };
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function ensure(i: z.output<typeof Schema>, s: Services, log: Logger): Promise<AdminSvidEnsureOutput> {
  const { spire } = s.config;
  const tcpMode = spire.api === "grpc" && spire.grpc.transport === "tcp";
  const now = new Date();
  const secretName =
    spire.api === "grpc" && spire.grpc.transport === "tcp" ? spire.grpc.adminSvidSecretName : "";
  const base = { tcpMode, now, spiffeId: spire.admin.spiffeId, ttlSeconds: spire.admin.svidTtlSeconds };
  if (!tcpMode)
    return output(decideAdminSvid({ ...base, state: { kind: "missing" } }), "none", undefined, "none");
  const tcp = s.tcpBootstrap;
  if (!tcp)
    throw new PermanentError(
      "AdminSvidNoBootstrap",
      "TCP mode without its bootstrap path (injected SPIRE server)",
    );

  const current = await readAdminSecret(s.secrets, secretName);
  if (current.facts?.writtenBy === i.runId) {
    // This run's own version, written by an attempt whose answer was lost.
    log.info("the admin SVID of this run is already written", { version: current.facts.version });
    const decision = decideAdminSvid({ ...base, state: current.state });
    return output(
      decision,
      current.facts.minted === "api" ? "rotate" : "bootstrap",
      current.facts,
      (current.facts.minted as Minted) ?? "none",
      {
        alreadyWritten: true,
      },
    );
  }
  const decision = decideAdminSvid({ ...base, state: current.state });
  if (decision.action === "keep" || decision.action === "none") {
    log.info("the admin SVID is current; nothing minted", {
      version: current.facts?.version,
      renewAt: decision.renewAt?.toISOString(),
    });
    return output(decision, "keep", current.facts, "none");
  }

  const started = performance.now();
  const { bundle, via } = await tcp.getBundle();
  let minted: Minted = "none";
  let svid: { certChainPem: string; keyPem: string } | undefined;
  let reason = decision.reason;
  let action: "rotate" | "bootstrap" = decision.action;
  if (decision.action === "rotate" && current.credential) {
    try {
      svid = await mintWith(
        tcp,
        current.credential,
        bundle.pem,
        spire.admin.spiffeId,
        spire.admin.svidTtlSeconds,
      );
      minted = "api";
    } catch (err) {
      // A server that is down or overloaded refuses the bootstrap too: retry the activity instead.
      if (!refusedCredential(err)) throw err;
      const why = (err instanceof Error ? err.message : String(err)).split("\n")[0];
      log.warn("the server refused a rotation with the current admin SVID; bootstrapping on the VM", {
        error: why,
      });
      reason = `${reason}; rotating over the API failed (${why}), so bootstrapped on the VM`;
      action = "bootstrap";
    }
  }
  if (!svid) {
    const ttl = Math.min(spire.admin.svidTtlSeconds, BOOTSTRAP_TTL_SECONDS);
    const once = await tcp.mintOnVm(spire.admin.spiffeId, ttl);
    svid = await mintWith(
      tcp,
      { certChainPem: once.certChainPem, keyPem: once.keyPem },
      bundle.pem,
      spire.admin.spiffeId,
      spire.admin.svidTtlSeconds,
    );
    // The bootstrap SVID is dropped here: never stored, it expires within `ttl`.
    minted = "run-command+api";
  }
  const mintSeconds = Math.round((performance.now() - started) / 100) / 10;

  // Someone (another worker's run, an operator) may have written a good one meanwhile.
  const again = await readAdminSecret(s.secrets, secretName);
  if (again.facts && again.facts.version !== current.facts?.version) {
    const fresh = decideAdminSvid({ ...base, now: new Date(), state: again.state });
    if (fresh.action === "keep") {
      log.info("a new admin SVID version appeared meanwhile; keeping it", { version: again.facts.version });
      return output(fresh, "keep", again.facts, "none", {
        note: "another writer's version appeared while minting",
      });
    }
  }
  const written = await writeAdminSecret(s.secrets, secretName, svid, { runId: i.runId, minted });
  log.info("wrote a new admin SVID version", {
    secret: secretName,
    version: written.version,
    action,
    minted: written.minted,
    bundleVia: via,
    expiresAt: written.expiresAt,
    mintSeconds,
  });
  const renewAt = adminSvidRenewAt({
    kind: "present",
    version: written.version,
    spiffeId: written.spiffeId,
    notBefore: new Date(written.notBefore),
    notAfter: new Date(written.expiresAt),
  });
  return {
    ...output({ ...decision, reason }, action, written, minted),
    renewAt: renewAt.toISOString(),
    mintSeconds,
    bundleVia: via,
  };
}

/** Ensures the admin SVID: keep, rotate over the API, or bootstrap on the VM (see above). */
export function adminSvidEnsure(
  input: AdminSvidEnsureInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<AdminSvidEnsureOutput>> {
  return runActivity(Activities.adminSvidEnsure, Schema, input, services, sink, ensure);
}

export function registerAdminSvidActivities(): void {
  df.app.activity(Activities.adminSvidEnsure, {
    handler: (input: unknown, context: InvocationContext) =>
      adminSvidEnsure(input as AdminSvidEnsureInput, undefined, context),
  });
}
