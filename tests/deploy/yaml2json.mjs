// yaml2json.mjs - parses YAML files the way Kubernetes and Helm read them
// (YAML 1.1: 0440 is octal, yes/no are booleans) and prints
// {"<file>": [document, ...], ...} as JSON. Empty documents are dropped;
// a syntax error or a duplicate key fails with the file and line.
// Usage: node yaml2json.mjs FILE... (or - for standard input, named "-")
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "node", "package.json"));
const YAML = require("yaml");

const out = {};
let failed = false;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true });
  out[file] = [];
  for (const d of docs) {
    if (d.errors.length) {
      failed = true;
      for (const e of d.errors) process.stderr.write(`${file}: ${e.message}\n`);
      continue;
    }
    const v = d.toJS({ maxAliasCount: 100 });
    if (v !== null && v !== undefined) out[file].push(v);
  }
}
// exitCode, not exit(): exit() may cut a pipe's output past 64 KiB
process.stdout.write(JSON.stringify(out));
process.exitCode = failed ? 1 : 0;
