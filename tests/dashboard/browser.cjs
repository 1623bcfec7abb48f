// browser.cjs - the dashboard in a real browser: Debian's chromium driven
// by playwright-core against a seeded healer (test_browser.py starts it and
// passes where it is). Prints one JSON line per check ({name, ok, detail});
// the Python driver turns them into TAP. Every request the page makes is
// intercepted: anything not addressed to 127.0.0.1 is recorded and aborted.
"use strict";
const fs = require("fs");
const path = require("path");

const ROOT = process.env.HEALER_SOURCE_ROOT;
const { chromium } = require(path.join(ROOT, "tests", "node", "node_modules", "playwright-core"));

const BASE = process.env.DASH_URL; // http://127.0.0.1:PORT
const TOKEN = process.env.DASH_TOKEN;
const CODERUNS = process.env.DASH_CODERUNS;
const TASKS = JSON.parse(process.env.DASH_TASKS); // [[task_id, repo, agent], ...]
const HOSTILE = process.env.DASH_HOSTILE;
const SHOTS = process.env.DASH_SHOTS;
const INSIGHTS = process.env.DASH_INSIGHTS === "1";
const XSS = "<img src=x onerror=alert(1)>";

function check(name, ok, detail) {
  process.stdout.write(JSON.stringify({ name, ok: Boolean(ok), detail: ok ? undefined : detail }) + "\n");
}

function findChromium() {
  const cands = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  for (const dir of (process.env.PATH || "").split(":")) cands.push(path.join(dir, "chromium"));
  return cands.find((c) => c && fs.existsSync(c));
}

// Writes status.phase into the CodeRun file of task tid (directory dispatch).
function setPhase(tid, phase) {
  for (const f of fs.readdirSync(CODERUNS).sort()) {
    const p = path.join(CODERUNS, f);
    const m = JSON.parse(fs.readFileSync(p, "utf8"));
    if (m.metadata.labels["healer/task-id"] === tid) {
      m.status = { phase };
      fs.writeFileSync(p + ".tmp", JSON.stringify(m));
      fs.renameSync(p + ".tmp", p);
      return true;
    }
  }
  return false;
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function rowsOf(page) {
  return page.$$eval("#remediations tbody tr", (trs) => trs.map((tr) => ({
    id: tr.dataset.taskId, state: tr.dataset.state, text: tr.textContent,
  })));
}

async function waitRows(page, pred, timeout = 10000) {
  const t0 = Date.now();
  let rows = [];
  while (Date.now() - t0 < timeout) {
    rows = await rowsOf(page);
    if (pred(rows)) return rows;
    await page.waitForTimeout(100);
  }
  return rows;
}

async function main() {
  const exe = findChromium();
  check("chromium is installed (scripts/install-deps.sh)", exe, "no chromium binary found");
  if (!exe) return;
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const outside = [];
  const requests = [];
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    requests.push(u.href);
    if (u.protocol === "data:" || (u.hostname === "127.0.0.1" && u.origin === BASE)) return route.continue();
    outside.push(u.href);
    return route.abort();
  });
  const consoleErrors = [];
  const dialogs = [];
  const page = await context.newPage();
  page.on("console", (m) => {
    // without /api/insights the insights page's one 404 is expected
    if (m.type() === "error" && !(!INSIGHTS && /\/api\/insights/.test(m.location().url || ""))) {
      consoleErrors.push(m.text() + " " + (m.location().url || ""));
    }
  });
  page.on("pageerror", (e) => consoleErrors.push("pageerror: " + e.message));
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });

  try {
    // ---- login ---------------------------------------------------------------
    await page.goto(BASE + "/?poll=500");
    check("without a session / shows the login form", await page.isVisible("#login-form"), await page.content());
    await shot(page, "login");
    await page.fill("#token", "not-the-token");
    await Promise.all([page.waitForURL(/login=failed/), page.click("#login-form button")]);
    check("a wrong token is refused with a message",
      (await page.isVisible("#login-error")) && (await page.isVisible("#login-form")) &&
      !(await context.cookies()).some((c) => c.name === "healer_session"), page.url());
    await shot(page, "login-failed");
    await page.fill("#token", TOKEN);
    await Promise.all([page.waitForURL(BASE + "/"), page.click("#login-form button")]);
    await page.goto(BASE + "/?poll=500#/");
    const cookie = (await context.cookies()).find((c) => c.name === "healer_session");
    check("the right token sets an HttpOnly, SameSite=Strict session cookie without the token",
      cookie && cookie.httpOnly && cookie.sameSite === "Strict" && !cookie.value.includes(TOKEN), cookie);

    // ---- the list ----------------------------------------------------------------
    let rows = await waitRows(page, (r) => r.length >= TASKS.length);
    check("the list shows every seeded task, newest first",
      TASKS.every(([id]) => rows.some((r) => r.id === id)) && rows[0].id === TASKS[TASKS.length - 1][0],
      rows.map((r) => r.id));
    const done = await page.$$eval(`#remediations tr[data-task-id="${process.env.DASH_SUCCEEDED}"] td`,
      (tds) => tds.map((td) => td.textContent));
    check("a succeeded task shows its state, attempts and time to fix", done[5] === "succeeded" &&
      done[6] === "1" && /^\d+(s|m \d+s)$/.test(done[7]), done);
    const hostileRow = rows.find((r) => r.id === HOSTILE);
    check("a hostile job name in the list stays text", hostileRow && hostileRow.text.includes(XSS) &&
      (await page.$$("img")).length === 0, hostileRow);
    const labelled = await page.$$eval("#main select, #main input",
      (els) => els.every((e) => e.labels && e.labels.length > 0 && e.labels[0].textContent.trim()));
    check("every filter has a label", labelled, "");
    await page.keyboard.press("Tab");
    check("the first Tab reaches the skip link", await page.evaluate(() => document.activeElement.className === "skip"), "");
    await shot(page, "list");

    await page.selectOption("#f-agent", "rex");
    const rex = TASKS.filter((t) => t[2] === "rex").map((t) => t[0]);
    rows = await waitRows(page, (r) => r.length === rex.length && r.every((x) => rex.includes(x.id)));
    check("the agent filter shows only that agent's tasks", rows.length === rex.length &&
      rows.every((x) => rex.includes(x.id)) && page.url().includes("agent=rex"), rows.map((r) => r.id));
    await page.selectOption("#f-agent", "");
    await page.fill("#f-repo", "acme/web");
    await page.press("#f-repo", "Enter");
    const web = TASKS.filter((t) => t[1] === "acme/web").map((t) => t[0]);
    rows = await waitRows(page, (r) => r.length === web.length && r.every((x) => web.includes(x.id)));
    check("the repository filter shows only that repository", rows.length === web.length, rows.map((r) => r.id));
    await page.selectOption("#f-type", "docker_build");
    rows = await waitRows(page, (r) => r.length === 0 && /No remediations match/.test(""), 1500);
    const none = await page.textContent("#list-count");
    check("filters combine (acme/web has no docker_build task)", rows.length === 0 && /No remediations/.test(none), none);
    await page.click("#f-clear");
    rows = await waitRows(page, (r) => r.length >= TASKS.length);

    // ---- a state change appears without a reload -------------------------------------
    await page.evaluate(() => { window.__noReload = true; });
    const live = TASKS[0][0];
    const before = (await rowsOf(page)).find((r) => r.id === live);
    setPhase(live, "Succeeded");
    rows = await waitRows(page, (r) => (r.find((x) => x.id === live) || {}).state === "verifying", 20000);
    check("a state change appears in the list without a reload",
      (rows.find((x) => x.id === live) || {}).state === "verifying" && before && before.state === "running" &&
      (await page.evaluate(() => window.__noReload === true)), [before, rows.find((x) => x.id === live)]);
    await shot(page, "list-live");

    // ---- one remediation's timeline ---------------------------------------------------
    await page.click(`#remediations tr[data-task-id="${HOSTILE}"] a.task-link`);
    await page.waitForSelector("#evidence");
    const evidence = await page.textContent("#evidence");
    check("the timeline shows the evidence line with its number", /line 5/.test(evidence) && evidence.includes("1 problem"), evidence);
    const sources = await page.$$eval("#sources tbody tr", (trs) => trs.map((tr) =>
      Array.from(tr.children).map((td) => td.textContent)));
    const src = (name) => sources.find((r) => r[0] === name) || [];
    check("the timeline shows the context sources with their state and time",
      src("github_log")[1] === "ok" && /^\d+ ms$/.test(src("github_log")[2]) &&
      src("loki")[1] === "skipped" && /LOKI_URL/.test(src("loki")[3]) &&
      sources.some((r) => r[1] === "failed"), sources);
    const decision = await page.textContent("#decision");
    check("the decision shows the rule and the candidates' scores", /eslint-problems/.test(decision) && /Score/.test(decision), decision);
    const attempts = await page.textContent("#attempts");
    check("the timeline shows the attempt with agent and CodeRun", /Attempt 1/.test(attempts) && /blaze/.test(attempts) &&
      /healer-blaze-/.test(attempts), attempts);
    const ev = await page.textContent("#event");
    check("a hostile PR title stays text in the timeline", ev.includes(XSS) && (await page.$$("img")).length === 0, ev);
    const runLink = await page.getAttribute("#event a[href*='/actions/runs/']", "href");
    check("the event links to the GitHub run", runLink && runLink.startsWith("https://github.com/acme/web/actions/runs/8105"), runLink);
    await page.click("#attempts details summary");
    await page.waitForSelector("#attempts .prompt .untrusted");
    const untrusted = await page.$$eval("#attempts .prompt .untrusted", (els) => els.map((e) => e.textContent));
    check("the rendered prompt marks fenced untrusted text", untrusted.length >= 2 &&
      untrusted.some((t) => t.includes(XSS)), untrusted.slice(0, 3));
    check("the task id has a copy button", await page.isVisible("button.copy"), "");
    await shot(page, "timeline");

    // the timeline updates live too: the agent fails, attempt 2 appears
    setPhase(HOSTILE, "Failed");
    let n2 = false;
    for (let i = 0; i < 200 && !n2; i++) {
      n2 = /Attempt 2/.test(await page.textContent("#attempts"));
      if (!n2) await page.waitForTimeout(100);
    }
    check("a failed attempt and the next one appear on the timeline without a reload", n2 &&
      (await page.evaluate(() => window.__noReload === true)), await page.textContent("#attempts"));
    await shot(page, "timeline-live");

    // ---- insights and health -------------------------------------------------------------
    await page.click("nav a[data-page=insights]");
    if (INSIGHTS) {
      await page.waitForSelector("#insight-cards");
      const cards = await page.$$eval("#insight-cards .card", (els) => els.map((e) => e.dataset.metric));
      check("the insights page shows each metric against its target", cards.includes("routing_correct") &&
        cards.includes("escalation_rate") && (await page.textContent("#insight-cards")).includes("target"), cards);
      const ins = await page.textContent("#insights");
      check("the insights page has the routing table, charts and the by-agent table",
        /Routing \(agent × failure type\)/.test(ins) && /By agent/.test(ins) && /By failure type/.test(ins) &&
        (await page.$$("#insight-charts figure")).length === 4, ins.slice(0, 600));
    } else {
      await page.waitForSelector("#insights .notice");
    }
    await shot(page, "insights");
    await page.click("nav a[data-page=health]");
    await page.waitForSelector("#h-watch");
    await page.waitForFunction(() => /\/min/.test(document.querySelector("#h-intake .value").textContent), null, { timeout: 10000 });
    const health = await page.textContent("#health");
    check("the health page shows intake rate, queue depth, watch and outbox",
      /Intake rate/.test(health) && /Queue depth/.test(health) && /CodeRun watch/.test(health) &&
      /Outbox backlog/.test(health) && /github_log/.test(health), health.slice(0, 400));
    // /api/status answers 304 while nothing changes (its tag leaves the
    // uptime out): the page still counts the uptime on
    // while nothing changes, /api/status answers 304 (its weak tag leaves the
    // uptime out): the page counts the uptime on from the copy it kept. The
    // route answers 304 itself, since live tasks here change the document.
    const up0 = await page.textContent("#h-uptime .value");
    let notModified = 0;
    await page.route("**/api/status", (route) => { notModified++; return route.fulfill({ status: 304 }); });
    let up1 = up0;
    for (let i = 0; i < 60 && (up1 === up0 || notModified < 2); i++) {
      await page.waitForTimeout(100);
      up1 = await page.textContent("#h-uptime .value");
    }
    await page.unroute("**/api/status");
    check("the health page's uptime counts on while /api/status answers 304",
      notModified >= 2 && up1 !== up0, [up0, up1, notModified]);
    await shot(page, "health");

    // ---- a narrow screen ------------------------------------------------------------------
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click("nav a[data-page=list]");
    await waitRows(page, (r) => r.length >= TASKS.length);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check("the list fits a 390 px wide screen", overflow <= 1, overflow);
    await shot(page, "list-narrow");
    await page.goto(BASE + "/?poll=500#/r/" + HOSTILE);
    await page.waitForSelector("#evidence");
    const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check("the timeline fits a 390 px wide screen", overflow2 <= 1, overflow2);
    await shot(page, "timeline-narrow");
    await page.setViewportSize({ width: 1280, height: 900 });

    // ---- a hostile poll interval in a link ------------------------------------------------------
    // ?poll=-1 or a fraction of a millisecond must not make the page poll in
    // a loop: outside 500 ms .. 10 min the page polls every 3 s.
    for (const poll of ["-1", "0.001", "1e-9"]) {
      let calls = 0;
      const count = (req) => { if (new URL(req.url()).pathname === "/api/status") calls++; };
      page.on("request", count);
      await page.goto(BASE + "/?poll=" + poll + "#/health");
      await page.waitForSelector("#h-uptime .value");
      await page.waitForTimeout(1500);
      page.off("request", count);
      check(`a link with poll=${poll} polls at the default pace, not in a loop`, calls >= 1 && calls <= 2, calls);
    }

    // ---- a malformed link (a cut percent escape in the task id) --------------------------------
    await page.goto(BASE + "/#/r/hl-%E0%A4%A");
    const bad = await page.waitForSelector("main .error", { timeout: 5000 }).then((e) => e.textContent(), () => null);
    check("a task link with a malformed escape shows an error, not 'Loading…' for ever", bad !== null,
      await page.textContent("main"));

    // ---- log out ------------------------------------------------------------------------------
    await page.goto(BASE + "/#/");
    await page.waitForSelector("#logout:not([hidden])");
    await Promise.all([page.waitForURL(BASE + "/"), page.click("#logout button")]);
    check("logging out shows the login form again", await page.isVisible("#login-form"), await page.url());
  } catch (e) {
    check("the browser run finished", false, String(e && e.stack || e));
    await shot(page, "failure").catch(() => {});
  }
  check("no request left 127.0.0.1", outside.length === 0 && requests.length > 0, outside);
  check("no console errors and no dialogs", consoleErrors.length === 0 && dialogs.length === 0,
    { consoleErrors, dialogs });
  await browser.close();
}

main().catch((e) => {
  check("the browser run finished", false, String(e && e.stack || e));
  process.exitCode = 1;
});
