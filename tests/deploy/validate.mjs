// validate.mjs - checks Kubernetes objects against the real API schemas.
//
// Input: a JSON file holding [{"source": "...", "doc": {...}}, ...].
// Output (stdout): [{"source", "kind", "name", "errors": [...]}, ...].
//
// Core objects (Deployment, Service, ServiceAccount, Role, RoleBinding,
// ConfigMap, PodDisruptionBudget, CustomResourceDefinition, ...) are
// validated by the kubernetes-models package (its compiled OpenAPI schema
// of the Kubernetes API), then checked for unknown fields: kubectl apply
// refuses them (--validate=strict) while the schema alone lets them pass,
// so every key is looked up in the model's TypeScript interface (the same
// generated definitions). Argo Events Sensors have no such package: they
// are checked with ajv against sensor.schema.json (beside this file),
// written from Argo Events' API reference for the fields healer's sensors
// use, with additionalProperties false so a misspelt field fails.
import { createRequire } from "node:module";
import { readFileSync, existsSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const nodeDir = join(here, "..", "node");
const require = createRequire(join(nodeDir, "package.json"));
const modelsDir = dirname(require.resolve("kubernetes-models/package.json"));
const Ajv = require("ajv");

// ---- unknown fields, from the models' .d.ts interfaces ----

const fileCache = new Map();

function dtsPath(spec, fromFile) {
  let p;
  if (spec.startsWith(".")) p = resolve(dirname(fromFile), spec);
  else p = join(nodeDir, "node_modules", spec);
  return p.endsWith(".d.ts") ? p : p + ".d.ts";
}

// Reads one .d.ts: its imports (name -> file), its aliases (exported name ->
// local name), its interfaces (name -> {prop: type text}) and type aliases.
function readDts(file) {
  if (fileCache.has(file)) return fileCache.get(file);
  const text = (existsSync(file) ? readFileSync(file, "utf8") : "")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const info = { file, imports: {}, aliases: {}, interfaces: {}, types: {} };
  for (const m of text.matchAll(/import \{([^}]*)\} from "([^"]+)"/g))
    for (const n of m[1].split(",").map((s) => s.trim()).filter(Boolean))
      info.imports[n] = dtsPath(m[2], file);
  for (const m of text.matchAll(/export \{([^}]*)\};/g))
    for (const part of m[1].split(",")) {
      const [a, b] = part.trim().split(/\s+as\s+/);
      if (b) info.aliases[b] = a;
    }
  for (const m of text.matchAll(/export type (\w+) = ([^;]+);/g)) info.types[m[1]] = m[2].trim();
  for (const m of text.matchAll(/export interface (\w+)(?: extends [\w, ]+)? \{/g)) {
    let i = m.index + m[0].length, depth = 1;
    const start = i;
    while (i < text.length && depth > 0) {
      if (text[i] === "{") depth++;
      else if (text[i] === "}") depth--;
      i++;
    }
    info.interfaces[m[1]] = parseProps(text.slice(start, i - 1));
    if (/extends TypeMeta/.test(m[0])) {
      info.interfaces[m[1]].apiVersion ??= "string";
      info.interfaces[m[1]].kind ??= "string";
    }
  }
  fileCache.set(file, info);
  return info;
}

function parseProps(body) {
  const props = {};
  let i = 0;
  while (i < body.length) {
    const m = /^\s*"([^"]+)"\??:\s*/.exec(body.slice(i));
    if (!m) break;
    i += m[0].length;
    let depth = 0, j = i;
    while (j < body.length && !(depth === 0 && body[j] === ";")) {
      if ("{<(".includes(body[j])) depth++;
      else if ("}>)".includes(body[j])) depth--;
      j++;
    }
    props[m[1]] = body.slice(i, j).trim();
    i = j + 1;
  }
  return props;
}

// Finds the interface or type alias a name denotes, seen from file.
function lookup(name, file) {
  const info = readDts(file);
  if (info.interfaces[name]) return { kind: "iface", props: info.interfaces[name], file };
  if (info.types[name]) return { kind: "type", text: info.types[name], file };
  if (info.aliases[name]) return lookup(info.aliases[name], file);
  if (info.imports[name]) return lookup(name, info.imports[name]);
  return null;
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// Walks value against type text; appends "path: unknown field" errors.
function walk(value, type, file, path, errors, depth = 0) {
  if (depth > 60 || value === null || value === undefined) return;
  type = type.trim();
  let m;
  if ((m = /^Array<(.+)>$/s.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, k) => walk(v, m[1], file, `${path}[${k}]`, errors, depth + 1));
    return;
  }
  if ((m = /^\{\s*\[key: string\]:\s*(.+?);?\s*\}$/s.exec(type))) {
    if (isPlainObject(value))
      for (const [k, v] of Object.entries(value)) walk(v, m[1], file, `${path}.${k}`, errors, depth + 1);
    return;
  }
  if (type.includes("|")) {
    const parts = type.split("|").map((s) => s.trim());
    const arr = parts.find((p) => p.startsWith("Array<"));
    if (Array.isArray(value) && arr) return walk(value, arr, file, path, errors, depth + 1);
    const objs = parts.filter((p) => /^I\w+$/.test(p) && lookup(p, file)?.kind === "iface");
    if (isPlainObject(value) && objs.length === 1) walk(value, objs[0], file, path, errors, depth + 1);
    return;
  }
  if (!/^I\w+$/.test(type)) return;
  // JSONSchemaPropsOrArray / OrBool are opaque in the models (either a
  // schema or a list / a boolean); as an object they are a schema
  if (/JSONSchemaPropsOr(Array|Bool)$/.test(type) && isPlainObject(value))
    type = "IJSONSchemaProps";
  const t = lookup(type, file);
  if (!t) return;
  if (t.kind === "type") return walk(value, t.text, t.file, path, errors, depth + 1);
  // an interface without properties is free-form (JSON, RawExtension)
  if (!isPlainObject(value) || Object.keys(t.props).length === 0) return;
  for (const [k, v] of Object.entries(value)) {
    if (!(k in t.props)) errors.push(`${path || "."}: unknown field '${k}'`);
    else walk(v, t.props[k], t.file, path ? `${path}.${k}` : k, errors, depth + 1);
  }
}

// ---- per object ----

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const sensorSchema = JSON.parse(readFileSync(join(here, "sensor.schema.json"), "utf8"));
const validateSensor = ajv.compile(sensorSchema);

function check(doc) {
  const errors = [];
  if (!isPlainObject(doc)) return ["not an object"];
  const { apiVersion, kind } = doc;
  if (apiVersion === "argoproj.io/v1alpha1" && kind === "Sensor") {
    if (!validateSensor(doc))
      for (const e of validateSensor.errors)
        errors.push(`${e.instancePath || "."}: ${e.message}${e.params?.additionalProperty ? ` '${e.params.additionalProperty}'` : ""}`);
    return errors;
  }
  const base = join(modelsDir, apiVersion || "-", kind || "-");
  if (!existsSync(base + ".js")) return [`no model for ${apiVersion} ${kind}`];
  const Model = require(base + ".js")[kind];
  try {
    new Model(doc).validate();
  } catch (e) {
    errors.push(String(e.message || e));
  }
  walk(doc, "I" + kind, base + ".d.ts", "", errors);
  return errors;
}

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = input.map(({ source, doc }) => ({
  source,
  kind: doc?.kind,
  name: doc?.metadata?.name,
  errors: check(doc),
}));
process.stdout.write(JSON.stringify(results));
