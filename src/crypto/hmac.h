/*
 * hmac.h - HMAC-SHA256 and GitHub webhook signature verification.
 *
 * GitHub signs each delivery with HMAC-SHA256 over the raw body and sends
 * "X-Hub-Signature-256: sha256=<64 lowercase hex>". healer accepts a list of
 * secrets so a secret can be rotated without downtime: a delivery signed
 * with any configured secret is valid. Comparison is constant-time.
 * All functions are thread-safe; a struct hl_webhook_keys is read-only once
 * made and may be shared by threads.
 */
#ifndef HL_CRYPTO_HMAC_H
#define HL_CRYPTO_HMAC_H

#include "base/err.h"

#include <stddef.h>

#define HL_SHA256_HEX_LEN 64

/* Writes HMAC-SHA256(key, msg) as 64 lowercase hex digits and a NUL into
 * out (65 bytes). Returns 0, or -HL_EINTERNAL if OpenSSL fails. */
int hl_hmac_sha256_hex(char *out, const void *key, size_t keylen, const void *msg, size_t n);

/* Writes SHA-256(msg) as 64 lowercase hex digits and a NUL into out. */
int hl_sha256_hex(char *out, const void *msg, size_t n);

/*
 * Verifies a webhook signature header value ("sha256=<hex>", hex in either
 * case) over body against each of the n secrets. Every secret is tried (no
 * early exit) so timing does not reveal which one matched.
 * Returns 0 when one matches; -HL_EAUTH (err says why: missing header,
 * malformed header, no secret matched) otherwise; -HL_EINVAL when n is 0.
 */
int hl_webhook_verify(const char *const *secrets, size_t n, const void *body, size_t len,
                      const char *header_value, struct hl_err *err);

/*
 * The secrets' HMAC key schedules, made once: for each secret the SHA-256
 * states after its inner and outer padded key block. Verifying with them
 * costs two digests resumed from those states, without the per-call key
 * setup and digest lookup of HMAC(). n may be 0 (every check then fails
 * as hl_webhook_verify does without secrets).
 */
struct hl_webhook_keys;

int hl_webhook_keys_new(struct hl_webhook_keys **out, const char *const *secrets, size_t n,
                        struct hl_err *err);
void hl_webhook_keys_free(struct hl_webhook_keys *k);
/* hl_webhook_verify with the schedules of k. */
int hl_webhook_verify_keys(const struct hl_webhook_keys *k, const void *body, size_t len,
                           const char *header_value, struct hl_err *err);

#endif
