/*
 * gate.c - which patterns are scanned in two steps.
 *
 * Vectorscan finds a pattern "A.*B" by its first literal: for
 * '^test .* \.\.\. FAILED$' every line starting "test " (all of cargo test's
 * passing lines) wakes an automaton that reads on to the line's end. On a
 * log of ordinary output a handful of such patterns took a fifth of the
 * scan. When the literal after the last ".*" is longer than any before it,
 * the main database holds only the tail B (the gate), which is rarer, and
 * a second database holds the whole pattern: the scan runs it over the
 * lines where a gate fired, so the results (every match, first and last
 * line) are those of the whole pattern. This needs patterns that cannot
 * match across a line end, which is what the checks below keep.
 */
#include "classify/classify_int.h"

#include <ctype.h>
#include <string.h>

/* Shortest literal of a tail worth gating on. */
#define CL_GATE_MIN_LITERAL 6

static bool
cl_is_quantifier(char ch)
{
	return ch == '?' || ch == '*' || ch == '+' || ch == '{';
}

/* Longest run of literal bytes outside groups and classes in p[0, n): each
 * one a plain byte or an escaped punctuation byte, none quantified. */
static size_t
cl_literal_run(const char *p, size_t n)
{
	size_t best = 0, run = 0, depth = 0;

	for (size_t i = 0; i < n;) {
		size_t len = 1;
		bool lit = false;

		if (p[i] == '\\') {
			len = i + 1 < n ? 2 : 1;
			lit = len == 2 && !isalnum((unsigned char)p[i + 1]);
		} else if (p[i] == '[') {
			size_t j = i + 1;
			if (j < n && p[j] == '^')
				j++;
			if (j < n && p[j] == ']')
				j++;
			while (j < n && p[j] != ']')
				j += p[j] == '\\' ? 2 : 1;
			len = (j < n ? j + 1 : n) - i;
		} else if (p[i] == '(') {
			depth++;
		} else if (p[i] == ')') {
			depth = depth ? depth - 1 : 0;
		} else {
			lit = strchr("|.^$*+?{}]", p[i]) == NULL;
		}
		i += len;
		if (lit && depth == 0 && (i >= n || !cl_is_quantifier(p[i]))) {
			if (++run > best)
				best = run;
		} else {
			run = 0;
		}
	}
	return best;
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

size_t
cl_gate_tail(const char *pat)
{
	size_t n = strlen(pat), depth = 0, last = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = pat[i];
		if (ch == '\\') {
			if (i + 1 >= n || !cl_escape_in_line(pat[i + 1]))
				return 0;
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
					return 0;
				if (pat[j] != '\\')
					continue;
				if (j + 1 >= n ||
				    (!negated && !cl_class_escape_in_line(pat[j + 1])))
					return 0;
				j++;
			}
			if (j >= n)
				return 0;
			i = j;
		} else if (ch == '(') {
			if (i + 1 < n && pat[i + 1] == '?') /* flags, lookaround */
				return 0;
			depth++;
		} else if (ch == ')') {
			depth = depth ? depth - 1 : 0;
		} else if (ch == '|' && depth == 0) {
			return 0;
		} else if (ch == '.' && depth == 0 && i + 1 < n && pat[i + 1] == '*' &&
		           (i + 2 >= n || (pat[i + 2] != '?' && pat[i + 2] != '+'))) {
			last = i + 2;
		}
	}
	if (last <= 2 || last >= n || cl_is_quantifier(pat[last]))
		return 0;
	size_t tail = cl_literal_run(pat + last, n - last);
	if (tail < CL_GATE_MIN_LITERAL || tail <= cl_literal_run(pat, last - 2))
		return 0;
	return last;
}
