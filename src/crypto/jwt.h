/*
 * jwt.h - RS256 JSON Web Tokens for GitHub App authentication (RFC 7519,
 * RFC 7515), signed with OpenSSL.
 *
 * A GitHub App authenticates as itself with a short-lived JWT
 * {"iat": now-60, "exp": now+540, "iss": <app id>} signed RS256 with the
 * App's private key, then trades it for an installation token. The private
 * key is used only inside these calls and never logged. Thread-safe (no
 * shared state).
 */
#ifndef HL_CRYPTO_JWT_H
#define HL_CRYPTO_JWT_H

#include "base/buf.h"
#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

/* Appends the unpadded base64url encoding of n bytes to out. */
int hl_jwt_b64url(struct hl_buf *out, const void *data, size_t n);

/*
 * Signs header {"alg":"RS256","typ":"JWT"} and the given claims (a JSON
 * object text) with the PEM private key (PKCS#1 or PKCS#8; "\n" escapes in a
 * one-line key are accepted). *out receives a malloc'd
 * "header.claims.signature" string (caller frees). Errors: HL_EAUTH for an
 * unreadable or non-RSA key, HL_EINVAL for bad claims, HL_ENOMEM.
 */
int hl_jwt_rs256_sign(char **out, const char *pem_private_key, const char *claims_json,
                      struct hl_err *err);

/*
 * Whether the PEM private key would sign (read as hl_jwt_rs256_sign reads
 * it): 0, or HL_EAUTH for an empty, unreadable (a public key, garbage) or
 * non-RSA key, HL_ENOMEM. The key is never named in the message.
 */
int hl_jwt_check_key(const char *pem_private_key, struct hl_err *err);

/*
 * The GitHub App JWT: iat = now_s - 60 (clock skew), exp = now_s + 540,
 * iss = app_id (a JSON number when app_id is all digits, else a string: a
 * client id). now_s is Unix seconds. Same errors as hl_jwt_rs256_sign.
 */
int hl_jwt_github_app(char **out, const char *app_id, const char *pem_private_key, int64_t now_s,
                      struct hl_err *err);

#endif
