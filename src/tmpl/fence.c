/*
 * fence.c - untrusted text (logs, PR titles, commit messages, comments) made
 * safe to embed in a prompt: cleaned of terminal escapes and control
 * characters, cut to a byte budget around its evidence, and wrapped in a
 * Markdown fence the content cannot close; and untrusted values (names,
 * branches, URLs, logins) made safe inline: one line, length-capped, in a
 * code span the value cannot close. See hl_tmpl_fence and hl_tmpl_code in
 * tmpl.h; the same algorithms are implemented in tests/tmpl/hbs_render.js
 * and the two must stay identical (the differential test compares them byte
 * for byte).
 */
#include "tmpl/tmpl_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of a valid UTF-8 sequence at p, or 0. */
static size_t
utf8_valid(const unsigned char *p, size_t n)
{
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		unsigned char lo = 0x80, hi = 0xbf;
		if (p[0] == 0xe0)
			lo = 0xa0;
		if (p[0] == 0xed)
			hi = 0x9f;
		return n >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		unsigned char lo = 0x80, hi = 0xbf;
		if (p[0] == 0xf0)
			lo = 0x90;
		if (p[0] == 0xf4)
			hi = 0x8f;
		return n >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
		                       (p[3] & 0xc0) == 0x80
		               ? 4
		               : 0;
	}
	return 0;
}

static void
sanitize(struct hl_buf *out, const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, j, k;

	while (i < n) {
		unsigned char c = s[i];

		if (c == 0x1b) {
			if (i + 1 < n && s[i + 1] == '[') {
				/* CSI: parameters, intermediates, one final byte */
				j = i + 2;
				while (j < n && s[j] >= 0x30 && s[j] <= 0x3f)
					j++;
				while (j < n && s[j] >= 0x20 && s[j] <= 0x2f)
					j++;
				if (j < n && s[j] >= 0x40 && s[j] <= 0x7e)
					j++;
				i = j;
				continue;
			}
			if (i + 1 < n && s[i + 1] == ']') {
				/* OSC, ended by BEL or ESC \ */
				j = i + 2;
				while (j < n && s[j] != 0x07 && s[j] != 0x1b)
					j++;
				if (j < n && s[j] == 0x07) {
					i = j + 1;
					continue;
				}
				if (j + 1 < n && s[j] == 0x1b && s[j + 1] == '\\') {
					i = j + 2;
					continue;
				}
				i++;
				continue;
			}
			if (i + 1 < n && s[i + 1] >= 0x40 && s[i + 1] <= 0x5f) {
				i += 2;
				continue;
			}
			i++;
			continue;
		}
		if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
			i++;
			continue;
		}
		if (c < 0x80) {
			/* a run of plain ASCII (\t, \n and printable) in one append */
			j = i + 1;
			while (j < n && s[j] < 0x7f &&
			       (s[j] >= 0x20 || s[j] == '\t' || s[j] == '\n'))
				j++;
			hl_buf_append(out, text + i, j - i);
			i = j;
			continue;
		}
		k = utf8_valid(s + i, n - i);
		if (!k) {
			hl_buf_append_str(out, "\xef\xbf\xbd");
			i++;
			continue;
		}
		if (k == 2 && s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
			i += 2; /* a C1 control */
			continue;
		}
		hl_buf_append(out, text + i, k);
		i += k;
	}
}

struct cutter {
	const char *c;
	size_t m;
};

static size_t
snap_back(const struct cutter *ct, size_t p, size_t seg)
{
	size_t lim = seg / 4, q;

	if (p == 0)
		return 0;
	for (q = p; q > 0 && q + lim >= p; q--) {
		if (ct->c[q - 1] == '\n')
			return q;
	}
	q = p;
	while (q > 0 && q < ct->m && ((unsigned char)ct->c[q] & 0xc0) == 0x80)
		q--;
	return q;
}

static size_t
snap_fwd(const struct cutter *ct, size_t p, size_t seg)
{
	size_t lim = seg / 4, q;

	for (q = p; q <= p + lim && q <= ct->m; q++) {
		if (q == 0 || ct->c[q - 1] == '\n')
			return q;
	}
	q = p;
	while (q < ct->m && ((unsigned char)ct->c[q] & 0xc0) == 0x80)
		q++;
	return q;
}

static void
marker(struct hl_buf *out, const char *c, size_t a, size_t b)
{
	size_t lines = 0, i;

	for (i = a; i < b; i++)
		lines += c[i] == '\n';
	if (out->len && out->data[out->len - 1] != '\n')
		hl_buf_append_char(out, '\n');
	hl_buf_appendf(out, "[... healer cut %zu bytes (%zu lines) ...]\n", b - a, lines);
}

static void
cut(struct hl_buf *out, const char *c, size_t m, size_t budget, int64_t focus)
{
	struct cutter ct = { c, m };
	size_t seg[3][2], nseg = 0, i, j, prev;
	size_t H, T, F = 0, fs = 0;
	bool have_focus = false;

	if (m <= budget) {
		hl_buf_append(out, c, m);
		return;
	}
	if (focus >= 1) {
		int64_t line = 1;
		for (i = 0; i < m && line < focus; i++) {
			if (c[i] == '\n') {
				line++;
				fs = i + 1;
			}
		}
		have_focus = line == focus;
	}
	if (have_focus) {
		H = budget / 5;
		T = budget * 2 / 5;
		F = budget - H - T;
	} else {
		H = budget * 2 / 5;
		T = budget - H;
	}
	seg[nseg][0] = 0;
	seg[nseg][1] = snap_back(&ct, H, H);
	nseg++;
	if (have_focus) {
		size_t a = fs > F / 3 ? fs - F / 3 : 0, b;
		b = a + F > m ? m : a + F;
		a = snap_fwd(&ct, a, F);
		b = snap_back(&ct, b, F);
		if (a < b) {
			seg[nseg][0] = a;
			seg[nseg][1] = b;
			nseg++;
		}
	}
	seg[nseg][0] = snap_fwd(&ct, m - T, T);
	seg[nseg][1] = m;
	nseg++;
	/* sort by start (at most 3) and merge */
	for (i = 0; i < nseg; i++) {
		for (j = i + 1; j < nseg; j++) {
			if (seg[j][0] < seg[i][0]) {
				size_t t0 = seg[i][0], t1 = seg[i][1];
				seg[i][0] = seg[j][0];
				seg[i][1] = seg[j][1];
				seg[j][0] = t0;
				seg[j][1] = t1;
			}
		}
	}
	prev = 0;
	for (i = 0; i < nseg; i++) {
		size_t a = seg[i][0], b = seg[i][1];
		if (b <= prev || a >= b)
			continue;
		if (a < prev)
			a = prev;
		if (a > prev)
			marker(out, c, prev, a);
		hl_buf_append(out, c + a, b - a);
		prev = b;
	}
	if (prev < m)
		marker(out, c, prev, m);
}

int
hl_tmpl_fence(struct hl_buf *out, const char *text, size_t n, const char *lang, int64_t budget,
              int64_t focus_line)
{
	struct hl_buf clean = HL_BUF_INIT(0), body = HL_BUF_INIT(0);
	size_t run = 0, best = 0, i, k, ll = 0;
	int rc;

	if (budget < 64)
		budget = 64;
	sanitize(&clean, text ? text : "", text ? n : 0);
	cut(&body, clean.data, clean.len, (size_t)budget, focus_line);
	for (i = 0; i < body.len; i++) {
		run = body.data[i] == '`' ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	k = best + 1 < 3 ? 3 : best + 1;
	for (i = 0; i < k; i++)
		hl_buf_append_char(out, '`');
	for (i = 0; lang && lang[i] && ll < 32; i++) {
		char ch = lang[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '+' || ch == '-') {
			hl_buf_append_char(out, ch);
			ll++;
		}
	}
	hl_buf_append_char(out, '\n');
	hl_buf_append(out, body.data, body.len);
	if (body.len && body.data[body.len - 1] != '\n')
		hl_buf_append_char(out, '\n');
	for (i = 0; i < k; i++)
		hl_buf_append_char(out, '`');
	rc = hl_buf_error(&clean) ? hl_buf_error(&clean) : hl_buf_error(&body);
	hl_buf_release(&clean);
	hl_buf_release(&body);
	return rc ? rc : hl_buf_error(out);
}

int
hl_tmpl_code(struct hl_buf *out, const char *text, size_t n, int64_t max_cps)
{
	struct hl_buf clean = HL_BUF_INIT(0), flat = HL_BUF_INIT(0);
	size_t i, run = 0, best = 0, k, cps = 0;
	bool pad;
	int rc;

	sanitize(&clean, text ? text : "", text ? n : 0);
	/* one line: tabs, newlines and U+2028/U+2029 become spaces; at most
	 * max_cps code points, then "..." */
	for (i = 0; i < clean.len; i++) {
		unsigned char c = (unsigned char)clean.data[i];

		if ((c & 0xc0) != 0x80 && (int64_t)cps++ == max_cps) {
			hl_buf_append_str(&flat, "...");
			break;
		}
		if (c == '\t' || c == '\n') {
			hl_buf_append_char(&flat, ' ');
		} else if (c == 0xe2 && i + 2 < clean.len &&
		           (unsigned char)clean.data[i + 1] == 0x80 &&
		           ((unsigned char)clean.data[i + 2] == 0xa8 ||
		            (unsigned char)clean.data[i + 2] == 0xa9)) {
			hl_buf_append_char(&flat, ' ');
			i += 2;
		} else {
			hl_buf_append_char(&flat, (char)c);
		}
	}
	for (i = 0; i < flat.len; i++) {
		run = flat.data[i] == '`' ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	if (flat.len) {
		/* a value that starts or ends with a backtick would merge with
		 * the delimiter: a space on both sides (CommonMark drops it) */
		pad = flat.data[0] == '`' || flat.data[flat.len - 1] == '`';
		for (k = 0; k <= best; k++)
			hl_buf_append_char(out, '`');
		if (pad)
			hl_buf_append_char(out, ' ');
		hl_buf_append(out, flat.data, flat.len);
		if (pad)
			hl_buf_append_char(out, ' ');
		for (k = 0; k <= best; k++)
			hl_buf_append_char(out, '`');
	}
	rc = hl_buf_error(&clean) ? hl_buf_error(&clean) : hl_buf_error(&flat);
	hl_buf_release(&clean);
	hl_buf_release(&flat);
	return rc ? rc : hl_buf_error(out);
}
