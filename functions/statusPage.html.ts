/*
 * The status page: one self-contained document (inline CSS and JS, no CDN, no build step), kept
 * as a TypeScript string so `tsc -p tsconfig.build.json` ships it with the app. It reads the
 * function key from its own URL (?code=) and sends it as x-functions-key to /api/fleet and
 * /api/operations; every value from the API is set as text, never as HTML.
 * No backticks and no "${" below: this is a template literal.
 */
export const STATUS_PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>spire-autopilot status</title>
<style>
:root { --fg:#1b1f24; --muted:#4d5560; --bg:#f6f8fa; --card:#fff; --line:#d0d7de;
  --ok:#116329; --ok-bg:#dafbe1; --bad:#a40e26; --bad-bg:#ffebe9; --warn:#6c4a00; --warn-bg:#fff8c5; --accent:#0550ae; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:center; justify-content:space-between; padding:.75rem 1rem; background:#24292f; color:#fff; }
header h1 { font-size:1.1rem; margin:0; }
header .meta { font-size:.85rem; color:#d0d7de; }
main { padding:1rem; max-width:1200px; margin:0 auto; display:grid; gap:1rem; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:.75rem 1rem; min-width:0; }
h2 { font-size:1rem; margin:.25rem 0 .75rem; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:.25rem 1rem; margin:0; }
dt { color:var(--muted); } dd { margin:0; overflow-wrap:anywhere; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; min-width:640px; }
caption { text-align:left; color:var(--muted); font-size:.85rem; padding-bottom:.25rem; }
th, td { text-align:left; padding:.4rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
th[scope=col] { font-size:.8rem; text-transform:uppercase; letter-spacing:.03em; color:var(--muted); }
th[scope=row] { font-weight:600; }
.verdict { display:inline-block; padding:.05rem .5rem; border-radius:1rem; font-weight:600; font-size:.85rem; border:1px solid currentColor; }
.v-ok { color:var(--ok); background:var(--ok-bg); } .v-bad { color:var(--bad); background:var(--bad-bg); } .v-warn { color:var(--warn); background:var(--warn-bg); }
.countdown.soon { color:var(--bad); font-weight:600; }
button { font:inherit; padding:.3rem .7rem; border-radius:6px; border:1px solid var(--accent); background:#fff; color:var(--accent); cursor:pointer; }
button:hover, button:focus-visible { background:var(--accent); color:#fff; outline:2px solid var(--accent); outline-offset:2px; }
button[disabled] { opacity:.6; cursor:wait; }
#notice { min-height:1.5rem; margin:0; }
#notice.error { color:var(--bad); }
ol.timeline { list-style:none; margin:0; padding:0; }
ol.timeline li { border-left:3px solid var(--line); padding:.2rem 0 .4rem .75rem; }
ol.timeline li.failed { border-color:var(--bad); } ol.timeline li.succeeded { border-color:var(--ok); } ol.timeline li.running { border-color:var(--accent); }
.muted { color:var(--muted); }
progress { width:8rem; vertical-align:middle; }
@media (max-width: 700px) { main { padding:.5rem; } section { padding:.5rem; } dl { grid-template-columns:1fr; } dt { font-weight:600; } }
</style>
</head>
<body>
<header>
  <h1>spire-autopilot</h1>
  <div class="meta"><span id="updated">loading…</span> · refresh every <span id="every">5</span> s</div>
  <button id="sweep" type="button">Sweep now</button>
</header>
<main>
  <p id="notice" role="status" aria-live="polite"></p>
  <section aria-labelledby="server-h">
    <h2 id="server-h">SPIRE server</h2>
    <dl>
      <dt>Verdict</dt><dd id="server-verdict">-</dd>
      <dt>CA roots</dt><dd id="server-roots">-</dd>
      <dt>Root expiry</dt><dd id="server-expiry">-</dd>
      <dt>Key Vault bundle</dt><dd id="server-vault">-</dd>
      <dt>Admin SVID expiry</dt><dd id="server-admin">-</dd>
      <dt>Last sweep</dt><dd id="server-sweep">-</dd>
      <dt>Problems</dt><dd id="server-errors">none</dd>
    </dl>
  </section>
  <section aria-labelledby="fleet-h">
    <h2 id="fleet-h">Fleet</h2>
    <div class="scroll">
    <table id="fleet">
      <caption id="fleet-caption">Every managed or skipped app</caption>
      <thead><tr>
        <th scope="col">App</th><th scope="col">Verdict</th><th scope="col">Since</th>
        <th scope="col">Agent SVID expires</th><th scope="col">Workload SVID expires</th>
        <th scope="col">Last run</th><th scope="col">Running</th><th scope="col"><span class="muted">Action</span></th>
      </tr></thead>
      <tbody></tbody>
    </table>
    </div>
  </section>
  <section aria-labelledby="ops-h">
    <h2 id="ops-h">Running operations</h2>
    <div class="scroll">
    <table id="running">
      <caption>Deploys, re-attestations, sweeps and rotations in progress</caption>
      <thead><tr><th scope="col">Operation</th><th scope="col">Kind</th><th scope="col">App</th><th scope="col">Step</th><th scope="col">Progress</th><th scope="col">Started</th></tr></thead>
      <tbody></tbody>
    </table>
    </div>
  </section>
  <section aria-labelledby="runs-h">
    <h2 id="runs-h">Recent runs</h2>
    <ol class="timeline" id="timeline"></ol>
  </section>
</main>
<script>
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var key = params.get("code") || "";
  var every = Math.min(60, Math.max(1, Number(params.get("refresh")) || 5));
  document.getElementById("every").textContent = String(every);
  var api = new URL("./", location.href);
  var OK = ["healthy", "succeeded", "Completed"];
  var WARN = ["not-swept", "unknown", "skipped", "not-deployed", "Running", "Pending"];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "-" : String(c))); });
    return e;
  }
  function verdict(v) {
    var cls = OK.indexOf(v) >= 0 ? "v-ok" : WARN.indexOf(v) >= 0 ? "v-warn" : "v-bad";
    return el("span", { "class": "verdict " + cls, "data-verdict": v }, [v]);
  }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : "-"; }
  function countdown(iso) {
    if (!iso) return el("span", {}, ["-"]);
    return el("time", { "class": "countdown", datetime: iso, "data-expires": iso }, [left(iso)]);
  }
  function left(iso) {
    var s = Math.round((Date.parse(iso) - Date.now()) / 1000);
    var a = Math.abs(s), h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60), sec = a % 60;
    var t = (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
    return s >= 0 ? "in " + t : "expired " + t + " ago";
  }
  function tick() {
    document.querySelectorAll("[data-expires]").forEach(function (n) {
      n.textContent = left(n.getAttribute("data-expires"));
      n.classList.toggle("soon", Date.parse(n.getAttribute("data-expires")) - Date.now() < 600e3);
    });
  }
  function notice(text, isError) {
    var n = document.getElementById("notice");
    n.textContent = text; n.className = isError ? "error" : "";
  }
  function call(method, path, body) {
    var headers = { accept: "application/json" };
    if (key) headers["x-functions-key"] = key;
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(new URL(path, api), { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) { return r.text().then(function (t) { var j = null; try { j = t ? JSON.parse(t) : null; } catch (e) { j = { error: t }; } return { status: r.status, body: j }; }); });
  }
  function set(id, text) { document.getElementById(id).textContent = text === null || text === undefined || text === "" ? "-" : String(text); }

  function renderServer(s) {
    var v = document.getElementById("server-verdict"); v.replaceChildren(verdict(s.verdict), document.createTextNode(s.reason ? " " + s.reason : ""));
    set("server-roots", s.roots ? s.roots.fingerprints.map(function (f) { return f.slice(0, 16); }).join(", ") : null);
    var ex = document.getElementById("server-expiry"); ex.replaceChildren(countdown(s.roots && s.roots.earliestExpiry));
    set("server-vault", (s.vault.version || "no version") + (s.vault.matches === true ? " · matches the server" : s.vault.matches === false ? " · DOES NOT match the server" : " · match unknown"));
    var ad = document.getElementById("server-admin"); ad.replaceChildren(countdown(s.adminSvidExpiresAt));
    set("server-sweep", s.lastSweep ? when(s.lastSweep.at) + " (" + s.lastSweep.mode + ")" : "no sweep yet");
    set("server-errors", s.errors.length ? s.errors.join("; ") : "none");
  }
  function renderFleet(f) {
    var rows = f.apps.map(function (a) {
      var btn = a.managed ? el("button", { type: "button", "data-reattest": a.app, "aria-label": "Re-attest " + a.app }, ["Re-attest"]) : el("span", { "class": "muted" }, ["-"]);
      return el("tr", { "data-app": a.app }, [
        el("th", { scope: "row" }, [a.app]),
        el("td", {}, [verdict(a.verdict), a.reason ? el("div", { "class": "muted" }, [a.reason]) : ""]),
        el("td", {}, [when(a.since)]),
        el("td", {}, [countdown(a.agentExpiresAt)]),
        el("td", {}, [countdown(a.workloadExpiresAt)]),
        el("td", {}, [a.lastRun ? (a.lastRun.outcome || "-") + " · " + when(a.lastRun.finishedAt) : "-"]),
        el("td", { "data-running": a.running ? a.running.id : null }, [a.running ? a.running.kind + ": " + (a.running.step || "starting") : "-"]),
        el("td", {}, [btn])
      ]);
    });
    document.querySelector("#fleet tbody").replaceChildren.apply(document.querySelector("#fleet tbody"), rows);
    set("fleet-caption", f.apps.length + " apps: " + Object.keys(f.counts).map(function (k) { return f.counts[k] + " " + k; }).join(", "));
  }
  function renderOperations(list) {
    var running = list.filter(function (o) { return o.running; });
    var body = document.querySelector("#running tbody");
    var rows = running.map(function (o) {
      var p = o.progress ? el("progress", { max: String(o.progress.total || 1), value: String(o.progress.done), "aria-label": "apps done" }, []) : null;
      return el("tr", { "data-operation": o.id }, [
        el("th", { scope: "row" }, [o.id]), el("td", {}, [o.kind]), el("td", {}, [o.app]), el("td", {}, [o.step || o.runtimeStatus]),
        el("td", {}, p ? [p, " " + o.progress.done + "/" + o.progress.total] : ["-"]), el("td", {}, [when(o.createdTime)])
      ]);
    });
    if (rows.length === 0) rows = [el("tr", {}, [el("td", { colspan: "6", "class": "muted" }, ["nothing running"])])];
    body.replaceChildren.apply(body, rows);
    var items = list.map(function (o) {
      var state = o.running ? "running" : (o.outcome === "failed" || o.runtimeStatus === "Failed" || o.runtimeStatus === "Terminated") ? "failed" : "succeeded";
      return el("li", { "class": state, "data-operation": o.id }, [
        el("time", { datetime: o.createdTime }, [when(o.createdTime)]), " · ", el("strong", {}, [o.kind + (o.app ? " " + o.app : "")]), " · ",
        o.running ? "running (" + (o.step || "starting") + ")" : (o.outcome || o.runtimeStatus), o.failure ? " — " + o.failure : ""
      ]);
    });
    var tl = document.getElementById("timeline");
    tl.replaceChildren.apply(tl, items.length ? items : [el("li", { "class": "muted" }, ["no runs in the last week"])]);
  }

  var busy = false;
  function refresh() {
    if (busy) return Promise.resolve();
    busy = true;
    return Promise.all([call("GET", "fleet"), call("GET", "operations?limit=25")]).then(function (r) {
      var fleet = r[0], ops = r[1];
      if (fleet.status !== 200) throw new Error("fleet: " + ((fleet.body && fleet.body.error) || "HTTP " + fleet.status));
      renderServer(fleet.body.server); renderFleet(fleet.body);
      if (ops.status === 200) renderOperations(ops.body.operations);
      set("updated", "updated " + new Date().toLocaleTimeString());
      document.body.setAttribute("data-loaded", "true");
      tick();
    }).catch(function (e) { notice("Could not refresh: " + e.message, true); })
      .then(function () { busy = false; });
  }

  function start(path, body, what) {
    return call("POST", path, body).then(function (r) {
      if (r.status === 202) { notice(what + " started (" + r.body.id + ")" + (r.body.alreadyRunning ? ", already running" : "")); return refresh(); }
      if (r.status === 409 && path.indexOf("/reattest") > 0 && !body.force && confirm((r.body && r.body.error) + "\n\nRun anyway?")) {
        return start(path, { reason: body.reason, force: true }, what);
      }
      notice(what + " refused: " + ((r.body && r.body.error) || "HTTP " + r.status), true);
    });
  }
  document.getElementById("fleet").addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-reattest]");
    if (!b) return;
    var app = b.getAttribute("data-reattest");
    if (!confirm("Re-attest " + app + "? Its agent gets a fresh join token and the app a new revision.")) return;
    b.disabled = true;
    start("apps/" + encodeURIComponent(app) + "/reattest", { reason: "status page" }, "Re-attestation of " + app)
      .finally(function () { b.disabled = false; });
  });
  document.getElementById("sweep").addEventListener("click", function (ev) {
    if (!confirm("Run the health sweep now?")) return;
    ev.target.disabled = true;
    start("sweep", {}, "Sweep").finally(function () { ev.target.disabled = false; });
  });

  refresh();
  setInterval(refresh, every * 1000);
  setInterval(tick, 1000);
})();
</script>
</body>
</html>
`;
