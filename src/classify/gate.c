/*
 * gate.c - which patterns are scanned in two steps.
 *
 * Every regex of a rule set costs the scan something on every line where
 * one of its literals occurs: for '^ *Compiling [A-Za-z0-9_-]+ v[0-9]'
 * each "Compiling " line runs an automaton, and the hundreds of other
 * regexes add their own engines and literal fragments to the one database.
 * A plain literal costs the least. So when a pattern has a literal of its
 * own (outside groups, not quantified, no alternative at the top), the main
 * database holds only that literal (the gate), and a second database holds
 * the whole pattern: the scan runs it over the lines where a gate fired, so
 * the results (every match, first and last line) are those of the whole
 * pattern. This needs patterns that cannot match across a line end, which
 * is what the checks below keep.
 */
#include "classify/classify_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Shortest gate worth scanning for, and most literals in one gate. */
#define CL_GATE_MIN_LITERAL 6
#define CL_GATE_MAX_SET     8

static bool
cl_is_quantifier(char ch)
{
	return ch == '?' || ch == '*' || ch == '+' || ch == '{';
}

/* A literal byte of a pattern at p[0, n): a plain byte or '\' and a
 * punctuation byte; its length in text (1 or 2), 0 when it is not one. */
static size_t
cl_literal_byte(const char *p, size_t n)
{
	switch (p[0]) {
	case '\\':
		return n >= 2 && !isalnum((unsigned char)p[1]) ? 2 : 0;
	case '|':
	case '.':
	case '^':
	case '$':
	case '*':
	case '+':
	case '?':
	case '{':
	case '}':
	case '[':
	case ']':
	case '(':
	case ')':
		return 0;
	default:
		return 1;
	}
}

/* A piece of a pattern at the top level: a literal byte or a group of
 * literal alternatives ("(ERR!|error)") is literal, anything else is not. */
struct cl_item {
	size_t from, to; /* its text */
	size_t n_alt;    /* 1 for a byte */
	size_t min_len;  /* bytes of its shortest alternative */
	bool lit;
};

/* The end of the bracket class at p[i] ('['): the index after its ']', n
 * if unterminated (a ']' first, or after '^', is a member). */
static size_t
cl_class_end(const char *p, size_t n, size_t i)
{
	size_t j = i + 1;

	if (j < n && p[j] == '^')
		j++;
	if (j < n && p[j] == ']')
		j++;
	while (j < n && p[j] != ']')
		j += p[j] == '\\' ? 2 : 1;
	return j < n ? j + 1 : n;
}

/* The group at p[0] ('('), up to its ')' (n if unterminated): *lit when it
 * holds only literal bytes between '|'s (no empty alternative). */
static size_t
cl_group(const char *p, size_t n, struct cl_item *it)
{
	size_t i = 1, depth = 1, len = 0;

	it->lit = true;
	it->n_alt = 1;
	it->min_len = SIZE_MAX;
	while (i < n && depth > 0) {
		size_t k = depth == 1 ? cl_literal_byte(p + i, n - i) : 0;
		if (k > 0) {
			len++;
			i += k;
			continue;
		}
		if (p[i] == '\\') {
			i += 2;
		} else if (p[i] == '[') {
			i = cl_class_end(p, n, i);
		} else if (p[i] == '(') {
			depth++;
			i++;
		} else if (p[i] == ')') {
			depth--;
			i++;
			continue;
		} else if (p[i] == '|' && depth == 1) {
			if (len < it->min_len)
				it->min_len = len;
			len = 0;
			it->n_alt++;
			i++;
			continue;
		} else {
			i++;
		}
		if (depth >= 1)
			it->lit = false;
	}
	if (len < it->min_len)
		it->min_len = len;
	if (depth > 0 || it->min_len == 0)
		it->lit = false;
	return i < n ? i : n;
}

/* Splits pat[0, n) into its top-level items (room for n); returns how
 * many. A quantified item is not literal. */
static size_t
cl_items(const char *p, size_t n, struct cl_item *items)
{
	size_t m = 0;

	for (size_t i = 0; i < n;) {
		struct cl_item *it = &items[m++];
		size_t k = cl_literal_byte(p + i, n - i);

		it->from = i;
		it->n_alt = 1;
		it->min_len = 1;
		it->lit = k > 0;
		if (k > 0) {
			i += k;
		} else if (p[i] == '(') {
			i += cl_group(p + i, n - i, it);
		} else if (p[i] == '[') {
			i = cl_class_end(p, n, i);
		} else if (p[i] == '{') { /* a repeat: its digits are no text */
			const char *close = memchr(p + i, '}', n - i);
			i = close ? (size_t)(close - p) + 1 : n;
		} else {
			i += p[i] == '\\' && i + 1 < n ? 2 : 1;
		}
		if (i > n)
			i = n;
		it->to = i;
		if (i < n && cl_is_quantifier(p[i]))
			it->lit = false;
	}
	return m;
}

/* Appends alternative alt of the literal item p[0, n) (a byte, or a group
 * of literal alternatives) to out as a pattern: letters and digits as they
 * are, any other byte as \xHH; returns the bytes written. */
static size_t
cl_emit(char *out, const char *p, size_t n, size_t alt)
{
	size_t o = 0, i = 0;

	if (p[0] == '(') { /* to the alternative's first byte, and inside */
		i = 1;
		n--;
		while (alt > 0 && i < n) {
			if (p[i] == '|')
				alt--;
			i += p[i] == '\\' ? 2 : 1;
		}
	}
	while (i < n && p[i] != '|') {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\\')
			ch = (unsigned char)p[++i];
		i++;
		if (isalnum(ch)) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = "0123456789abcdef"[ch >> 4];
			out[o++] = "0123456789abcdef"[ch & 15];
		}
	}
	return o;
}

/* An escape that keeps the pattern inside one line: punctuation, \b, \B,
 * \d, \w, \S and \t (not \s, \W, \D or \n, which match a line end, nor
 * the rarer escapes). */
static bool
cl_escape_in_line(char ch)
{
	return !isalnum((unsigned char)ch) || strchr("bBdwSt", ch) != NULL;
}

/* The same in a class that is not negated, where a range must not reach
 * down to '\n': only punctuation (all above ' '), \d, \w and \S. */
static bool
cl_class_escape_in_line(char ch)
{
	return (!isalnum((unsigned char)ch) && (unsigned char)ch > ' ') ||
	       strchr("dwS", ch) != NULL;
}

char **
cl_gate_literals(const char *pat)
{
	size_t n = strlen(pat), depth = 0, n_items, best = 0, bs = 0, be = 0, n_set = 1, size;
	struct cl_item *items;
	char **set = NULL, *o;

	for (size_t i = 0; i < n; i++) {
		char ch = pat[i];
		if (ch == '\\') {
			if (i + 1 >= n || !cl_escape_in_line(pat[i + 1]))
				return NULL;
			i++;
		} else if (ch == '[') {
			size_t j = i + 1;
			bool negated = j < n && pat[j] == '^';
			if (negated)
				j++;
			if (j < n && pat[j] == ']')
				j++;
			/* a negated class of a rule excludes '\n' (rules.c); any
			 * other may not name a POSIX class or a byte below ' ' */
			for (; j < n && pat[j] != ']'; j++) {
				if (negated && pat[j] != '\\')
					continue;
				if (!negated && ((unsigned char)pat[j] < ' ' ||
				                 (pat[j] == '[' && j + 1 < n && pat[j + 1] == ':')))
					return NULL;
				if (pat[j] != '\\')
					continue;
				if (j + 1 >= n ||
				    (!negated && !cl_class_escape_in_line(pat[j + 1])))
					return NULL;
				j++;
			}
			if (j >= n)
				return NULL;
			i = j;
		} else if (ch == '(') {
			if (i + 1 < n && pat[i + 1] == '?') /* flags, lookaround */
				return NULL;
			depth++;
		} else if (ch == ')') {
			depth = depth ? depth - 1 : 0;
		} else if (ch == '|' && depth == 0) {
			return NULL;
		}
	}
	items = malloc((n ? n : 1) * sizeof(*items));
	if (items == NULL)
		return NULL;
	n_items = cl_items(pat, n, items);
	/* the run of literal items with the longest shortest expansion */
	for (size_t s = 0; s < n_items; s++) {
		size_t len = 0, prod = 1;
		if (s > 0 && items[s - 1].lit && items[s - 1].n_alt == 1)
			continue; /* starting a byte earlier is as good and longer */
		for (size_t e = s; e < n_items && items[e].lit; e++) {
			prod *= items[e].n_alt;
			if (prod > CL_GATE_MAX_SET)
				break;
			len += items[e].min_len;
			if (len > best) {
				best = len;
				bs = s;
				be = e + 1;
				n_set = prod;
			}
		}
	}
	/* too short, or the whole pattern: a literal (set) it finds as well */
	if (best < CL_GATE_MIN_LITERAL || (bs == 0 && be == n_items))
		goto out;
	/* every expansion of items [bs, be): at most 4 bytes of pattern per
	 * byte of text, one NULL-terminated array */
	size = (n_set + 1) * sizeof(char *) + n_set * (4 * (items[be - 1].to - items[bs].from) + 1);
	set = malloc(size);
	if (set == NULL)
		goto out;
	o = (char *)(set + n_set + 1);
	for (size_t k = 0; k < n_set; k++) {
		size_t rest = k;
		set[k] = o;
		for (size_t e = bs; e < be; e++) {
			o += cl_emit(o, pat + items[e].from, items[e].to - items[e].from,
			             rest % items[e].n_alt);
			rest /= items[e].n_alt;
		}
		*o++ = '\0';
	}
	set[n_set] = NULL;
out:
	free(items);
	return set;
}
