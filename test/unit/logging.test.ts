import { randomUUID } from "node:crypto";
import { InvocationContext } from "@azure/functions";
import { describe, expect, it } from "vitest";
import {
  createLogger,
  isSecretFieldName,
  type LogLevel,
  type LogSink,
  REDACTED,
  redact,
  redactText,
  registerSecret,
} from "../../shared/logging.js";

interface Call {
  level: LogLevel;
  args: unknown[];
}

function fakeSink() {
  const calls: Call[] = [];
  const record =
    (level: LogLevel) =>
    (...args: unknown[]) => {
      calls.push({ level, args });
    };
  const sink: LogSink = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
  /** Every call must be one string; returns them. */
  const lines = () =>
    calls.map((c) => {
      expect(c.args).toHaveLength(1);
      expect(typeof c.args[0]).toBe("string");
      return c.args[0] as string;
    });
  const records = () => lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  return { sink, calls, lines, records, logger: createLogger(sink) };
}

// A join token as SPIRE makes them (UUIDv4), and other secrets, registered once for the whole file.
const JOIN_TOKEN = registerSecret(randomUUID());
const CLIENT_SECRET = registerSecret("Zq8~kV2.sS3_dP9-wX4yT7rN1mB6hJ0");
const KEY_PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
const PRIVATE_KEY_PEM = `-----BEGIN PRIVATE KEY-----\n${KEY_PEM_BODY}\n-----END PRIVATE KEY-----\n`;
const SECRETS = [JOIN_TOKEN, CLIENT_SECRET, KEY_PEM_BODY];

/** Fails if any secret shows up in the text, raw or in the forms JSON and URLs give it. */
function expectClean(text: string) {
  for (const secret of SECRETS) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(text).not.toContain(encodeURIComponent(secret));
    expect(text).not.toContain(secret.replaceAll("-", ""));
  }
}

class ArmError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.name = "RestError";
  }
}

function nestedCause(depth: number): Error {
  let err = new Error(`innermost: spire-server said Token: ${JOIN_TOKEN}`);
  for (let i = 0; i < depth; i++) err = new Error(`layer ${i}`, { cause: err });
  return err;
}

/** [case, how the secret is handed to the logger] */
const LEAKS: readonly [string, (log: ReturnType<typeof createLogger>) => void][] = [
  ["in the message", (log) => log.info(`generated join token ${JOIN_TOKEN} for app-1`)],
  ["in a plain field", (log) => log.info("generated", { note: `token is ${JOIN_TOKEN}` })],
  [
    "in a nested object",
    (log) => log.info("spec", { app: { template: { env: { a: { b: { c: JOIN_TOKEN } } } } } }),
  ],
  ["in an array", (log) => log.info("args", { argv: ["spire-agent", "run", "-config", "x", JOIN_TOKEN] })],
  ["in an array of objects", (log) => log.info("list", { items: [{ x: 1 }, { x: [`t=${JOIN_TOKEN}`] }] })],
  ["as a secret-named field", (log) => log.info("token", { joinToken: JOIN_TOKEN })],
  ["as a Map value", (log) => log.info("map", { m: new Map([["app-1", JOIN_TOKEN]]) })],
  ["as a Map key", (log) => log.info("map", { m: new Map([[JOIN_TOKEN, "app-1"]]) })],
  ["as an object key", (log) => log.info("keyed", { byToken: { [JOIN_TOKEN]: "app-1" } })],
  ["in a Set", (log) => log.info("set", { s: new Set([JOIN_TOKEN]) })],
  ["in an error message", (log) => log.error(new Error(`PUT failed for token ${JOIN_TOKEN}`))],
  [
    "in an error passed as a field",
    (log) => log.error("PUT failed", { error: new Error(`bad ${JOIN_TOKEN}`) }),
  ],
  [
    "in an error's stack only",
    (log) => {
      const err = new Error("opaque");
      err.stack = `Error: opaque\n    at run (/app/${JOIN_TOKEN}.js:1:1)`;
      log.error("failed", { err });
    },
  ],
  ["in a cause three levels down", (log) => log.error(nestedCause(3))],
  ["in a non-Error cause", (log) => log.error(new Error("wrapped", { cause: { detail: JOIN_TOKEN } }))],
  [
    "in an AggregateError's errors",
    (log) =>
      log.error(new AggregateError([new Error("ok"), new Error(`no: ${JOIN_TOKEN}`)], "2 apps failed")),
  ],
  ["in an error code", (log) => log.error(new ArmError("failed", `Code${JOIN_TOKEN}`, 400))],
  ["in the base fields of a child logger", (log) => log.child({ ctx: `token ${JOIN_TOKEN}` }).info("hello")],
  [
    "inside JSON text held in a string",
    (log) =>
      log.info("body", { body: JSON.stringify({ properties: { secret: CLIENT_SECRET, t: JOIN_TOKEN } }) }),
  ],
  [
    "URL-encoded in a URL",
    (log) => log.info("url", { link: `https://x/?t=${encodeURIComponent(CLIENT_SECRET)}` }),
  ],
  ["as a client secret anywhere", (log) => log.warn(`credential failed with secret ${CLIENT_SECRET}`)],
  [
    "as a PEM private key",
    (log) => log.info("svid", { bundle: `${"-----BEGIN CERTIFICATE-----\nAA==\n"}${PRIVATE_KEY_PEM}` }),
  ],
  ["as a truncated PEM private key", (log) => log.info(`output: ${PRIVATE_KEY_PEM.slice(0, 60)}`)],
  [
    "as a Date-adjacent value with toJSON",
    (log) => log.info("u", { url: new URL(`https://h/cb?code=${JOIN_TOKEN}`) }),
  ],
  [
    "inside a circular structure",
    (log) => {
      const a: Record<string, unknown> = { t: JOIN_TOKEN };
      a.self = a;
      log.info("cycle", { a });
    },
  ],
];

describe("logger output never contains secrets", () => {
  it.each(LEAKS)("%s", (_, emit) => {
    const { logger, lines } = fakeSink();
    emit(logger);
    expect(lines()).toHaveLength(1);
    for (const line of lines()) {
      expectClean(line);
      expect(line).toContain(REDACTED);
      JSON.parse(line);
    }
  });

  it("keeps the error readable apart from the secret", () => {
    const { logger, records } = fakeSink();
    logger.error(nestedCause(2));
    const [rec] = records();
    expect(rec?.msg).toBe("layer 1");
    expect(rec?.error).toMatchObject({
      name: "Error",
      message: "layer 1",
      cause: { message: "layer 0", cause: { message: `innermost: spire-server said Token: ${REDACTED}` } },
    });
    expect((rec?.error as { stack?: string } | undefined)?.stack).toMatch(/^Error: layer 1\n\s+at /);
  });
});

describe("fields that are allowed to stay readable", () => {
  it("keeps digests, names, ids, urls and counts of secrets", () => {
    const { logger, records } = fakeSink();
    const fields = {
      tokenSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      secretName: "join-token",
      keyVaultUrl: "https://myvault.vault.azure.net/",
      tokenHash: "abc123",
      keyFingerprint: "SHA256:abcdef",
      secretId: "https://myvault.vault.azure.net/secrets/join-token/1",
      tokenCount: 3,
      partitionKey: "app-1",
      rowKey: "2024-01-01",
      nextPageToken: "page-2",
      exitCode: 1,
      statusCode: 409,
    };
    logger.info("rotated", fields);
    expect(records()[0]).toEqual({ level: "info", msg: "rotated", ...fields });
  });
});

describe("createLogger", () => {
  it.each(["debug", "info", "warn", "error"] as const)(
    "routes %s to the sink's method with one JSON string",
    (level) => {
      const { logger, calls } = fakeSink();
      logger[level]("hello", { app: "a" });
      expect(calls).toEqual([{ level, args: [JSON.stringify({ level, msg: "hello", app: "a" })] }]);
    },
  );

  it("puts level and msg first, then base, then fields", () => {
    const { sink, lines } = fakeSink();
    createLogger(sink, { instance: "i-1", app: "base" }).info("m", { app: "field", n: 1 });
    expect(lines()[0]).toBe('{"level":"info","msg":"m","instance":"i-1","app":"field","n":1}');
  });

  it("does not let fields overwrite level or msg", () => {
    const { logger, records } = fakeSink();
    logger.warn("real", { level: "debug", msg: "fake" });
    expect(records()[0]).toEqual({ level: "warn", msg: "real" });
  });

  it("child loggers add fields and keep the parent's", () => {
    const { sink, records } = fakeSink();
    const parent = createLogger(sink, { a: 1 });
    const child = parent.child({ b: 2 }).child({ c: 3, a: 0 });
    child.info("x");
    parent.info("y");
    expect(records()).toEqual([
      { level: "info", msg: "x", a: 0, b: 2, c: 3 },
      { level: "info", msg: "y", a: 1 },
    ]);
  });

  it("serializes an Error message as msg plus error, without clobbering an error field", () => {
    const { logger, records } = fakeSink();
    const err = new ArmError("conflict", "ContainerAppOperationError", 409);
    logger.error(err);
    logger.error(err, { error: "other" });
    const [first, second] = records();
    expect(first).toMatchObject({
      level: "error",
      msg: "conflict",
      error: { name: "RestError", message: "conflict", code: "ContainerAppOperationError", statusCode: 409 },
    });
    expect(second).toMatchObject({ error: "other", messageError: { message: "conflict" } });
  });

  it("secrets registered after the logger was created are redacted too", () => {
    const { logger, lines } = fakeSink();
    const late = randomUUID();
    logger.info("before", { v: late });
    registerSecret(late);
    logger.info("after", { v: late });
    expect(lines()[0]).toContain(late);
    expect(lines()[1]).not.toContain(late);
  });

  it("never throws on hostile values", () => {
    const { logger, records } = fakeSink();
    const hostile = {
      get boom(): string {
        throw new Error("getter");
      },
      fine: 1,
    };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    expect(() => logger.info("x", { hostile, revoked: revoked.proxy })).not.toThrow();
    expect(records()[0]).toMatchObject({
      hostile: { boom: "[Unreadable]", fine: 1 },
      revoked: "[Unserializable]",
    });
  });

  it("accepts console and an InvocationContext as sinks", () => {
    const seen: unknown[][] = [];
    const context = new InvocationContext({
      functionName: "t",
      logHandler: (level, ...args) => seen.push([level, ...args]),
    });
    createLogger(context).warn(`token ${JOIN_TOKEN}`);
    expect(seen).toEqual([["warning", JSON.stringify({ level: "warn", msg: `token ${REDACTED}` })]]);
    // console fits the sink type; not called, to keep test output quiet.
    expect(typeof createLogger(console).info).toBe("function");
  });
});

describe("registerSecret", () => {
  it("ignores values shorter than 8 characters and returns its argument", () => {
    expect(registerSecret("short7x")).toBe("short7x");
    expect(redactText("a short7x b")).toBe("a short7x b");
    const eight = registerSecret("eight8ch");
    expect(redactText(`x${eight}y`)).toBe(`x${REDACTED}y`);
  });

  it("replaces every occurrence, including back to back", () => {
    const s = registerSecret("0123456789abcdef");
    expect(redactText(`${s}${s} and ${s}`)).toBe(`${REDACTED}${REDACTED} and ${REDACTED}`);
  });

  it("replaces the longer of two overlapping secrets whole", () => {
    const short = registerSecret("prefix-secret");
    const long = registerSecret("prefix-secret-and-more");
    expect(redactText(long)).toBe(REDACTED);
    expect(redactText(short)).toBe(REDACTED);
  });

  it("treats regex metacharacters literally", () => {
    const s = registerSecret("a.b*c+d?(e)[f]{g}|h^$\\");
    expect(redactText(`x ${s} y`)).toBe(`x ${REDACTED} y`);
    expect(redactText("axb*c+d?(e)[f]{g}|h^$\\")).not.toBe(REDACTED);
  });

  it("also catches the trimmed form of a value registered with a newline", () => {
    const v = registerSecret("f4a1c9e2-77b0-4e0c-9c51-3b1e6a2d8f70\n");
    expect(redactText(`Token: x; id ${v.trim()}.`)).not.toContain(v.trim());
  });

  it("redacts a numeric secret logged as a number", () => {
    registerSecret("987654321012");
    expect(redact({ pin: 987654321012, other: 42 })).toEqual({ pin: REDACTED, other: 42 });
  });
});

/** [name, text, expected] — no registration needed for these. */
const PATTERNS: readonly [string, string, string][] = [
  [
    "PKCS#8 key",
    "a\n-----BEGIN PRIVATE KEY-----\nMIIB\nAAA=\n-----END PRIVATE KEY-----\nb",
    `a\n${REDACTED}\nb`,
  ],
  ["RSA key", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", REDACTED],
  ["EC key", "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----", REDACTED],
  [
    "encrypted key",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----",
    REDACTED,
  ],
  [
    "OpenSSH key",
    "k=-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
    `k=${REDACTED}`,
  ],
  [
    "JSON-escaped key",
    '{"key":"-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n"}',
    `{"key":"${REDACTED}\\n"}`,
  ],
  ["unterminated key", "out: -----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0", `out: ${REDACTED}`],
  [
    "certificate stays",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
  ],
  [
    "JWT",
    "id eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzcGlmZmUiLCJhdWQiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz end",
    `id ${REDACTED} end`,
  ],
  ["unsigned JWT", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", REDACTED],
  [
    "Bearer header",
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789-._~+/==",
    `Authorization: Bearer ${REDACTED}`,
  ],
  ["bearer lower case", "bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAA", `bearer ${REDACTED}`],
  [
    "Bearer prose stays",
    "Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.",
    "Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.",
  ],
  [
    "storage connection string",
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc+def/ghi==;EndpointSuffix=core.windows.net",
    `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${REDACTED};EndpointSuffix=core.windows.net`,
  ],
  [
    "service bus connection string",
    "Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=k3y+v4lue=",
    `Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=${REDACTED}`,
  ],
  [
    "SAS URL",
    "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2030&sig=AbC%2Bdef%3D&sp=r",
    `https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2030&sig=${REDACTED}&sp=r`,
  ],
  ["sig then space", "sig=abc def", `sig=${REDACTED} def`],
  [
    "function key in URL",
    "POST https://app.azurewebsites.net/api/alerts?code=Xy_z0-AbC==&clientId=default",
    `POST https://app.azurewebsites.net/api/alerts?code=${REDACTED}&clientId=default`,
  ],
  [
    "code as a later query param",
    "https://h/api?x=1&code=abc#frag",
    `https://h/api?x=1&code=${REDACTED}#frag`,
  ],
  ["access_token in URL", "wss://h/?access_token=abc.def", `wss://h/?access_token=${REDACTED}`],
  ["exitCode prose stays", "exitCode=1 statusCode=409", "exitCode=1 statusCode=409"],
  [
    "spire-server token generate output",
    "Token: 2b6a3b1e-8f5d-4b9a-9c0e-7d3f1a2b4c5d\n",
    `Token: ${REDACTED}\n`,
  ],
  [
    "-joinToken flag",
    "spire-agent run -joinToken 2b6a3b1e-8f5d -config a.conf",
    `spire-agent run -joinToken ${REDACTED} -config a.conf`,
  ],
  ["-joinToken=", "spire-agent run -joinToken=abc123 -x", `spire-agent run -joinToken=${REDACTED} -x`],
  [
    "-joinToken quoted",
    `spire-agent run -joinToken "abc 123" -x`,
    `spire-agent run -joinToken ${REDACTED} -x`,
  ],
  ["JOIN_TOKEN env", "JOIN_TOKEN=abc123 spire-agent run", `JOIN_TOKEN=${REDACTED} spire-agent run`],
  ["SPIRE_JOIN_TOKEN env", "export SPIRE_JOIN_TOKEN='abc 123';", `export SPIRE_JOIN_TOKEN=${REDACTED};`],
  ["plain text stays", "deployed app-1 to revision app-1--r2", "deployed app-1 to revision app-1--r2"],
  [
    "subscription ids stay",
    "/subscriptions/6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13/resourceGroups/rg",
    "/subscriptions/6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13/resourceGroups/rg",
  ],
];

describe("redactText patterns", () => {
  it.each(PATTERNS)("%s", (_, text, expected) => {
    expect(redactText(text)).toBe(expected);
  });
});

describe("field names", () => {
  it.each([
    "token",
    "joinToken",
    "join_token",
    "JOIN-TOKEN",
    "secret",
    "secretValue",
    "secret_value",
    "password",
    "PASSWORD",
    "privateKey",
    "private_key_pem",
    "key",
    "apiKey",
    "api-key",
    "functionKey",
    "x-functions-key",
    "masterKey",
    "accountKey",
    "clientSecret",
    "client_secret",
    "authorization",
    "Authorization",
    "accessToken",
    "access_token",
    "refreshToken",
    "connectionString",
    "AzureWebJobsStorage_connectionString",
    "sas",
    "sasToken",
    "containerSas",
    "code",
    "CODE",
    "sig",
    "tokens",
    "secrets",
    "keys",
    "tokenValue",
    "keyBase64",
    "cookie",
    "protectedParameters",
    "clientAssertion",
  ])("%s is secret", (name) => {
    expect(isSecretFieldName(name)).toBe(true);
  });

  it.each([
    "tokenSha256",
    "token_sha256",
    "tokenHash",
    "secretName",
    "secret-name",
    "keyVaultUrl",
    "key_vault_url",
    "keyFingerprint",
    "secretId",
    "keyId",
    "tokenCount",
    "exitCode",
    "statusCode",
    "errorCode",
    "partitionKey",
    "rowKey",
    "publicKey",
    "nextPageToken",
    "msg",
    "level",
    "app",
    "value",
    "name",
    "status",
    "address",
    "tokenTtlSeconds",
    "joinTokenTtlSeconds",
    "keyVault",
  ])("%s is not secret", (name) => {
    expect(isSecretFieldName(name)).toBe(false);
  });
});

describe("redact", () => {
  it("hides secret-named fields at any depth and keeps the rest", () => {
    expect(
      redact({
        app: "a",
        headers: { Authorization: "Basic dXNlcjpwYXNz", "x-functions-key": "k", accept: "json" },
        nested: [{ clientSecret: "c", clientId: "id-1" }],
        password: null,
        token: undefined,
        hasSecret: true,
      }),
    ).toEqual({
      app: "a",
      headers: { Authorization: REDACTED, "x-functions-key": REDACTED, accept: "json" },
      nested: [{ clientSecret: REDACTED, clientId: "id-1" }],
      password: null,
      token: undefined,
      hasSecret: true,
    });
  });

  it("hides every leaf below a secret-named field except allowed names", () => {
    expect(
      redact({
        secrets: [
          { name: "join-token", value: "v1", identity: "system" },
          { name: "bundle", keyVaultUrl: "https://v/secrets/b", identity: "/subs/x/mi" },
        ],
        tokens: ["a", "b", 3, 4n],
        credentials: { password: "p", keyId: "k1" },
      }),
    ).toEqual({
      secrets: [
        { name: "join-token", value: REDACTED, identity: REDACTED },
        { name: "bundle", keyVaultUrl: "https://v/secrets/b", identity: REDACTED },
      ],
      tokens: [REDACTED, REDACTED, REDACTED, REDACTED],
      credentials: { password: REDACTED, keyId: "k1" },
    });
  });

  it("hides the value of {name, value} pairs whose name is secret", () => {
    expect(
      redact({
        env: [
          { name: "JOIN_TOKEN", value: "t-1" },
          { name: "SPIRE_TRUST_DOMAIN", value: "aim.microsoft.com" },
          { name: "CLIENT_SECRET", secretRef: "client-secret" },
        ],
        protectedParameters: [{ name: "TOKEN", value: "t-2" }],
        tags: [{ name: "owner", value: "team" }],
      }),
    ).toEqual({
      env: [
        { name: "JOIN_TOKEN", value: REDACTED },
        { name: "SPIRE_TRUST_DOMAIN", value: "aim.microsoft.com" },
        { name: "CLIENT_SECRET", secretRef: "client-secret" },
      ],
      protectedParameters: [{ name: "TOKEN", value: REDACTED }],
      tags: [{ name: "owner", value: "team" }],
    });
  });

  it("marks cycles and keeps shared references", () => {
    const shared = { n: 1 };
    const a: Record<string, unknown> = { shared, again: shared, list: [] as unknown[] };
    a.self = a;
    (a.list as unknown[]).push(a);
    expect(redact(a)).toEqual({
      shared: { n: 1 },
      again: { n: 1 },
      list: ["[Circular]"],
      self: "[Circular]",
    });
  });

  it("marks a circular cause chain", () => {
    const e1 = new Error("one");
    const e2 = new Error("two", { cause: e1 });
    e1.cause = e2;
    expect(redact(e2)).toMatchObject({ message: "two", cause: { message: "one", cause: "[Circular]" } });
  });

  it("turns special values into JSON-safe text", () => {
    const out = redact({
      big: 12345678901234567890n,
      date: new Date(0),
      bad: new Date(Number.NaN),
      buf: Buffer.from("secret bytes"),
      u8: new Uint8Array(4),
      ab: new ArrayBuffer(2),
      set: new Set([1, "a"]),
      map: new Map<unknown, unknown>([
        ["k", 1],
        [2, "two"],
        [{ o: 1 }, "obj"],
      ]),
      fn: function named() {},
      sym: Symbol("s"),
      re: /x/g,
      url: new URL("https://h/p?q=1"),
      nan: Number.NaN,
    });
    expect(out).toEqual({
      big: "12345678901234567890",
      date: "1970-01-01T00:00:00.000Z",
      bad: "Invalid Date",
      buf: "[Buffer: 12 bytes]",
      u8: "[Uint8Array: 4 bytes]",
      ab: "[ArrayBuffer: 2 bytes]",
      set: [1, "a"],
      map: { k: 1, "2": "two", '{"o":1}': "obj" },
      fn: "[Function named]",
      sym: "Symbol(s)",
      re: "/x/g",
      url: "https://h/p?q=1",
      nan: Number.NaN,
    });
    expect(() => JSON.stringify(out)).not.toThrow();
  });

  it("hides a Map entry under a secret key", () => {
    expect(redact(new Map([["clientSecret", "s"]]))).toEqual({ clientSecret: REDACTED });
  });

  it("truncates absurdly deep values", () => {
    let deep: Record<string, unknown> = { end: true };
    for (let i = 0; i < 100; i++) deep = { d: deep };
    expect(JSON.stringify(redact(deep))).toContain("[Truncated]");
  });

  it("serializes errors as {name, message, stack, code, cause}", () => {
    const err = Object.assign(new Error("connect ECONNREFUSED", { cause: "root" }), { code: "ECONNREFUSED" });
    const out = redact(err) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(["name", "message", "stack", "code", "cause"]);
    expect(out).toMatchObject({
      name: "Error",
      message: "connect ECONNREFUSED",
      code: "ECONNREFUSED",
      cause: "root",
    });
  });

  it("serializes AggregateError.errors", () => {
    const out = redact(new AggregateError([new TypeError("a"), "b"], "many")) as Record<string, unknown>;
    expect(out).toMatchObject({
      name: "AggregateError",
      message: "many",
      errors: [{ name: "TypeError", message: "a" }, "b"],
    });
  });

  it("leaves out the request and response of SDK errors, which carry headers", () => {
    const err = Object.assign(new ArmError("denied", "AuthorizationFailed", 403), {
      request: { headers: { authorization: "Bearer x" } },
    });
    expect(redact(err)).not.toHaveProperty("request");
  });
});
