/*
 * cidr.c - lists of IP address ranges (see cidr.h).
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

bool
hl_cidr_addr_parse(unsigned char *addr, unsigned char *len, const char *s, size_t s_len)
{
	char text[INET6_ADDRSTRLEN + 1];
	unsigned char b[16];

	if (s_len == 0 || s_len >= sizeof(text))
		return false;
	memcpy(text, s, s_len);
	text[s_len] = '\0';
	if (inet_pton(AF_INET, text, b) == 1) {
		memset(addr, 0, 16);
		memcpy(addr, b, 4);
		*len = 4;
		return true;
	}
	if (inet_pton(AF_INET6, text, b) != 1)
		return false;
	memset(addr, 0, 16);
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)b)) {
		memcpy(addr, b + 12, 4);
		*len = 4;
	} else {
		memcpy(addr, b, 16);
		*len = 16;
	}
	return true;
}

/* Whether the first bits bits of a and b agree. */
static bool
cidr_prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ b[full]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

/* One element "ADDR" or "ADDR/BITS" of s_len bytes. */
static int
cidr_parse_one(struct hl_cidr *c, const char *s, size_t s_len, struct hl_err *err)
{
	const char *slash = memchr(s, '/', s_len);
	size_t a_len = slash ? (size_t)(slash - s) : s_len;
	unsigned long bits;
	unsigned char host[16];
	char *end;
	unsigned i;
	bool mapped;

	if (!hl_cidr_addr_parse(c->addr, &c->len, s, a_len))
		return hl_err_set(err, HL_EINVAL, "'%.*s' is not an IP address or range",
		                  (int)(s_len > 64 ? 64 : s_len), s);
	c->bits = (unsigned char)(c->len * 8);
	if (!slash)
		return 0;
	if (slash + 1 == s + s_len || slash[1] < '0' || slash[1] > '9')
		return hl_err_set(err, HL_EINVAL, "'%.*s': the prefix length is missing",
		                  (int)(s_len > 64 ? 64 : s_len), s);
	bits = strtoul(slash + 1, &end, 10);
	mapped = c->len == 4 && memchr(s, ':', a_len) != NULL; /* ::ffff:a.b.c.d/N */
	if (end != s + s_len || bits > (mapped ? 128ul : (unsigned long)c->len * 8) ||
	    (mapped && bits < 96))
		return hl_err_set(err, HL_EINVAL,
		                  "'%.*s': the prefix length must be a number from %d to %d",
		                  (int)(s_len > 64 ? 64 : s_len), s, mapped ? 96 : 0,
		                  mapped ? 128 : c->len * 8);
	c->bits = (unsigned char)(mapped ? bits - 96 : bits);
	/* the bits past the prefix must be zero */
	for (i = 0; i < c->len; i++)
		host[i] = c->addr[i];
	for (i = c->bits; i < (unsigned)c->len * 8; i++)
		host[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	if (memcmp(host, c->addr, c->len) != 0)
		return hl_err_set(err, HL_EINVAL,
		                  "'%.*s' has address bits set past its prefix length",
		                  (int)(s_len > 64 ? 64 : s_len), s);
	return 0;
}

int
hl_cidr_list_parse(struct hl_cidr *out, size_t *n, const char *list, struct hl_err *err)
{
	const char *p = list ? list : "", *end;
	size_t len;
	int rc;

	*n = 0;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strcspn(p, ",");
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0) {
			if (*end == ',' || *n > 0)
				return hl_err_set(err, HL_EINVAL, "an empty element in the list");
		} else {
			if (*n == HL_CIDR_MAX)
				return hl_err_set(err, HL_ETOOBIG, "more than %d address ranges",
				                  HL_CIDR_MAX);
			if ((rc = cidr_parse_one(&out[*n], p, len, err)) < 0)
				return rc;
			(*n)++;
		}
		p = *end ? end + 1 : end;
		if (*end == ',' && !*p)
			return hl_err_set(err, HL_EINVAL, "an empty element in the list");
	}
	return 0;
}

bool
hl_cidr_match(const struct hl_cidr *ranges, size_t n, const unsigned char *addr, unsigned char len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ranges[i].len == len && cidr_prefix_equal(ranges[i].addr, addr, ranges[i].bits))
			return true;
	return false;
}
