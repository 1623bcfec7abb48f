/*
 * hmac.c - HMAC-SHA256 over OpenSSL's one-shot HMAC() and the GitHub
 * "sha256=<hex>" signature check with secret rotation, from key schedules
 * made once per secret (struct hl_webhook_keys).
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
#include <pthread.h>
#include <stdlib.h>
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

/* SHA-256 fetched once: SHA256() looks the algorithm up by name on every
 * call (3x the cost of the digest of a short identity, and a lock shared
 * by every request thread). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int
hl_sha256_hex(char *out, const void *msg, size_t n)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned int len = 0;

	pthread_once(&sha256_once, sha256_fetch);
	if (!sha256_md || !EVP_Digest(n ? msg : "", n, md, &len, sha256_md, NULL) ||
	    len != sizeof(md))
		return -HL_EINTERNAL;
	hl_str_hex(out, md, sizeof(md));
	return 0;
}

#define HMAC_BLOCK 64 /* SHA-256's block size */

struct hl_webhook_keys {
	size_t n;
	EVP_MD *md;
	struct {
		EVP_MD_CTX *inner, *outer; /* after the key ^ ipad / ^ opad block */
	} k[];
};

void
hl_webhook_keys_free(struct hl_webhook_keys *k)
{
	size_t i;

	if (!k)
		return;
	for (i = 0; i < k->n; i++) {
		EVP_MD_CTX_free(k->k[i].inner);
		EVP_MD_CTX_free(k->k[i].outer);
	}
	EVP_MD_free(k->md);
	free(k);
}

/* RFC 2104: the key padded to a block (hashed first when longer), XORed
 * with pad, starts the digest. */
static EVP_MD_CTX *
hmac_pad_ctx(EVP_MD *md, const unsigned char *key, size_t keylen, unsigned char pad)
{
	unsigned char block[HMAC_BLOCK];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t i;

	for (i = 0; i < HMAC_BLOCK; i++)
		block[i] = (unsigned char)((i < keylen ? key[i] : 0) ^ pad);
	if (!c || !EVP_DigestInit_ex(c, md, NULL) || !EVP_DigestUpdate(c, block, HMAC_BLOCK)) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	OPENSSL_cleanse(block, sizeof(block));
	return c;
}

int
hl_webhook_keys_new(struct hl_webhook_keys **out, const char *const *secrets, size_t n,
                    struct hl_err *err)
{
	struct hl_webhook_keys *k = calloc(1, sizeof(*k) + n * sizeof(k->k[0]));
	unsigned char hashed[SHA256_DIGEST_LENGTH];
	size_t i;

	if (!k)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (!(k->md = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		free(k);
		return hl_err_set(err, HL_EINTERNAL, "SHA-256 is not available");
	}
	for (i = 0; i < n; i++) {
		const unsigned char *key = (const unsigned char *)(secrets[i] ? secrets[i] : "");
		size_t keylen = strlen((const char *)key);

		if (keylen > HMAC_BLOCK) {
			if (!SHA256(key, keylen, hashed))
				break;
			key = hashed;
			keylen = sizeof(hashed);
		}
		k->k[i].inner = hmac_pad_ctx(k->md, key, keylen, 0x36);
		k->k[i].outer = hmac_pad_ctx(k->md, key, keylen, 0x5c);
		k->n = i + 1; /* freed with k from here */
		if (!k->k[i].inner || !k->k[i].outer)
			break;
	}
	OPENSSL_cleanse(hashed, sizeof(hashed));
	if (i < n) {
		hl_webhook_keys_free(k);
		return hl_err_set(err, HL_EINTERNAL,
		                  "cannot set up the webhook secrets' HMAC keys");
	}
	*out = k;
	return 0;
}

/* HMAC-SHA256 of msg with the i-th schedule, as hex into want. */
static int
hmac_keyed_hex(char *want, EVP_MD_CTX *c, const struct hl_webhook_keys *k, size_t i,
               const void *msg, size_t n)
{
	unsigned char inner[SHA256_DIGEST_LENGTH], mac[SHA256_DIGEST_LENGTH];
	unsigned int len = 0;

	if (!EVP_MD_CTX_copy_ex(c, k->k[i].inner) || !EVP_DigestUpdate(c, msg, n) ||
	    !EVP_DigestFinal_ex(c, inner, &len) || len != sizeof(inner) ||
	    !EVP_MD_CTX_copy_ex(c, k->k[i].outer) || !EVP_DigestUpdate(c, inner, len) ||
	    !EVP_DigestFinal_ex(c, mac, &len) || len != sizeof(mac))
		return -HL_EINTERNAL;
	hl_str_hex(want, mac, sizeof(mac));
	return 0;
}

/* The signature header's 64 hex digits, lowercased, into given. */
static int
webhook_parse_header(char *given, const char *header_value, struct hl_err *err)
{
	static const char prefix[] = "sha256=";
	const char *hex;
	size_t i;

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
	return 0;
}

int
hl_webhook_verify_keys(const struct hl_webhook_keys *k, const void *body, size_t len,
                       const char *header_value, struct hl_err *err)
{
	char given[HL_SHA256_HEX_LEN + 1];
	char want[HL_SHA256_HEX_LEN + 1];
	unsigned matched = 0;
	EVP_MD_CTX *c;
	size_t i;
	int rc;

	if (k->n == 0)
		return hl_err_set(err, HL_EINVAL, "no webhook secret configured");
	if ((rc = webhook_parse_header(given, header_value, err)) < 0)
		return rc;
	if (!(c = EVP_MD_CTX_new()))
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (i = 0; i < k->n; i++) {
		if (hmac_keyed_hex(want, c, k, i, len ? body : "", len) < 0) {
			EVP_MD_CTX_free(c);
			return hl_err_set(err, HL_EINTERNAL, "hmac computation failed");
		}
		matched |= hl_str_ct_equal(want, HL_SHA256_HEX_LEN, given, HL_SHA256_HEX_LEN);
	}
	EVP_MD_CTX_free(c);
	if (!matched)
		return hl_err_set(err, HL_EAUTH, "signature does not match");
	return 0;
}

int
hl_webhook_verify(const char *const *secrets, size_t n, const void *body, size_t len,
                  const char *header_value, struct hl_err *err)
{
	struct hl_webhook_keys *k = NULL;
	int rc;

	if (n == 0)
		return hl_err_set(err, HL_EINVAL, "no webhook secret configured");
	if ((rc = hl_webhook_keys_new(&k, secrets, n, err)) < 0)
		return rc;
	rc = hl_webhook_verify_keys(k, body, len, header_value, err);
	hl_webhook_keys_free(k);
	return rc;
}
