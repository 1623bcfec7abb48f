/*
 * test_hmac.c - unit tests for HMAC-SHA256 and GitHub webhook signature
 * verification (src/crypto/hmac.c): published vectors, secret rotation and
 * malformed headers.
 */
#include "crypto/hmac.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdio.h>
#include <string.h>

static const char gh_secret[] = "It's a Secret to Everybody";
static const char gh_body[] = "Hello, World!";
static const char gh_sig[] =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

static void
test_hmac_github_documented_example(void **state)
{
	char hex[65];

	assert_int_equal(
	        hl_hmac_sha256_hex(hex, gh_secret, strlen(gh_secret), gh_body, strlen(gh_body)), 0);
	assert_string_equal(hex, gh_sig + 7);
}

static void
test_hmac_rfc4231_vectors(void **state)
{
	unsigned char key1[20];
	char hex[65];

	/* RFC 4231 test case 2. */
	assert_int_equal(hl_hmac_sha256_hex(hex, "Jefe", 4, "what do ya want for nothing?", 28), 0);
	assert_string_equal(hex,
	                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* RFC 4231 test case 1. */
	memset(key1, 0x0b, sizeof(key1));
	assert_int_equal(hl_hmac_sha256_hex(hex, key1, sizeof(key1), "Hi There", 8), 0);
	assert_string_equal(hex,
	                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void
test_hmac_sha256_empty_input(void **state)
{
	char hex[65];

	assert_int_equal(hl_sha256_hex(hex, "", 0), 0);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* FIPS 180-2, appendix B.1 */
	assert_int_equal(hl_sha256_hex(hex, "abc", 3), 0);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_hmac_verify_accepts_valid_signature(void **state)
{
	const char *secrets[] = { gh_secret };
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_webhook_verify(secrets, 1, gh_body, strlen(gh_body), gh_sig, &err), 0);
}

static void
test_hmac_verify_accepts_uppercase_hex(void **state)
{
	const char *secrets[] = { gh_secret };
	char up[sizeof(gh_sig)];
	size_t i;

	memcpy(up, gh_sig, sizeof(gh_sig));
	for (i = 7; up[i]; i++)
		if (up[i] >= 'a' && up[i] <= 'f')
			up[i] = (char)(up[i] - 32);
	assert_int_equal(hl_webhook_verify(secrets, 1, gh_body, strlen(gh_body), up, NULL), 0);
}

static void
test_hmac_verify_rotation_accepts_any_secret(void **state)
{
	const char *old_first[] = { "old-secret-value", gh_secret };
	const char *new_first[] = { gh_secret, "old-secret-value" };
	const char *neither[] = { "old-secret-value", "another-one" };
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(hl_webhook_verify(old_first, 2, gh_body, 13, gh_sig, NULL), 0);
	assert_int_equal(hl_webhook_verify(new_first, 2, gh_body, 13, gh_sig, NULL), 0);
	assert_int_equal(hl_webhook_verify(neither, 2, gh_body, 13, gh_sig, &err), -HL_EAUTH);
	assert_non_null(strstr(err.msg, "does not match"));
}

static void
test_hmac_verify_rejects_tampered_body(void **state)
{
	const char *secrets[] = { gh_secret };

	assert_int_equal(hl_webhook_verify(secrets, 1, "Hello, World?", 13, gh_sig, NULL),
	                 -HL_EAUTH);
	assert_int_equal(hl_webhook_verify(secrets, 1, gh_body, 12, gh_sig, NULL), -HL_EAUTH);
}

static void
test_hmac_verify_rejects_malformed_headers(void **state)
{
	const char *secrets[] = { gh_secret };
	const char *bad[] = {
		NULL,
		"",
		"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		"sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		"sha256=",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e177",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
		"SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		" sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	};
	struct hl_err err = HL_ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		assert_int_equal(hl_webhook_verify(secrets, 1, gh_body, 13, bad[i], &err),
		                 -HL_EAUTH);
		assert_true(err.msg[0] != '\0');
	}
}

static void
test_hmac_verify_without_secrets_is_einval(void **state)
{
	assert_int_equal(hl_webhook_verify(NULL, 0, gh_body, 13, gh_sig, NULL), -HL_EINVAL);
}

/* The key schedules agree with HMAC() for keys shorter than, as long as
 * and longer than a block (RFC 4231 case 6: a longer key is hashed first),
 * for an empty body, and stay usable for any number of checks. */
static void
test_hmac_keys_agree_with_one_shot_hmac(void **state)
{
	char k64[65], k131[132], hex[65], header[80];
	const char *keys[3] = { gh_secret, k64, k131 };
	const char *bodies[] = { gh_body, "",
		                 "Test Using Larger Than Block-Size Key - Hash Key First" };
	struct hl_webhook_keys *wk = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t i, j;

	memset(k64, 'k', 64);
	k64[64] = '\0';
	memset(k131, 0xaa, 131);
	k131[131] = '\0';
	assert_int_equal(hl_hmac_sha256_hex(hex, k131, 131, bodies[2], strlen(bodies[2])), 0);
	assert_string_equal(hex,
	                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	for (i = 0; i < 3; i++) {
		assert_int_equal(hl_webhook_keys_new(&wk, &keys[i], 1, &err), 0);
		for (j = 0; j < 3; j++) {
			assert_int_equal(hl_hmac_sha256_hex(hex, keys[i], strlen(keys[i]),
			                                    bodies[j], strlen(bodies[j])),
			                 0);
			snprintf(header, sizeof(header), "sha256=%s", hex);
			assert_int_equal(hl_webhook_verify_keys(wk, bodies[j], strlen(bodies[j]),
			                                        header, &err),
			                 0);
			assert_int_equal(hl_webhook_verify_keys(wk, bodies[j], strlen(bodies[j]),
			                                        header, &err),
			                 0);
			header[7] = header[7] == '0' ? '1' : '0';
			assert_int_equal(hl_webhook_verify_keys(wk, bodies[j], strlen(bodies[j]),
			                                        header, &err),
			                 -HL_EAUTH);
		}
		hl_webhook_keys_free(wk);
	}
	assert_int_equal(hl_webhook_keys_new(&wk, NULL, 0, &err), 0);
	assert_int_equal(hl_webhook_verify_keys(wk, gh_body, 13, gh_sig, NULL), -HL_EINVAL);
	hl_webhook_keys_free(wk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_github_documented_example),
		cmocka_unit_test(test_hmac_rfc4231_vectors),
		cmocka_unit_test(test_hmac_sha256_empty_input),
		cmocka_unit_test(test_hmac_verify_accepts_valid_signature),
		cmocka_unit_test(test_hmac_verify_accepts_uppercase_hex),
		cmocka_unit_test(test_hmac_verify_rotation_accepts_any_secret),
		cmocka_unit_test(test_hmac_verify_rejects_tampered_body),
		cmocka_unit_test(test_hmac_verify_rejects_malformed_headers),
		cmocka_unit_test(test_hmac_verify_without_secrets_is_einval),
		cmocka_unit_test(test_hmac_keys_agree_with_one_shot_hmac),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
