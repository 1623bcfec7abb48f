/*
 * test_github_budget.c - the GitHub client's token budget shared beyond
 * one client (hl_github_share_budget), over a fake shared store: a hold
 * learned is put under the token's fingerprint, another client takes it
 * before its next call, a window lifted by a later answer is not taken
 * back, a hold past or too far is judged as the client's own would be; a
 * secondary rate limit holds every call (and is shared) until its
 * Retry-After, or a minute.
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "base/clock.h"
#include "net/github.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The fake store: one key, its hold, and how often each side was called. */
struct fake_store {
	char key[64];
	int64_t until_ms;
	int gets, puts;
};

static int64_t
fake_get(void *arg, const char *key)
{
	struct fake_store *f = arg;

	f->gets++;
	return strcmp(key, f->key) == 0 ? f->until_ms : 0;
}

static void
fake_put(void *arg, const char *key, int64_t until_ms)
{
	struct fake_store *f = arg;

	f->puts++;
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->until_ms = until_ms;
}

static struct hl_github *
client(const char *token, struct fake_store *f)
{
	const struct hl_github_share share = { fake_get, fake_put, f };
	struct hl_github *gh = NULL;
	struct hl_err err = HL_ERR_INIT;

	assert_int_equal(
	        hl_github_new_with(&gh, "http://127.0.0.1:9", token, NULL, NULL, NULL, &err), 0);
	if (f)
		hl_github_share_budget(gh, &share);
	return gh;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
test_budget_a_hold_is_put_under_the_tokens_fingerprint(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *gh = client("ghs_secret_token", &f), *other;
	int64_t until = hl_time_wall_ms() + 60000;

	(void)state;
	hl_github_hold_budget(gh, until);
	assert_int_equal(f.puts, 1);
	assert_int_equal(f.until_ms, until);
	assert_true(strncmp(f.key, "github:budget:", 14) == 0);
	assert_int_equal(strlen(f.key), 14 + 16);
	assert_null(strstr(f.key, "ghs_secret_token"));
	/* another token has a budget of its own */
	other = client("ghs_another_token", NULL);
	{
		struct fake_store g = { .gets = 0 };
		const struct hl_github_share share = { fake_get, fake_put, &g };

		hl_github_share_budget(other, &share);
		hl_github_hold_budget(other, until);
		assert_string_not_equal(g.key, f.key);
	}
	hl_github_free(other);
	hl_github_free(gh);
}

static void
test_budget_another_client_takes_the_shared_hold(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *told = client("ghs_t", &f), *other = client("ghs_t", &f);
	int64_t wait;

	(void)state;
	assert_int_equal(hl_github_budget_wait_ms(other), 0);
	hl_github_hold_budget(told, hl_time_wall_ms() + 30000);
	/* read at most once a second: the next read sees the hold */
	sleep_ms(1100);
	wait = hl_github_budget_wait_ms(other);
	assert_true(wait > 25000 && wait <= 30000);
	/* the shared hold is not put back by the client that took it */
	assert_int_equal(f.puts, 1);
	hl_github_free(told);
	hl_github_free(other);
}

static void
test_budget_reads_are_at_most_once_a_second(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *gh = client("ghs_t", &f);
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		(void)hl_github_budget_wait_ms(gh);
	assert_int_equal(f.gets, 1);
	hl_github_free(gh);
}

static void
test_budget_a_window_lifted_here_is_not_taken_back(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *told = client("ghs_t", &f), *other = client("ghs_t", &f);
	int64_t now = hl_time_wall_ms();
	struct hl_fetch_res res;

	(void)state;
	hl_github_hold_budget(told, (now / 1000 + 30) * 1000 + 1000);
	sleep_ms(1100);
	assert_true(hl_github_budget_wait_ms(other) > 0);
	/* an answer of a later window (budget back early): lifted */
	memset(&res, 0, sizeof(res));
	res.status = 200;
	res.ratelimit_remaining = 4999;
	res.ratelimit_reset = now / 1000 + 3600;
	hl_github_note_budget(other, &res);
	assert_int_equal(hl_github_budget_wait_ms(other), 0);
	/* the store still says held: the next read does not hold it again */
	sleep_ms(1100);
	assert_int_equal(hl_github_budget_wait_ms(other), 0);
	assert_true(f.gets >= 2);
	hl_github_free(told);
	hl_github_free(other);
}

static void
test_budget_a_shared_hold_past_or_too_far(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *gh = client("ghs_t", NULL);
	const struct hl_github_share share = { fake_get, fake_put, &f };
	int64_t wait;

	(void)state;
	/* the key is the client's own: put it there with a hold in the past */
	hl_github_share_budget(gh, &share);
	hl_github_hold_budget(gh, hl_time_wall_ms() + 1); /* puts the key */
	f.until_ms = hl_time_wall_ms() - 5000;
	sleep_ms(1100);
	assert_int_equal(hl_github_budget_wait_ms(gh), 0);
	/* a reset a day away is held an hour at most */
	f.until_ms = hl_time_wall_ms() + 24LL * 3600 * 1000;
	sleep_ms(1100);
	wait = hl_github_budget_wait_ms(gh);
	assert_true(wait > HL_GITHUB_BUDGET_HOLD_MAX_MS - 5000 &&
	            wait <= HL_GITHUB_BUDGET_HOLD_MAX_MS);
	hl_github_free(gh);
}

/* A final answer of a rate limit with its headers, as the fetch engine
 * leaves it when the limit lifts past the call's deadline. */
static void
answer(struct hl_fetch_res *res, long status, int64_t remaining, int64_t retry_after_s,
       const char *message)
{
	hl_fetch_res_init(res);
	res->status = status;
	res->ratelimit_remaining = remaining;
	res->ratelimit_reset = hl_time_wall_ms() / 1000 + 3000;
	res->retry_after_s = retry_after_s;
	hl_buf_append_str(&res->body, message);
}

/* Notes one such answer on gh. */
static void
note(struct hl_github *gh, long status, int64_t remaining, int64_t retry_after_s,
     const char *message)
{
	struct hl_fetch_res res;

	answer(&res, status, remaining, retry_after_s, message);
	hl_github_note_budget(gh, &res);
	hl_fetch_res_release(&res);
}

static void
test_budget_a_secondary_rate_limit_holds_every_call(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *gh = client("ghs_t", &f);
	struct hl_fetch_res res;
	int64_t wait;

	(void)state;
	/* 403 with Retry-After: that long, shared */
	note(gh, 403, 4000, 30, "{\"message\": \"You have exceeded a secondary rate limit.\"}");
	wait = hl_github_budget_wait_ms(gh);
	assert_true(wait > 25000 && wait <= 30000);
	assert_int_equal(f.puts, 1);
	/* an answer of a later window does not lift it (it is not the window's) */
	answer(&res, 200, 4999, -1, "{}");
	res.ratelimit_reset = hl_time_wall_ms() / 1000 + 7200;
	hl_github_note_budget(gh, &res);
	hl_fetch_res_release(&res);
	assert_true(hl_github_budget_wait_ms(gh) > 25000);
	hl_github_free(gh);

	/* without Retry-After: a minute, for a 429 or a 403 naming it */
	gh = client("ghs_t", NULL);
	note(gh, 403, 4000, -1,
	     "{\"message\": \"You have exceeded a secondary rate limit and have been "
	     "temporarily blocked from content creation.\"}");
	wait = hl_github_budget_wait_ms(gh);
	assert_true(wait > 55000 && wait <= 60000);
	hl_github_free(gh);
	gh = client("ghs_t", NULL);
	note(gh, 429, 4000, -1, "{}");
	assert_true(hl_github_budget_wait_ms(gh) > 55000);
	hl_github_free(gh);

	/* one after another without a success: doubled (GitHub: back off) */
	gh = client("ghs_t", NULL);
	note(gh, 429, 4000, -1, "{}");
	note(gh, 429, 4000, -1, "{}");
	wait = hl_github_budget_wait_ms(gh);
	assert_true(wait > 115000 && wait <= 120000);
	hl_github_free(gh);
	/* a success in between starts again at a minute */
	gh = client("ghs_t", NULL);
	note(gh, 429, 4000, -1, "{}");
	note(gh, 200, 3999, -1, "{}");
	note(gh, 429, 4000, -1, "{}");
	assert_true(hl_github_budget_wait_ms(gh) <= 60000);
	hl_github_free(gh);

	/* a 403 of a permission holds nothing */
	gh = client("ghs_t", NULL);
	note(gh, 403, 4000, -1, "{\"message\": \"Resource not accessible by integration\"}");
	assert_int_equal(hl_github_budget_wait_ms(gh), 0);
	hl_github_free(gh);

	/* nor a storage host's 429 or spent budget (a job log's redirect) */
	gh = client("ghs_t", NULL);
	answer(&res, 429, 0, 120, "<Error>SlowDown</Error>");
	res.off_origin = true;
	hl_github_note_budget(gh, &res);
	hl_fetch_res_release(&res);
	assert_int_equal(hl_github_budget_wait_ms(gh), 0);
	hl_github_free(gh);
}

static void
test_budget_sharing_stops(void **state)
{
	struct fake_store f = { .gets = 0 };
	struct hl_github *gh = client("ghs_t", &f);

	(void)state;
	hl_github_share_budget(gh, NULL);
	hl_github_hold_budget(gh, hl_time_wall_ms() + 60000);
	assert_int_equal(f.puts, 0);
	assert_true(hl_github_budget_wait_ms(gh) > 0);
	assert_int_equal(f.gets, 0);
	hl_github_free(gh);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_a_hold_is_put_under_the_tokens_fingerprint),
		cmocka_unit_test(test_budget_another_client_takes_the_shared_hold),
		cmocka_unit_test(test_budget_reads_are_at_most_once_a_second),
		cmocka_unit_test(test_budget_a_window_lifted_here_is_not_taken_back),
		cmocka_unit_test(test_budget_a_shared_hold_past_or_too_far),
		cmocka_unit_test(test_budget_a_secondary_rate_limit_holds_every_call),
		cmocka_unit_test(test_budget_sharing_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
