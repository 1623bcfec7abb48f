// app.js - healer's dashboard (contract section 13): the remediations list,
// one remediation's timeline, the insights and the health page, read from
// healer's own JSON API. Plain modern JavaScript, no library, no request to
// any other host.
//
// Invariants: every string from the API is put in the page as text
// (textContent / text nodes, never parsed as markup); links from data are kept
// only when they are http(s) URLs; the pages poll their documents with
// If-None-Match, so an unchanged document costs a 304 and no re-render.
"use strict";

// The poll interval: ?poll=MS when it is a whole number of milliseconds from
// POLL_MIN_MS to POLL_MAX_MS (the tests poll faster), else 3 s. A link with
// poll=-1 or poll=0.001 must not turn a logged-in reader's page into a
// request loop against healer.
const POLL_MIN_MS = 500;
const POLL_MAX_MS = 600000;
const POLL_MS = pollInterval(new URLSearchParams(location.search).get("poll"));
const PAGE_SIZE = 50;
const STATES = ["queued", "running", "verifying", "succeeded", "escalated", "stopped", "skipped"];
const AGENTS = ["rex", "blaze", "bolt", "cipher", "atlas"];
const FAILURE_TYPES = [
  "rust_clippy", "rust_test", "rust_build", "rust_deps",
  "frontend_deps", "frontend_typecheck", "frontend_lint", "frontend_test", "frontend_build",
  "docker_build", "helm", "kubernetes_manifest", "argocd_sync", "terraform", "yaml_syntax", "infra_runner",
  "security_dependabot", "security_code_scan", "security_secret", "security_vulnerability",
  "merge_conflict", "github_workflow", "github_permission", "release_publish", "general",
  "runtime_oom", "runtime_crash", "runtime_config", "runtime_image_pull", "runtime_dependency", "runtime_probe",
];

function pollInterval(v) {
  const ms = v === null || v.trim() === "" ? NaN : Number(v);
  return Number.isInteger(ms) && ms >= POLL_MIN_MS && ms <= POLL_MAX_MS ? ms : 3000;
}

// ---- DOM helpers -----------------------------------------------------------

// h("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more]) builds
// an element; strings become text nodes; null/undefined/false are skipped.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const c of kids) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// A link to an outside URL from the data, or plain text when it is not http(s).
function extLink(url, label) {
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return label ? text(label) : null;
  return h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, label || url);
}

// The agent's pull request URL (a CodeRun's pullRequestUrl is the agent's
// word): a link only when it is "<the repository's web URL>/pull/N" (the
// event's repository_url when https, else https://github.com/<repository>),
// as the notifications link it (src/loop/outbox.c); else plain text.
function prLink(url, t) {
  if (typeof url !== "string" || !t || !t.repository) return url ? text(url) : null;
  const ev = t.event || {};
  let base = typeof ev.repository_url === "string" && /^https:\/\//i.test(ev.repository_url)
    ? ev.repository_url : "https://github.com/" + t.repository;
  base = base.replace(/\/+$/, "");
  const rest = url.slice(base.length);
  if (url.slice(0, base.length).toLowerCase() !== base.toLowerCase() || !/^\/pull\/\d+\/?(?:#\S*)?$/.test(rest)) {
    return h("span", { class: "unverified", title: "not a pull request of " + t.repository }, url);
  }
  return extLink(url);
}

function text(v) {
  return document.createTextNode(v === null || v === undefined ? "" : String(v));
}

function badge(state) {
  if (!state) return h("span", { class: "muted" }, "—");
  return h("span", { class: "badge s-" + String(state).replace(/[^a-z_]/g, "") }, state);
}

// Replaces el's children with kids (strings, nodes, nested arrays, nulls).
function fill(el, ...kids) {
  el.replaceChildren();
  append(el, kids);
  return el;
}

function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(h("dt", null, k), h("dd", null, v));
  }
  return dl;
}

function table(headers, rows, opts) {
  const o = opts || {};
  const t = h("table", { class: o.responsive ? "responsive" : null });
  if (o.caption) t.append(h("caption", { class: "visually-hidden" }, o.caption));
  t.append(h("thead", null, h("tr", null, headers.map((x) =>
    h("th", { scope: "col", class: x.num ? "num" : null }, x.label || x)))));
  const tb = h("tbody");
  for (const r of rows) tb.append(tableRow(headers, r));
  t.append(tb);
  return o.responsive ? t : h("div", { class: "wrap" }, t);
}

function tableRow(headers, cells) {
  return h("tr", null, cells.map((c, i) => h("td", {
    "data-label": headers[i].label || headers[i], class: headers[i].num ? "num" : null,
  }, c)));
}

// ---- formatting ------------------------------------------------------------

function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function fmtAge(iso) {
  if (!iso) return "—";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!isFinite(s)) return "—";
  if (s < 60) return Math.max(0, Math.round(s)) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h";
  return Math.floor(s / 86400) + "d";
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function timeEl(iso, label) {
  if (!iso) return text("—");
  return h("time", { datetime: iso, title: fmtTime(iso) }, label || fmtTime(iso));
}

// A relative time ("5m", with suffix "5m ago") that refreshRelative keeps
// current from its timestamp.
function ageEl(iso, suffix) {
  if (!iso) return text("—");
  return h("time", { datetime: iso, title: fmtTime(iso), "data-age": suffix || "" }, fmtAge(iso) + (suffix || ""));
}

// A running duration since iso, kept current by refreshRelative.
function runningEl(iso) {
  return h("span", { "data-since": iso }, fmtDuration(secondsBetween(iso, new Date().toISOString())));
}

// Brings every relative time and running duration under root up to now
// (each poll tick, 304s included: an unchanged document is not re-rendered).
function refreshRelative(root) {
  for (const el of (root || document).querySelectorAll("time[data-age]")) {
    const v = fmtAge(el.getAttribute("datetime")) + el.dataset.age;
    if (el.textContent !== v) el.textContent = v;
  }
  for (const el of (root || document).querySelectorAll("[data-since]")) {
    const v = fmtDuration(secondsBetween(el.dataset.since, new Date().toISOString()));
    if (el.textContent !== v) el.textContent = v;
  }
}

function fmtPct(v) {
  return v === null || v === undefined || !isFinite(v) ? "—" : (v * 100).toFixed(v >= 0.995 || v === 0 ? 0 : 1) + "%";
}

function secondsBetween(a, b) {
  if (!a || !b) return null;
  return (Date.parse(b) - Date.parse(a)) / 1000;
}

// ---- the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message || "HTTP " + status);
    this.status = status;
  }
}

const etags = new Map();
const docs = new Map();
const fetchedAt = new Map();

// GET path as JSON (or text); {changed, data, age}. A 304 gives the kept copy;
// age is how many ms ago that copy was fetched (a weak tag leaves clock
// fields such as uptime_seconds out, so they are that much older).
async function api(path, asText) {
  const headers = { Accept: asText ? "text/plain" : "application/json" };
  if (etags.has(path)) headers["If-None-Match"] = etags.get(path);
  const res = await fetch(path, { headers, cache: "no-store", credentials: "same-origin" });
  if (res.status === 304 && docs.has(path))
    return { changed: false, data: docs.get(path), age: Date.now() - fetchedAt.get(path) };
  if (res.status === 401) {
    location.replace("/"); // the session ended: the login page
    throw new ApiError(401, "not logged in");
  }
  if (!res.ok) {
    let msg = null;
    try { msg = (await res.json()).message; } catch (e) { /* not JSON */ }
    throw new ApiError(res.status, msg);
  }
  const data = asText ? await res.text() : await res.json();
  const et = res.headers.get("ETag");
  if (et) {
    etags.set(path, et);
    docs.set(path, data);
    fetchedAt.set(path, Date.now());
  }
  return { changed: true, data, age: 0 };
}

// ---- page plumbing ---------------------------------------------------------

const main = () => document.getElementById("main");
let pageToken = 0; // a new page makes older timers and fetches stale
let pollTimer = null;

function setLive(msg) {
  const el = document.getElementById("live");
  if (el) el.textContent = msg;
}

// Calls fn now and every POLL_MS while the page is current and visible;
// fn says whether the page changed, or "stop" to end the polling.
function poll(token, fn, ms) {
  const tick = async () => {
    if (token !== pageToken) return;
    if (!document.hidden) {
      try {
        const changed = await fn();
        if (token !== pageToken || changed === "stop") return;
        refreshRelative(main());
        // the status region speaks only when the page changed
        if (changed) setLive("Updated " + new Date().toLocaleTimeString());
        document.getElementById("live").title = "Checked " + new Date().toLocaleTimeString();
      } catch (e) {
        if (token !== pageToken) return;
        setLive("Update failed: " + e.message);
      }
    }
    pollTimer = setTimeout(tick, ms || POLL_MS);
  };
  return tick();
}

function showError(e) {
  main().replaceChildren(h("h1", null, "Something went wrong"),
    h("p", { class: "error", role: "alert" }, e.message || String(e)));
}

function route() {
  pageToken++;
  clearTimeout(pollTimer);
  setLive("");
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  let page = "list";
  let run;
  if (path.startsWith("/r/")) {
    page = "list";
    run = () => timelinePage(decodeURIComponent(path.slice(3)));
  } else if (path === "/insights") {
    page = "insights";
    run = () => insightsPage(params);
  } else if (path === "/health") {
    page = "health";
    run = () => healthPage();
  } else {
    run = () => listPage(params);
  }
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    if (a.dataset.page === page && (page !== "list" || !path.startsWith("/r/"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // a page that throws before its first await (a malformed escape in a
  // task link) shows its error like one that fails later
  new Promise((resolve) => resolve(run())).catch(showError);
}

// ---- the remediations list ---------------------------------------------------

let listCursors = [""]; // cursors of the pages seen, for "Newer"
let listFilterKey = null;

function listQuery(params, cursor) {
  const q = new URLSearchParams();
  for (const k of ["state", "agent", "failure_type", "repository"]) {
    if (params.get(k)) q.set(k, params.get(k));
  }
  q.set("limit", String(PAGE_SIZE));
  if (cursor) q.set("cursor", cursor);
  return "/api/remediations?" + q.toString();
}

function selectFilter(id, label, name, values, current) {
  return h("label", { for: id }, label,
    h("select", { id, name }, h("option", { value: "" }, "any"),
      values.map((v) => h("option", { value: v, selected: v === current }, v))));
}

function filterForm(params) {
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter remediations" },
    selectFilter("f-state", "State", "state", STATES, params.get("state") || ""),
    selectFilter("f-agent", "Agent", "agent", AGENTS, params.get("agent") || ""),
    selectFilter("f-type", "Failure type", "failure_type", FAILURE_TYPES, params.get("failure_type") || ""),
    h("label", { for: "f-repo" }, "Repository",
      h("input", { id: "f-repo", name: "repository", type: "search", placeholder: "owner/repo",
        value: params.get("repository") || "", autocomplete: "off", spellcheck: "false" })),
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", id: "f-clear", onclick: () => { location.hash = "#/"; } }, "Clear"));
  const go = () => {
    const q = new URLSearchParams();
    for (const el of form.elements) if (el.name && el.value.trim()) q.set(el.name, el.value.trim());
    const s = q.toString();
    location.hash = "#/" + (s ? "?" + s : "");
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); go(); });
  for (const el of form.querySelectorAll("select")) el.addEventListener("change", go);
  return form;
}

const LIST_HEADERS = [
  { label: "Repository" }, { label: "Branch" }, { label: "Workflow / job" }, { label: "Failure type" },
  { label: "Agent" }, { label: "State" }, { label: "Attempts", num: true }, { label: "Time to fix", num: true },
  { label: "Age", num: true },
];

function listRow(t) {
  const row = tableRow(LIST_HEADERS, [
    [h("a", { href: "#/r/" + encodeURIComponent(t.task_id), class: "task-link" }, t.repository || t.task_id),
      h("div", { class: "muted mono" }, t.task_id)],
    t.branch || "—",
    [t.workflow || "", t.workflow && t.job ? " / " : "", t.job || (t.workflow ? "" : "—")],
    t.failure_type || "—",
    t.agent || "—",
    badge(t.state),
    String(t.attempts ?? 0),
    fmtDuration(t.time_to_fix_seconds),
    ageEl(t.created_at),
  ]);
  row.dataset.taskId = t.task_id;
  row.dataset.state = t.state;
  row.dataset.doc = JSON.stringify(t);
  return row;
}

// Brings tbody up to date with rows, touching only the rows that changed.
function updateRows(tbody, rows) {
  const old = Array.from(tbody.children);
  const same = old.length === rows.length && old.every((r, i) => r.dataset.taskId === rows[i].task_id);
  if (!same) {
    tbody.replaceChildren(...rows.map(listRow));
    return;
  }
  rows.forEach((t, i) => {
    if (old[i].dataset.doc !== JSON.stringify(t)) tbody.replaceChild(listRow(t), old[i]);
  });
}

async function listPage(params) {
  const key = ["state", "agent", "failure_type", "repository"].map((k) => params.get(k) || "").join("|");
  if (key !== listFilterKey) {
    listFilterKey = key;
    listCursors = [""];
  }
  let pageIx = 0;
  const token = pageToken;
  const tbody = h("tbody");
  const count = h("p", { class: "muted", id: "list-count", role: "status" });
  const newer = h("button", { type: "button", id: "newer", disabled: true }, "← Newer");
  const older = h("button", { type: "button", id: "older", disabled: true }, "Older →");
  const t = h("table", { class: "responsive", id: "remediations" },
    h("caption", { class: "visually-hidden" }, "Remediations, newest first"),
    h("thead", null, h("tr", null, LIST_HEADERS.map((x) => h("th", { scope: "col", class: x.num ? "num" : null }, x.label)))),
    tbody);
  main().replaceChildren(h("h1", null, "Remediations"), filterForm(params), count, t,
    h("nav", { class: "pager", "aria-label": "Pages of remediations" }, newer, older));

  let next = null;
  let shown = null; // the query whose rows are in the table
  const load = async () => {
    const q = listQuery(params, listCursors[pageIx]);
    const { changed, data } = await api(q);
    if (token !== pageToken || (!changed && shown === q)) return false;
    shown = q;
    const rows = data.remediations || [];
    updateRows(tbody, rows);
    next = data.next_cursor || null;
    count.textContent = rows.length
      ? `Showing ${pageIx * PAGE_SIZE + 1}–${pageIx * PAGE_SIZE + rows.length}` + (next ? "" : pageIx === 0 ? " (all)" : " (the last page)")
      : key === "|||" && pageIx === 0
        ? "No remediations yet. A failed CI job sent to /webhook (make run prints a curl line) appears here within seconds."
        : "No remediations match.";
    newer.disabled = pageIx === 0;
    older.disabled = !next;
    return true;
  };
  older.addEventListener("click", () => {
    if (!next) return;
    listCursors[pageIx + 1] = next;
    pageIx++;
    load().catch(showError);
  });
  newer.addEventListener("click", () => {
    if (pageIx === 0) return;
    pageIx--;
    load().catch(showError);
  });
  await poll(token, load);
}

// ---- one remediation's timeline ------------------------------------------------

const promptCache = new Map(); // "task/n" -> prompt text
const promptOpen = new Set();

// The prompt as text, fenced blocks (```/~~~ of any length) marked untrusted.
function renderPrompt(src) {
  const pre = h("pre", { class: "prompt", tabindex: "0", "aria-label": "Rendered prompt" });
  const lines = src.split("\n");
  let plain = [];
  let fence = null; // {ch, n, lines}
  const flush = () => {
    if (plain.length) pre.append(text(plain.join("\n") + "\n"));
    plain = [];
  };
  for (const line of lines) {
    const m = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (!fence) {
      if (m && !(m[1][0] === "`" && m[2].includes("`"))) {
        flush();
        fence = { ch: m[1][0], n: m[1].length, lines: [line] };
      } else plain.push(line);
    } else {
      fence.lines.push(line);
      if (m && m[1][0] === fence.ch && m[1].length >= fence.n && m[2].trim() === "") {
        pre.append(h("span", { class: "untrusted", role: "group", "aria-label": "untrusted text" }, fence.lines.join("\n")));
        fence = null;
      }
    }
  }
  if (fence) pre.append(h("span", { class: "untrusted", role: "group", "aria-label": "untrusted text" }, fence.lines.join("\n")));
  flush();
  return pre;
}

function promptBlock(taskId, n) {
  const key = taskId + "/" + n;
  const body = h("div", { class: "prompt-body" });
  const det = h("details", { class: "prompt-details", open: promptOpen.has(key) },
    h("summary", null, "Rendered prompt of attempt " + n), body);
  const fill = async () => {
    if (!promptCache.has(key)) {
      body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      try {
        const { data } = await api(`/api/remediations/${encodeURIComponent(taskId)}/attempts/${n}/prompt`, true);
        promptCache.set(key, data);
      } catch (e) {
        body.replaceChildren(h("p", { class: "muted" }, e.status === 404 ? "No prompt was stored for this attempt." : e.message));
        return;
      }
    }
    body.replaceChildren(h("p", { class: "muted" },
      "Text quoted from outside (logs, PR text, comments) is marked as untrusted."), renderPrompt(promptCache.get(key)));
  };
  det.addEventListener("toggle", () => {
    if (det.open) { promptOpen.add(key); fill(); } else promptOpen.delete(key);
  });
  if (det.open) fill();
  return det;
}

function githubRunUrl(t) {
  const ev = t.event || {};
  if (ev.html_url) return ev.html_url;
  if (t.repository && t.run_id && /^[\w.-]+\/[\w.-]+$/.test(t.repository)) {
    return `https://github.com/${t.repository}/actions/runs/${t.run_id}`;
  }
  return null;
}

function copyButton(value, label) {
  const b = h("button", { type: "button", class: "copy", "aria-label": label }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      b.textContent = "Copied";
    } catch (e) {
      // no clipboard permission: select the id so Ctrl+C copies it
      const sel = window.getSelection();
      const r = document.createRange();
      r.selectNodeContents(document.getElementById("task-id"));
      sel.removeAllRanges();
      sel.addRange(r);
      b.textContent = "Selected";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  return b;
}

function eventSection(t) {
  const ev = t.event || {};
  const pr = (t.decision && t.decision.pull_request) || {};
  const runUrl = githubRunUrl(t);
  const prNumber = ev.pr_number || t.pr_number || pr.number;
  const prUrl = pr.html_url || (t.repository && prNumber && /^[\w.-]+\/[\w.-]+$/.test(t.repository)
    ? `https://github.com/${t.repository}/pull/${prNumber}` : null);
  const prTitle = ev.pr_title || pr.title;
  return h("li", { id: "event" }, h("h2", null, "Event"),
    kv([
      ["Event", [ev.event_name || ev.kind || t.kind || "—", ev.action ? ` (${ev.action})` : ""]],
      ["Repository", t.repository],
      ["Branch", t.branch],
      ["Workflow", ev.workflow_name || t.workflow],
      ["Job", ev.job_name || t.job],
      ["Failed step", ev.failed_step],
      ["Commit", ev.head_sha || t.head_sha ? h("code", null, String(ev.head_sha || t.head_sha).slice(0, 12)) : null],
      ["Sender", ev.sender],
      ["Pull request", prNumber ? [extLink(prUrl, "#" + prNumber),
        prTitle ? h("span", { class: "pr-title" }, " ", prTitle) : null] : null],
      ["Alert", ev.summary || ev.package_name],
      ["Command", ev.command_hint],
      ["On GitHub", runUrl ? extLink(runUrl, "Open the run on GitHub") : null],
      ["Received", timeEl(t.created_at)],
    ]));
}

function decisionSection(t) {
  const d = t.decision;
  if (!d) return h("li", { id: "decision" }, h("h2", null, "Decision"), h("p", { class: "muted" }, "No decision was recorded."));
  const ev = d.evidence || {};
  const cands = Array.isArray(d.candidates) ? d.candidates : [];
  return h("li", { id: "decision" }, h("h2", null, "Decision"),
    kv([
      ["Agent", d.agent],
      ["Failure type", d.failure_type],
      ["Category", d.category],
      ["Rule", h("code", null, d.rule || "default")],
      ["Confidence", typeof d.confidence === "number" ? fmtPct(d.confidence) : null],
      ["Agents considered", Array.isArray(d.ranked_agents) ? d.ranked_agents.join(" → ") : null],
      ["Routing", d.routing && typeof d.routing === "object"
        ? (d.routing.learned ? h("span", { class: "learned" }, "★ learned: ", d.routing.evidence || d.routing.learned)
          : "by the rules (" + (d.routing.rule_agent || d.agent) + ")") : null],
      ["Deduplication", d.dedup_status],
      ["Target branch", d.target_branch],
    ]),
    h("h3", null, "Evidence"),
    ev.line
      ? h("pre", { class: "evidence", id: "evidence" }, h("span", { class: "lineno", "aria-label": "line" }, "line " + (ev.line_number || "?")), ev.line)
      : h("p", { class: "muted", id: "evidence" }, ev.reason || d.evidence_reason || "No log line supports the decision."),
    cands.length ? [h("h3", null, "Scores of the candidates"), table(
      [{ label: "Agent" }, { label: "Failure type" }, { label: "Rule" }, { label: "Score", num: true }, { label: "Matches", num: true }],
      cands.map((c) => [c.agent || "—", c.failure_type || "—", h("code", null, c.rule || "—"),
        typeof c.score === "number" ? c.score.toFixed(2) : "—", String(c.matches ?? "—")]),
      { caption: "Candidate scores" })] : null,
    d.timings_ms ? h("p", { class: "muted" }, "Decided in " +
      Object.entries(d.timings_ms).map(([k, v]) => `${k} ${v} ms`).join(", ")) : null);
}

function sourcesSection(t) {
  const src = (t.decision && Array.isArray(t.decision.sources)) ? t.decision.sources : [];
  return h("li", { id: "sources" }, h("h2", null, "Context sources"),
    src.length ? table([{ label: "Source" }, { label: "State" }, { label: "Time", num: true }, { label: "Detail" }],
      src.map((s) => [s.name, badge(s.state), (s.elapsed_ms ?? 0) + " ms", s.detail || ""]),
      { caption: "Context sources", responsive: true })
      : h("p", { class: "muted" }, "No context source was asked."),
    t.decision && typeof t.decision.context_ms === "number"
      ? h("p", { class: "muted" }, `All sources in ${t.decision.context_ms} ms; log ${t.decision.log_bytes ?? 0} bytes, prompt ${t.decision.prompt_bytes ?? 0} bytes.`) : null);
}

function attemptsSection(t) {
  const atts = t.attempts || [];
  return h("li", { id: "attempts" }, h("h2", null, `Attempts (${atts.length})`),
    atts.length ? atts.map((a) => h("section", { class: "attempt", "aria-label": "Attempt " + a.number },
      h("h3", null, `Attempt ${a.number}`, " ", badge(a.outcome || a.phase)),
      kv([
        ["Agent", a.agent],
        ["Kind", a.kind],
        ["CodeRun", a.coderun ? h("code", null, a.coderun) : null],
        ["Phase", a.phase],
        ["Outcome", a.outcome || "(not yet)"],
        ["Reason", a.reason],
        ["Status message", a.status_message],
        ["Pull request", a.pr_url ? prLink(a.pr_url, t) : null],
        ["Started", timeEl(a.started_at)],
        ["Finished", a.finished_at ? timeEl(a.finished_at) : null],
        ["Duration", !a.finished_at && !a.outcome && a.started_at ? runningEl(a.started_at)
          : fmtDuration(secondsBetween(a.started_at, a.finished_at))],
      ]),
      promptBlock(t.task_id, a.number)))
      : h("p", { class: "muted" }, "No attempt yet."));
}

function outcomeSection(t) {
  const ttf = t.state === "succeeded" ? secondsBetween(t.created_at, t.finished_at) : null;
  return h("li", { id: "outcome" }, h("h2", null, "Outcome"),
    kv([
      ["State", badge(t.state)],
      ["Reason", t.reason],
      ["Finished", t.finished_at ? timeEl(t.finished_at) : "not yet"],
      ["Time to fix", ttf !== null ? fmtDuration(ttf) : null],
      ["Queued since", t.queued_at ? timeEl(t.queued_at) : null],
    ]));
}

function notificationsSection(t) {
  const ns = t.notifications || [];
  return h("li", { id: "notifications" }, h("h2", null, "Notifications and commands"),
    ns.length ? table([{ label: "Channel" }, { label: "Kind" }, { label: "Reference" }, { label: "State" },
      { label: "Tries", num: true }, { label: "Last error" }, { label: "Created" }, { label: "Delivered" }],
    ns.map((n) => [n.channel, n.kind || "—", n.ref || "—", badge(n.state), String(n.attempts ?? 0),
      n.last_error || "", timeEl(n.created_at), n.delivered_at ? timeEl(n.delivered_at) : "—"]),
    { caption: "Notifications", responsive: true })
      : h("p", { class: "muted" }, "No notification or command reply."));
}

async function timelinePage(taskId) {
  const token = pageToken;
  const path = "/api/remediations/" + encodeURIComponent(taskId);
  main().replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let rendered = false;
  await poll(token, async () => {
    let r;
    try {
      r = await api(path);
    } catch (e) {
      if (e.status === 404) {
        main().replaceChildren(h("h1", null, "Not found"), h("p", null, "No remediation ", h("code", null, taskId), "."),
          h("p", null, h("a", { href: "#/" }, "Back to the remediations")));
        return false;
      }
      throw e;
    }
    if (token !== pageToken || (!r.changed && rendered)) return false;
    rendered = true;
    const t = r.data;
    main().replaceChildren(
      h("p", null, h("a", { href: "#/" }, "← Remediations")),
      h("h1", null, [t.repository || "Remediation", " "], badge(t.state)),
      h("p", null, "Task ", h("code", { id: "task-id" }, t.task_id), copyButton(t.task_id, "Copy the task id")),
      h("ol", { class: "timeline" }, eventSection(t), decisionSection(t), sourcesSection(t),
        attemptsSection(t), outcomeSection(t), notificationsSection(t)));
    return true;
  });
}

// ---- insights -------------------------------------------------------------------

const METRICS = [
  { key: "routing_correct", label: "Correct routing", kind: "rate", better: "higher", target: "> 90%" },
  { key: "duplicates_prevented", label: "Duplicates prevented", kind: "rate", better: "higher", target: "100%" },
  { key: "time_to_fix_p50_seconds", label: "Time to fix (p50)", kind: "duration", better: "lower", target: "< 15 min" },
  { key: "time_to_fix_p90_seconds", label: "Time to fix (p90)", kind: "duration", better: "lower" },
  { key: "attempt1_success", label: "Success on attempt 1", kind: "rate", better: "higher", target: "> 50%" },
  { key: "within_max_success", label: "Success within the attempts", kind: "rate", better: "higher", target: "> 80%" },
  { key: "escalation_rate", label: "Escalation rate", kind: "rate", better: "lower", target: "< 10%" },
];

function fmtMetric(m, v) {
  return m.kind === "rate" ? fmtPct(v) : fmtDuration(v);
}

// A rate against its target t, with as many decimals (at most 4) as it
// takes for the figure shown to meet the target exactly when the value
// does: never "10.0%" next to a met "< 10%", nor "100%" short of 100%.
function fmtPctNear(m, v, t)
{
	const plain = fmtPct(v);
	if (v === null || v === undefined || !isFinite(v) || t === null || t === undefined)
		return plain;
	const op = (m.target || "").trim()[0];
	const meets = (x) => op === ">"              ? x > t
	                     : op === "<"            ? x < t
	                     : m.better === "higher" ? x >= t
	                                             : x <= t;
	if (meets(parseFloat(plain) / 100) === meets(v))
		return plain;
	for (let d = 1; d <= 4; d++) {
		const s = (v * 100).toFixed(d);
		if (meets(parseFloat(s) / 100) === meets(v))
			return s + "%";
	}
	return (v * 100).toFixed(4) + "%";
}

function metTarget(m, v, t) {
  if (v === null || v === undefined || t === null || t === undefined) return null;
  return m.better === "higher" ? v >= t : v <= t;
}

function metricCards(ins) {
  const targets = ins.targets || {};
  return h("div", { class: "cards", id: "insight-cards" }, METRICS.map((m) => {
    const v = ins[m.key];
    const t = targets[m.key];
    const met = ins.meets && ins.meets[m.key] !== undefined ? ins.meets[m.key] : metTarget(m, v, t);
    return h("div", {
	    class : "card " + (met === null ? "none"
			       : met        ? "met"
			                    : "missed"),
	    "data-metric" : m.key
    },
	     h("div", null, m.label),
	     h("div", { class : "value" },
	       m.kind === "rate" ? fmtPctNear(m, v, t) : fmtMetric(m, v)),
	     h("div", { class : "target" },
	       t !== undefined && t !== null ? "target " + (m.target || fmtMetric(m, t))
		                             : "no target",
	       met === null ? ""
	       : met        ? " · met"
		            : " · missed"));
  }));
}

// A group's figure against its target (ins.targets), marked met or missed
// as the overall cards are; a metric without a target or a value is bare.
function groupCell(m, v, t) {
  const met = metTarget(m, v, t);
  const shown = m.kind === "rate" ? fmtPctNear(m, v, t) : fmtMetric(m, v);
  if (met === null) return shown;
  const goal = "target " + (m.target || fmtMetric(m, t));
  return h("span", { class: "goal " + (met ? "met" : "missed"), "data-target": met ? "met" : "missed",
    title: goal + (met ? ": met" : ": missed") },
  shown, h("span", { "aria-hidden": "true" }, met ? " ✓" : " ✗"),
  h("span", { class: "visually-hidden" }, met ? " (" + goal + " met)" : " (" + goal + " missed)"));
}

function groupTable(title, obj, caption, targets) {
  const keys = Object.keys(obj || {}).sort();
  const tg = targets || {};
  if (!keys.length) return [h("h2", null, title), h("p", { class: "muted" }, "Nothing measured yet.")];
  return [h("h2", null, title), table([{ label: caption }, { label: "Tasks", num: true },
    ...METRICS.map((m) => ({ label: m.label, num: true }))],
  keys.map((k) => [k, String(obj[k].tasks ?? "—"), ...METRICS.map((m) => groupCell(m, obj[k][m.key], tg[m.key]))]),
  { caption: title })];
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of kids) if (c) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

// A small line (or bar) chart of points [{x: label, y: number|null}] in SVG.
function chart(title, points, opts) {
  const o = opts || {};
  const W = 320, H = 120, L = 36, R = 6, T = 8, B = 18;
  const ys = points.map((p) => p.y).filter((y) => y !== null && y !== undefined && isFinite(y));
  const fmt = o.fmt || ((v) => String(v));
  const fig = h("figure", { class: "card chart-card" }, h("figcaption", null, title));
  if (!ys.length) {
    fig.append(h("p", { class: "muted" }, "No data yet."));
    return fig;
  }
  let max = Math.max(...ys, o.target ?? -Infinity);
  if (o.rate) max = Math.max(max, 1);
  if (max <= 0) max = 1;
  const n = points.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const summary = `${title}: ${points.length} days, last ${fmt(ys[ys.length - 1])}, highest ${fmt(Math.max(...ys))}`;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary },
    s("title", null, summary),
    s("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    s("text", { x: 2, y: T + 8 }, fmt(max)),
    s("text", { x: 2, y: H - B }, fmt(0)),
    s("text", { x: L, y: H - 4 }, String(points[0].x)),
    s("text", { x: W - R, y: H - 4, "text-anchor": "end" }, String(points[n - 1].x)));
  if (o.target !== undefined && o.target !== null) {
    svg.append(s("line", { class: "target-line", x1: L, x2: W - R, y1: y(o.target), y2: y(o.target) }));
  }
  if (o.bars) {
    const bw = Math.max(2, (W - L - R) / n - 2);
    points.forEach((p, i) => {
      if (p.y === null || p.y === undefined) return;
      const cx = n === 1 ? x(i) : L + (i * (W - L - R)) / n + 1;
      svg.append(s("rect", { class: "bar", x: n === 1 ? cx - bw / 2 : cx, y: y(p.y), width: bw, height: H - B - y(p.y) },
        s("title", null, `${p.x}: ${fmt(p.y)}`)));
    });
  } else {
    let d = "";
    points.forEach((p, i) => {
      if (p.y === null || p.y === undefined || !isFinite(p.y)) return;
      d += (d ? " L" : "M") + x(i).toFixed(1) + " " + y(p.y).toFixed(1);
    });
    svg.append(s("path", { class: "line", d }));
    points.forEach((p, i) => {
      if (p.y === null || p.y === undefined || !isFinite(p.y)) return;
      svg.append(s("circle", { cx: x(i), cy: y(p.y), r: 2.5, class: "bar" }, s("title", null, `${p.x}: ${fmt(p.y)}`)));
    });
  }
  fig.append(svg);
  return fig;
}

function seriesCharts(ins) {
  const series = Array.isArray(ins.series) ? ins.series : [];
  const targets = ins.targets || {};
  if (!series.length) return [h("h2", null, "Over time"), h("p", { class: "muted" }, "No daily series yet.")];
  const day = (p) => String(p.date || p.day || "").slice(5, 10);
  const mins = (v) => (v === null || v === undefined ? null : v / 60);
  const pts = (f) => series.map((p) => ({ x: day(p), y: f(p) }));
  const done = (p) => (p.succeeded || 0) + (p.escalated || 0);
  return [h("h2", null, "Over time (per day)"), h("div", { class: "cards", id: "insight-charts" },
    chart("Tasks", pts((p) => p.tasks ?? null), { bars: true }),
    chart("Time to fix p50 (minutes)", pts((p) => mins(p.time_to_fix_p50_seconds)),
      { fmt: (v) => v.toFixed(0), target: mins(targets.time_to_fix_p50_seconds) }),
    chart("Succeeded (of finished)", pts((p) => (done(p) ? p.succeeded / done(p) : null)),
      { rate: true, fmt: fmtPct, target: targets.within_max_success }),
    chart("Escalation rate", pts((p) => (done(p) ? p.escalated / done(p) : null)),
      { rate: true, fmt: fmtPct, target: targets.escalation_rate }))];
}

// The routing table: cells {agent, failure_type, attempts, successes, rate,
// switched_away} and learned.switches [{repository, failure_type, from, to,
// evidence}] (GET /api/insights).
function routingTable(ins) {
  const cells = Array.isArray(ins.routing) ? ins.routing : [];
  const switches = ((ins.learned || {}).switches || []);
  const title = h("h2", null, "Routing (agent × failure type)");
  if (!cells.length) return [title, h("p", { class: "muted" }, "No finished attempts yet.")];
  const agents = [...new Set(cells.map((c) => c.agent))].sort((a, b) => AGENTS.indexOf(a) - AGENTS.indexOf(b));
  const types = [...new Set(cells.map((c) => c.failure_type))].sort();
  const at = new Map(cells.map((c) => [c.agent + "\u0000" + c.failure_type, c]));
  const learnedTo = new Set(switches.map((w) => w.to + "\u0000" + w.failure_type));
  return [title,
    h("p", { class: "muted" }, "Success rate (finished attempts). ", h("span", { class: "learned" }, "★"),
      " the agent learned routing now chooses; ", h("span", { class: "learned" }, "↷"), " the rule's agent it switched away from",
      (ins.learned && ins.learned.enabled === false) ? " (learned routing is off)." : "."),
    h("div", { class: "wrap" }, h("table", { id: "routing" },
      h("caption", { class: "visually-hidden" }, "Routing table"),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Failure type"),
        agents.map((a) => h("th", { scope: "col", class: "num" }, a)))),
      h("tbody", null, types.map((ty) => h("tr", null, h("th", { scope: "row" }, ty), agents.map((a) => {
        const c = at.get(a + "\u0000" + ty);
        const to = learnedTo.has(a + "\u0000" + ty);
        if (!c) return h("td", { class: "num muted", "data-learned": to ? "to" : null }, to ? h("span", { class: "learned", title: "learned switch to this agent" }, "★") : "—");
        return h("td", { class: "num", "data-learned": c.switched_away ? "from" : to ? "to" : null },
          fmtPct(c.rate), ` (${c.attempts ?? 0})`,
          c.switched_away ? h("span", { class: "learned", title: "learned routing switched away from this agent" }, " ↷") : null,
          to ? h("span", { class: "learned", title: "learned switch to this agent" }, " ★") : null);
      })))))),
    switches.length ? [h("h3", null, "Learned switches"), table(
      [{ label: "Repository" }, { label: "Failure type" }, { label: "From" }, { label: "To" }, { label: "Evidence" }],
      switches.map((w) => [w.repository, w.failure_type, w.from, w.to, w.evidence || ""]),
      { caption: "Learned switches", responsive: true })] : null];
}

async function insightsPage(params) {
  const token = pageToken;
  const since = params.get("since") || "30d";
  const form = h("form", { class: "filters", "aria-label": "Insights period" },
    h("label", { for: "i-since" }, "Period", h("select", { id: "i-since", name: "since" },
      [["24h", "last 24 hours"], ["7d", "last 7 days"], ["30d", "last 30 days"], ["90d", "last 90 days"]].map(([v, l]) =>
        h("option", { value: v, selected: v === since }, l)))));
  form.querySelector("select").addEventListener("change", (ev) => { location.hash = "#/insights?since=" + ev.target.value; });
  const body = h("div", { id: "insights" }, h("p", { class: "muted" }, "Loading…"));
  main().replaceChildren(h("h1", null, "Insights"), form, body);
  let rendered = false;
  await poll(token, async () => {
    let r;
    try {
      r = await api("/api/insights?since=" + encodeURIComponent(since));
    } catch (e) {
      if (e.status === 404) {
        body.replaceChildren(h("p", { class: "notice" }, "This healer does not serve insights (/api/insights)."));
        return "stop";
      }
      throw e;
    }
    if (token !== pageToken || (!r.changed && rendered)) return false;
    rendered = true;
    const ins = r.data;
    fill(body,
      h("p", { class: "muted" }, `${ins.tasks ?? 0} tasks measured`,
        ins.generated_at ? [" at ", timeEl(ins.generated_at)] : "", "."),
      metricCards(ins), seriesCharts(ins), routingTable(ins),
      groupTable("By agent", ins.by_agent, "Agent", ins.targets),
      groupTable("By failure type", ins.by_failure_type, "Failure type", ins.targets));
    return true;
  }, 300000); // the insights read the whole ledger: every 5 minutes
}

// ---- health ---------------------------------------------------------------------

// Prometheus text as [{name, labels: {}, value}].
function parseMetrics(txt) {
  const out = [];
  for (const line of txt.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const lm of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function sumMetric(ms, name, pred) {
  return ms.filter((m) => m.name === name && (!pred || pred(m.labels))).reduce((a, m) => a + m.value, 0);
}

function hasMetric(ms, name) {
  return ms.some((m) => m.name === name);
}

function countsTable(title, obj, id) {
  const keys = Object.keys(obj || {}).sort();
  return h("div", { class: "card", id }, h("h3", null, title), keys.length
    ? h("dl", { class: "kv" }, keys.map((k) => [h("dt", null, badge(k)), h("dd", { class: "num" }, String(obj[k]))]))
    : h("p", { class: "muted" }, "none"));
}

async function lastSourceErrors(status) {
  // the newest remediations' context sources: the last failure of each
  const ids = [...((status.remediations || {}).active || []), ...((status.remediations || {}).recent_outcomes || [])]
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))).slice(0, 10).map((t) => t.task_id);
  const last = new Map();
  const docsList = await Promise.all(ids.map((id) => api("/api/remediations/" + encodeURIComponent(id)).then((r) => r.data, () => null)));
  for (const t of docsList) {
    if (!t) continue;
    for (const src of ((t.decision || {}).sources || [])) {
      if (!last.has(src.name)) last.set(src.name, { state: src.state, detail: src.detail, at: t.created_at, task: t.task_id });
      else if (src.state === "failed" && last.get(src.name).state !== "failed") last.set(src.name, { state: src.state, detail: src.detail, at: t.created_at, task: t.task_id });
    }
    for (const n of (t.notifications || [])) {
      const key = "notify: " + n.channel;
      if (n.last_error && !last.has(key)) last.set(key, { state: n.state, detail: n.last_error, at: n.created_at, task: t.task_id });
    }
  }
  return last;
}

const SOURCES_EVERY = 5;

async function healthPage() {
  const token = pageToken;
  const body = h("div", { id: "health" }, h("p", { class: "muted" }, "Loading…"));
  main().replaceChildren(h("h1", null, "Health"), body);
  let prev = null; // {t, intake}
  let sources = null;
  let ticks = 0; // the sources are asked again every SOURCES_EVERY polls
  await poll(token, async () => {
    const [st, mt] = await Promise.all([api("/api/status"), fetch("/metrics", { cache: "no-store" }).then((r) => r.text())]);
    if (token !== pageToken) return false;
    const status = st.data;
    const ms = parseMetrics(mt);
    const now = Date.now();
    const intake = sumMetric(ms, "healer_intake_total");
    let rate = null;
    if (prev && now > prev.t) rate = ((intake - prev.intake) * 60000) / (now - prev.t);
    prev = { t: now, intake };
    ticks++;
    if (!sources || ticks % SOURCES_EVERY === 0) {
      const fresh = await lastSourceErrors(status).catch(() => null);
      if (fresh || !sources) sources = fresh || new Map();
    }
    if (token !== pageToken) return false;
    const watchUp = hasMetric(ms, "healer_watch_up") ? sumMetric(ms, "healer_watch_up") : null;
    const leader = hasMetric(ms, "healer_watch_leader") ? sumMetric(ms, "healer_watch_leader") : null;
    const outbox = hasMetric(ms, "healer_outbox_pending") ? sumMetric(ms, "healer_outbox_pending") : null;
    const notif = ms.filter((m) => m.name === "healer_notifications_total");
    const recent = status.recent || [];
    fill(body,
      h("div", { class: "cards" },
        h("div", { class: "card", id: "h-intake" }, h("div", null, "Intake rate"),
          h("div", { class: "value" }, rate === null ? "…" : rate.toFixed(1) + "/min"),
          h("div", { class: "target" }, `${intake} deliveries answered since start`)),
        h("div", { class: "card", id: "h-queue" }, h("div", null, "Queue depth"),
          h("div", { class: "value" }, String(status.queue_depth ?? "—")),
          h("div", { class: "target" }, "deliveries stored, not yet processed")),
        h("div", { class: "card " + (watchUp === null ? "none" : watchUp ? "met" : "missed"), id: "h-watch" },
          h("div", null, "CodeRun watch"),
          h("div", { class: "value" }, watchUp === null ? "—" : watchUp ? "connected" : "disconnected"),
          h("div", { class: "target" }, leader === null ? "" : leader ? "this replica leads" : "another replica leads",
            ` · ${sumMetric(ms, "healer_watch_restarts_total")} restarts`)),
        h("div", { class: "card " + (outbox ? "missed" : "met"), id: "h-outbox" }, h("div", null, "Outbox backlog"),
          h("div", { class: "value" }, outbox === null ? "—" : String(outbox)),
          h("div", { class: "target" }, "notifications waiting")),
        h("div", { class: "card", id: "h-uptime" }, h("div", null, "Up"),
          h("div", { class: "value" }, fmtDuration(status.uptime_seconds + Math.floor(st.age / 1000))),
          h("div", { class: "target" }, "version ", status.version || "?", " · API auth ", (status.auth || {}).api || "?"))),
      h("h2", null, "Counts"),
      h("div", { class: "cards" },
        countsTable("Remediations by state", (status.remediations || {}).by_state, "h-tasks"),
        countsTable("Attempts by outcome", (status.remediations || {}).attempts_by_outcome, "h-attempts"),
        countsTable("Deliveries by state", (status.deliveries || {}).by_state, "h-deliveries"),
        countsTable("Deliveries by reason", (status.deliveries || {}).by_reason, "h-reasons")),
      h("h2", null, "Last state of each source"),
      sources.size ? table([{ label: "Source" }, { label: "State" }, { label: "Detail" }, { label: "When" }, { label: "Remediation" }],
        [...sources.entries()].sort().map(([name, v]) => [name, badge(v.state), v.detail || "", ageEl(v.at, " ago"),
          h("a", { href: "#/r/" + encodeURIComponent(v.task) }, v.task)]), { caption: "Sources", responsive: true })
        : h("p", { class: "muted" }, "No remediation has asked a source yet."),
      notif.length ? [h("h2", null, "Notifications"), table([{ label: "Channel" }, { label: "Result" }, { label: "Count", num: true }],
        notif.map((m) => [m.labels.channel || "?", badge(m.labels.result || "?"), String(m.value)]), { caption: "Notifications" })] : null,
      h("h2", null, "Recent deliveries"),
      recent.length ? table([{ label: "Received" }, { label: "Event" }, { label: "State" }, { label: "Answer" }, { label: "Reason" }, { label: "Remediation" }],
        recent.map((d) => [ageEl(d.received_at, " ago"), [d.event, d.action ? ` (${d.action})` : ""],
          badge(d.state), d.answer, d.reason || "", d.task_id ? h("a", { href: "#/r/" + encodeURIComponent(d.task_id) }, d.task_id) : "—"]),
        { caption: "Recent deliveries", responsive: true }) : h("p", { class: "muted" }, "No delivery yet."));
    return true;
  });
}

// ---- start ------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  window.addEventListener("hashchange", () => {
    route();
    main().focus({ preventScroll: true });
  });
  route();
  // the logout button only when a token protects the dashboard (asked
  // after the first page has its data: /api/status counts every task)
  setTimeout(() => {
    fetch("/api/status", { cache: "no-store", credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : {}))
      .then((data) => {
        if ((data.auth || {}).api === "bearer") document.getElementById("logout").hidden = false;
      }, () => {});
  }, 1500);
});
