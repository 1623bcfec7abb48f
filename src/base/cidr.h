/*
 * cidr.h - lists of IP address ranges ("10.0.0.0/8, 2001:db8::/32,
 * 192.0.2.7"), as settings name the proxies whose X-Forwarded-For is
 * believed. Addresses are raw bytes in network order: 4 for IPv4, 16 for
 * IPv6 (an IPv4-mapped IPv6 address is matched as its IPv4 address).
 * Thread-safe; libc only.
 */
#ifndef HL_BASE_CIDR_H
#define HL_BASE_CIDR_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>

#define HL_CIDR_MAX 32 /* ranges in one list */

struct hl_cidr {
	unsigned char addr[16];
	unsigned char len;  /* 4 or 16 bytes */
	unsigned char bits; /* prefix length */
};

/* Parses a comma list of addresses and ranges (surrounding spaces ignored;
 * an address alone is a range of one; host bits set under the prefix are
 * refused, as "10.0.0.1/8" is likely a mistake). An empty or blank list is
 * no range. Returns 0 with *n ranges in out; -HL_EINVAL naming the bad
 * element; -HL_ETOOBIG beyond HL_CIDR_MAX. */
int hl_cidr_list_parse(struct hl_cidr *out, size_t *n, const char *list, struct hl_err *err);

/* Parses one address (IPv4 dotted or IPv6 text, no brackets or port) into
 * addr (16 bytes); *len gets 4 or 16. False when it is not one. */
bool hl_cidr_addr_parse(unsigned char *addr, unsigned char *len, const char *s, size_t s_len);

/* Whether addr (len 4 or 16 bytes) lies in one of the n ranges. */
bool hl_cidr_match(const struct hl_cidr *ranges, size_t n, const unsigned char *addr,
                   unsigned char len);

#endif
