import { createHash } from "node:crypto";
import type { HttpResponseInit } from "@azure/functions";
import { STATUS_PAGE_HTML } from "./statusPage.html.js";

/*
 * GET /api/status: the page itself. The key arrives in the URL (?code=, as the Functions host
 * accepts it), so the page must not leak it: no referrer, no caching, and a CSP that lets the page
 * talk to its own origin only.
 */
/** CSP hashes of the page's one inline script and style, so no other inline code can run. */
function inlineHash(tag: "script" | "style"): string {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(STATUS_PAGE_HTML);
  if (!m) throw new Error(`the status page has no inline ${tag}`);
  return `'sha256-${createHash("sha256")
    .update(m[1] ?? "")
    .digest("base64")}'`;
}

const CSP = [
  "default-src 'none'",
  `script-src ${inlineHash("script")}`,
  `style-src ${inlineHash("style")}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function statusPageHttpHandler() {
  return async (): Promise<HttpResponseInit> => ({
    status: 200,
    body: STATUS_PAGE_HTML,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      "content-security-policy": CSP,
    },
  });
}
