// paint.cjs - the dashboard's time to first useful paint in headless
// Chromium (playwright-core): for BENCH_RUNS fresh pages each, the time from
// navigation start until the list shows its first page of rows, and until a
// timeline shows its evidence and attempts. Prints the medians as JSON.
"use strict";
const fs = require("fs");
const path = require("path");

const ROOT = path.join(__dirname, "..", "..");
const { chromium } = require(path.join(ROOT, "tests", "node", "node_modules", "playwright-core"));
const BASE = process.env.DASH_URL;
const TASK = process.env.DASH_TASK;
const RUNS = Number(process.env.BENCH_RUNS || 7);

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function paint(browser, url, ready) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url, { waitUntil: "commit" });
  await page.waitForFunction(ready, null, { polling: "raf", timeout: 30000 });
  const t = await page.evaluate(() => performance.now());
  await context.close();
  return t;
}

async function main() {
  const exe = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((c) => c && fs.existsSync(c));
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ["--no-sandbox"] });
  const list = [];
  const timeline = [];
  // one warm-up of each page (the server's and the browser's first use)
  await paint(browser, BASE + "/#/", () => document.querySelectorAll("#remediations tbody tr").length >= 6);
  await paint(browser, BASE + "/#/r/" + TASK, () => document.querySelector("#attempts .attempt"));
  for (let i = 0; i < RUNS; i++) {
    list.push(await paint(browser, BASE + "/#/",
      () => document.querySelectorAll("#remediations tbody tr").length >= 50 && document.querySelector("#list-count").textContent));
    timeline.push(await paint(browser, BASE + "/#/r/" + TASK,
      () => document.querySelector("#evidence") && document.querySelector("#attempts .attempt")));
  }
  await browser.close();
  process.stdout.write(JSON.stringify({ list_ms: median(list), timeline_ms: median(timeline), list, timeline }) + "\n");
}

main().catch((e) => { console.error(e); process.exit(1); });
