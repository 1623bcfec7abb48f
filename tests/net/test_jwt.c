/*
 * test_jwt.c - the GitHub App JWT (src/crypto/jwt.c): base64url vectors,
 * header and claims, and an RS256 signature that OpenSSL verifies with the
 * public key (and rejects once the token is tampered with).
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "crypto/jwt.h"

#include "json/json.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

static char *test_key_pem;
static EVP_PKEY *test_key;

static int
setup(void **state)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	(void)state;
	test_key = EVP_RSA_gen(2048);
	if (!test_key || !bio ||
	    !PEM_write_bio_PrivateKey(bio, test_key, NULL, NULL, 0, NULL, NULL))
		return -1;
	n = BIO_get_mem_data(bio, &p);
	test_key_pem = strndup(p, (size_t)n);
	BIO_free(bio);
	return test_key_pem ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	free(test_key_pem);
	EVP_PKEY_free(test_key);
	return 0;
}

static char *
b64url(const char *s, size_t n)
{
	struct hl_buf b = HL_BUF_INIT(0);

	assert_int_equal(hl_jwt_b64url(&b, s, n), 0);
	return hl_buf_detach(&b, NULL);
}

static void
test_jwt_b64url_vectors(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} v[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg" },
		{ "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" },
		{ "foob", 4, "Zm9vYg" },
		{ "fooba", 5, "Zm9vYmE" },
		{ "\xfb\xff", 2, "-_8" },
		{ "\xff\xfe\xfd", 3, "__79" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = b64url(v[i].in, v[i].n);

		assert_string_equal(s, v[i].out);
		free(s);
	}
}

/* Decodes one base64url segment of a JWT into a NUL-terminated buffer. */
static unsigned char *
unb64url(const char *s, size_t n, size_t *outlen)
{
	char *t = malloc(n + 4);
	unsigned char *out = malloc(n + 4);
	size_t i, m;
	int len;

	for (i = 0; i < n; i++)
		t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	m = n;
	while (m % 4)
		t[m++] = '=';
	len = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
	assert_true(len >= 0);
	len -= (int)(m - n); /* padding bytes decode to zeros */
	out[len] = '\0';
	*outlen = (size_t)len;
	free(t);
	return out;
}

static void
split3(const char *jwt, const char **dot1, const char **dot2)
{
	*dot1 = strchr(jwt, '.');
	assert_non_null(*dot1);
	*dot2 = strchr(*dot1 + 1, '.');
	assert_non_null(*dot2);
	assert_null(strchr(*dot2 + 1, '.'));
}

static int
verify(const char *jwt)
{
	const char *d1, *d2;
	unsigned char *sig;
	size_t siglen;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	split3(jwt, &d1, &d2);
	sig = unb64url(d2 + 1, strlen(d2 + 1), &siglen);
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, test_key) == 1 &&
	     EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1;
	EVP_MD_CTX_free(md);
	free(sig);
	return ok;
}

static void
test_jwt_github_app_header_and_claims(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char *jwt = NULL;
	const char *d1, *d2;
	unsigned char *h, *c;
	size_t hl, cl;
	json_t *hj, *cj;

	(void)state;
	assert_int_equal(hl_jwt_github_app(&jwt, "12345", test_key_pem, 1700000000, &err), 0);
	split3(jwt, &d1, &d2);
	h = unb64url(jwt, (size_t)(d1 - jwt), &hl);
	c = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
	hj = json_loadb((char *)h, hl, 0, NULL);
	cj = json_loadb((char *)c, cl, 0, NULL);
	assert_non_null(hj);
	assert_non_null(cj);
	assert_string_equal(hl_json_str(hj, "alg"), "RS256");
	assert_string_equal(hl_json_str(hj, "typ"), "JWT");
	assert_true(json_is_integer(json_object_get(cj, "iss")));
	assert_int_equal(hl_json_int(cj, "iss", 0), 12345);
	assert_int_equal(hl_json_int(cj, "iat", 0), 1700000000 - 60);
	assert_int_equal(hl_json_int(cj, "exp", 0), 1700000000 + 540);
	json_decref(hj);
	json_decref(cj);
	free(h);
	free(c);
	free(jwt);
}

static void
test_jwt_signature_verifies_with_public_key(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char *jwt = NULL;

	(void)state;
	assert_int_equal(hl_jwt_github_app(&jwt, "Iv1.abc", test_key_pem, 1700000000, &err), 0);
	assert_true(verify(jwt));
	/* tamper with the claims: the signature no longer matches */
	{
		char *d1 = strchr(jwt, '.');

		d1[3] = d1[3] == 'A' ? 'B' : 'A';
	}
	assert_false(verify(jwt));
	free(jwt);
}

static void
test_jwt_client_id_issuer_is_a_string(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char *jwt = NULL;
	const char *d1, *d2;
	unsigned char *c;
	size_t cl;
	json_t *cj;

	(void)state;
	assert_int_equal(hl_jwt_github_app(&jwt, "Iv1.abc", test_key_pem, 1700000000, &err), 0);
	split3(jwt, &d1, &d2);
	c = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
	cj = json_loadb((char *)c, cl, 0, NULL);
	assert_string_equal(hl_json_str(cj, "iss"), "Iv1.abc");
	json_decref(cj);
	free(c);
	free(jwt);
}

static void
test_jwt_escaped_newlines_in_key_accepted(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf esc = HL_BUF_INIT(0);
	char *jwt = NULL;
	const char *p;

	(void)state;
	for (p = test_key_pem; *p; p++) {
		if (*p == '\n')
			hl_buf_append_str(&esc, "\\n");
		else
			hl_buf_append_char(&esc, *p);
	}
	assert_null(strchr(esc.data, '\n'));
	assert_int_equal(hl_jwt_github_app(&jwt, "1", esc.data, 1700000000, &err), 0);
	assert_true(verify(jwt));
	free(jwt);
	hl_buf_release(&esc);
}

static void
test_jwt_bad_keys_rejected(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	char *jwt = NULL;
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *pem;
	long n;

	(void)state;
	assert_int_equal(hl_jwt_github_app(&jwt, "1", "not a key", 1, &err), -HL_EAUTH);
	assert_null(jwt);
	assert_int_equal(hl_jwt_github_app(&jwt, "1", "", 1, &err), -HL_EAUTH);
	assert_int_equal(hl_jwt_github_app(&jwt, "", test_key_pem, 1, &err), -HL_EINVAL);
	assert_non_null(ec);
	PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(bio, &p);
	pem = strndup(p, (size_t)n);
	assert_int_equal(hl_jwt_github_app(&jwt, "1", pem, 1, &err), -HL_EAUTH);
	assert_non_null(strstr(err.msg, "RSA"));
	/* the error never carries key material */
	assert_null(strstr(err.msg, "BEGIN"));
	free(pem);
	BIO_free(bio);
	EVP_PKEY_free(ec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jwt_b64url_vectors),
		cmocka_unit_test(test_jwt_github_app_header_and_claims),
		cmocka_unit_test(test_jwt_signature_verifies_with_public_key),
		cmocka_unit_test(test_jwt_client_id_issuer_is_a_string),
		cmocka_unit_test(test_jwt_escaped_newlines_in_key_accepted),
		cmocka_unit_test(test_jwt_bad_keys_rejected),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
