/*
 * parse.c - the template lexer, parser and whitespace control.
 *
 * The lexer follows handlebars.js' handlebars.l rule by rule (first match
 * wins, as jison does), the recursive-descent parser accepts the language of
 * handlebars.yy minus the constructs healer does not support (which are
 * parse errors), and whitespace control is a transcription of
 * compiler/whitespace-control.js: `~` strips and standalone lines are applied
 * to the content nodes once, at compile time. Errors are
 * "name:line:col: message" with 1-based line and column.
 */
#include "tmpl/tmpl_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok_type {
	T_CONTENT,
	T_COMMENT,
	T_OPEN,
	T_OPEN_UNESCAPED,
	T_OPEN_BLOCK,
	T_OPEN_ENDBLOCK,
	T_OPEN_INVERSE,
	T_OPEN_INVERSE_CHAIN,
	T_INVERSE,
	T_OPEN_PARTIAL,
	T_CLOSE,
	T_CLOSE_UNESCAPED,
	T_OPEN_SEXPR,
	T_CLOSE_SEXPR,
	T_EQUALS,
	T_ID,
	T_SEP,
	T_STRING,
	T_NUMBER,
	T_BOOLEAN,
	T_UNDEFINED,
	T_NULL,
	T_DATA,
	T_EOF,
};

static const char *const tok_names[] = {
	"text",   "comment",  "'{{'",        "'{{{'",  "'{{#'",     "'{{/'",
	"'{{^'",  "'{{else'", "'{{else}}'",  "'{{>'",  "'}}'",      "'}}}'",
	"'('",    "')'",      "'='",         "name",   "separator", "string",
	"number", "boolean",  "'undefined'", "'null'", "'@'",       "end of template",
};

struct tok {
	enum tok_type type;
	size_t off, len; /* raw text */
	char *val;       /* processed text (content, id, string) */
	size_t vlen;
	bool sopen, sclose;
	int line, col;
};

struct parser {
	const char *name;
	const char *src;
	size_t n;
	struct tok *toks;
	size_t ntok, cap;
	size_t pos; /* parser cursor */
	/* incremental line/column tracking */
	size_t lc_off;
	int lc_line, lc_col;
	struct hl_err *err;
	int rc;
	int nest; /* block and subexpression nesting, bounded */
};

#define PARSE_MAX_NEST 100

size_t
tmpl_js_space(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (n == 0)
		return 0;
	if (u[0] == ' ' || (u[0] >= 0x09 && u[0] <= 0x0d))
		return 1;
	if (u[0] < 0x80)
		return 0;
	if (n >= 2 && u[0] == 0xc2 && u[1] == 0xa0)
		return 2; /* U+00A0 */
	if (n < 3)
		return 0;
	if (u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80)
		return 3; /* U+1680 */
	if (u[0] == 0xe2 && u[1] == 0x80 &&
	    ((u[2] >= 0x80 && u[2] <= 0x8a) || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf))
		return 3; /* U+2000..200A, 2028, 2029, 202F */
	if (u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f)
		return 3; /* U+205F */
	if (u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80)
		return 3; /* U+3000 */
	if (u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf)
		return 3; /* U+FEFF */
	return 0;
}

/* JS line terminators, which `.` does not match: \n \r U+2028 U+2029. */
static size_t
js_line_term(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (n && (u[0] == '\n' || u[0] == '\r'))
		return 1;
	if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9))
		return 3;
	return 0;
}

static void
line_col(struct parser *p, size_t off, int *line, int *col)
{
	size_t i;

	if (off < p->lc_off) {
		p->lc_off = 0;
		p->lc_line = 1;
		p->lc_col = 1;
	}
	for (i = p->lc_off; i < off && i < p->n; i++) {
		if (p->src[i] == '\n') {
			p->lc_line++;
			p->lc_col = 1;
		} else if (((unsigned char)p->src[i] & 0xc0) != 0x80) {
			p->lc_col++;
		}
	}
	p->lc_off = off;
	*line = p->lc_line;
	*col = p->lc_col;
}

static int perr_at(struct parser *p, size_t off, const char *fmt, ...) HL_PRINTF(3, 4);

static int
perr_at(struct parser *p, size_t off, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	int line, col;

	if (p->rc)
		return p->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line_col(p, off, &line, &col);
	p->rc = hl_err_set(p->err, HL_EPARSE, "%s:%d:%d: %s", p->name, line, col, msg);
	return p->rc;
}

static int
perr_tok(struct parser *p, const struct tok *t, const char *msg)
{
	if (p->rc)
		return p->rc;
	p->rc = hl_err_set(p->err, HL_EPARSE, "%s:%d:%d: %s", p->name, t->line, t->col, msg);
	return p->rc;
}

static int
oom(struct parser *p)
{
	if (!p->rc)
		p->rc = hl_err_set(p->err, HL_ENOMEM, "%s: out of memory", p->name);
	return p->rc;
}

static struct tok *
push_tok(struct parser *p, enum tok_type type, size_t off, size_t len)
{
	struct tok *t;

	if (p->ntok == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 64;
		struct tok *nt = realloc(p->toks, ncap * sizeof(*nt));
		if (!nt) {
			oom(p);
			return NULL;
		}
		p->toks = nt;
		p->cap = ncap;
	}
	t = &p->toks[p->ntok++];
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->off = off;
	t->len = len;
	line_col(p, off, &t->line, &t->col);
	return t;
}

static bool
starts(const struct parser *p, size_t i, const char *lit)
{
	size_t k = strlen(lit);
	return i + k <= p->n && memcmp(p->src + i, lit, k) == 0;
}

static size_t
skip_ws(const struct parser *p, size_t i)
{
	size_t k;
	while (i < p->n && (k = tmpl_js_space(p->src + i, p->n - i)) > 0)
		i += k;
	return i;
}

static bool
is_id_char(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];

	if (tmpl_js_space(s, n))
		return false;
	if (c >= 0x80)
		return true;
	if (c < 0x20 || c == 0x7f)
		return true; /* control characters are not excluded by the class */
	return !strchr("!\"#%&'()*+,./;<=>@[\\]^`{|}~", c);
}

/* LOOKAHEAD = [=~}\s\/.)|] */
static bool
id_lookahead(const struct parser *p, size_t i)
{
	if (i >= p->n)
		return false;
	if (tmpl_js_space(p->src + i, p->n - i))
		return true;
	return strchr("=~}/.)|", p->src[i]) != NULL;
}

/* LITERAL_LOOKAHEAD = [~}\s)] */
static bool
lit_lookahead(const struct parser *p, size_t i)
{
	if (i >= p->n)
		return false;
	if (tmpl_js_space(p->src + i, p->n - i))
		return true;
	return strchr("~})", p->src[i]) != NULL;
}

static int
set_val(struct parser *p, struct tok *t, const char *s, size_t n)
{
	t->val = malloc(n + 1);
	if (!t->val)
		return oom(p);
	memcpy(t->val, s, n);
	t->val[n] = '\0';
	t->vlen = n;
	return 0;
}

/* A quoted string '"' ('\\"' | [^"])* '"' with regex backtracking: the end is
 * the first unescaped quote, else the quote of the last escape. */
static size_t
scan_delimited(const struct parser *p, size_t i, char close)
{
	size_t last_esc = 0;
	bool have_esc = false;

	for (i = i + 1; i < p->n;) {
		if (p->src[i] == '\\' && i + 1 < p->n && p->src[i + 1] == close) {
			have_esc = true;
			last_esc = i + 1;
			i += 2;
		} else if (p->src[i] == close) {
			return i + 1;
		} else {
			i++;
		}
	}
	return have_esc ? last_esc + 1 : 0;
}

/* Lexes the inside of a mustache, from i (just after the opener). */
static int
lex_mu(struct parser *p, size_t *ip)
{
	size_t i = *ip, j, k;
	struct tok *t;

	for (;;) {
		if (p->rc)
			return p->rc;
		if (i >= p->n)
			return perr_at(p, i, "unclosed mustache: expected '}}'");
		if (starts(p, i, "{{"))
			return perr_at(p, i, "unexpected '{{' inside a mustache");
		if (p->src[i] == '(') {
			if (!push_tok(p, T_OPEN_SEXPR, i, 1))
				return p->rc;
			i++;
			continue;
		}
		if (p->src[i] == ')') {
			if (!push_tok(p, T_CLOSE_SEXPR, i, 1))
				return p->rc;
			i++;
			continue;
		}
		if (starts(p, i, "}}}}"))
			return perr_at(p, i, "raw blocks are not supported");
		if (p->src[i] == '=') {
			if (!push_tok(p, T_EQUALS, i, 1))
				return p->rc;
			i++;
			continue;
		}
		if (starts(p, i, "..")) {
			if (!(t = push_tok(p, T_ID, i, 2)) || set_val(p, t, "..", 2))
				return p->rc;
			i += 2;
			continue;
		}
		if (p->src[i] == '.' && id_lookahead(p, i + 1)) {
			if (!(t = push_tok(p, T_ID, i, 1)) || set_val(p, t, ".", 1))
				return p->rc;
			i++;
			continue;
		}
		if (p->src[i] == '.' || p->src[i] == '/') {
			if (!(t = push_tok(p, T_SEP, i, 1)) || set_val(p, t, p->src + i, 1))
				return p->rc;
			i++;
			continue;
		}
		if ((k = tmpl_js_space(p->src + i, p->n - i)) > 0) {
			i += k;
			continue;
		}
		if (starts(p, i, "}~}}") || starts(p, i, "}}}")) {
			k = p->src[i + 1] == '~' ? 4 : 3;
			if (!(t = push_tok(p, T_CLOSE_UNESCAPED, i, k)))
				return p->rc;
			t->sclose = k == 4;
			*ip = i + k;
			return 0;
		}
		if (starts(p, i, "~}}") || starts(p, i, "}}")) {
			k = p->src[i] == '~' ? 3 : 2;
			if (!(t = push_tok(p, T_CLOSE, i, k)))
				return p->rc;
			t->sclose = k == 3;
			*ip = i + k;
			return 0;
		}
		if (p->src[i] == '"' || p->src[i] == '\'') {
			char q = p->src[i];
			size_t e = scan_delimited(p, i, q), a, b, w;
			if (!e)
				return perr_at(p, i, "unterminated string");
			if (!(t = push_tok(p, T_STRING, i, e - i)))
				return p->rc;
			t->val = malloc(e - i);
			if (!t->val)
				return oom(p);
			for (a = i + 1, b = e - 1, w = 0; a < b; a++) {
				if (p->src[a] == '\\' && a + 1 < b && p->src[a + 1] == q)
					continue;
				t->val[w++] = p->src[a];
			}
			t->val[w] = '\0';
			t->vlen = w;
			i = e;
			continue;
		}
		if (p->src[i] == '@') {
			if (!push_tok(p, T_DATA, i, 1))
				return p->rc;
			i++;
			continue;
		}
		{
			static const struct {
				const char *w;
				enum tok_type t;
			} lits[] = { { "true", T_BOOLEAN },
				     { "false", T_BOOLEAN },
				     { "undefined", T_UNDEFINED },
				     { "null", T_NULL } };
			size_t li;
			bool hit = false;
			for (li = 0; li < sizeof(lits) / sizeof(lits[0]); li++) {
				size_t wl = strlen(lits[li].w);
				if (starts(p, i, lits[li].w) && lit_lookahead(p, i + wl)) {
					if (!(t = push_tok(p, lits[li].t, i, wl)) ||
					    set_val(p, t, p->src + i, wl))
						return p->rc;
					i += wl;
					hit = true;
					break;
				}
			}
			if (hit)
				continue;
		}
		/* NUMBER: -?[0-9]+(\.[0-9]+)? followed by LITERAL_LOOKAHEAD */
		j = i;
		if (j < p->n && p->src[j] == '-')
			j++;
		if (j < p->n && p->src[j] >= '0' && p->src[j] <= '9') {
			while (j < p->n && p->src[j] >= '0' && p->src[j] <= '9')
				j++;
			if (j + 1 < p->n && p->src[j] == '.' && p->src[j + 1] >= '0' &&
			    p->src[j + 1] <= '9') {
				j++;
				while (j < p->n && p->src[j] >= '0' && p->src[j] <= '9')
					j++;
			}
			if (lit_lookahead(p, j)) {
				if (!(t = push_tok(p, T_NUMBER, i, j - i)) ||
				    set_val(p, t, p->src + i, j - i))
					return p->rc;
				i = j;
				continue;
			}
		}
		if (starts(p, i, "as")) {
			j = skip_ws(p, i + 2);
			if (j > i + 2 && j < p->n && p->src[j] == '|')
				return perr_at(p, i, "block parameters are not supported");
		}
		if (p->src[i] == '|')
			return perr_at(p, i, "block parameters are not supported");
		/* ID */
		j = i;
		while (j < p->n && is_id_char(p->src + j, p->n - j))
			j++;
		if (j > i) {
			if (!id_lookahead(p, j))
				return perr_at(p, j, "invalid character in a mustache");
			if (!(t = push_tok(p, T_ID, i, j - i)) || set_val(p, t, p->src + i, j - i))
				return p->rc;
			i = j;
			continue;
		}
		if (p->src[i] == '[') {
			size_t e = scan_delimited(p, i, ']'), a, w;
			if (!e)
				return perr_at(p, i, "unterminated '[' segment");
			if (!(t = push_tok(p, T_ID, i, e - i)))
				return p->rc;
			t->val = malloc(e - i + 1);
			if (!t->val)
				return oom(p);
			/* replace(/\\([\\\]])/g, '$1') */
			for (a = i, w = 0; a < e; a++) {
				if (p->src[a] == '\\' && a + 1 < e &&
				    (p->src[a + 1] == '\\' || p->src[a + 1] == ']'))
					a++;
				t->val[w++] = p->src[a];
			}
			t->val[w] = '\0';
			t->vlen = w;
			i = e;
			continue;
		}
		return perr_at(p, i, "invalid character '%c' in a mustache",
		               (unsigned char)p->src[i] >= 0x20 && (unsigned char)p->src[i] < 0x7f
		                       ? p->src[i]
		                       : '?');
	}
}

/* Lexes a mustache opener at i ("{{"); returns via *ip the index after it. */
static int
lex_open(struct parser *p, size_t *ip)
{
	size_t i = *ip, j = i + 2, k;
	bool tilde = false;
	struct tok *t;

	if (starts(p, i, "{{{{"))
		return perr_at(p, i, "raw blocks are not supported");
	if (j < p->n && p->src[j] == '~') {
		tilde = true;
		j++;
	}
	if (j < p->n && p->src[j] == '>') {
		if (!(t = push_tok(p, T_OPEN_PARTIAL, i, j + 1 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 1;
		return lex_mu(p, ip);
	}
	if (starts(p, j, "#>"))
		return perr_at(p, i, "partial blocks are not supported");
	if (j < p->n && p->src[j] == '#') {
		if (starts(p, j + 1, "*"))
			return perr_at(p, i, "decorators are not supported");
		if (!(t = push_tok(p, T_OPEN_BLOCK, i, j + 1 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 1;
		return lex_mu(p, ip);
	}
	if (j < p->n && p->src[j] == '/') {
		if (!(t = push_tok(p, T_OPEN_ENDBLOCK, i, j + 1 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 1;
		return lex_mu(p, ip);
	}
	/* "{{"~?"^"\s*~?"}}" and "{{"~?\s*"else"\s*~?"}}" -> INVERSE */
	{
		size_t a = j;
		bool ok = false;
		if (a < p->n && p->src[a] == '^') {
			a = skip_ws(p, a + 1);
			ok = true;
		} else {
			a = skip_ws(p, a);
			if (starts(p, a, "else")) {
				a = skip_ws(p, a + 4);
				ok = true;
			}
		}
		if (ok) {
			bool rt = false;
			if (a < p->n && p->src[a] == '~') {
				rt = true;
				a++;
			}
			if (starts(p, a, "}}")) {
				if (!(t = push_tok(p, T_INVERSE, i, a + 2 - i)))
					return p->rc;
				t->sopen = tilde;
				t->sclose = rt;
				*ip = a + 2;
				return 0;
			}
		}
	}
	if (j < p->n && p->src[j] == '^') {
		if (!(t = push_tok(p, T_OPEN_INVERSE, i, j + 1 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 1;
		return lex_mu(p, ip);
	}
	k = skip_ws(p, j);
	if (starts(p, k, "else")) {
		if (!(t = push_tok(p, T_OPEN_INVERSE_CHAIN, i, k + 4 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = k + 4;
		return lex_mu(p, ip);
	}
	if (j < p->n && p->src[j] == '{') {
		if (!(t = push_tok(p, T_OPEN_UNESCAPED, i, j + 1 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 1;
		return lex_mu(p, ip);
	}
	if (j < p->n && p->src[j] == '&') {
		if (!(t = push_tok(p, T_OPEN, i, j + 1 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 1;
		return lex_mu(p, ip);
	}
	if (starts(p, j, "!--")) {
		/* <com>[\s\S]*?"--"~?"}}" from the opener */
		size_t a;
		for (a = i; a < p->n; a++) {
			if (starts(p, a, "--}}") || starts(p, a, "--~}}"))
				break;
		}
		if (a >= p->n)
			return perr_at(p, i, "unterminated comment: expected '--}}'");
		k = a + (p->src[a + 2] == '~' ? 5 : 4);
		if (!(t = push_tok(p, T_COMMENT, i, k - i)))
			return p->rc;
		t->sopen = tilde;
		t->sclose = p->src[k - 3] == '~';
		*ip = k;
		return 0;
	}
	if (j < p->n && p->src[j] == '!') {
		size_t a;
		for (a = j + 1; a + 1 < p->n; a++) {
			if (p->src[a] == '}' && p->src[a + 1] == '}')
				break;
		}
		if (a + 1 >= p->n)
			return perr_at(p, i, "unterminated comment: expected '}}'");
		k = a + 2;
		if (!(t = push_tok(p, T_COMMENT, i, k - i)))
			return p->rc;
		t->sopen = tilde;
		t->sclose = k - i >= 3 && p->src[k - 3] == '~';
		*ip = k;
		return 0;
	}
	if (j < p->n && p->src[j] == '*')
		return perr_at(p, i, "decorators are not supported");
	if (!(t = push_tok(p, T_OPEN, i, j - i)))
		return p->rc;
	t->sopen = tilde;
	*ip = j;
	return lex_mu(p, ip);
}

static int
emit_content(struct parser *p, size_t off, size_t n)
{
	struct tok *t;

	if (n == 0)
		return 0;
	if (!(t = push_tok(p, T_CONTENT, off, n)) || set_val(p, t, p->src + off, n))
		return p->rc;
	return 0;
}

static int
lex(struct parser *p)
{
	size_t i = 0;
	bool emu = false;

	while (i < p->n && !p->rc) {
		const char *nul, *open;
		size_t stop;

		if (emu) {
			/* [^\x00]{2,}?/("{{"|"\\{{"|"\\\\{{"|<<EOF>>) */
			size_t a;
			for (a = i + 2; a < p->n; a++) {
				if (starts(p, a, "{{") || starts(p, a, "\\{{") ||
				    starts(p, a, "\\\\{{"))
					break;
			}
			if (a > p->n)
				a = p->n;
			nul = memchr(p->src + i, '\0', a - i);
			if (nul)
				return perr_at(p, (size_t)(nul - p->src), "NUL byte in template");
			if (emit_content(p, i, a - i))
				return p->rc;
			i = a;
			emu = false;
			continue;
		}
		open = NULL;
		{
			size_t a;
			for (a = i; a + 1 < p->n; a++) {
				if (p->src[a] == '{' && p->src[a + 1] == '{') {
					open = p->src + a;
					break;
				}
			}
		}
		stop = open ? (size_t)(open - p->src) : p->n;
		nul = memchr(p->src + i, '\0', stop - i);
		if (nul)
			return perr_at(p, (size_t)(nul - p->src), "NUL byte in template");
		if (!open) {
			emit_content(p, i, p->n - i);
			break;
		}
		if (stop - i >= 2 && p->src[stop - 1] == '\\' && p->src[stop - 2] == '\\') {
			/* "\\{{": a literal backslash, then a real mustache */
			if (emit_content(p, i, stop - i - 1))
				return p->rc;
		} else if (stop - i >= 1 && p->src[stop - 1] == '\\') {
			/* "\{{": an escaped mustache, emitted as text */
			if (emit_content(p, i, stop - i - 1))
				return p->rc;
			i = stop;
			emu = true;
			continue;
		} else if (emit_content(p, i, stop - i)) {
			return p->rc;
		}
		i = stop;
		if (lex_open(p, &i))
			return p->rc;
	}
	if (!p->rc)
		push_tok(p, T_EOF, p->n, 0);
	return p->rc;
}

/* ---- AST construction ---- */

static void expr_free(struct tmpl_expr *e);

static void
call_free(struct tmpl_call *c)
{
	size_t i;

	if (!c)
		return;
	expr_free(c->path);
	for (i = 0; i < c->nparams; i++)
		expr_free(c->params[i]);
	free(c->params);
	for (i = 0; i < c->nhash; i++) {
		free(c->hkeys[i]);
		expr_free(c->hvals[i]);
	}
	free(c->hkeys);
	free(c->hvals);
	free(c);
}

static void
expr_free(struct tmpl_expr *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->nparts; i++)
		free(e->parts[i]);
	free(e->parts);
	free(e->original);
	free(e->str);
	call_free(e->call);
	free(e);
}

static void
node_free(struct tmpl_node *nd)
{
	if (!nd)
		return;
	free(nd->text);
	call_free(nd->call);
	tmpl_program_free(nd->program);
	tmpl_program_free(nd->inverse);
	free(nd->indent);
	free(nd);
}

void
tmpl_program_free(struct tmpl_program *prog)
{
	size_t i;

	if (!prog)
		return;
	for (i = 0; i < prog->n; i++)
		node_free(prog->body[i]);
	free(prog->body);
	free(prog);
}

static struct tmpl_program *
program_new(struct parser *p)
{
	struct tmpl_program *prog = calloc(1, sizeof(*prog));
	if (!prog)
		oom(p);
	return prog;
}

static int
program_push(struct parser *p, struct tmpl_program *prog, struct tmpl_node *nd)
{
	if (prog->n == prog->cap) {
		size_t ncap = prog->cap ? prog->cap * 2 : 8;
		struct tmpl_node **nb = realloc(prog->body, ncap * sizeof(*nb));
		if (!nb) {
			node_free(nd);
			return oom(p);
		}
		prog->body = nb;
		prog->cap = ncap;
	}
	prog->body[prog->n++] = nd;
	return 0;
}

static struct tok *
peek(struct parser *p)
{
	return &p->toks[p->pos < p->ntok ? p->pos : p->ntok - 1];
}

static struct tok *
peek2(struct parser *p)
{
	size_t i = p->pos + 1;
	return &p->toks[i < p->ntok ? i : p->ntok - 1];
}

static struct tok *
next(struct parser *p)
{
	struct tok *t = peek(p);
	if (p->pos < p->ntok - 1)
		p->pos++;
	return t;
}

static int
expect(struct parser *p, enum tok_type type, struct tok **out)
{
	struct tok *t = peek(p);
	char msg[120];

	if (t->type != type) {
		snprintf(msg, sizeof(msg), "expected %s, found %s", tok_names[type],
		         tok_names[t->type]);
		return perr_tok(p, t, msg);
	}
	*out = next(p);
	return 0;
}

static char *
xstrndup(struct parser *p, const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d) {
		oom(p);
		return NULL;
	}
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static int
str_append(struct parser *p, char **s, size_t *len, const char *add, size_t n)
{
	char *ns = realloc(*s, *len + n + 1);
	if (!ns)
		return oom(p);
	memcpy(ns + *len, add, n);
	*len += n;
	ns[*len] = '\0';
	*s = ns;
	return 0;
}

/* yy.id: a [literal] segment without its brackets (when `.` can span it). */
static bool
id_is_bracketed(const char *s, size_t n)
{
	size_t i;

	if (n < 2 || s[0] != '[' || s[n - 1] != ']')
		return false;
	for (i = 1; i + 1 < n; i++) {
		if (js_line_term(s + i, n - 1 - i))
			return false;
	}
	return true;
}

static struct tmpl_expr *
expr_new(struct parser *p, enum tmpl_expr_type type, const struct tok *t)
{
	struct tmpl_expr *e = calloc(1, sizeof(*e));
	if (!e) {
		oom(p);
		return NULL;
	}
	e->type = type;
	e->line = t->line;
	e->col = t->col;
	return e;
}

/* path: (DATA)? ID (SEP ID)* -- preparePath */
static struct tmpl_expr *
parse_path(struct parser *p, bool data)
{
	struct tok *first = peek(p), *t;
	struct tmpl_expr *e = expr_new(p, TE_PATH, first);
	const char *sep = NULL;
	size_t olen = 0;

	if (!e)
		return NULL;
	e->data = data;
	e->original = xstrndup(p, data ? "@" : "", data ? 1 : 0);
	if (!e->original)
		goto fail;
	olen = data ? 1 : 0;
	for (;;) {
		const char *part;
		size_t plen;
		bool literal;

		if (expect(p, T_ID, &t))
			goto fail;
		part = t->val;
		plen = t->vlen;
		literal = false;
		if (id_is_bracketed(t->val, t->vlen)) {
			part = t->val + 1;
			plen = t->vlen - 2;
			literal = true;
		}
		if (sep && str_append(p, &e->original, &olen, sep, 1))
			goto fail;
		if (str_append(p, &e->original, &olen, part, plen))
			goto fail;
		if (!literal &&
		    ((plen == 2 && memcmp(part, "..", 2) == 0) || (plen == 1 && part[0] == '.') ||
		     (plen == 4 && memcmp(part, "this", 4) == 0))) {
			if (e->nparts > 0) {
				char msg[160];
				snprintf(msg, sizeof(msg), "invalid path: '%.100s'", e->original);
				perr_tok(p, first, msg);
				goto fail;
			}
			if (plen == 2)
				e->depth++;
		} else {
			char **np = realloc(e->parts, (e->nparts + 1) * sizeof(*np));
			if (!np) {
				oom(p);
				goto fail;
			}
			e->parts = np;
			if (!(e->parts[e->nparts] = xstrndup(p, part, plen)))
				goto fail;
			e->nparts++;
		}
		if (peek(p)->type != T_SEP || peek2(p)->type != T_ID)
			break;
		sep = next(p)->val;
	}
	return e;
fail:
	expr_free(e);
	return NULL;
}

static struct tmpl_call *parse_call_body(struct parser *p, enum tok_type closer, bool sexpr_name);

/* helperName | sexpr */
static struct tmpl_expr *
parse_param(struct parser *p, bool allow_sexpr)
{
	struct tok *t = peek(p);
	struct tmpl_expr *e;

	switch (t->type) {
	case T_ID:
		return parse_path(p, false);
	case T_DATA:
		next(p);
		if (peek(p)->type != T_ID) {
			perr_tok(p, peek(p), "expected a name after '@'");
			return NULL;
		}
		return parse_path(p, true);
	case T_STRING:
		if (!(e = expr_new(p, TE_STRING, t)))
			return NULL;
		if (!(e->str = xstrndup(p, t->val, t->vlen))) {
			expr_free(e);
			return NULL;
		}
		e->slen = t->vlen;
		next(p);
		return e;
	case T_NUMBER:
		if (!(e = expr_new(p, TE_NUMBER, t)))
			return NULL;
		e->num = strtod(t->val, NULL);
		next(p);
		return e;
	case T_BOOLEAN:
		if (!(e = expr_new(p, TE_BOOL, t)))
			return NULL;
		e->b = t->val[0] == 't';
		next(p);
		return e;
	case T_UNDEFINED:
		if (!(e = expr_new(p, TE_UNDEF, t)))
			return NULL;
		next(p);
		return e;
	case T_NULL:
		if (!(e = expr_new(p, TE_NULL, t)))
			return NULL;
		next(p);
		return e;
	case T_OPEN_SEXPR:
		if (!allow_sexpr)
			break;
		if (p->nest >= PARSE_MAX_NEST) {
			perr_tok(p, t, "subexpressions nested too deeply");
			return NULL;
		}
		if (!(e = expr_new(p, TE_SEXPR, t)))
			return NULL;
		next(p);
		p->nest++;
		e->call = parse_call_body(p, T_CLOSE_SEXPR, false);
		p->nest--;
		if (!e->call) {
			expr_free(e);
			return NULL;
		}
		return e;
	default:
		break;
	}
	{
		char msg[120];
		snprintf(msg, sizeof(msg), "expected a name or a value, found %s",
		         tok_names[t->type]);
		perr_tok(p, t, msg);
	}
	return NULL;
}

static bool
starts_param(const struct tok *t)
{
	switch (t->type) {
	case T_ID:
	case T_DATA:
	case T_STRING:
	case T_NUMBER:
	case T_BOOLEAN:
	case T_UNDEFINED:
	case T_NULL:
	case T_OPEN_SEXPR:
		return true;
	default:
		return false;
	}
}

/* helperName param* hash? CLOSER (the closer is consumed). sexpr_name
 * allows a subexpression as the name (a dynamic partial). */
static struct tmpl_call *
parse_call_body(struct parser *p, enum tok_type closer, bool sexpr_name)
{
	struct tmpl_call *c = calloc(1, sizeof(*c));
	struct tok *t;

	if (!c) {
		oom(p);
		return NULL;
	}
	if (!(c->path = parse_param(p, sexpr_name)))
		goto fail;
	while (starts_param(peek(p)) && !(peek(p)->type == T_ID && peek2(p)->type == T_EQUALS)) {
		struct tmpl_expr **np = realloc(c->params, (c->nparams + 1) * sizeof(*np));
		if (!np) {
			oom(p);
			goto fail;
		}
		c->params = np;
		if (!(c->params[c->nparams] = parse_param(p, true)))
			goto fail;
		c->nparams++;
	}
	while (peek(p)->type == T_ID && peek2(p)->type == T_EQUALS) {
		char **nk = realloc(c->hkeys, (c->nhash + 1) * sizeof(*nk));
		struct tmpl_expr **nv;
		if (!nk) {
			oom(p);
			goto fail;
		}
		c->hkeys = nk;
		nv = realloc(c->hvals, (c->nhash + 1) * sizeof(*nv));
		if (!nv) {
			oom(p);
			goto fail;
		}
		c->hvals = nv;
		t = next(p);
		if (!(c->hkeys[c->nhash] = xstrndup(p, t->val, t->vlen)))
			goto fail;
		c->hvals[c->nhash] = NULL;
		c->nhash++;
		next(p); /* = */
		if (!(c->hvals[c->nhash - 1] = parse_param(p, true)))
			goto fail;
		c->has_hash = true;
	}
	if (expect(p, closer, &t))
		goto fail;
	return c;
fail:
	call_free(c);
	return NULL;
}

static struct tmpl_node *
node_new(struct parser *p, enum tmpl_node_type type, const struct tok *t)
{
	struct tmpl_node *nd = calloc(1, sizeof(*nd));
	if (!nd) {
		oom(p);
		return NULL;
	}
	nd->type = type;
	nd->line = t->line;
	nd->col = t->col;
	return nd;
}

static struct tmpl_program *parse_program(struct parser *p);
struct inv_chain;
static int parse_chain_link(struct parser *p, struct inv_chain *out);

struct open_block {
	struct tmpl_call *call;
	struct tmpl_strip strip;
	struct tok *tok;
};

struct inv_chain {
	bool present;
	bool chain;
	struct tmpl_strip strip;
	struct tmpl_program *program;
};

static int
parse_open(struct parser *p, struct open_block *ob)
{
	struct tok *open = next(p);

	ob->tok = open;
	ob->strip.open = open->sopen;
	if (!(ob->call = parse_call_body(p, T_CLOSE, false)))
		return p->rc;
	ob->strip.close = p->toks[p->pos - 1].sclose;
	if (ob->call->path->type == TE_SEXPR)
		return perr_tok(p, open, "a block name cannot be a subexpression");
	return 0;
}

/* prepareBlock */
static struct tmpl_node *
prepare_block(struct parser *p, struct open_block *ob, struct tmpl_program *program,
              struct inv_chain *inv, const struct tmpl_strip *close_strip, bool inverted)
{
	struct tmpl_node *nd = node_new(p, TN_BLOCK, ob->tok);

	if (!nd) {
		call_free(ob->call);
		tmpl_program_free(program);
		if (inv)
			tmpl_program_free(inv->program);
		return NULL;
	}
	nd->call = ob->call;
	ob->call = NULL;
	nd->open_strip = ob->strip;
	if (inv && inv->present) {
		if (inv->chain && close_strip) {
			inv->program->body[0]->close_strip = *close_strip;
			inv->program->body[0]->has_close_strip = true;
		}
		nd->inverse_strip = inv->strip;
		nd->has_inverse_strip = true;
		nd->inverse = inv->program;
		inv->program = NULL;
	}
	nd->program = program;
	if (inverted) {
		struct tmpl_program *tmp = nd->inverse;
		nd->inverse = nd->program;
		nd->program = tmp;
	}
	if (close_strip) {
		nd->close_strip = *close_strip;
		nd->has_close_strip = true;
	}
	return nd;
}

/* inverseChain: openInverseChain program inverseChain? | inverseAndProgram */
static int
parse_inverse_chain(struct parser *p, struct inv_chain *out, bool allow_chain)
{
	struct tok *t = peek(p);

	memset(out, 0, sizeof(*out));
	if (t->type == T_INVERSE) {
		next(p);
		out->present = true;
		out->strip.open = t->sopen;
		out->strip.close = t->sclose;
		out->program = parse_program(p);
		return out->program ? 0 : p->rc;
	}
	if (t->type == T_OPEN_INVERSE_CHAIN && allow_chain) {
		int rc;

		if (p->nest >= PARSE_MAX_NEST)
			return perr_tok(p, t, "else-if chain too long");
		p->nest++;
		rc = parse_chain_link(p, out);
		p->nest--;
		return rc;
	}
	return 0;
}

/* One {{else if ...}} link: the block it opens, wrapped in a chained program
 * (handlebars.yy's inverseChain). */
static int
parse_chain_link(struct parser *p, struct inv_chain *out)
{
	struct open_block ob = { 0 };
	struct tmpl_program *prog, *wrap;
	struct inv_chain nested;
	struct tmpl_node *blk;

	if (parse_open(p, &ob)) {
		call_free(ob.call);
		return p->rc;
	}
	if (!(prog = parse_program(p))) {
		call_free(ob.call);
		return p->rc;
	}
	if (parse_inverse_chain(p, &nested, true)) {
		call_free(ob.call);
		tmpl_program_free(prog);
		return p->rc;
	}
	/* prepareBlock(open, program, chain, chain): the nested chain is the
	 * "close" of this link */
	blk = prepare_block(p, &ob, prog, &nested, nested.present ? &nested.strip : NULL, false);
	if (!blk)
		return p->rc;
	if (!(wrap = program_new(p))) {
		node_free(blk);
		return p->rc;
	}
	if (program_push(p, wrap, blk)) {
		tmpl_program_free(wrap);
		return p->rc;
	}
	wrap->chained = true;
	out->present = true;
	out->chain = true;
	out->strip = ob.strip;
	out->program = wrap;
	return 0;
}

static const char *
call_name_original(const struct tmpl_expr *e, char *tmp, size_t n)
{
	switch (e->type) {
	case TE_PATH:
		return e->original;
	case TE_STRING:
		return e->str;
	case TE_NUMBER: {
		struct hl_buf b = HL_BUF_INIT(0);
		tv_format_number(&b, e->num);
		snprintf(tmp, n, "%s", b.data);
		hl_buf_release(&b);
		return tmp;
	}
	case TE_BOOL:
		return e->b ? "true" : "false";
	case TE_UNDEF:
		return "undefined";
	case TE_NULL:
		return "null";
	default:
		return "";
	}
}

static struct tmpl_node *
parse_block(struct parser *p)
{
	struct tok *open = peek(p);
	bool inverted = open->type == T_OPEN_INVERSE;
	struct open_block ob = { 0 };
	struct tmpl_program *prog = NULL;
	struct inv_chain inv = { 0 };
	struct tok *t, *ct;
	struct tmpl_expr *close_name = NULL;
	struct tmpl_strip cs;
	char b1[64], b2[64];

	if (parse_open(p, &ob))
		goto fail;
	if (!(prog = parse_program(p)))
		goto fail;
	if (parse_inverse_chain(p, &inv, !inverted))
		goto fail;
	t = peek(p);
	if (t->type != T_OPEN_ENDBLOCK) {
		char msg[300];
		snprintf(msg, sizeof(msg),
		         "unclosed block '%.80s': expected '{{/%.80s}}', found %s",
		         call_name_original(ob.call->path, b1, sizeof(b1)),
		         call_name_original(ob.call->path, b2, sizeof(b2)), tok_names[t->type]);
		perr_tok(p, t->type == T_EOF ? ob.tok : t, msg);
		goto fail;
	}
	next(p);
	cs.open = t->sopen;
	if (!(close_name = parse_param(p, false)))
		goto fail;
	if (expect(p, T_CLOSE, &ct))
		goto fail;
	cs.close = ct->sclose;
	{
		const char *on = call_name_original(ob.call->path, b1, sizeof(b1));
		const char *cn = call_name_original(close_name, b2, sizeof(b2));
		if (strcmp(on, cn) != 0) {
			char msg[300];
			snprintf(msg, sizeof(msg), "'%.80s' doesn't match '%.80s'", on, cn);
			perr_tok(p, ob.tok, msg);
			goto fail;
		}
	}
	expr_free(close_name);
	return prepare_block(p, &ob, prog, &inv, &cs, inverted);
fail:
	expr_free(close_name);
	call_free(ob.call);
	tmpl_program_free(prog);
	tmpl_program_free(inv.program);
	return NULL;
}

static struct tmpl_node *
parse_statement(struct parser *p)
{
	struct tok *t = peek(p);
	struct tmpl_node *nd;

	switch (t->type) {
	case T_CONTENT:
		if (!(nd = node_new(p, TN_CONTENT, t)))
			return NULL;
		nd->text = t->val;
		t->val = NULL;
		nd->len = t->vlen;
		nd->vstart = 0;
		nd->vend = nd->len;
		next(p);
		return nd;
	case T_COMMENT:
		if (!(nd = node_new(p, TN_COMMENT, t)))
			return NULL;
		nd->strip.open = t->sopen;
		nd->strip.close = t->sclose;
		next(p);
		return nd;
	case T_OPEN:
	case T_OPEN_UNESCAPED:
		if (!(nd = node_new(p, TN_MUSTACHE, t)))
			return NULL;
		next(p);
		nd->strip.open = t->sopen;
		nd->call =
		        parse_call_body(p, t->type == T_OPEN ? T_CLOSE : T_CLOSE_UNESCAPED, false);
		if (!nd->call) {
			node_free(nd);
			return NULL;
		}
		nd->strip.close = p->toks[p->pos - 1].sclose;
		return nd;
	case T_OPEN_PARTIAL:
		if (!(nd = node_new(p, TN_PARTIAL, t)))
			return NULL;
		next(p);
		nd->strip.open = t->sopen;
		/* partialName: helperName | sexpr (a dynamic partial) */
		nd->call = parse_call_body(p, T_CLOSE, true);
		if (!nd->call) {
			node_free(nd);
			return NULL;
		}
		nd->strip.close = p->toks[p->pos - 1].sclose;
		if (nd->call->nparams > 1) {
			char msg[80];
			snprintf(msg, sizeof(msg), "unsupported number of partial arguments: %zu",
			         nd->call->nparams);
			perr_tok(p, t, msg);
			node_free(nd);
			return NULL;
		}
		return nd;
	case T_OPEN_BLOCK:
	case T_OPEN_INVERSE:
		if (p->nest >= PARSE_MAX_NEST) {
			perr_tok(p, t, "blocks nested too deeply");
			return NULL;
		}
		p->nest++;
		nd = parse_block(p);
		p->nest--;
		return nd;
	default: {
		char msg[120];
		snprintf(msg, sizeof(msg), "unexpected %s", tok_names[t->type]);
		perr_tok(p, t, msg);
		return NULL;
	}
	}
}

static struct tmpl_program *
parse_program(struct parser *p)
{
	struct tmpl_program *prog = program_new(p);

	if (!prog)
		return NULL;
	for (;;) {
		struct tok *t = peek(p);
		struct tmpl_node *nd;

		if (t->type == T_EOF || t->type == T_OPEN_ENDBLOCK || t->type == T_INVERSE ||
		    t->type == T_OPEN_INVERSE_CHAIN)
			return prog;
		if (p->pos > 0 && p->ntok && p->pos >= p->ntok) {
			tmpl_program_free(prog);
			return NULL;
		}
		if (!(nd = parse_statement(p)) || program_push(p, prog, nd)) {
			tmpl_program_free(prog);
			return NULL;
		}
	}
}

/* ---- whitespace control (compiler/whitespace-control.js) ---- */

#define NONE ((size_t)-1)

/* Start of the maximal trailing JS-whitespace run of s. */
static size_t
trailing_ws_start(const char *s, size_t n)
{
	size_t i = 0, run = NONE, k;

	while (i < n) {
		if ((k = tmpl_js_space(s + i, n - i)) > 0) {
			if (run == NONE)
				run = i;
			i += k;
		} else {
			run = NONE;
			i++;
		}
	}
	return run == NONE ? n : run;
}

static size_t
leading_ws_end(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n && (k = tmpl_js_space(s + i, n - i)) > 0)
		i += k;
	return i;
}

static bool
is_prev_ws(struct tmpl_program *prog, size_t i, bool is_root)
{
	struct tmpl_node *prev, *sibling;
	size_t ws;

	if (i == NONE)
		i = prog ? prog->n : 0;
	prev = i >= 1 ? prog->body[i - 1] : NULL;
	sibling = i >= 2 ? prog->body[i - 2] : NULL;
	if (!prev)
		return is_root;
	if (prev->type != TN_CONTENT)
		return false;
	ws = trailing_ws_start(prev->text, prev->len);
	if (memchr(prev->text + ws, '\n', prev->len - ws))
		return true;
	return !(sibling || !is_root) && ws == 0;
}

static bool
is_next_ws(struct tmpl_program *prog, size_t i, bool is_root)
{
	struct tmpl_node *nxt, *sibling;
	size_t n = prog ? prog->n : 0, ws, j = i == NONE ? 0 : i + 1;

	nxt = j < n ? prog->body[j] : NULL;
	sibling = j + 1 < n ? prog->body[j + 1] : NULL;
	if (!nxt)
		return is_root;
	if (nxt->type != TN_CONTENT)
		return false;
	ws = leading_ws_end(nxt->text, nxt->len);
	if (memchr(nxt->text, '\n', ws))
		return true;
	return !(sibling || !is_root) && ws == nxt->len;
}

static void
omit_right(struct tmpl_program *prog, size_t i, bool multiple)
{
	struct tmpl_node *cur;
	size_t j = i == NONE ? 0 : i + 1, old;
	const char *v;
	size_t n;

	if (!prog || j >= prog->n)
		return;
	cur = prog->body[j];
	if (cur->type != TN_CONTENT || (!multiple && cur->right_stripped))
		return;
	old = cur->vstart;
	v = cur->text + cur->vstart;
	n = cur->vend - cur->vstart;
	if (multiple) {
		cur->vstart += leading_ws_end(v, n);
	} else {
		size_t k = 0;
		while (k < n && (v[k] == ' ' || v[k] == '\t'))
			k++;
		if (k < n && v[k] == '\r' && k + 1 < n && v[k + 1] == '\n')
			k += 2;
		else if (k < n && v[k] == '\n')
			k++;
		cur->vstart += k;
	}
	cur->right_stripped = cur->vstart != old;
}

static bool
omit_left(struct tmpl_program *prog, size_t i, bool multiple)
{
	struct tmpl_node *cur;
	size_t j, old;
	const char *v;
	size_t n;

	if (!prog)
		return false;
	if (i == NONE) {
		if (prog->n == 0)
			return false;
		j = prog->n - 1;
	} else {
		if (i == 0)
			return false;
		j = i - 1;
	}
	cur = prog->body[j];
	if (cur->type != TN_CONTENT || (!multiple && cur->left_stripped))
		return false;
	old = cur->vend;
	v = cur->text + cur->vstart;
	n = cur->vend - cur->vstart;
	if (multiple) {
		cur->vend = cur->vstart + trailing_ws_start(v, n);
	} else {
		size_t k = n;
		while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
			k--;
		cur->vend = cur->vstart + k;
	}
	cur->left_stripped = cur->vend != old;
	return cur->left_stripped;
}

struct wstrip {
	bool valid;
	bool open, close;
	bool open_standalone, close_standalone, inline_standalone;
};

static int ws_program(struct parser *p, struct tmpl_program *prog, bool *root_seen);

static struct wstrip
ws_block(struct parser *p, struct tmpl_node *blk, bool *root_seen)
{
	struct wstrip s = { 0 };
	struct tmpl_program *program, *inverse, *first_inv, *last_inv;

	if (blk->program)
		ws_program(p, blk->program, root_seen);
	if (blk->inverse)
		ws_program(p, blk->inverse, root_seen);
	program = blk->program ? blk->program : blk->inverse;
	inverse = blk->program ? blk->inverse : NULL;
	first_inv = last_inv = inverse;
	if (inverse && inverse->chained) {
		first_inv = inverse->body[0]->program;
		while (last_inv->chained)
			last_inv = last_inv->body[last_inv->n - 1]->program;
	}
	s.valid = true;
	s.open = blk->open_strip.open;
	s.close = blk->close_strip.close;
	s.open_standalone = is_next_ws(program, NONE, false);
	s.close_standalone = is_prev_ws(first_inv ? first_inv : program, NONE, false);
	if (blk->open_strip.close)
		omit_right(program, NONE, true);
	if (inverse) {
		if (blk->inverse_strip.open)
			omit_left(program, NONE, true);
		if (blk->inverse_strip.close)
			omit_right(first_inv, NONE, true);
		if (blk->close_strip.open)
			omit_left(last_inv, NONE, true);
		if (is_prev_ws(program, NONE, false) && is_next_ws(first_inv, NONE, false)) {
			omit_left(program, NONE, false);
			omit_right(first_inv, NONE, false);
		}
	} else if (blk->close_strip.open) {
		omit_left(program, NONE, true);
	}
	return s;
}

static int
ws_program(struct parser *p, struct tmpl_program *prog, bool *root_seen)
{
	bool is_root = !*root_seen;
	size_t i;

	*root_seen = true;
	for (i = 0; i < prog->n; i++) {
		struct tmpl_node *cur = prog->body[i];
		struct wstrip s = { 0 };
		bool prev_ws, next_ws, open_sa, close_sa, inline_sa;

		switch (cur->type) {
		case TN_MUSTACHE:
			s.valid = true;
			s.open = cur->strip.open;
			s.close = cur->strip.close;
			break;
		case TN_COMMENT:
		case TN_PARTIAL:
			s.valid = true;
			s.inline_standalone = true;
			s.open = cur->strip.open;
			s.close = cur->strip.close;
			break;
		case TN_BLOCK:
			s = ws_block(p, cur, root_seen);
			break;
		default:
			break;
		}
		if (!s.valid)
			continue;
		prev_ws = is_prev_ws(prog, i, is_root);
		next_ws = is_next_ws(prog, i, is_root);
		open_sa = s.open_standalone && prev_ws;
		close_sa = s.close_standalone && next_ws;
		inline_sa = s.inline_standalone && prev_ws && next_ws;
		if (s.close)
			omit_right(prog, i, true);
		if (s.open)
			omit_left(prog, i, true);
		if (inline_sa) {
			omit_right(prog, i, false);
			if (omit_left(prog, i, false) && cur->type == TN_PARTIAL) {
				/* /([ \t]+$)/.exec(body[i - 1].original)[1] */
				struct tmpl_node *pv = prog->body[i - 1];
				size_t k = pv->len;
				while (k > 0 && (pv->text[k - 1] == ' ' || pv->text[k - 1] == '\t'))
					k--;
				free(cur->indent);
				cur->indent = xstrndup(p, pv->text + k, pv->len - k);
				if (!cur->indent)
					return p->rc;
			}
		}
		if (open_sa) {
			omit_right(cur->program ? cur->program : cur->inverse, NONE, false);
			omit_left(prog, i, false);
		}
		if (close_sa) {
			omit_right(prog, i, false);
			omit_left(cur->inverse ? cur->inverse : cur->program, NONE, false);
		}
	}
	return p->rc;
}

int
tmpl_parse(struct tmpl_program **out, const char *name, const char *src, size_t n,
           struct hl_err *err)
{
	struct parser p = { 0 };
	struct tmpl_program *prog = NULL;
	bool root_seen = false;
	size_t i;

	p.name = name ? name : "template";
	p.src = src ? src : "";
	p.n = src ? n : 0;
	p.err = err;
	p.lc_line = 1;
	p.lc_col = 1;
	if (lex(&p))
		goto out;
	prog = parse_program(&p);
	if (!prog)
		goto out;
	if (peek(&p)->type != T_EOF) {
		struct tok *t = peek(&p);
		char msg[120];
		if (t->type == T_OPEN_ENDBLOCK)
			snprintf(msg, sizeof(msg), "'{{/' without an open block");
		else
			snprintf(msg, sizeof(msg), "%s outside a block", tok_names[t->type]);
		perr_tok(&p, t, msg);
		goto out;
	}
	if (ws_program(&p, prog, &root_seen))
		goto out;
	*out = prog;
	prog = NULL;
out:
	tmpl_program_free(prog);
	for (i = 0; i < p.ntok; i++)
		free(p.toks[i].val);
	free(p.toks);
	return p.rc;
}
