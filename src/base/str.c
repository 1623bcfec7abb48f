/*
 * str.c - string helpers; see str.h.
 */
#include "str.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

bool
hl_str_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
hl_str_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

const char *
hl_str_casestr(const char *hay, const char *needle)
{
	size_t m = strlen(needle);

	if (m == 0)
		return hay;
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, m) == 0)
			return hay;
	return NULL;
}

bool
hl_str_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile unsigned char *pa = a, *pb = b;
	unsigned char diff = (unsigned char)(alen != blen);
	size_t i, n = alen < blen ? alen : blen;

	for (i = 0; i < n; i++)
		diff |= pa[i] ^ pb[i];
	return diff == 0;
}

void
hl_str_hex(char *out, const unsigned char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

char *
hl_str_trim_dup(const char *s)
{
	const char *e;
	char *out;

	while (*s && isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	out = malloc((size_t)(e - s) + 1);
	if (!out)
		return NULL;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return out;
}

size_t
hl_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

size_t
hl_utf8_valid_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	unsigned lo, hi;

	while (i < n) {
		unsigned char c = p[i];
		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
			hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
			hi = c == 0xf4 ? 0x8f : 0xbf; /* above U+10FFFF */
		} else {
			return i;
		}
		if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (k = 2; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += len;
	}
	return i;
}

void
hl_str_list_free(char **list)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; list[i]; i++)
		free(list[i]);
	free(list);
}

char **
hl_str_split_list(const char *s, size_t *count_out)
{
	size_t cap = 1, n = 0;
	const char *p;
	char **list;

	for (p = s; *p; p++)
		cap += *p == ',';
	list = calloc(cap + 1, sizeof(*list));
	if (!list)
		return NULL;
	while (s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		char *piece = malloc(len + 1), *t;

		if (!piece)
			goto oom;
		memcpy(piece, s, len);
		piece[len] = '\0';
		t = hl_str_trim_dup(piece);
		free(piece);
		if (!t)
			goto oom;
		if (*t)
			list[n++] = t;
		else
			free(t);
		s = comma ? comma + 1 : NULL;
	}
	if (count_out)
		*count_out = n;
	return list;
oom:
	hl_str_list_free(list);
	return NULL;
}

void
hl_str_label_value(char *out, const char *in)
{
	size_t n = 0, start = 0;

	for (; *in && n < 63; in++) {
		unsigned char c = (unsigned char)*in;
		out[n++] = (isalnum(c) || c == '-' || c == '_' || c == '.') ? (char)c : '-';
	}
	out[n] = '\0';
	while (n > 0 && !isalnum((unsigned char)out[n - 1]))
		out[--n] = '\0';
	while (start < n && !isalnum((unsigned char)out[start]))
		start++;
	if (start)
		memmove(out, out + start, n - start + 1);
}

bool
hl_str_github_repo_valid(const char *full_name)
{
	const char *slash, *repo, *p;
	size_t n;

	if (!full_name || !(slash = strchr(full_name, '/')))
		return false;
	n = (size_t)(slash - full_name);
	if (n < 1 || n > 39 || full_name[0] == '-' || full_name[0] == '_')
		return false;
	for (p = full_name; p < slash; p++) {
		unsigned char c = (unsigned char)*p;

		if (!(c < 0x80 && isalnum(c)) && c != '-' && c != '_')
			return false;
	}
	repo = slash + 1;
	n = strlen(repo);
	if (n < 1 || n > 100 || strcmp(repo, ".") == 0 || strcmp(repo, "..") == 0)
		return false;
	for (p = repo; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (!(c < 0x80 && isalnum(c)) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

bool
hl_str_branch_safe(const char *name)
{
	size_t n = name ? strlen(name) : 0, i;

	if (n < 1 || n > 1024 || name[0] == '-' || name[0] == '.' || name[0] == '/' ||
	    name[n - 1] == '/' || name[n - 1] == '.' ||
	    (n >= 5 && strcmp(name + n - 5, ".lock") == 0) || strstr(name, ".lock/") ||
	    strstr(name, "..") || strstr(name, "//") || strstr(name, "/.") ||
	    hl_utf8_valid_len(name, n) != n)
		return false;
	for (i = 0; i < n; i++) {
		const unsigned char *u = (const unsigned char *)name + i;

		if (u[0] < 0x80 && !isalnum(u[0]) && u[0] != '.' && u[0] != '_' && u[0] != '-' &&
		    u[0] != '+' && u[0] != '/')
			return false;
		/* C1 controls; zero-width, bidi and invisible format marks
		 * (U+200B-200F, 202A-202E, 2060-206F, FEFF): text that reads
		 * otherwise than it is */
		if (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f)
			return false;
		if (u[0] == 0xe2 && ((u[1] == 0x80 && ((u[2] >= 0x8b && u[2] <= 0x8f) ||
		                                       (u[2] >= 0xaa && u[2] <= 0xae))) ||
		                     (u[1] == 0x81 && u[2] >= 0xa0 && u[2] <= 0xaf)))
			return false;
		if (u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf)
			return false;
	}
	return true;
}

/* One DNS-1123 label of s[0..n). */
/* [a-z0-9] and '-', neither first nor last; max_len 63 for a label, none
 * for a part of a subdomain (Kubernetes' IsDNS1123Subdomain checks only the
 * whole name's 253) */
static bool
str_dns_label(const char *s, size_t n, size_t max_len)
{
	size_t i;

	if (n < 1 || n > max_len)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (c != '-' || i == 0 || i == n - 1))
			return false;
	}
	return true;
}

bool
hl_str_k8s_label_valid(const char *s)
{
	return s && str_dns_label(s, strlen(s), 63);
}

bool
hl_str_k8s_subdomain_valid(const char *s)
{
	const char *dot;
	size_t n;

	if (!s || (n = strlen(s)) < 1 || n > 253)
		return false;
	for (;;) {
		dot = strchr(s, '.');
		if (!str_dns_label(s, dot ? (size_t)(dot - s) : strlen(s), 253))
			return false;
		if (!dot)
			return true;
		s = dot + 1;
	}
}

char *
hl_str_terminal_safe(char *out, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p && n + 1 < size) {
		if (*p < 0x20 || *p == 0x7f) {
			out[n++] = '?';
			p++;
		} else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			out[n++] = '?';
			p += 2;
		} else {
			out[n++] = (char)*p++;
		}
	}
	if (*p) {
		/* cut: drop a character left incomplete at the end */
		size_t k = n;
		unsigned char lead;

		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		lead = k > 0 ? (unsigned char)out[k - 1] : 0;
		if (lead >= 0xc0 && n - (k - 1) < (lead >= 0xf0 ? 4u : lead >= 0xe0 ? 3u : 2u))
			n = k - 1;
	}
	out[n] = '\0';
	return out;
}
