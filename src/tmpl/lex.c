/*
 * lex.c - the template lexer: handlebars.js' handlebars.l rule by rule (first
 * match wins, as jison does). It turns the whole source into an array of
 * tokens before parsing; content between mustaches becomes T_CONTENT, and the
 * inside of a mustache is tokenised in its own state (lex_mu). Line and column
 * of every token are recorded for error messages.
 */
#include "tmpl/tmpl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
size_t
tmpl_js_line_term(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (n && (u[0] == '\n' || u[0] == '\r'))
		return 1;
	if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9))
		return 3;
	return 0;
}

static struct tmpl_tok *
push_tok(struct tmpl_parser *p, enum tmpl_tok_type type, size_t off, size_t len)
{
	struct tmpl_tok *t;

	if (p->ntok == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 64;
		struct tmpl_tok *nt = realloc(p->toks, ncap * sizeof(*nt));
		if (!nt) {
			tmpl_oom(p);
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
	tmpl_line_col(p, off, &t->line, &t->col);
	return t;
}

static bool
starts(const struct tmpl_parser *p, size_t i, const char *lit)
{
	size_t k = strlen(lit);
	return i + k <= p->n && memcmp(p->src + i, lit, k) == 0;
}

static size_t
skip_ws(const struct tmpl_parser *p, size_t i)
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
id_lookahead(const struct tmpl_parser *p, size_t i)
{
	if (i >= p->n)
		return false;
	if (tmpl_js_space(p->src + i, p->n - i))
		return true;
	return strchr("=~}/.)|", p->src[i]) != NULL;
}

/* LITERAL_LOOKAHEAD = [~}\s)] */
static bool
lit_lookahead(const struct tmpl_parser *p, size_t i)
{
	if (i >= p->n)
		return false;
	if (tmpl_js_space(p->src + i, p->n - i))
		return true;
	return strchr("~})", p->src[i]) != NULL;
}

static int
set_val(struct tmpl_parser *p, struct tmpl_tok *t, const char *s, size_t n)
{
	t->val = malloc(n + 1);
	if (!t->val)
		return tmpl_oom(p);
	memcpy(t->val, s, n);
	t->val[n] = '\0';
	t->vlen = n;
	return 0;
}

/* A quoted string '"' ('\\"' | [^"])* '"' with regex backtracking: the end is
 * the first unescaped quote, else the quote of the last escape. */
static size_t
scan_delimited(const struct tmpl_parser *p, size_t i, char close)
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

/* JS \w at i (so "else" followed by it is not the keyword: else\b). */
static bool
is_word_char(const struct tmpl_parser *p, size_t i)
{
	char c;

	if (i >= p->n)
		return false;
	c = p->src[i];
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/*
 * The raw state after "{{{{name}}}}": a nested "{{{{x}}}}" opens another
 * level and "{{{{/x}}}}" closes one, both kept as content, until the
 * "{{{{/name}}}}" at the outer level (END_RAW_BLOCK, its value the name).
 * Content runs up to the next "{{{{" and may not hold a NUL byte; a raw
 * block that is never closed ends at T_EOF, which the parser rejects.
 */
static int
lex_raw(struct tmpl_parser *p, size_t *ip)
{
	size_t i = *ip, j, k, open = 0;
	int depth = 1;
	struct tmpl_tok *t;

	for (k = p->ntok; k-- > 0;) {
		if (p->toks[k].type == T_OPEN_RAW_BLOCK) {
			open = p->toks[k].off;
			break;
		}
	}

	while (i < p->n && !p->rc) {
		if (starts(p, i, "{{{{") && i + 4 < p->n && p->src[i + 4] != '/') {
			if (!(t = push_tok(p, T_CONTENT, i, 4)) || set_val(p, t, p->src + i, 4))
				return p->rc;
			depth++;
			i += 4;
			continue;
		}
		if (starts(p, i, "{{{{/")) {
			for (j = i + 5; j < p->n && is_id_char(p->src + j, p->n - j); j++)
				;
			if (j > i + 5 && starts(p, j, "}}}}")) {
				if (--depth > 0) {
					if (!(t = push_tok(p, T_CONTENT, i, j + 4 - i)) ||
					    set_val(p, t, p->src + i, j + 4 - i))
						return p->rc;
				} else {
					if (!(t = push_tok(p, T_END_RAW_BLOCK, i, j + 4 - i)) ||
					    set_val(p, t, p->src + i + 5, j - i - 5))
						return p->rc;
					*ip = j + 4;
					return 0;
				}
				i = j + 4;
				continue;
			}
		}
		/* [^\x00]+?(?="{{{{") */
		for (k = i + 1; k + 4 <= p->n; k++) {
			if (p->src[k - 1] == '\0')
				return tmpl_perr_at(p, k - 1, "NUL byte in template");
			if (starts(p, k, "{{{{"))
				break;
		}
		if (k + 4 > p->n)
			return tmpl_perr_at(p, open,
			                    "unclosed raw block: expected '{{{{/name}}}}'");
		if (!(t = push_tok(p, T_CONTENT, i, k - i)) || set_val(p, t, p->src + i, k - i))
			return p->rc;
		i = k;
	}
	*ip = i;
	return p->rc;
}

/* Lexes the inside of a mustache, from i (just after the opener). */
static int
lex_mu(struct tmpl_parser *p, size_t *ip)
{
	size_t i = *ip, j, k;
	struct tmpl_tok *t;

	for (;;) {
		if (p->rc)
			return p->rc;
		if (i >= p->n)
			return tmpl_perr_at(p, i, "unclosed mustache: expected '}}'");
		if (starts(p, i, "{{"))
			return tmpl_perr_at(p, i, "unexpected '{{' inside a mustache");
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
		if (starts(p, i, "}}}}")) {
			/* CLOSE_RAW_BLOCK: the raw content follows */
			if (!push_tok(p, T_CLOSE_RAW_BLOCK, i, 4))
				return p->rc;
			*ip = i + 4;
			return lex_raw(p, ip);
		}
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
				return tmpl_perr_at(p, i, "unterminated string");
			if (!(t = push_tok(p, T_STRING, i, e - i)))
				return p->rc;
			t->val = malloc(e - i);
			if (!t->val)
				return tmpl_oom(p);
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
				enum tmpl_tok_type t;
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
		/* "as"\s+"|" and "|" */
		if (starts(p, i, "as")) {
			j = skip_ws(p, i + 2);
			if (j > i + 2 && j < p->n && p->src[j] == '|') {
				if (!push_tok(p, T_OPEN_BLOCK_PARAMS, i, j + 1 - i))
					return p->rc;
				i = j + 1;
				continue;
			}
		}
		if (p->src[i] == '|') {
			if (!push_tok(p, T_CLOSE_BLOCK_PARAMS, i, 1))
				return p->rc;
			i++;
			continue;
		}
		/* ID */
		j = i;
		while (j < p->n && is_id_char(p->src + j, p->n - j))
			j++;
		if (j > i) {
			if (!id_lookahead(p, j))
				return tmpl_perr_at(p, j, "invalid character in a mustache");
			if (!(t = push_tok(p, T_ID, i, j - i)) || set_val(p, t, p->src + i, j - i))
				return p->rc;
			i = j;
			continue;
		}
		if (p->src[i] == '[') {
			size_t e = scan_delimited(p, i, ']'), a, w;
			if (!e)
				return tmpl_perr_at(p, i, "unterminated '[' segment");
			if (!(t = push_tok(p, T_ID, i, e - i)))
				return p->rc;
			t->val = malloc(e - i + 1);
			if (!t->val)
				return tmpl_oom(p);
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
		return tmpl_perr_at(p, i, "invalid character '%c' in a mustache",
		                    (unsigned char)p->src[i] >= 0x20 &&
		                                    (unsigned char)p->src[i] < 0x7f
		                            ? p->src[i]
		                            : '?');
	}
}

/* Lexes a mustache opener at i ("{{"); returns via *ip the index after it. */
static int
lex_open(struct tmpl_parser *p, size_t *ip)
{
	size_t i = *ip, j = i + 2, k;
	bool tilde = false;
	struct tmpl_tok *t;

	if (starts(p, i, "{{{{")) {
		if (!push_tok(p, T_OPEN_RAW_BLOCK, i, 4))
			return p->rc;
		*ip = i + 4;
		return lex_mu(p, ip);
	}
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
	if (starts(p, j, "#>")) {
		if (!(t = push_tok(p, T_OPEN_PARTIAL_BLOCK, i, j + 2 - i)))
			return p->rc;
		t->sopen = tilde;
		*ip = j + 2;
		return lex_mu(p, ip);
	}
	if (j < p->n && p->src[j] == '#') {
		/* "{{"~?"#""*"?: a block, or a decorator block */
		k = starts(p, j + 1, "*") ? 2 : 1;
		if (!(t = push_tok(p, T_OPEN_BLOCK, i, j + k - i)))
			return p->rc;
		t->sopen = tilde;
		t->deco = k == 2;
		*ip = j + k;
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
	if (starts(p, k, "else") && !is_word_char(p, k + 4)) {
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
			return tmpl_perr_at(p, i, "unterminated comment: expected '--}}'");
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
			return tmpl_perr_at(p, i, "unterminated comment: expected '}}'");
		k = a + 2;
		if (!(t = push_tok(p, T_COMMENT, i, k - i)))
			return p->rc;
		t->sopen = tilde;
		t->sclose = k - i >= 3 && p->src[k - 3] == '~';
		*ip = k;
		return 0;
	}
	/* "{{"~?"*"?: a mustache, or a decorator */
	k = j < p->n && p->src[j] == '*' ? 1 : 0;
	if (!(t = push_tok(p, T_OPEN, i, j + k - i)))
		return p->rc;
	t->sopen = tilde;
	t->deco = k == 1;
	*ip = j + k;
	return lex_mu(p, ip);
}

static int
emit_content(struct tmpl_parser *p, size_t off, size_t n)
{
	struct tmpl_tok *t;

	if (n == 0)
		return 0;
	if (!(t = push_tok(p, T_CONTENT, off, n)) || set_val(p, t, p->src + off, n))
		return p->rc;
	return 0;
}

int
tmpl_lex(struct tmpl_parser *p)
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
				return tmpl_perr_at(p, (size_t)(nul - p->src),
				                    "NUL byte in template");
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
			return tmpl_perr_at(p, (size_t)(nul - p->src), "NUL byte in template");
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
