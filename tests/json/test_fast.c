/*
 * test_fast.c - the fast JSON parser (src/json/fast.c) must
 * accept exactly what json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL) accepts
 * and build equal values: differential tests over every GitHub webhook
 * example of @octokit/webhooks-examples, hand-written edge cases, and
 * thousands of deterministic random mutations. The request arena (the
 * jansson allocator of the webhook path) must build the same trees, keep
 * values that outlive a scope valid and account frees from other threads.
 */
#include "json/fast.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <float.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JANSSON_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/*
 * True when jansson refused text only for a number it cannot hold (fast.h:
 * the fast parser takes it as a real): the same text with every number
 * replaced by 0 is accepted by jansson.
 */
static int
jansson_range_only(const char *text, size_t n, const json_error_t *jerr)
{
	char *copy;
	size_t i, o = 0;
	json_t *v;

	if (strncmp(jerr->text, "too big ", 8) != 0 &&
	    strncmp(jerr->text, "real number overflow", 20) != 0)
		return 0;
	copy = malloc(n + 1);
	if (!copy)
		return 0;
	/* numbers outside strings become 0 (their digits dropped) */
	for (i = 0; i < n;) {
		if (text[i] == '"') {
			size_t j = i + 1;

			while (j < n && text[j] != '"')
				j += text[j] == '\\' ? 2 : 1;
			j = j < n ? j + 1 : n;
			memcpy(copy + o, text + i, j - i);
			o += j - i;
			i = j;
		} else if (text[i] == '-' || (text[i] >= '0' && text[i] <= '9')) {
			copy[o++] = '0';
			while (i < n && strchr("-+.eE0123456789", text[i]))
				i++;
		} else {
			copy[o++] = text[i++];
		}
	}
	v = json_loadb(copy, o, JANSSON_FLAGS, NULL);
	free(copy);
	json_decref(v);
	return v != NULL;
}

/* Returns 1 if both parsers agree on text (same acceptance, equal values). */
static int
agree(const char *text, size_t n)
{
	json_t *a = NULL, *b;
	struct hl_err err = HL_ERR_INIT;
	json_error_t jerr;
	int rc = hl_json_fast_parse(&a, text, n, &err);
	int ok;

	b = json_loadb(text, n, JANSSON_FLAGS, &jerr);
	if (rc == 0 && b)
		ok = json_equal(a, b);
	else if (rc == 0 && jansson_range_only(text, n, &jerr))
		ok = 1; /* a number jansson cannot hold (fast.h): valid JSON */
	else
		ok = rc < 0 && !b;
	if (!ok)
		fprintf(stderr, "# disagree on %.*s: ours %s, jansson %s\n",
		        (int)(n > 200 ? 200 : n), text, rc == 0 ? "accepts" : err.msg,
		        b ? "accepts" : "rejects");
	if (rc < 0)
		assert_true(strstr(err.msg, "line ") == err.msg);
	json_decref(a);
	json_decref(b);
	return ok;
}

/* Valid JSON with numbers jansson cannot hold is read, as reals (fast.h). */
static void
test_json_fast_large_numbers_are_reals(void **state)
{
	static const struct {
		const char *text;
		double want;
	} cases[] = {
		{ "18446744073709551616", 18446744073709551616.0 },
		{ "9223372036854775808", 9223372036854775808.0 },
		{ "-9223372036854775809", -9223372036854775808.0 },
		{ "1.5e400", DBL_MAX },
		{ "-1.5e400", -DBL_MAX },
		{ "123456789012345678901234567890", 123456789012345678901234567890.0 },
	};
	struct hl_err err = HL_ERR_INIT;
	char text[128];
	json_t *v = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "{\"extra\":[%s],\"id\":7}", cases[i].text);
		assert_int_equal(hl_json_fast_parse(&v, text, strlen(text), &err), 0);
		assert_true(json_is_real(json_array_get(json_object_get(v, "extra"), 0)));
		assert_true(json_real_value(json_array_get(json_object_get(v, "extra"), 0)) ==
		            cases[i].want);
		assert_int_equal(json_integer_value(json_object_get(v, "id")), 7);
		json_decref(v);
		v = NULL;
	}
	/* the edge of json_int_t stays an integer */
	assert_int_equal(hl_json_fast_parse(&v, "-9223372036854775808", 20, &err), 0);
	assert_true(json_is_integer(v) && json_integer_value(v) == INT64_MIN);
	json_decref(v);
}

static void
test_json_fast_edge_cases(void **state)
{
	static const char *const cases[] = {
		"{}",
		"[]",
		"0",
		"-0",
		"1.5",
		"-1.5e10",
		"1E+2",
		"1e-400",
		"1e400",
		"123456789012345678",
		"9223372036854775807",
		"9223372036854775808",
		"-9223372036854775808",
		"-9223372036854775809",
		"true",
		"false",
		"null",
		"\"\"",
		"\"a\\u00e9b\"",
		"\"\\ud83d\\ude00\"",
		"\"\\ud83d\"",
		"\"\\ude00\"",
		"\"\\ud83dx\"",
		"\"\\u0000\"",
		"{\"\\u0000\":1}",
		"{\"a\\nb\":1}",
		"\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\\u12G4\"",
		"\"tab\there\"",
		"\"\xc3\xa9\"",
		"\"\xc3\"",
		"\"\xe0\x80\x80\"",
		"\"\xed\xa0\x80\"",
		"\"\xf4\x90\x80\x80\"",
		"\"\xff\"",
		"\"\xf0\x9f\x98\x80\"",
		"01",
		"1.",
		".5",
		"1e",
		"1e+",
		"-",
		"+1",
		"[1,]",
		"[,1]",
		"{\"a\":1,}",
		"{\"a\" 1}",
		"{1:2}",
		"{\"a\":1 \"b\":2}",
		"[1 2]",
		"  [1, [2, [3, {\"x\": null}]]]  ",
		"[1]x",
		"tru",
		"nul",
		"falsey",
		"",
		"   ",
		"\"unterminated",
		"{\"a\":{\"a\":{\"a\":[]}}}",
		"{\"dup\":1,\"dup\":2}",
		"[\"\\u00\"]",
		"\"\\uDBFF\\uDFFF\"",
		"\"\\uD800\\u0041\"",
		"[1e5, -0.0, 3.14159265358979, 2.5E-3]",
		"\"a\x01\"",
		"\"\x7f\"",
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_true(agree(cases[i], strlen(cases[i])));
	/* Embedded NUL bytes outside strings are errors. */
	assert_true(agree("[1,\0 2]", 7));
	assert_true(agree("\"a\0b\"", 5));
}

/* Strings are scanned sixteen bytes at a time: every byte that ends or
 * interrupts a plain run (quote, backslash escape, control character, UTF-8
 * lead byte valid or not, DEL) at every offset of the first chunks, and
 * strings cut short at every length, are taken as jansson takes them. */
static void
test_json_fast_strings_at_every_offset(void **state)
{
	static const char *const specials[] = {
		"\"",   "\\n",  "\\\"",         "\\u00e9",  "\\ud83d\\ude00", "\\x",
		"\x01", "\x1f", "\x7f",         "\xc3\xa9", "\xe2\x82\xac",   "\xf0\x9f\x98\x80",
		"\xc3", "\xff", "\xed\xa0\x80", "\\ud800",  "\x80",           " ",
	};
	char text[128];
	size_t k, pos, len, n;
	int bad = 0;

	(void)state;
	for (k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
		for (pos = 0; pos < 40; pos++) {
			text[0] = '"';
			memset(text + 1, 'a', pos);
			n = 1 + pos;
			len = strlen(specials[k]);
			memcpy(text + n, specials[k], len);
			n += len;
			memset(text + n, 'b', 20);
			n += 20;
			text[n++] = '"';
			bad += !agree(text, n);
			/* the same string cut short anywhere */
			for (len = 1; len < n; len += 3)
				bad += !agree(text, len);
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_json_fast_depth_is_bounded(void **state)
{
	size_t n = 100000, i;
	char *deep = malloc(2 * n + 1);
	json_t *v = NULL;

	assert_non_null(deep);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[n + i] = ']';
	}
	assert_int_equal(hl_json_fast_parse(&v, deep, 2 * n, NULL), -HL_EPARSE);
	/* 2000 levels parse. */
	assert_int_equal(hl_json_fast_parse(&v, deep + n - 2000, 4000, NULL), 0);
	json_decref(v);
	free(deep);
}

static json_t *
load_examples(void)
{
	const char *root = getenv("HEALER_SOURCE_ROOT");
	char path[1024];

	snprintf(path, sizeof(path),
	         "%s/tests/node/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
	         root ? root : ".");
	return json_load_file(path, 0, NULL);
}

static void
test_json_fast_matches_jansson_on_webhook_examples(void **state)
{
	json_t *all = load_examples(), *ev, *exs, *ex;
	size_t i, j, count = 0;
	char *text;

	assert_non_null(all);
	json_array_foreach(all, i, ev)
	{
		exs = json_object_get(ev, "examples");
		json_array_foreach(exs, j, ex)
		{
			text = json_dumps(ex, JSON_COMPACT);
			assert_true(agree(text, strlen(text)));
			free(text);
			text = json_dumps(ex, JSON_INDENT(2) | JSON_ENSURE_ASCII);
			assert_true(agree(text, strlen(text)));
			free(text);
			count++;
		}
	}
	assert_true(count > 200);
	json_decref(all);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
test_json_fast_matches_jansson_on_mutations(void **state)
{
	static const char seed[] =
	        "{\"action\":\"completed\",\"workflow_job\":{\"id\":29679449,\"steps\":[{\"name\":"
	        "\"Build\",\"number\":1,\"conclusion\":\"failure\"}],\"labels\":[\"gpu\",\"x\\u00e9\"],"
	        "\"ratio\":-1.25e-3,\"ok\":true,\"none\":null},\"sender\":{\"login\":\"bot[bot]\"}}";
	static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfnrl \t\n\x80\xc3\xa9\xed";
	char buf[sizeof(seed) + 16];
	size_t n, pos, k;
	int i;

	for (i = 0; i < 20000; i++) {
		memcpy(buf, seed, sizeof(seed));
		n = sizeof(seed) - 1;
		for (k = 0; k < 1 + next_rand() % 3 && n > 0; k++) {
			pos = next_rand() % n;
			switch (next_rand() % 3) {
			case 0: /* replace a byte */
				buf[pos] = alphabet[next_rand() % (sizeof(alphabet) - 1)];
				break;
			case 1: /* delete a byte */
				memmove(buf + pos, buf + pos + 1, n - pos - 1);
				n--;
				break;
			default: /* truncate */
				n = pos;
				break;
			}
		}
		assert_true(agree(buf, n));
	}
}

/* Rules for the pruned parse tests: a member dropped, one limited. */
static const char *const keep_repo[] = { "full_name", "html_url", NULL };
static const struct hl_json_prune_rule rules[] = {
	{ "repository", keep_repo },
	{ "organization", NULL },
	{ "sender", keep_repo },
	{ NULL, NULL },
};

/* What a pruned parse must build: the full tree with the rules applied. */
static void
prune_ref(json_t *root)
{
	const struct hl_json_prune_rule *r;
	const char *key;
	json_t *m, *v;
	void *tmp;

	if (!json_is_object(root))
		return;
	for (r = rules; r->key; r++) {
		m = json_object_get(root, r->key);
		if (!m)
			continue;
		if (!r->keep) {
			json_object_del(root, r->key);
			continue;
		}
		if (!json_is_object(m))
			continue;
		json_object_foreach_safe(m, tmp, key, v)
		{
			const char *const *k;

			for (k = r->keep; *k && strcmp(*k, key) != 0; k++)
				;
			if (!*k)
				json_object_del(m, key);
		}
	}
}

/* Returns 1 if the pruned parse accepts exactly what the full one does,
 * with the same error, and builds the full tree pruned. */
static int
prune_agrees(const char *text, size_t n)
{
	json_t *full = NULL, *pruned = NULL;
	struct hl_err e1 = HL_ERR_INIT, e2 = HL_ERR_INIT;
	int r1 = hl_json_fast_parse(&full, text, n, &e1);
	int r2 = hl_json_fast_parse_pruned(&pruned, text, n, rules, &e2);
	int ok = r1 == r2;

	if (ok && r1 == 0) {
		prune_ref(full);
		ok = json_equal(full, pruned);
	} else if (ok) {
		ok = strcmp(e1.msg, e2.msg) == 0;
	}
	if (!ok)
		fprintf(stderr, "# pruned parse differs on %.*s: %s / %s\n",
		        (int)(n > 200 ? 200 : n), text, r1 == 0 ? "ok" : e1.msg,
		        r2 == 0 ? "ok" : e2.msg);
	json_decref(full);
	json_decref(pruned);
	return ok;
}

static void
test_json_fast_pruned_parse_builds_only_what_is_kept(void **state)
{
	static const char *const cases[] = {
		"{\"repository\":{\"full_name\":\"a/b\",\"id\":7,\"owner\":{\"login\":\"a\"},"
		"\"topics\":[\"x\",{\"y\":[1.5e3,null,true]}],\"html_url\":\"h\"},"
		"\"organization\":{\"login\":\"o\",\"n\":[1,2]},\"action\":\"completed\","
		"\"nested\":{\"repository\":{\"id\":1},\"organization\":2}}",
		"{\"repository\":\"a string\",\"sender\":[1],\"organization\":null}",
		"{\"repository\":{\"full_name\":\"first\"},\"repository\":{\"id\":1}}",
		"{\"repository\":{\"full_\\u006eame\":\"esc\",\"\\u00e9\":\"\\ud83d\\ude00\"}}",
		"[{\"repository\":{\"id\":1}}]",
		/* refused inside a pruned member, the same way */
		"{\"organization\":{\"a\":01}}",
		"{\"organization\":{\"a\":\"\\ud800\"}}",
		"{\"repository\":{\"id\":99999999999999999999999}}",
		"{\"organization\":[1,,2]}",
		"{\"repository\":{\"x\":tru}}",
		"{\"organization\":{\"k\\u0000\":1}}",
		"{\"organization\":{\"a\":1}",
	};
	json_t *v = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_true(prune_agrees(cases[i], strlen(cases[i])));
	/* members under the root's are never pruned */
	assert_int_equal(hl_json_fast_parse_pruned(&v, cases[0], strlen(cases[0]), rules, &err), 0);
	assert_non_null(json_object_get(json_object_get(v, "nested"), "organization"));
	assert_null(json_object_get(v, "organization"));
	assert_int_equal(json_object_size(json_object_get(v, "repository")), 2);
	json_decref(v);
}

static void
test_json_fast_pruned_parse_agrees_on_examples_and_mutations(void **state)
{
	static const char damage[] = "{}[]\",:\\0e-tn \x80";
	json_t *all = load_examples(), *ev, *exs, *ex;
	char *text, buf[4096];
	size_t i, j, n, pos, count = 0;
	int k, round;

	assert_non_null(all);
	json_array_foreach(all, i, ev)
	{
		exs = json_object_get(ev, "examples");
		json_array_foreach(exs, j, ex)
		{
			text = json_dumps(ex, JSON_COMPACT);
			assert_true(prune_agrees(text, strlen(text)));
			/* damaged copies: refused (or taken) alike */
			for (round = 0; round < 8; round++) {
				n = strlen(text) < sizeof(buf) ? strlen(text) : sizeof(buf);
				memcpy(buf, text, n);
				for (k = 0; k < 2 && n > 0; k++) {
					pos = next_rand() % n;
					if (next_rand() % 2)
						buf[pos] =
						        damage[next_rand() % (sizeof(damage) - 1)];
					else
						n = pos;
				}
				assert_true(prune_agrees(buf, n));
			}
			free(text);
			count++;
		}
	}
	assert_true(count > 200);
	json_decref(all);
}

static void
test_json_fast_arena_builds_equal_trees_and_frees_them(void **state)
{
	json_t *all = load_examples(), *ev, *exs, *ex, *ours, *ref;
	struct hl_err err = HL_ERR_INIT;
	size_t i, j, served0, served, spilled0, spilled, count = 0;
	long live;
	char *text;

	assert_non_null(all);
	hl_json_arena_install();
	assert_true(hl_json_arena_begin());
	hl_json_arena_end();
	hl_json_arena_stats(&served0, &spilled0, &live);
	assert_int_equal(live, 0);
	json_array_foreach(all, i, ev)
	{
		exs = json_object_get(ev, "examples");
		json_array_foreach(exs, j, ex)
		{
			text = json_dumps(ex, JSON_COMPACT);
			ref = json_loads(text, JANSSON_FLAGS, NULL);
			assert_true(hl_json_arena_begin());
			assert_int_equal(hl_json_fast_parse(&ours, text, strlen(text), &err), 0);
			assert_true(json_equal(ours, ref));
			json_decref(ours);
			hl_json_arena_end();
			hl_json_arena_stats(&served, &spilled, &live);
			assert_int_equal(live, 0);
			json_decref(ref);
			free(text);
			count++;
		}
	}
	hl_json_arena_stats(&served, &spilled, &live);
	fprintf(stderr, "# arena served %zu bytes, %zu spilled allocations\n", served - served0,
	        spilled - spilled0);
	/* Every example tree fits the block: nothing spilled to malloc. */
	assert_true(count > 200);
	assert_true(served > served0);
	assert_int_equal(spilled, spilled0);
	json_decref(all);
}

static void
test_json_fast_arena_keeps_values_that_outlive_the_scope(void **state)
{
	static const char a_text[] = "{\"a\":\"first value\",\"n\":[1,2,3]}";
	static const char b_text[] = "{\"b\":\"second value that would overwrite\",\"m\":[4,5,6]}";
	json_t *a = NULL, *b = NULL, *a_ref = json_loads(a_text, 0, NULL);
	struct hl_err err = HL_ERR_INIT;
	size_t served, spilled;
	long live;

	hl_json_arena_install();
	assert_true(hl_json_arena_begin());
	assert_int_equal(hl_json_fast_parse(&a, a_text, strlen(a_text), &err), 0);
	hl_json_arena_end();
	/* a is alive: the next scope must not rewind over it. */
	assert_true(hl_json_arena_begin());
	assert_int_equal(hl_json_fast_parse(&b, b_text, strlen(b_text), &err), 0);
	json_decref(b);
	hl_json_arena_end();
	assert_true(json_equal(a, a_ref));
	hl_json_arena_stats(&served, &spilled, &live);
	assert_true(live > 0);
	json_decref(a);
	hl_json_arena_stats(&served, &spilled, &live);
	assert_int_equal(live, 0);
	json_decref(a_ref);
}

static void *
decref_thread(void *arg)
{
	json_t *v = arg;
	char *dump = json_dumps(v, JSON_COMPACT); /* outside any scope: malloc */

	free(dump);
	json_decref(v);
	return NULL;
}

static void
test_json_fast_arena_accounts_frees_from_other_threads(void **state)
{
	static const char text[] = "{\"k\":{\"x\":\"y\"},\"list\":[\"p\",\"q\"]}";
	json_t *v = NULL, *outside = NULL;
	struct hl_err err = HL_ERR_INIT;
	size_t served0, served, spilled;
	long live;
	pthread_t t;

	hl_json_arena_install();
	assert_true(hl_json_arena_begin());
	assert_int_equal(hl_json_fast_parse(&v, text, strlen(text), &err), 0);
	hl_json_arena_end();
	hl_json_arena_stats(&served0, &spilled, &live);
	assert_true(live > 0);
	assert_int_equal(pthread_create(&t, NULL, decref_thread, v), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	hl_json_arena_stats(&served, &spilled, &live);
	assert_int_equal(live, 0);
	/* Outside a scope values are plain malloc: the block serves nothing. */
	assert_int_equal(hl_json_fast_parse(&outside, text, strlen(text), &err), 0);
	hl_json_arena_stats(&served, &spilled, &live);
	assert_int_equal(served, served0);
	assert_int_equal(live, 0);
	json_decref(outside);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_fast_edge_cases),
		cmocka_unit_test(test_json_fast_large_numbers_are_reals),
		cmocka_unit_test(test_json_fast_strings_at_every_offset),
		cmocka_unit_test(test_json_fast_depth_is_bounded),
		cmocka_unit_test(test_json_fast_matches_jansson_on_webhook_examples),
		cmocka_unit_test(test_json_fast_matches_jansson_on_mutations),
		cmocka_unit_test(test_json_fast_pruned_parse_builds_only_what_is_kept),
		cmocka_unit_test(test_json_fast_pruned_parse_agrees_on_examples_and_mutations),
		cmocka_unit_test(test_json_fast_arena_builds_equal_trees_and_frees_them),
		cmocka_unit_test(test_json_fast_arena_keeps_values_that_outlive_the_scope),
		cmocka_unit_test(test_json_fast_arena_accounts_frees_from_other_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
