"""helmlite.py - renders the healer chart (deploy/helm/healer) without helm.

It implements the part of Go's text/template and Helm that the chart's
templates use, and refuses everything else, so a template that strays from
the subset fails the test instead of rendering differently from helm:

  text and actions {{ ... }} with Go's trim markers ({{- and -}} remove the
  white space, newlines included, before / after the action) and comments
  {{/* ... */}};
  {{ if PIPELINE }} ... [{{ else }} ...] {{ end }} (Go's truth: false, 0,
  nil, "" and empty collections are false);
  {{ range [[$k,] $x :=] PIPELINE }} ... [{{ else }} ...] {{ end }} over a
  list or a map (nil: no iteration; a string or a number is refused): the
  body once per element, a map's in sorted key order, with `.` (and $x)
  the element and $k its index or key; the else part when there is none;
  pipelines of commands separated by '|', the previous result passed as
  the last argument;
  operands: .Values.a.b, .Release.Name / .Release.Namespace, .Chart.Name /
  .Chart.Version / .Chart.AppVersion, .Template.BasePath ("<chart>/templates"),
  the root context `.`, the same from the root as $ ($.Release.Name, where
  range has moved `.`), the variable range declared ($x), "string" and
  integer literals, and a parenthesized pipeline (a field of a `.` that is
  not the root is refused, as Go refuses a field of a string);
  functions: quote, default, toYaml, nindent, indent, int and int64
  (Sprig's: a number truncated, a string parsed, anything else 0; the
  result is a Go integer, printed with all its digits), kindIs (Go's kind
  of a value: "string", "float64" for a number of the values, "int" for an
  integer literal or int's result, "bool", "map", "slice", "invalid" for
  none), lt (on two ints only: Go refuses to compare helm's float64 with an
  int, so the chart compares values through int), fail (stops the
  rendering with its message, raised as TemplateFail), print (Go's
  fmt.Sprint: operands joined, a space between two that are not strings),
  sha256sum (Sprig: the hex SHA-256 of a string), include NAME . (another
  template file of the chart, "<chart>/templates/<file>", rendered with
  the root context, as helm names and renders it; no defined templates),
  splitList SEP S (Go's strings.Split: "" gives [""]), nospace (Sprig:
  every white space removed), uniq (Sprig: a list without repeats, first
  ones kept, in order), and / or (Go: the first empty / non-empty
  argument, else the last),
  ne (Go: two values of one basic kind compared; other kinds refused).

A .Values path that does not exist is an error (helm would print nothing).
Values come in as JSON-like Python objects (tests/deploy/yaml2json.mjs
reads values.yaml as helm does, YAML 1.1).
"""
import decimal
import hashlib
import json
import re


class TemplateError(Exception):
    pass


class GoInt(int):
    """A Go integer (a template's integer literal, Sprig's int/int64):
    printed with all its digits, where a number of the values (a float64)
    prints in %e form from a million on."""


class TemplateFail(TemplateError):
    """{{ fail "..." }}: helm stops and prints the message."""


def _go_number(v):
    """A number as Go's %v prints a float64 (helm reads every number in
    values as float64): shortest digits, %e form when the exponent is below
    -4 or at least 6 (so 1000000 prints as 1e+06, as helm does)."""
    f = float(v)
    if f == 0:
        return "0"
    sign, digits, exponent = decimal.Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    exp = len(ds) + exponent - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return neg + format(decimal.Decimal(repr(abs(f))).normalize(), "f")


def _go_format(v):
    """A value as text/template prints it (helm turns <no value> into "")."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, GoInt):
        return str(int(v))
    if isinstance(v, (int, float)):
        return _go_number(v)
    if isinstance(v, (dict, list)):
        raise TemplateError("printing a map or list needs toYaml")
    return str(v)


def _truth(v):
    """Go's truth: false, 0, nil, "" and empty collections are false."""
    if v is None or isinstance(v, bool):
        return bool(v)
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, dict, list)):
        return len(v) > 0
    return True


def _empty(v):
    """Sprig's empty (used by default)."""
    return not _truth(v)


def _quote_go(s):
    """Go's %q for the strings the chart quotes (ASCII printable, plus the
    usual escapes)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _go_format(v)
    return json.dumps(v)  # a JSON string is a YAML double-quoted scalar


def to_yaml(v, indent=0):
    """Block YAML, keys sorted (as sigs.k8s.io/yaml writes them), no
    trailing newline (helm's toYaml trims it)."""
    pad = " " * indent
    lines = []
    if isinstance(v, dict):
        if not v:
            return pad + "{}"
        for k in sorted(v):
            x = v[k]
            if isinstance(x, (dict, list)) and x:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(x, indent + 2 if isinstance(x, dict) else indent))
            elif isinstance(x, (dict, list)):
                lines.append(f"{pad}{k}: {'{}' if isinstance(x, dict) else '[]'}")
            else:
                lines.append(f"{pad}{k}: {_yaml_scalar(x)}")
    elif isinstance(v, list):
        if not v:
            return pad + "[]"
        for x in v:
            if isinstance(x, (dict, list)) and x:
                inner = to_yaml(x, indent + 2).split("\n")
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(x)}")
    else:
        return pad + _yaml_scalar(v)
    return "\n".join(lines)


def _indent(n, s):
    return "\n".join(" " * n + line for line in str(s).split("\n"))


def _to_int(v):
    if isinstance(v, bool):
        return GoInt(v)
    if isinstance(v, (int, float)):
        return GoInt(v)
    if isinstance(v, str):
        try:
            return GoInt(int(v.strip(), 10))
        except ValueError:
            try:
                return GoInt(float(v))
            except ValueError:
                return GoInt(0)
    return GoInt(0)


def _kind(v):
    if v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, GoInt):
        return "int"
    if isinstance(v, (int, float)):
        return "float64"
    if isinstance(v, str):
        return "string"
    return "map" if isinstance(v, dict) else "slice"


def _lt(a, b):
    if not all(isinstance(x, GoInt) for x in (a, b)):
        raise TemplateError(f"lt: incompatible types for comparison ({a!r}, {b!r})")
    return a < b


def _ne(a, b):
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka in ("map", "slice", "invalid"):
        raise TemplateError(f"ne: incompatible types for comparison ({a!r}, {b!r})")
    return a != b


def _and(*a):
    if not a:
        raise TemplateError("and: wrong number of args")
    for x in a:
        if not _truth(x):
            return x
    return a[-1]


def _or(*a):
    if not a:
        raise TemplateError("or: wrong number of args")
    for x in a:
        if _truth(x):
            return x
    return a[-1]


def _split_list(sep, s):
    if not isinstance(sep, str) or not isinstance(s, str):
        raise TemplateError("splitList: not strings")
    return s.split(sep)


def _nospace(s):
    # Go's unicode.IsSpace: Python's isspace() less the four separators
    # (0x1c-0x1f) Go does not count
    return "".join(c for c in _go_format(s) if not (c.isspace() and c not in "\x1c\x1d\x1e\x1f"))


def _uniq(v):
    if not isinstance(v, list):
        raise TemplateError("uniq: not a list")
    out = []
    for x in v:
        if x not in out:
            out.append(x)
    return out


def _fail(msg):
    raise TemplateFail(str(msg))


class _Root(dict):
    """The root context `.` (a map of Values, Release, Chart, Template)."""


def _print(*a):
    out = []
    for i, x in enumerate(a):
        if i and not isinstance(x, str) and not isinstance(a[i - 1], str):
            out.append(" ")
        out.append(_go_format(x))
    return "".join(out)


def _sha256sum(s):
    if not isinstance(s, str):
        raise TemplateError("sha256sum: not a string")
    return hashlib.sha256(s.encode()).hexdigest()


FUNCS = {
    "quote": lambda *a: " ".join(_quote_go(_go_format(x)) for x in a if x is not None),
    "default": lambda d, v=None: d if _empty(v) else v,
    "toYaml": lambda v: to_yaml(v),
    "nindent": lambda n, s: "\n" + _indent(int(n), s),
    "indent": lambda n, s: _indent(int(n), s),
    "int": _to_int,
    "int64": _to_int,
    "kindIs": lambda k, v: _kind(v) == k,
    "lt": _lt,
    "fail": _fail,
    "print": _print,
    "sha256sum": _sha256sum,
    "splitList": _split_list,
    "nospace": _nospace,
    "uniq": _uniq,
    "and": _and,
    "or": _or,
    "ne": _ne,
}


def _tokens(cmd):
    """Words, "strings" and (parenthesized pipelines), one level deep."""
    return re.findall(r'"(?:[^"\\]|\\.)*"|\((?:[^()"]|"(?:[^"\\]|\\.)*")*\)|[^\s()]+',
                      cmd)


def _split_pipe(text):
    parts, cur, q, depth = [], [], False, 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"' and (i == 0 or text[i - 1] != "\\"):
            q = not q
        if not q and c in "()":
            depth += 1 if c == "(" else -1
        if c == "|" and not q and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts]


class Renderer:
    def __init__(self, values, release_name, namespace, chart, templates=None):
        """templates: {file name in templates/: its text}, for include."""
        self.ctx = _Root({
            "Values": values,
            "Release": {"Name": release_name, "Namespace": namespace, "Service": "Helm"},
            "Chart": {"Name": chart["name"], "Version": chart["version"],
                      "AppVersion": chart.get("appVersion", "")},
            "Template": {"BasePath": f"{chart['name']}/templates"},
        })
        self.templates = {f"{chart['name']}/templates/{f}": t
                          for f, t in (templates or {}).items()}
        self.values_used = set()
        self.including = []
        self.dot = self.ctx  # `.`: the root, or range's element
        self.vars = {}       # range's variable

    def include(self, name, ctx):
        if not isinstance(ctx, _Root):
            raise TemplateError("include: only the root context . is supported")
        if name not in self.templates:
            raise TemplateError(f"include: no template {name!r}")
        if name in self.including:
            raise TemplateError(f"include: {name!r} includes itself")
        self.including.append(name)
        try:
            return self.render(self.templates[name])
        finally:
            self.including.pop()

    def operand(self, tok):
        if tok == ".":
            return self.dot
        if tok == "$":
            return self.ctx
        if re.fullmatch(r"\$\w+", tok):
            if tok[1:] not in self.vars:
                raise TemplateError(f"undefined variable {tok}")
            return self.vars[tok[1:]]
        if tok.startswith("$.") and len(tok) > 2:
            tok = tok[1:]
        elif tok.startswith(".") and self.dot is not self.ctx:
            raise TemplateError(f"{tok}: a field of {self.dot!r}, not of the root")
        if tok.startswith("("):
            return self.pipeline(tok[1:-1])
        if tok.startswith('"'):
            return json.loads(tok)
        if re.fullmatch(r"-?\d+", tok):
            return GoInt(tok)
        if tok in ("true", "false"):
            return tok == "true"
        if tok.startswith("."):
            parts = tok[1:].split(".")
            if parts[0] not in self.ctx:
                raise TemplateError(f"unsupported field {tok}")
            v = self.ctx
            for i, p in enumerate(parts):
                if not isinstance(v, dict) or p not in v:
                    raise TemplateError(f"{tok}: no such value")
                v = v[p]
            if parts[0] == "Values":
                self.values_used.add(".".join(parts[1:]))
            return v
        raise TemplateError(f"unsupported operand {tok!r}")

    def pipeline(self, text):
        result, first = None, True
        for cmd in _split_pipe(text):
            bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', cmd)
            if not re.fullmatch(r"[^()]*(?:\([^()]*\)[^()]*)*", bare):
                raise TemplateError(f"unbalanced or nested parentheses in {cmd!r}")
            toks = _tokens(cmd)
            if not toks:
                raise TemplateError(f"empty command in {text!r}")
            if toks[0] in FUNCS or toks[0] == "include":
                args = [self.operand(t) for t in toks[1:]]
                if not first:
                    args.append(result)
                fn = self.include if toks[0] == "include" else FUNCS[toks[0]]
                try:
                    result = fn(*args)
                except TypeError as e:
                    raise TemplateError(f"{toks[0]}: {e}")
            elif len(toks) == 1 and first:
                result = self.operand(toks[0])
            else:
                raise TemplateError(f"unsupported command {cmd!r}")
            first = False
        return result

    def parse(self, src):
        """Splits src into text and actions, applying the trim markers."""
        items, i = [], 0
        while True:
            j = src.find("{{", i)
            if j < 0:
                items.append(("text", src[i:]))
                break
            k = src.find("}}", j)
            if k < 0:
                raise TemplateError("unclosed action")
            items.append(("text", src[i:j]))
            inner = src[j + 2:k]
            ltrim = inner.startswith("- ")
            rtrim = inner.endswith(" -")
            if inner.startswith("-") and not ltrim or inner.endswith("-") and not rtrim:
                raise TemplateError(f"a trim marker needs a space: {{{{{inner}}}}}")
            if ltrim:
                inner = inner[2:]
                items[-1] = ("text", items[-1][1].rstrip(" \t\r\n"))
            if rtrim:
                inner = inner[:-2]
            items.append(("action", inner.strip(), rtrim))
            i = k + 2
            if rtrim:
                while i < len(src) and src[i] in " \t\r\n":
                    i += 1
        return items

    def render(self, src):
        items = self.parse(src)
        out, pos = [], [0]

        def block(emit):
            while pos[0] < len(items):
                it = items[pos[0]]
                pos[0] += 1
                if it[0] == "text":
                    if emit:
                        out.append(it[1])
                    continue
                act = it[1]
                if act.startswith("/*"):
                    if not act.endswith("*/"):
                        raise TemplateError("bad comment")
                    continue
                word = act.split(None, 1)[0] if act else ""
                if word in ("end", "else"):
                    return word
                if word == "if":
                    cond = self.pipeline(act[2:]) if emit else None
                    end = block(emit and _truth(cond))
                    if end == "else":
                        end = block(emit and not _truth(cond))
                    if end != "end":
                        raise TemplateError("if without end")
                    continue
                if word == "range":
                    m = re.fullmatch(r"range\s+(?:(?:\$(\w+)\s*,\s*)?\$(\w+)\s*:=\s*)?(\S.*)",
                                     act, re.S)
                    if not m:
                        raise TemplateError(f"unsupported range {act!r}")
                    seq = self.pipeline(m.group(3)) if emit else None
                    if isinstance(seq, _Root) or \
                            seq is not None and not isinstance(seq, (list, dict)):
                        raise TemplateError(f"range can't iterate over {seq!r}")
                    # (index or key, element): a map's in sorted key order
                    seq = sorted(seq.items()) if isinstance(seq, dict) else \
                        list(enumerate(seq or []))
                    start, end = pos[0], None
                    if not seq:
                        end = block(False)
                        if end == "else":
                            end = block(emit)
                    else:
                        saved = (self.dot, dict(self.vars))
                        for k, x in seq:
                            pos[0] = start
                            self.dot = x
                            if m.group(1):
                                self.vars[m.group(1)] = GoInt(k) if isinstance(k, int) else k
                            if m.group(2):
                                self.vars[m.group(2)] = x
                            end = block(True)
                        self.dot, self.vars = saved
                        if end == "else":
                            end = block(False)
                    if end != "end":
                        raise TemplateError("range without end")
                    continue
                if word in ("with", "define", "template", "block") or \
                        re.match(r"\$\w*\s*:?=", act):
                    raise TemplateError(f"unsupported action {act!r}")
                if emit:
                    out.append(_go_format(self.pipeline(act)))
            return None

        # a template (an included one too) starts at the root, with no
        # variables; the caller's are back after it, or after an error
        saved = (self.dot, self.vars)
        self.dot, self.vars = self.ctx, {}
        try:
            if block(True) is not None:
                raise TemplateError("unexpected end/else")
        finally:
            self.dot, self.vars = saved
        return "".join(out)


def value_paths(values, prefix=""):
    """Every path (a.b.c) in values, leaves and inner maps."""
    out = set()
    if isinstance(values, dict):
        for k, v in values.items():
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= value_paths(v, p)
    return out
