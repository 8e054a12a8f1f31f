/** HCL config text for spire-server and spire-agent, and small helpers shared by the launchers. */
import { createServer } from "node:net";

/** A Go duration ("90s", "1h30m") or whole seconds. */
export type Duration = string | number;

const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;

export function goDuration(d: Duration, field: string): string {
  if (typeof d === "number") {
    if (!Number.isInteger(d) || d <= 0)
      throw new Error(`${field}: expected positive whole seconds, got ${d}`);
    return `${d}s`;
  }
  if (!GO_DURATION.test(d))
    throw new Error(`${field}: expected a Go duration like "90s" or "1h", got ${JSON.stringify(d)}`);
  return d;
}

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

function q(value: string): string {
  // HCL accepts JSON string escapes.
  return JSON.stringify(value);
}

export interface ServerConfigInput {
  trustDomain: string;
  dataDir: string;
  socketPath: string;
  bindAddress: string;
  bindPort: number;
  logFile: string;
  logLevel: LogLevel;
  caTtl?: Duration;
  defaultX509SvidTtl?: Duration;
  defaultJwtSvidTtl?: Duration;
  agentTtl?: Duration;
  adminIds?: readonly string[];
  /** SPIRE limits attestation to 1/s per client IP by default; false lifts it (a test's fleet of agents). */
  attestationRateLimit?: boolean;
  /** audit_log_enabled: one "API accessed" line per Server API call (per item of a batch). */
  auditLog?: boolean;
}

export function serverConfig(c: ServerConfigInput): string {
  const lines = [
    "server {",
    `  bind_address = ${q(c.bindAddress)}`,
    `  bind_port = ${q(String(c.bindPort))}`,
    `  socket_path = ${q(c.socketPath)}`,
    `  trust_domain = ${q(c.trustDomain)}`,
    `  data_dir = ${q(c.dataDir)}`,
    `  log_level = ${q(c.logLevel)}`,
    `  log_format = "json"`,
    `  log_file = ${q(c.logFile)}`,
  ];
  if (c.caTtl !== undefined) lines.push(`  ca_ttl = ${q(goDuration(c.caTtl, "caTtl"))}`);
  if (c.defaultX509SvidTtl !== undefined) {
    lines.push(`  default_x509_svid_ttl = ${q(goDuration(c.defaultX509SvidTtl, "defaultX509SvidTtl"))}`);
  }
  if (c.defaultJwtSvidTtl !== undefined) {
    lines.push(`  default_jwt_svid_ttl = ${q(goDuration(c.defaultJwtSvidTtl, "defaultJwtSvidTtl"))}`);
  }
  if (c.agentTtl !== undefined) lines.push(`  agent_ttl = ${q(goDuration(c.agentTtl, "agentTtl"))}`);
  if (c.adminIds && c.adminIds.length > 0) lines.push(`  admin_ids = [${c.adminIds.map(q).join(", ")}]`);
  if (c.auditLog === true) lines.push("  audit_log_enabled = true");
  if (c.attestationRateLimit === false) lines.push("  ratelimit {", "    attestation = false", "  }");
  lines.push(
    "}",
    "",
    "plugins {",
    '  DataStore "sql" {',
    "    plugin_data {",
    '      database_type = "sqlite3"',
    `      connection_string = ${q(`${c.dataDir}/datastore.sqlite3`)}`,
    "    }",
    "  }",
    '  KeyManager "disk" {',
    "    plugin_data {",
    `      keys_path = ${q(`${c.dataDir}/keys.json`)}`,
    "    }",
    "  }",
    '  NodeAttestor "join_token" {',
    "    plugin_data {}",
    "  }",
    "}",
    "",
  );
  return lines.join("\n");
}

export interface AgentConfigInput {
  trustDomain: string;
  serverAddress: string;
  serverPort: number;
  trustBundlePath: string;
  dataDir: string;
  socketPath: string;
  logFile: string;
  logLevel: LogLevel;
  joinTokenFile?: string;
}

export function agentConfig(c: AgentConfigInput): string {
  const lines = [
    "agent {",
    `  data_dir = ${q(c.dataDir)}`,
    `  log_level = ${q(c.logLevel)}`,
    `  log_format = "json"`,
    `  log_file = ${q(c.logFile)}`,
    `  server_address = ${q(c.serverAddress)}`,
    `  server_port = ${q(String(c.serverPort))}`,
    `  socket_path = ${q(c.socketPath)}`,
    // Never insecure_bootstrap: the agent must verify the server against the bundle it was given.
    `  trust_bundle_path = ${q(c.trustBundlePath)}`,
    `  trust_domain = ${q(c.trustDomain)}`,
  ];
  if (c.joinTokenFile) lines.push(`  join_token_file = ${q(c.joinTokenFile)}`);
  lines.push(
    "}",
    "",
    "plugins {",
    '  KeyManager "disk" {',
    "    plugin_data {",
    `      directory = ${q(c.dataDir)}`,
    "    }",
    "  }",
    '  NodeAttestor "join_token" {',
    "    plugin_data {}",
    "  }",
    '  WorkloadAttestor "unix" {',
    "    plugin_data {}",
    "  }",
    "}",
    "",
  );
  return lines.join("\n");
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}
