// live.cjs - the dashboard's pages over time, in Debian's chromium driven by
// playwright-core against a healer without a token (test_live.py starts it).
// The API documents are the test's own (routes fulfilled here), so what the
// page is given is known: an agent's pull request URL is a link only when it
// names a pull request of the task's repository; ages and a running
// attempt's duration count on while every poll answers 304; the health
// page's sources are asked again; the by-agent and by-failure-type insight
// tables mark each figure against its target. Prints one JSON line per
// check ({name, ok, detail}).
"use strict";
const fs = require("fs");
const path = require("path");

const ROOT = process.env.HEALER_SOURCE_ROOT;
const { chromium } = require(path.join(ROOT, "tests", "node", "node_modules", "playwright-core"));
const BASE = process.env.DASH_URL;

function check(name, ok, detail) {
  process.stdout.write(JSON.stringify({ name, ok: Boolean(ok), detail: ok ? undefined : detail }) + "\n");
}

function findChromium() {
  const cands = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  for (const dir of (process.env.PATH || "").split(":")) cands.push(path.join(dir, "chromium"));
  return cands.find((c) => c && fs.existsSync(c));
}

const ago = (s) => new Date(Date.now() - s * 1000).toISOString();
const T0 = Date.now();
const at = (s) => new Date(T0 - s * 1000).toISOString();

function taskDoc(id, prUrl, extra) {
  return Object.assign({
    task_id: id, repository: "acme/web", state: "running", kind: "ci", created_at: at(57),
    event: { event_name: "workflow_job", repository_url: "https://github.com/acme/web" },
    decision: { agent: "blaze", failure_type: "frontend_lint", sources: [] },
    attempts: [{ number: 1, agent: "blaze", kind: "fix", phase: "Running", started_at: at(20), pr_url: prUrl }],
    notifications: [],
  }, extra || {});
}

const PRS = {
  "hl-pr-good": "https://github.com/acme/web/pull/12",
  "hl-pr-case": "https://GitHub.com/Acme/Web/pull/13#discussion",
  "hl-pr-other": "https://github.com/evil/web/pull/12",
  "hl-pr-prefix": "https://github.com/acme/webx/pull/12",
  "hl-pr-dots": "https://github.com/acme/web/pull/12/../../../../evil/x",
  "hl-pr-js": "javascript:alert(1)",
  "hl-pr-host": "https://github.com.evil.example/acme/web/pull/12",
};

let sourceState = "ok";
let listCreated = null;
let ageStarted = null;
let statusCalls = 0;
const INSIGHTS = {
  tasks: 10, generated_at: at(0), routing_correct: 0.95, duplicates_prevented: 1, time_to_fix_p50_seconds: 600,
  time_to_fix_p90_seconds: 1500, attempt1_success: 0.6, within_max_success: 0.85, escalation_rate: 0.05,
  targets: { routing_correct: 0.9, duplicates_prevented: 1, time_to_fix_p50_seconds: 900, attempt1_success: 0.5,
    within_max_success: 0.8, escalation_rate: 0.1 },
  by_agent: {
    rex: { tasks: 6, routing_correct: 0.95, escalation_rate: 0.2, time_to_fix_p50_seconds: 1200 },
    blaze: { tasks: 4, routing_correct: 0.5, escalation_rate: 0.05, time_to_fix_p50_seconds: 300 },
  },
  by_failure_type: { rust_clippy: { tasks: 3, attempt1_success: 0.7, within_max_success: 0.6 } },
  series: [], routing: [],
};

// A document with an ETag; 304 when the page sends it back.
function serveDoc(route, doc, tag) {
  if (route.request().headers()["if-none-match"] === tag) return route.fulfill({ status: 304, headers: { ETag: tag } });
  return route.fulfill({ status: 200, contentType: "application/json", headers: { ETag: tag }, body: JSON.stringify(doc) });
}

async function main() {
  const exe = findChromium();
  check("chromium is installed (scripts/install-deps.sh)", exe, "no chromium binary found");
  if (!exe) return;
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const outside = [];
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (u.origin !== BASE) {
      outside.push(u.href);
      return route.abort();
    }
    if (u.pathname === "/api/remediations") {
      // 50 s old when the list is first asked: "5Xs" for ten seconds, so a
      // slow chromium still reads it before it turns "1m"
      listCreated = listCreated || ago(50);
      return serveDoc(route, { remediations: [{ task_id: "hl-age", repository: "acme/web", state: "running", attempts: 1,
        created_at: listCreated, updated_at: listCreated }], next_cursor: null }, '"list-1"');
    }
    if (u.pathname.startsWith("/api/remediations/")) {
      const id = decodeURIComponent(u.pathname.slice("/api/remediations/".length));
      if (id === "hl-src") {
        return serveDoc(route, taskDoc(id, null, { decision: { agent: "rex", sources: [
          { name: "loki", state: sourceState, detail: sourceState === "failed" ? "connection refused" : "" }] } }),
        '"src-' + sourceState + '"');
      }
      if (id === "hl-age") {
        ageStarted = ageStarted || ago(20);
        const doc = taskDoc(id, null);
        doc.attempts[0].started_at = ageStarted;
        return serveDoc(route, doc, '"t-' + id + '"');
      }
      if (id in PRS) return serveDoc(route, taskDoc(id, PRS[id]), '"t-' + id + '"');
      return route.fulfill({ status: 404, contentType: "application/json", body: '{"error":"not_found","message":"no"}' });
    }
    if (u.pathname === "/api/status") {
      statusCalls++;
      return serveDoc(route, { version: "test", uptime_seconds: 10, queue_depth: 0, auth: { api: "none" },
        remediations: { active: [{ task_id: "hl-src", created_at: at(30) }], recent_outcomes: [], by_state: {} },
        deliveries: { by_state: {}, by_reason: {} }, recent: [] }, '"status-1"');
    }
    if (u.pathname === "/api/insights") return serveDoc(route, INSIGHTS, '"ins-1"');
    return route.continue();
  });
  const consoleErrors = [];
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  try {
    // ---- the agent's pull request URL ------------------------------------------------
    for (const [id, url] of Object.entries(PRS)) {
      await page.goto(`${BASE}/?poll=500#/r/${id}`);
      await page.waitForSelector("#attempts .attempt");
      const links = await page.$$eval("#attempts a[href]", (as) => as.map((a) => a.getAttribute("href")));
      const txt = await page.textContent("#attempts");
      const good = id === "hl-pr-good" || id === "hl-pr-case";
      check(good ? `a pull request of the task's repository is linked (${url})`
        : `an agent's pull request URL elsewhere is shown as text, not linked (${url})`,
      good ? links.includes(url) : !links.includes(url) && links.every((h) => !/pull|evil|javascript/i.test(h)) && txt.includes(url),
      { links, txt: txt.slice(0, 300) });
    }

    // ---- ages and running durations count on while polls answer 304 -----------------------
    await page.goto(`${BASE}/?poll=500#/`);
    await page.waitForSelector("#remediations tbody tr");
    const ageCell = () => page.$eval("#remediations tbody tr td:last-child", (td) => td.textContent);
    const age0 = await ageCell();
    // wait (bounded) until the timestamp is over 61 s old, then give the page
    // a few polls to show it; an age that does not count on stays "5Xs"
    const sinceList = () => Date.now() - Date.parse(listCreated);
    for (let i = 0; i < 150 && sinceList() < 61000; i++) await page.waitForTimeout(100);
    let age1 = await ageCell();
    for (let i = 0; i < 30 && age1 !== "1m"; i++) {
      await page.waitForTimeout(100);
      age1 = await ageCell();
    }
    check("the list's Age counts on from the timestamp while the list answers 304 (5Xs, then 1m)",
      /^5\ds$/.test(age0) && age1 === "1m", [age0, age1, sinceList()]);
    await page.goto(`${BASE}/?poll=500#/r/hl-age`);
    await page.waitForSelector("#attempts .attempt");
    const dur = async () => page.$eval("#attempts .attempt", (el) => {
      const dts = Array.from(el.querySelectorAll("dt"));
      const dt = dts.find((d) => d.textContent === "Duration");
      return dt ? dt.nextElementSibling.textContent : null;
    });
    const d0 = await dur();
    await page.waitForTimeout(3000);
    const d1 = await dur();
    const secs = (v) => (/^(\d+)s$/.exec(v || "") || [])[1];
    check("a running attempt's duration counts on while its document answers 304",
      secs(d0) && secs(d1) && Number(secs(d1)) >= Number(secs(d0)) + 2, [d0, d1]);

    // ---- the health page asks its sources again ------------------------------------------
    await page.goto(`${BASE}/?poll=500#/health`);
    await page.waitForSelector("#health table");
    const loki = () => page.$$eval("#health tr", (trs) => {
      const tr = trs.find((r) => r.children[0] && r.children[0].textContent === "loki");
      return tr ? tr.children[1].textContent : null;
    });
    const s0 = await loki();
    sourceState = "failed";
    let s1 = s0;
    for (let i = 0; i < 80 && s1 !== "failed"; i++) {
      await page.waitForTimeout(100);
      s1 = await loki();
    }
    check("the health page's sources are asked again every few polls (ok, then failed)",
      s0 === "ok" && s1 === "failed", [s0, s1, statusCalls]);

    // ---- the insight tables against their targets -----------------------------------------
    await page.goto(`${BASE}/?poll=500#/insights`);
    await page.waitForSelector("#insight-cards");
    const marks = await page.$$eval("#insights table", (ts) => {
      const out = {};
      for (const t of ts) {
        const cap = t.querySelector("caption");
        if (!cap) continue;
        const heads = Array.from(t.querySelectorAll("thead th")).map((th) => th.textContent);
        for (const tr of t.querySelectorAll("tbody tr")) {
          const cells = Array.from(tr.children);
          cells.forEach((td, i) => {
            const m = td.querySelector("[data-target]");
            if (m) out[`${cap.textContent}|${cells[0].textContent}|${heads[i]}`] = m.dataset.target;
          });
        }
      }
      return out;
    });
    const want = {
      "By agent|rex|Correct routing": "met", "By agent|rex|Escalation rate": "missed",
      "By agent|rex|Time to fix (p50)": "missed", "By agent|blaze|Correct routing": "missed",
      "By agent|blaze|Escalation rate": "met", "By agent|blaze|Time to fix (p50)": "met",
      "By failure type|rust_clippy|Success on attempt 1": "met",
      "By failure type|rust_clippy|Success within the attempts": "missed",
    };
    check("the by-agent and by-failure-type tables mark each figure met or missed against its target",
      Object.entries(want).every(([k, v]) => marks[k] === v) &&
      marks["By agent|rex|Time to fix (p90)"] === undefined, marks);
  } catch (e) {
    check("the live run finished", false, String(e && e.stack || e));
  }
  check("no request left 127.0.0.1", outside.length === 0, outside);
  check("no console errors", consoleErrors.length === 0, consoleErrors);
  await browser.close();
}

main().catch((e) => {
  check("the live run finished", false, String(e && e.stack || e));
  process.exitCode = 1;
});
