/*
 * hmac.c - HMAC-SHA256 over OpenSSL's one-shot HMAC() and the GitHub
 * "sha256=<hex>" signature check with secret rotation.
 *
 * Invariant: a signature is compared only in constant time
 * (hl_str_ct_equal) and against every secret, whatever matched earlier.
 */
#include "hmac.h"

#include "base/str.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

int
hl_hmac_sha256_hex(char *out, const void *key, size_t keylen, const void *msg, size_t n)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	static const unsigned char empty[1];

	if (!HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen,
	          n ? (const unsigned char *)msg : empty, n, mac, &maclen) ||
	    maclen != 32)
		return -HL_EINTERNAL;
	hl_str_hex(out, mac, maclen);
	return 0;
}

int
hl_sha256_hex(char *out, const void *msg, size_t n)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (!SHA256(n ? (const unsigned char *)msg : (const unsigned char *)"", n, md))
		return -HL_EINTERNAL;
	hl_str_hex(out, md, sizeof(md));
	return 0;
}

int
hl_webhook_verify(const char *const *secrets, size_t n, const void *body, size_t len,
                  const char *header_value, struct hl_err *err)
{
	static const char prefix[] = "sha256=";
	char given[HL_SHA256_HEX_LEN + 1];
	char want[HL_SHA256_HEX_LEN + 1];
	const char *hex;
	unsigned matched = 0;
	size_t i;

	if (n == 0)
		return hl_err_set(err, HL_EINVAL, "no webhook secret configured");
	if (!header_value || !*header_value)
		return hl_err_set(err, HL_EAUTH, "missing 'X-Hub-Signature-256' header");
	if (strncmp(header_value, prefix, sizeof(prefix) - 1) != 0)
		return hl_err_set(err, HL_EAUTH, "signature must start with 'sha256='");
	hex = header_value + sizeof(prefix) - 1;
	if (strlen(hex) != HL_SHA256_HEX_LEN)
		return hl_err_set(err, HL_EAUTH, "signature must be 64 hex digits");
	for (i = 0; i < HL_SHA256_HEX_LEN; i++) {
		if (!isxdigit((unsigned char)hex[i]))
			return hl_err_set(err, HL_EAUTH, "signature must be 64 hex digits");
		given[i] = (char)tolower((unsigned char)hex[i]);
	}
	given[HL_SHA256_HEX_LEN] = '\0';
	for (i = 0; i < n; i++) {
		const char *s = secrets[i] ? secrets[i] : "";

		if (hl_hmac_sha256_hex(want, s, strlen(s), body, len) < 0)
			return hl_err_set(err, HL_EINTERNAL, "hmac computation failed");
		matched |= hl_str_ct_equal(want, HL_SHA256_HEX_LEN, given, HL_SHA256_HEX_LEN);
	}
	if (!matched)
		return hl_err_set(err, HL_EAUTH, "signature does not match");
	return 0;
}
