/*
 * jwt.c - RS256 JWT signing for GitHub App authentication.
 *
 * The token is base64url(header) "." base64url(claims) "." base64url(sig),
 * where sig is RSASSA-PKCS1-v1_5 over SHA-256 of the first two parts. The
 * key is parsed from PEM on each call (the caller caches the resulting
 * installation token, so this runs about once an hour); key copies made here
 * are wiped before they are freed.
 */
#include "jwt.h"

#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

int
hl_jwt_b64url(struct hl_buf *out, const void *data, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

		hl_buf_append_char(out, tab[v >> 18 & 63]);
		hl_buf_append_char(out, tab[v >> 12 & 63]);
		hl_buf_append_char(out, tab[v >> 6 & 63]);
		hl_buf_append_char(out, tab[v & 63]);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;

		hl_buf_append_char(out, tab[v >> 18 & 63]);
		hl_buf_append_char(out, tab[v >> 12 & 63]);
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;

		hl_buf_append_char(out, tab[v >> 18 & 63]);
		hl_buf_append_char(out, tab[v >> 12 & 63]);
		hl_buf_append_char(out, tab[v >> 6 & 63]);
	}
	return hl_buf_error(out);
}

/* Returns a malloc'd copy of the PEM with literal "\n" escapes turned into
 * newlines (keys pasted into one-line environment variables). */
static char *
jwt_pem_unescape(const char *pem)
{
	size_t n = strlen(pem), i, j = 0;
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	for (i = 0; i < n; i++) {
		if (pem[i] == '\\' && pem[i + 1] == 'n') {
			s[j++] = '\n';
			i++;
		} else {
			s[j++] = pem[i];
		}
	}
	s[j] = '\0';
	return s;
}

/* Reads the PEM private key into *out (caller frees): HL_EAUTH when it is
 * empty, unreadable or not RSA, HL_ENOMEM. The unescaped copy is wiped. */
static int
jwt_load_key(EVP_PKEY **out, const char *pem_private_key, struct hl_err *err)
{
	char *pem = NULL;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	int ret = 0;

	if (!pem_private_key || !*pem_private_key)
		return hl_err_set(err, HL_EAUTH, "github app private key is empty");
	pem = jwt_pem_unescape(pem_private_key);
	if (!pem) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	ERR_clear_error();
	if (!key) {
		ret = hl_err_set(err, HL_EAUTH, "github app private key is not a readable PEM key");
		goto out;
	}
	if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		ret = hl_err_set(err, HL_EAUTH, "github app private key is not an RSA key");
		goto out;
	}
	*out = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	BIO_free(bio);
	if (pem) {
		explicit_bzero(pem, strlen(pem));
		free(pem);
	}
	return ret;
}

int
hl_jwt_check_key(const char *pem_private_key, struct hl_err *err)
{
	EVP_PKEY *key = NULL;
	int ret = jwt_load_key(&key, pem_private_key, err);

	EVP_PKEY_free(key);
	return ret;
}

int
hl_jwt_rs256_sign(char **out, const char *pem_private_key, const char *claims_json,
                  struct hl_err *err)
{
	static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	struct hl_buf tok = HL_BUF_INIT(0);
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int ret = 0;

	if (!pem_private_key || !*pem_private_key)
		return hl_err_set(err, HL_EAUTH, "github app private key is empty");
	if (!claims_json || claims_json[0] != '{')
		return hl_err_set(err, HL_EINVAL, "jwt claims must be a json object");
	if ((ret = jwt_load_key(&key, pem_private_key, err)) < 0)
		goto out;
	hl_jwt_b64url(&tok, header, sizeof(header) - 1);
	hl_buf_append_char(&tok, '.');
	hl_jwt_b64url(&tok, claims_json, strlen(claims_json));
	if (hl_buf_error(&tok)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)tok.data, tok.len) != 1) {
		ret = hl_err_set(err, HL_EAUTH, "rs256 signing setup failed");
		goto out;
	}
	sig = malloc(siglen);
	if (!sig) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)tok.data, tok.len) != 1) {
		ret = hl_err_set(err, HL_EAUTH, "rs256 signing failed");
		goto out;
	}
	hl_buf_append_char(&tok, '.');
	hl_jwt_b64url(&tok, sig, siglen);
	if (hl_buf_error(&tok)) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	*out = hl_buf_detach(&tok, NULL);
	if (!*out)
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
out:
	ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	hl_buf_release(&tok);
	return ret;
}

int
hl_jwt_github_app(char **out, const char *app_id, const char *pem_private_key, int64_t now_s,
                  struct hl_err *err)
{
	struct hl_buf claims = HL_BUF_INIT(0);
	const char *p;
	bool numeric = app_id && *app_id;
	int ret;

	if (!app_id || !*app_id)
		return hl_err_set(err, HL_EINVAL, "github app id is empty");
	for (p = app_id; *p; p++)
		if (!isdigit((unsigned char)*p))
			numeric = false;
	hl_buf_appendf(&claims, "{\"iat\":%lld,\"exp\":%lld,\"iss\":", (long long)(now_s - 60),
	               (long long)(now_s + 540));
	if (numeric) {
		hl_buf_append_str(&claims, app_id);
	} else {
		hl_buf_append_char(&claims, '"');
		hl_buf_append_json_escaped(&claims, app_id, strlen(app_id));
		hl_buf_append_char(&claims, '"');
	}
	hl_buf_append_char(&claims, '}');
	if (hl_buf_error(&claims)) {
		hl_buf_release(&claims);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	ret = hl_jwt_rs256_sign(out, pem_private_key, claims.data, err);
	hl_buf_release(&claims);
	return ret;
}
