/*
 * The CLI's one way to the product: its HTTP API, with the function key in a header (never in a
 * URL that a proxy or shell history would keep). It imports nothing from the app itself.
 */

export interface ApiTarget {
  baseUrl: string;
  key?: string;
  /** Per-request bound, so a hung host cannot hang the CLI. */
  timeoutMs: number;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** The API could not be reached or did not answer in time. */
export class ApiUnreachable extends Error {
  override readonly name = "ApiUnreachable";
}

export async function callApi(
  target: ApiTarget,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const url = new URL(path.replace(/^\//, ""), `${target.baseUrl.replace(/\/+$/, "")}/`);
  const headers: Record<string, string> = { accept: "application/json" };
  if (target.key) headers["x-functions-key"] = target.key;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new ApiUnreachable(
      `${method} ${url.origin}${url.pathname} failed: ${(err as Error).message}${cause ? ` (${cause})` : ""}`,
    );
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // Not JSON (a host error page): keep the text so the message shows it.
  }
  return { status: res.status, body: parsed };
}

/** The API's own message for a 4xx/5xx (`{error}`), else the body's text. */
export function apiMessage(answer: ApiAnswer): string {
  const b = answer.body as { error?: unknown } | null;
  if (b && typeof b === "object" && typeof b.error === "string") return b.error;
  if (typeof answer.body === "string" && answer.body !== "") return answer.body.slice(0, 500);
  return `HTTP ${answer.status}`;
}
