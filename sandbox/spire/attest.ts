/**
 * Attests agents with join tokens over SPIRE's real Agent API (AttestAgent), the way spire-agent
 * does it, without starting a spire-agent per agent: for tests that need a fleet's worth of
 * attested agents (e.g. 200 for `agent list` past the run-command instance view's 4 KB).
 */
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { generateSvidKeyAndCsr } from "../../shared/spire/csr.js";

const PROTO = join(import.meta.dirname, "proto", "agent-attest.proto");

interface AttestTarget {
  address: string;
  port: number;
  trustDomain: string;
  bundlePem: string;
}

function client(target: AttestTarget): grpc.Client {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true, oneofs: true, bytes: Buffer });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    spire: { api: { server: { agent: { v1: { Agent: grpc.ServiceClientConstructor } } } } };
  };
  const creds = grpc.credentials.createSsl(Buffer.from(target.bundlePem), null, null, {
    // Verified against the bundle; a SPIRE server has a SPIFFE ID, not a host name.
    checkServerIdentity: () => undefined,
  });
  return new pkg.spire.api.server.agent.v1.Agent(`${target.address}:${target.port}`, creds, {
    "grpc.ssl_target_name_override": "spire-server",
  });
}

function attestOne(c: grpc.Client, td: string, token: string): Promise<void> {
  return generateSvidKeyAndCsr(`spiffe://${td}/spire/agent/join_token/${token}`).then(
    ({ csrDer }) =>
      new Promise<void>((resolve, reject) => {
        const stream = (
          c as unknown as { AttestAgent(o: object): grpc.ClientDuplexStream<object, object> }
        ).AttestAgent({
          deadline: Date.now() + 20_000,
        });
        let done = false;
        stream.on("data", (res: { step?: string }) => {
          if (res.step === "result" && !done) {
            done = true;
            stream.end();
            resolve();
          }
        });
        stream.on("error", (err) => {
          if (!done) reject(err);
        });
        stream.on("end", () => {
          if (!done) reject(new Error("AttestAgent ended without a result"));
        });
        stream.write({
          params: {
            data: { type: "join_token", payload: Buffer.from(token) },
            params: { csr: Buffer.from(csrDer) },
          },
        });
      }),
  );
}

/** Attests one agent per token, a few at a time. */
export async function attestJoinTokenAgents(
  target: AttestTarget,
  tokens: readonly string[],
  concurrency = 8,
): Promise<void> {
  const c = client(target);
  try {
    let next = 0;
    const worker = async () => {
      while (next < tokens.length) {
        const token = tokens[next++] as string;
        await attestOne(c, target.trustDomain, token);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, tokens.length) }, worker));
  } finally {
    c.close();
  }
}
