import type { HttpRequest, HttpResponseInit } from "@azure/functions";
import type { z } from "zod";
import { redactText } from "../shared/logging.js";

/** Azure Monitor caps alert payloads at 256 KB; nothing we accept is larger. */
export const MAX_BODY_BYTES = 256 * 1024;

export const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers,
});

/** A 4xx/5xx answer whose text never carries a secret. */
export const problem = (status: number, error: string): HttpResponseInit =>
  json(status, { error: redactText(error) });

export type BodyRead = { ok: true; value: unknown } | { ok: false; response: HttpResponseInit };

const tooLarge = (what: string): BodyRead => ({
  ok: false,
  response: problem(413, `The body is ${what}; the limit is ${MAX_BODY_BYTES} bytes (256 KB).`),
});

/**
 * The body's bytes, read from its stream and abandoned past `limit`: a chunked body declares no
 * length, so the limit holds only if we stop reading, not if we read it all and measure.
 */
export async function readBodyBytes(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<{ ok: true; bytes: Buffer } | { ok: false; read: number }> {
  if (!body) return { ok: true, bytes: Buffer.alloc(0) };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    read += value.byteLength;
    if (read > limit) {
      await reader.cancel("body over the size limit").catch(() => undefined);
      return { ok: false, read };
    }
    chunks.push(value);
  }
  return { ok: true, bytes: Buffer.concat(chunks) };
}

/** Read a JSON body within the size limit; an empty body is `undefined` when allowed. */
export async function readJsonBody(request: HttpRequest, allowEmpty: boolean): Promise<BodyRead> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) return tooLarge(`${declared} bytes`);
  const read = await readBodyBytes(request.body as ReadableStream<Uint8Array> | null, MAX_BODY_BYTES);
  if (!read.ok) return tooLarge("over the limit");
  const text = read.bytes.toString("utf8").trim();
  if (text === "") {
    return allowEmpty
      ? { ok: true, value: undefined }
      : { ok: false, response: problem(400, "A JSON body is required.") };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, response: problem(400, `The body is not valid JSON: ${(err as Error).message}`) };
  }
}

/**
 * Read an optional JSON body and validate it with `schema`; a bad one is a 400 naming the first
 * problem and what the body should look like (`expected`).
 */
export async function readValidBody<S extends z.ZodType>(
  request: HttpRequest,
  schema: S,
  expected: string,
): Promise<{ ok: true; value: z.output<S> } | { ok: false; response: HttpResponseInit }> {
  const body = await readJsonBody(request, true);
  if (!body.ok) return body;
  const parsed = schema.safeParse(body.value ?? {});
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  return {
    ok: false,
    response: problem(
      400,
      `Invalid body: ${issue?.path.join(".") || "body"}: ${issue?.message} (expected ${expected}).`,
    ),
  };
}
