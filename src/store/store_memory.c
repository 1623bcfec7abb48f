/*
 * store_memory.c - the memory's front end (store/memory.h): argument
 * checks, the words of a similar-failures query (what both backends'
 * full-text searches are given), the store mutex around each backend call,
 * and hit ownership.
 *
 * A query's words are cut from free text: runs of ASCII letters, digits,
 * '_' and non-ASCII characters (valid UTF-8 only; invalid bytes end a word)
 * of at least three characters, ASCII lower-cased, not all digits, each
 * once, at most HL_MEMORY_WORDS_MAX; nothing else reaches a backend's query
 * syntax. Each backend folds them as its index does (SQLite through FTS5's
 * own tokenizer; PostgreSQL through to_tsvector with the index's
 * configuration).
 */
#include "base/str.h"
#include "store_front.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_K_MAX 50

/* The bytes at p that make one character of a word: an ASCII letter,
 * digit or '_' (1), a valid UTF-8 sequence of a non-ASCII character (its
 * length: the backends' tokenizers decide which of those are letters), or
 * 0 for anything else. */
static size_t
memory_word_char(const unsigned char *p)
{
	size_t len;

	if (*p < 0x80)
		return (isalnum(*p) || *p == '_') ? 1 : 0;
	len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
	return hl_utf8_valid_len((const char *)p, strnlen((const char *)p, len)) == len ? len : 0;
}

size_t
hl_store_memory_words(char (*out)[HL_MEMORY_WORD_MAX], size_t max, const char *text)
{
	const unsigned char *p = (const unsigned char *)(text ? text : "");
	size_t n = 0, i, c;

	while (*p && n < max) {
		const unsigned char *w;
		size_t len, chars = 0;
		bool digits = true;

		while (*p && !memory_word_char(p))
			p++;
		w = p;
		while (*p && (c = memory_word_char(p))) {
			digits &= isdigit(*p) != 0;
			chars++;
			p += c;
		}
		len = (size_t)(p - w);
		if (chars < 3 || len >= HL_MEMORY_WORD_MAX || digits)
			continue;
		for (i = 0; i < len; i++)
			out[n][i] = w[i] < 0x80 ? (char)tolower(w[i]) : (char)w[i];
		out[n][len] = '\0';
		for (i = 0; i < n; i++)
			if (strcmp(out[i], out[n]) == 0)
				break;
		if (i == n)
			n++;
	}
	return n;
}

int
hl_store_memory_put(struct hl_store *s, bool *created, const struct hl_memory_in *m,
                    struct hl_err *err)
{
	bool dummy;

	if (!m->task_id || !*m->task_id || !m->repository || !*m->repository || !m->event ||
	    !m->outcome || !m->attempts_json)
		return hl_err_set(err, HL_EINVAL,
		                  "a memory needs a task, a repository, an event, an outcome"
		                  " and its attempts");
	STORE_CALL(s, s->ops->memory.put(s->b, created ? created : &dummy, m, err));
}

int
hl_store_memory_similar(struct hl_store *s, struct hl_memory_hit **out, size_t *n,
                        const struct hl_memory_query *q, struct hl_err *err)
{
	char words[HL_MEMORY_WORDS_MAX][HL_MEMORY_WORD_MAX];
	size_t nw;

	*out = NULL;
	*n = 0;
	if (!q->failure_type || !*q->failure_type)
		return hl_err_set(err, HL_EINVAL, "a memory search needs a failure type");
	if (q->k < 1 || q->k > MEMORY_K_MAX)
		return hl_err_set(err, HL_EINVAL, "a memory search returns 1 to %d memories",
		                  MEMORY_K_MAX);
	nw = hl_store_memory_words(words, HL_MEMORY_WORDS_MAX, q->text);
	STORE_CALL(s, s->ops->memory.similar(s->b, out, n, q, words, nw, err));
}

void
hl_memory_hits_free(struct hl_memory_hit *h, size_t n)
{
	size_t i;

	for (i = 0; h && i < n; i++) {
		free(h[i].task_id);
		free(h[i].repository);
		free(h[i].workflow);
		free(h[i].job);
		free(h[i].failure_type);
		free(h[i].event);
		free(h[i].outcome);
		free(h[i].evidence);
		free(h[i].first_agent);
		free(h[i].fixed_by);
		free(h[i].attempts_json);
		free(h[i].pr_url);
		free(h[i].commits);
		free(h[i].summary);
	}
	free(h);
}

int
hl_store_memory_reinforce(struct hl_store *s, int64_t id, double boost, struct hl_err *err)
{
	if (id <= 0 || !(boost > 0 && boost <= 100))
		return hl_err_set(err, HL_EINVAL,
		                  "a reinforcement needs a memory and a boost"
		                  " in (0, 100]");
	STORE_CALL(s, s->ops->memory.reinforce(s->b, id, boost, err));
}

int
hl_store_memory_count(struct hl_store *s, int64_t *out, struct hl_err *err)
{
	STORE_CALL(s, s->ops->memory.count(s->b, out, err));
}

int
hl_store_agent_records(struct hl_store *s, struct hl_agent_record *out, size_t max, size_t *n,
                       const char *repository, const char *failure_type, struct hl_err *err)
{
	*n = 0;
	if (!repository || !failure_type)
		return hl_err_set(err, HL_EINVAL, "agent records need a repository and a type");
	STORE_CALL(s,
	           s->ops->memory.agent_records(s->b, out, max, n, repository, failure_type, err));
}

int
hl_store_insight_rows(struct hl_store *s, const struct hl_insight_filter *f,
                      void (*fn)(void *arg, const struct hl_insight_row *r), void *arg,
                      struct hl_err *err)
{
	STORE_CALL(s, s->ops->memory.insight_rows(s->b, f, fn, arg, err));
}

int
hl_store_insight_dedup(struct hl_store *s, struct hl_insight_dedup *out,
                       const struct hl_insight_filter *f, struct hl_err *err)
{
	memset(out, 0, sizeof(*out));
	STORE_CALL(s, s->ops->memory.insight_dedup(s->b, out, f, err));
}

/* succeeded / finished < num / den, in integers (no rounding at the edge) */
static bool
memory_below(const struct hl_agent_record *r, int64_t num, int64_t den)
{
	return r->succeeded * den < r->finished * num;
}

static bool
memory_better(const struct hl_agent_record *a, const struct hl_agent_record *b)
{
	/* a's rate above b's, compared exactly: a.s / a.f > b.s / b.f */
	int64_t l = a->succeeded * b->finished, r = b->succeeded * a->finished;

	if (l != r)
		return l > r;
	if (a->succeeded != b->succeeded)
		return a->succeeded > b->succeeded;
	return strcmp(a->agent, b->agent) < 0;
}

const struct hl_agent_record *
hl_memory_learned_choice(const struct hl_agent_record *rec, size_t n, const char *rule_agent,
                         const char *failure_type, const char *repository, const char *const *never,
                         char *why, size_t why_size)
{
	const struct hl_agent_record *rule = NULL, *best = NULL;
	size_t i, k;

	if (!rule_agent)
		return NULL;
	for (i = 0; i < n; i++)
		if (strcmp(rec[i].agent, rule_agent) == 0)
			rule = &rec[i];
	if (!rule || rule->finished < HL_LEARNED_MIN_FAILING ||
	    !memory_below(rule, HL_LEARNED_FAILING_PCT, 100))
		return NULL;
	for (i = 0; i < n; i++) {
		const struct hl_agent_record *r = &rec[i];
		bool banned = false;

		for (k = 0; never && never[k]; k++)
			banned |= strcmp(never[k], r->agent) == 0;
		if (r == rule || banned || r->finished < HL_LEARNED_MIN_GOOD ||
		    memory_below(r, HL_LEARNED_GOOD_PCT, 100))
			continue;
		if (!best || memory_better(r, best))
			best = r;
	}
	if (best && why)
		snprintf(why, why_size, "learned: %s %lld/%lld on %s in %s, %s %lld/%lld",
		         rule->agent, (long long)rule->succeeded, (long long)rule->finished,
		         failure_type ? failure_type : "?", repository ? repository : "?",
		         best->agent, (long long)best->succeeded, (long long)best->finished);
	return best;
}
