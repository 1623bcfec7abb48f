#!/usr/bin/env node
// hbs_render.js - the reference side of the differential test: renders many
// (template, data, partials) cases with handlebars.js 4.x (noEscape: true)
// and prints the results as JSON, one array in one node process.
//
// Input (stdin or argv[2]): [{"template": "...", "data": {...},
//                             "partials": {"name": "..."}}, ...]
// Output (stdout): [{"ok": true, "out": "..."} | {"ok": false, "error": "..."}]
//
// The helpers below DEFINE the semantics of healer's helpers; src/tmpl/
// helpers.c and src/tmpl/fence.c reproduce them exactly. Keep them obvious.
'use strict';
const fs = require('fs');
const path = require('path');
const Handlebars = require(path.join(__dirname, '..', 'node', 'node_modules', 'handlebars'));

Handlebars.logger.log = () => {};

const str = (v) => (v === undefined || v === null ? '' : String(v));

// ---- fence: untrusted text in a block the text cannot close ----
function sanitize(s) {
  let out = '';
  let i = 0;
  const n = s.length;
  const code = (k) => s.charCodeAt(k);
  while (i < n) {
    const c = code(i);
    if (c === 0x1b) {
      if (i + 1 < n && s[i + 1] === '[') {
        let j = i + 2;
        while (j < n && code(j) >= 0x30 && code(j) <= 0x3f) j++;
        while (j < n && code(j) >= 0x20 && code(j) <= 0x2f) j++;
        if (j < n && code(j) >= 0x40 && code(j) <= 0x7e) j++;
        i = j;
        continue;
      }
      if (i + 1 < n && s[i + 1] === ']') {
        let j = i + 2;
        while (j < n && code(j) !== 0x07 && code(j) !== 0x1b) j++;
        if (j < n && code(j) === 0x07) { i = j + 1; continue; }
        if (j + 1 < n && code(j) === 0x1b && s[j + 1] === '\\') { i = j + 2; continue; }
        i++;
        continue;
      }
      if (i + 1 < n && code(i + 1) >= 0x40 && code(i + 1) <= 0x5f) { i += 2; continue; }
      i++;
      continue;
    }
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f)) { i++; continue; }
    out += s[i];
    i++;
  }
  return out;
}

function cut(text, budget, focus) {
  const c = Buffer.from(text, 'utf8');
  const m = c.length;
  if (m <= budget) return text;
  const NL = 0x0a;
  const snapBack = (p, seg) => {
    const lim = Math.floor(seg / 4);
    if (p === 0) return 0;
    for (let q = p; q > 0 && q + lim >= p; q--) if (c[q - 1] === NL) return q;
    let q = p;
    while (q > 0 && q < m && (c[q] & 0xc0) === 0x80) q--;
    return q;
  };
  const snapFwd = (p, seg) => {
    const lim = Math.floor(seg / 4);
    for (let q = p; q <= p + lim && q <= m; q++) if (q === 0 || c[q - 1] === NL) return q;
    let q = p;
    while (q < m && (c[q] & 0xc0) === 0x80) q++;
    return q;
  };
  let haveFocus = false;
  let fs0 = 0;
  if (focus >= 1) {
    let line = 1;
    for (let i = 0; i < m && line < focus; i++) {
      if (c[i] === NL) { line++; fs0 = i + 1; }
    }
    haveFocus = line === focus;
  }
  let H, T, F = 0;
  if (haveFocus) {
    H = Math.floor(budget / 5);
    T = Math.floor((budget * 2) / 5);
    F = budget - H - T;
  } else {
    H = Math.floor((budget * 2) / 5);
    T = budget - H;
  }
  const segs = [[0, snapBack(H, H)]];
  if (haveFocus) {
    let a = fs0 > Math.floor(F / 3) ? fs0 - Math.floor(F / 3) : 0;
    let b = a + F > m ? m : a + F;
    a = snapFwd(a, F);
    b = snapBack(b, F);
    if (a < b) segs.push([a, b]);
  }
  segs.push([snapFwd(m - T, T), m]);
  segs.sort((x, y) => x[0] - y[0]);
  const parts = [];
  let lastByte = -1;
  const push = (buf) => { if (buf.length) { parts.push(buf); lastByte = buf[buf.length - 1]; } };
  const marker = (a, b) => {
    let lines = 0;
    for (let i = a; i < b; i++) if (c[i] === NL) lines++;
    if (lastByte !== -1 && lastByte !== NL) push(Buffer.from('\n'));
    push(Buffer.from(`[... healer cut ${b - a} bytes (${lines} lines) ...]\n`));
  };
  let prev = 0;
  for (const [a0, b] of segs) {
    let a = a0;
    if (b <= prev || a >= b) continue;
    if (a < prev) a = prev;
    if (a > prev) marker(prev, a);
    push(c.subarray(a, b));
    prev = b;
  }
  if (prev < m) marker(prev, m);
  return Buffer.concat(parts).toString('utf8');
}

function fence(text, lang, budget, focus) {
  if (budget < 64) budget = 64;
  const body = cut(sanitize(text), budget, focus);
  let best = 0;
  let run = 0;
  for (const ch of body) {
    run = ch === '`' ? run + 1 : 0;
    if (run > best) best = run;
  }
  const f = '`'.repeat(Math.max(3, best + 1));
  const l = lang.replace(/[^A-Za-z0-9_.+-]/g, '').slice(0, 32);
  return f + l + '\n' + body + (body.length && !body.endsWith('\n') ? '\n' : '') + f;
}

// ---- code: an untrusted value inline, in a code span it cannot close ----
function code(v, max) {
  let out = sanitize(v).replace(/[\t\n\u2028\u2029]/g, ' ');
  const cps = Array.from(out);
  if (cps.length > max) out = cps.slice(0, max).join('') + '...';
  if (out === '') return '';
  let best = 0;
  let run = 0;
  for (const ch of out) {
    run = ch === '`' ? run + 1 : 0;
    if (run > best) best = run;
  }
  const f = '`'.repeat(best + 1);
  const pad = out.startsWith('`') || out.endsWith('`') ? ' ' : '';
  return f + pad + out + pad + f;
}

const clampInt = (v, lo, fallback) => {
  let d = Math.floor(Number(v));
  if (!(d >= lo)) return fallback;
  return Math.min(d, 9e15);
};

// ---- the helpers: a = positional arguments, h = hash ----
const helpers = {
  eq: (a) => a[0] === a[1],
  ne: (a) => a[0] !== a[1],
  gt: (a) => Number(a[0]) > Number(a[1]),
  gte: (a) => Number(a[0]) >= Number(a[1]),
  lt: (a) => Number(a[0]) < Number(a[1]),
  lte: (a) => Number(a[0]) <= Number(a[1]),
  and: (a) => a.every(Boolean),
  or: (a) => a.some(Boolean),
  not: (a) => !a[0],
  add: (a) => Number(a[0]) + Number(a[1]),
  subtract: (a) => Number(a[0]) - Number(a[1]),
  len: (a) => {
    const v = a[0];
    if (Array.isArray(v) || typeof v === 'string') return v.length;
    if (v !== null && typeof v === 'object') return Object.keys(v).length;
    return 0;
  },
  truncate: (a) => {
    const t = str(a[0]);
    let k = Math.floor(Number(a[1]));
    if (!(k >= 0)) k = 0;
    const cps = Array.from(t);
    return cps.length <= k ? t : cps.slice(0, k).join('') + '...';
  },
  join: (a) => (Array.isArray(a[0]) ? a[0].map(str).join(a[1] === undefined ? ', ' : str(a[1])) : str(a[0])),
  json: (a) => JSON.stringify(a[0] === undefined ? null : a[0], null, 2),
  default: (a) => (a[0] === undefined || a[0] === null || a[0] === '' ? a[1] : a[0]),
  upper: (a) => str(a[0]).replace(/[a-z]+/g, (m) => m.toUpperCase()),
  lower: (a) => str(a[0]).replace(/[A-Z]+/g, (m) => m.toLowerCase()),
  fence: (a, h) =>
    fence(
      str(a[0]),
      str(h.lang),
      h.budget === undefined ? 16000 : clampInt(h.budget, 64, 64),
      h.focus === undefined || h.focus === null ? 0 : clampInt(h.focus, 1, 0),
    ),
  code: (a, h) => code(str(a[0]), h.max === undefined ? 300 : clampInt(h.max, 1, 300)),
};

function render(c) {
  const hb = Handlebars.create();
  // the log helper calls hb.log (console.info by default), which would
  // write into the JSON this script prints
  hb.log = () => {};
  for (const [name, fn] of Object.entries(helpers)) {
    hb.registerHelper(name, function (...args) {
      const options = args.pop();
      return fn(args, options.hash || {});
    });
  }
  for (const [name, src] of Object.entries(c.partials || {})) hb.registerPartial(name, src);
  return hb.compile(c.template, { noEscape: true })(c.data);
}

const input = fs.readFileSync(process.argv[2] || 0, 'utf8');
const cases = JSON.parse(input);
const results = cases.map((c) => {
  try {
    return { ok: true, out: render(c) };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e).split('\n')[0] };
  }
});
process.stdout.write(JSON.stringify(results));
