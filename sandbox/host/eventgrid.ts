import type { IncomingHttpHeaders, ServerResponse } from "node:http";

/*
 * The Event Grid extension's webhook, as the real Functions host serves it. Sources (Azure/
 * azure-sdk-for-net, sdk/eventgrid/Microsoft.Azure.WebJobs.Extensions.EventGrid):
 *  - azure-functions-host HostController.ExtensionWebHookHandler: route
 *    `runtime/webhooks/{extensionName}` for GET, POST, DELETE and OPTIONS, authorized by the
 *    `<extension>_extension` system key or the master key (401 otherwise, before the extension runs).
 *  - EventGridExtensionConfigProvider.ProcessAsync: `?functionName=` missing or unknown → 404 with
 *    the text "cannot find function: '<name>'".
 *  - HttpRequestProcessor.ProcessAsync, by the `aeg-event-type` header (case-insensitive):
 *    OPTIONS (CloudEvents abuse-protection handshake) → 200 with Webhook-Allowed-Origin;
 *    `SubscriptionValidation` → 200 `{"validationResponse": <data.validationCode of the first
 *    event>}`; `Notification` → the body (an array, or one object) dispatched one invocation per
 *    event (single dispatch: a Node handler takes one event), all in parallel, then 202 when every
 *    one succeeded, else 500 with the failed invocation's exception message (Event Grid then
 *    redelivers the whole payload); `Unsubscribe` → 202; any other or no header → 400, empty.
 *  - A body that is not JSON, or JSON that is neither an array nor an object, or a validation event
 *    without data.validationCode, throws inside the processor (JToken.Parse,
 *    ArgumentOutOfRangeException, a null dereference); ASP.NET Core answers an unhandled exception
 *    with 500 and no body.
 * So the only 4xx answers are the host's: 401, 404, 400 (header) — a function cannot choose its
 * status (Microsoft Learn, "Receive events to an HTTP endpoint": the Event Grid trigger "does not
 * support the scenario where the hosted code needs to control the HTTP status code").
 */

export const EVENT_GRID_WEBHOOK_PATH = "/runtime/webhooks/eventgrid";

export interface EventGridFunction {
  name: string;
  /** One invocation with one event (the parsed JSON object, as the Node worker hands it over). */
  invoke(event: unknown): Promise<unknown>;
}

export interface WebhookRequest {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Clouds whose origin the processor echoes; anything else gets the public cloud's. */
const ALLOWED_ORIGINS = new Set([
  "eventgrid.azure.net",
  "eventgrid.azure.us",
  "eventgrid.azure.eaglex.ic.gov",
  "eventgrid.azure.microsoft.scloud",
  "eventgrid.azure.cn",
]);

const ACCEPTED_METHODS = new Set(["GET", "POST", "DELETE", "OPTIONS"]);

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Throws where the processor throws (the caller turns it into the host's bare 500). */
function parseBody(body: Buffer): unknown {
  return JSON.parse(body.toString("utf8")) as unknown;
}

function validationCode(parsed: unknown): string {
  if (Array.isArray(parsed)) {
    const code = (parsed[0] as { data?: { validationCode?: unknown } } | undefined)?.data?.validationCode;
    if (code === undefined || code === null) throw new Error("events[0].data.validationCode is missing");
    return String(code);
  }
  if (parsed !== null && typeof parsed === "object") {
    // The CloudEvents-shaped validation event: its data is re-parsed from its JSON text.
    const raw = (parsed as { data?: unknown }).data;
    const data = typeof raw === "string" ? (JSON.parse(raw) as unknown) : raw;
    const code = (data as { validationCode?: unknown } | null | undefined)?.validationCode;
    if (code === undefined || code === null) throw new Error("data.validationCode is missing");
    return String(code);
  }
  throw new Error(`The request content should be parseable into a JSON object or array`);
}

function send(res: ServerResponse, status: number, text?: string, headers: Record<string, string> = {}) {
  if (text === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  // StringContent's default media type.
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers }).end(text);
}

export async function serveEventGridWebhook(
  req: WebhookRequest,
  res: ServerResponse,
  functions: ReadonlyMap<string, EventGridFunction>,
  log: (line: string) => void,
): Promise<void> {
  if (!ACCEPTED_METHODS.has(req.method)) {
    send(res, 405);
    return;
  }
  const functionName = req.url.searchParams.get("functionName") ?? "";
  const fn = functionName === "" ? undefined : functions.get(functionName);
  if (!fn) {
    log(
      `[eventgrid] cannot find function: '${functionName}', available function names: [${[...functions.keys()].join(", ")}]`,
    );
    send(res, 404, `cannot find function: '${functionName}'`);
    return;
  }
  try {
    await processDelivery(req, res, fn, log);
  } catch (err) {
    log(`[eventgrid] ${fn.name}: the delivery could not be processed: ${(err as Error).message}`);
    if (!res.headersSent) send(res, 500);
  }
}

async function processDelivery(
  req: WebhookRequest,
  res: ServerResponse,
  fn: EventGridFunction,
  log: (line: string) => void,
): Promise<void> {
  if (req.method === "OPTIONS") {
    const origin = header(req.headers, "webhook-request-origin");
    send(res, 200, undefined, {
      "webhook-allowed-origin": origin && ALLOWED_ORIGINS.has(origin) ? origin : "eventgrid.azure.net",
    });
    return;
  }
  const kind = header(req.headers, "aeg-event-type")?.toLowerCase();
  if (kind === "subscriptionvalidation") {
    const code = validationCode(parseBody(req.body));
    log(`[eventgrid] perform handshake with eventGrid for function: ${fn.name}`);
    send(res, 200, JSON.stringify({ validationResponse: code }));
    return;
  }
  if (kind === "notification") {
    const parsed = parseBody(req.body);
    if (parsed === null || typeof parsed !== "object") {
      throw new Error("The request content should be parseable into a JSON object or array");
    }
    const events = Array.isArray(parsed) ? parsed : [parsed];
    const results = await Promise.allSettled(events.map((event) => fn.invoke(event)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      const message = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
      log(`[${fn.name}] error: ${(failed.reason as Error)?.stack ?? message}`);
      send(res, 500, message);
      return;
    }
    send(res, 202);
    return;
  }
  if (kind === "unsubscribe") {
    send(res, 202);
    return;
  }
  send(res, 400);
}
