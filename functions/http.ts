import type { HttpRequest, HttpResponseInit } from "@azure/functions";
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

/** Read a JSON body within the size limit; an empty body is `undefined` when allowed. */
export async function readJsonBody(request: HttpRequest, allowEmpty: boolean): Promise<BodyRead> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) {
    return {
      ok: false,
      response: problem(413, `The body is ${declared} bytes; the limit is ${MAX_BODY_BYTES} (256 KB).`),
    };
  }
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) {
    return {
      ok: false,
      response: problem(413, `The body is ${bytes.length} bytes; the limit is ${MAX_BODY_BYTES} (256 KB).`),
    };
  }
  const text = bytes.toString("utf8").trim();
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
