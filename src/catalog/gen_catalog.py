#!/usr/bin/env python3
"""gen_catalog.py - turns rules/catalog.yaml into catalog_data.c: the agent,
category and failure-type tables of src/catalog as static C data, so healer
does no parsing at start-up. Usage: gen_catalog.py CATALOG.yaml OUTPUT.c

Standard library only (the build needs no YAML module): it reads the YAML
subset the data file's header describes - top-level `key: scalar` and
`key:` followed by a block list of flat mappings whose values are scalars
(plain, 'single' or "double" quoted, true/false) or flow lists of scalars -
and stops with FILE:LINE: message on anything else. It also checks what the
tables need to be well-formed (known keys, required fields, references,
duplicates, one default); tests/catalog checks the rest and compares the
tables with what libyaml reads from the same file."""
import re
import sys

AGENT_KEYS = {"id": True, "name": True, "role": True, "github_app": True, "template": True,
              "default": False}
CATEGORY_KEYS = {"name": True, "agent": True, "stays_with_agent": False, "files": False}
TYPE_KEYS = {"name": True, "category": True, "agent": False, "short": True, "domain": True,
             "fix": True, "default": False}
DOMAINS = ("ci", "alert", "runtime")
MAX_AGENTS, MAX_CATEGORIES = 16, 32  # HL_CATALOG_MAX_* in catalog.h


class CatalogError(Exception):
    pass


def fail(path, line, msg):
    raise CatalogError("%s:%d: %s" % (path, line, msg))


def scalar(path, ln, text):
    """One scalar: a quoted string, true/false, or a plain string."""
    t = text.strip()
    if t == "":
        fail(path, ln, "empty value")
    if t[0] == "'":
        if len(t) < 2 or t[-1] != "'":
            fail(path, ln, "unterminated single-quoted string")
        body = t[1:-1]
        if "'" in body.replace("''", ""):
            fail(path, ln, "stray quote in single-quoted string")
        return body.replace("''", "'")
    if t[0] == '"':
        if len(t) < 2 or t[-1] != '"':
            fail(path, ln, "unterminated double-quoted string")
        out, i, body = [], 0, t[1:-1]
        while i < len(body):
            c = body[i]
            if c == "\\":
                if i + 1 >= len(body) or body[i + 1] not in '"\\':
                    fail(path, ln, "only \\\" and \\\\ escapes are supported")
                out.append(body[i + 1])
                i += 2
                continue
            if c == '"':
                fail(path, ln, "unescaped '\"' in double-quoted string")
            out.append(c)
            i += 1
        return "".join(out)
    if t in ("true", "false"):
        return t == "true"
    if t[0] in "[]{},&*!|>%@`#" or ": " in t or " #" in t or t.endswith(":"):
        fail(path, ln, "quote the value %r" % t)
    return t


def flow_list(path, ln, text):
    """['a', "b", c] -> list of strings (no nesting, no commas in items)."""
    t = text.strip()
    inner = t[1:-1].strip()
    if not t.endswith("]"):
        fail(path, ln, "unterminated flow list")
    if inner == "":
        return []
    items, cur, quote = [], "", None
    for c in inner:
        if quote:
            cur += c
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            cur += c
        elif c == ",":
            items.append(cur)
            cur = ""
        elif c in "[]{}":
            fail(path, ln, "nested collections are not supported")
        else:
            cur += c
    if quote:
        fail(path, ln, "unterminated string in flow list")
    items.append(cur)
    out = []
    for it in items:
        v = scalar(path, ln, it)
        if not isinstance(v, str):
            fail(path, ln, "flow list items must be strings")
        out.append(v)
    return out


def value(path, ln, text):
    return flow_list(path, ln, text) if text.strip().startswith("[") else scalar(path, ln, text)


KEY = re.compile(r"^([a-z_]+):(?: (.*))?$")


def parse(path, text):
    """-> {top key: scalar or [ (line, {key: (line, value)}) ]}"""
    doc, lists = {}, None
    cur = None
    for ln, raw in enumerate(text.split("\n"), 1):
        if "\t" in raw:
            fail(path, ln, "tab character (indent with spaces)")
        line = raw.rstrip()
        if line.strip() == "" or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" ") and not line.startswith("-"):
            m = KEY.match(line)
            if not m:
                fail(path, ln, "expected 'key: value' or 'key:'")
            if m.group(1) in doc:
                fail(path, ln, "duplicate key '%s'" % m.group(1))
            if m.group(2) is None or m.group(2).strip() == "":
                lists = doc[m.group(1)] = []
            else:
                doc[m.group(1)] = value(path, ln, m.group(2))
                lists = None
            cur = None
            continue
        if lists is None:
            fail(path, ln, "unexpected indented line")
        if line.startswith("- "):
            body, cur = line[2:], {}
            lists.append((ln, cur))
        elif line.startswith("  ") and not line.startswith("   ") and cur is not None:
            body = line[2:]
        else:
            fail(path, ln, "list items are '- key: value' then '  key: value'")
        m = KEY.match(body)
        if not m or m.group(2) is None:
            fail(path, ln, "expected 'key: value'")
        if m.group(1) in cur:
            fail(path, ln, "duplicate key '%s'" % m.group(1))
        cur[m.group(1)] = (ln, value(path, ln, m.group(2)))
    return doc


def check_keys(path, ln, item, keys, what):
    for k, (kl, _) in item.items():
        if k not in keys:
            fail(path, kl, "unknown %s key '%s'" % (what, k))
    for k, req in keys.items():
        if req and k not in item:
            fail(path, ln, "%s needs '%s'" % (what, k))


def get(item, key, default=None):
    return item[key][1] if key in item else default


def string(path, item, key, what):
    v = get(item, key)
    if not isinstance(v, str) or v == "":
        fail(path, item[key][0], "%s '%s' must be a non-empty string" % (what, key))
    return v


def boolean(path, item, key):
    v = get(item, key, False)
    if not isinstance(v, bool):
        fail(path, item[key][0], "'%s' must be true or false" % key)
    return v


def c_string(s):
    out = []
    for ch in s.encode("utf-8"):
        c = chr(ch)
        out.append(c if 32 <= ch < 127 and c not in '"\\?' else "\\%03o" % ch)
    return '"%s"' % "".join(out)


def build(path, doc):
    for k in doc:
        if k not in ("version", "agents", "categories", "failure_types"):
            fail(path, 1, "unknown top-level key '%s'" % k)
    if doc.get("version") != "1":
        fail(path, 1, "'version' must be 1")
    for k in ("agents", "categories", "failure_types"):
        if not isinstance(doc.get(k), list) or not doc[k]:
            fail(path, 1, "'%s' must be a non-empty list" % k)

    agents, agent_ix = [], {}
    for ln, it in doc["agents"]:
        check_keys(path, ln, it, AGENT_KEYS, "agent")
        a = {k: string(path, it, k, "agent") for k in AGENT_KEYS if k != "default"}
        a["default"] = boolean(path, it, "default")
        if a["id"].lower() in agent_ix:
            fail(path, ln, "duplicate agent '%s'" % a["id"])
        agent_ix[a["id"].lower()] = len(agents)
        agents.append(a)
    if len(agents) > MAX_AGENTS:
        fail(path, doc["agents"][0][0], "more than %d agents" % MAX_AGENTS)
    if sum(a["default"] for a in agents) != 1:
        fail(path, doc["agents"][0][0], "exactly one agent must be 'default: true'")

    cats, cat_ix = [], {}
    for ln, it in doc["categories"]:
        check_keys(path, ln, it, CATEGORY_KEYS, "category")
        c = {"name": string(path, it, "name", "category"),
             "stays": boolean(path, it, "stays_with_agent"),
             "files": get(it, "files", [])}
        ag = string(path, it, "agent", "category")
        if ag.lower() not in agent_ix:
            fail(path, it["agent"][0], "category '%s': unknown agent '%s'" % (c["name"], ag))
        if not isinstance(c["files"], list):
            fail(path, it["files"][0], "'files' must be a list of globs")
        c["agent"] = agent_ix[ag.lower()]
        if c["name"] in cat_ix:
            fail(path, ln, "duplicate category '%s'" % c["name"])
        cat_ix[c["name"]] = len(cats)
        cats.append(c)

    if len(cats) > MAX_CATEGORIES:
        fail(path, doc["categories"][0][0], "more than %d categories" % MAX_CATEGORIES)
    types, seen = [], set()
    for ln, it in doc["failure_types"]:
        check_keys(path, ln, it, TYPE_KEYS, "failure type")
        t = {k: string(path, it, k, "failure type") for k in ("name", "category", "short",
                                                               "domain", "fix")}
        t["default"] = boolean(path, it, "default")
        if t["name"] in seen:
            fail(path, ln, "duplicate failure type '%s'" % t["name"])
        seen.add(t["name"])
        if t["category"] not in cat_ix:
            fail(path, it["category"][0], "failure type '%s': unknown category '%s'" %
                 (t["name"], t["category"]))
        if t["domain"] not in DOMAINS:
            fail(path, it["domain"][0], "failure type '%s': domain must be one of %s" %
                 (t["name"], ", ".join(DOMAINS)))
        t["category"] = cat_ix[t["category"]]
        t["agent"] = cats[t["category"]]["agent"]
        if "agent" in it:
            ag = string(path, it, "agent", "failure type")
            if ag.lower() not in agent_ix:
                fail(path, it["agent"][0], "failure type '%s': unknown agent '%s'" %
                     (t["name"], ag))
            t["agent"] = agent_ix[ag.lower()]
        types.append(t)
    if sum(t["default"] for t in types) != 1:
        fail(path, doc["failure_types"][0][0], "exactly one failure type must be "
             "'default: true'")
    return agents, cats, types


def emit(src, agents, cats, types):
    o = ["/* Generated from %s by gen_catalog.py; do not edit. */\n" % src.split("/")[-1],
         '#include "catalog/catalog_int.h"\n\n']
    for i, c in enumerate(cats):
        if c["files"]:
            o.append("static const char *const category_files_%d[] = {\n" % i)
            o.extend("\t%s,\n" % c_string(g) for g in c["files"])
            o.append("\tNULL,\n};\n")
        else:
            o.append("static const char *const category_files_%d[] = { NULL };\n" % i)
    o.append("\nconst struct hl_catalog_agent hl_catalog_agent_table[] = {\n")
    for i, a in enumerate(agents):
        o.append("\t{ %s, %s, %s, %s, %s, %s, %d },\n" % (
            c_string(a["id"]), c_string(a["name"]), c_string(a["role"]),
            c_string(a["github_app"]), c_string(a["template"]),
            "true" if a["default"] else "false", i))
    o.append("};\nconst size_t hl_catalog_agent_table_len = %d;\n\n" % len(agents))
    o.append("const struct hl_catalog_category hl_catalog_category_table[] = {\n")
    for i, c in enumerate(cats):
        o.append("\t{ %s, &hl_catalog_agent_table[%d], %s, category_files_%d, %d },\n" % (
            c_string(c["name"]), c["agent"], "true" if c["stays"] else "false", i, i))
    o.append("};\nconst size_t hl_catalog_category_table_len = %d;\n\n" % len(cats))
    o.append("const struct hl_catalog_type hl_catalog_type_table[] = {\n")
    for i, t in enumerate(types):
        o.append("\t{ %s, &hl_catalog_category_table[%d], &hl_catalog_agent_table[%d],\n"
                 "\t  %s,\n\t  %s,\n\t  HL_CATALOG_DOMAIN_%s, %s, %d },\n" % (
                     c_string(t["name"]), t["category"], t["agent"], c_string(t["short"]),
                     c_string(t["fix"]), t["domain"].upper(),
                     "true" if t["default"] else "false", i))
    o.append("};\nconst size_t hl_catalog_type_table_len = %d;\n" % len(types))
    return "".join(o)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: gen_catalog.py CATALOG.yaml OUTPUT.c\n")
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    try:
        with open(src, encoding="utf-8") as f:
            text = f.read()
        agents, cats, types = build(src, parse(src, text))
    except CatalogError as e:
        sys.stderr.write("gen_catalog: %s\n" % e)
        return 1
    with open(dst, "w", encoding="utf-8") as f:
        f.write(emit(src, agents, cats, types))
    return 0


if __name__ == "__main__":
    sys.exit(main())
