/*
 * fuzz_classify.c - libFuzzer target for job logs, the largest outside
 * input a worker reads (src/classify: cleaning, the Vectorscan scan, the
 * PCRE2 quote patterns, scoring): the first line is the failed step's name,
 * the rest the log, classified with the built-in rules, in memory and
 * through a file descriptor (hl_classify_fd).
 *
 * Oracle: both ways give the same agent, failure type and evidence line;
 * and so do the built-in rules with every pattern in a group, which is
 * never scanned in two steps (src/classify/gate.c), down to each
 * candidate's matches and lines.
 */
#include "base/buf.h"
#include "classify/classify.h"
#include "fuzz.h"

#include <ctype.h>
#include <string.h>
#include <unistd.h>

static struct hl_classifier *fuzz_classifier, *fuzz_whole;

static void
fuzz_classifier_free(void)
{
	hl_classifier_free(fuzz_classifier);
	hl_classifier_free(fuzz_whole);
}

/* Whether line[0, n) is "KEY:" with KEY one of a patterns or quote list. */
static int
fuzz_list_key(const char *line, size_t n)
{
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	while (n > 0 && isspace((unsigned char)*line)) {
		line++;
		n--;
	}
	return (n == 9 && memcmp(line, "patterns:", 9) == 0) ||
	       (n == 6 && memcmp(line, "quote:", 6) == 0);
}

/* The built-in rules with each item of a patterns or quote list, a quoted
 * scalar on its own line, in a group. */
static int
fuzz_wrap_rules(struct hl_buf *out)
{
	const char *p = hl_classify_default_rules, *end = p + hl_classify_default_rules_len;
	int in_list = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), i = 0;
		while (i < n && p[i] == ' ')
			i++;
		if (fuzz_list_key(p, n)) {
			in_list = 1;
		} else if (i < n && p[i] != '-' && p[i] != '#') {
			in_list = 0;
		} else if (i + 2 < n && p[i] == '-' && p[i + 1] == ' ' &&
		           isalpha((unsigned char)p[i + 2])) {
			in_list = 0; /* "- name: ..." */
		}
		size_t q = i + 2, last = n;
		while (last > 0 && isspace((unsigned char)p[last - 1]))
			last--;
		if (in_list && i + 2 < n && p[i] == '-' && p[i + 1] == ' ' &&
		    (p[q] == '\'' || p[q] == '"') && last > q + 1 && p[last - 1] == p[q]) {
			if (hl_buf_append(out, p, q + 1) || hl_buf_append(out, "(", 1) ||
			    hl_buf_append(out, p + q + 1, last - 1 - (q + 1)) ||
			    hl_buf_append(out, ")", 1) || hl_buf_append(out, p + last - 1, 1))
				return -1;
		} else if (hl_buf_append(out, p, n)) {
			return -1;
		}
		if (hl_buf_append(out, "\n", 1))
			return -1;
		p += n + 1;
	}
	return 0;
}

static void
fuzz_setup(void)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_buf whole = HL_BUF_INIT(0);

	FUZZ_CHECK(hl_classifier_new(&fuzz_classifier, NULL, &err) == 0);
	FUZZ_CHECK(fuzz_wrap_rules(&whole) == 0);
	FUZZ_CHECK(hl_classifier_new_from_text(&fuzz_whole, whole.data, whole.len, "whole.yaml",
	                                       &err) == 0);
	hl_buf_release(&whole);
	atexit(fuzz_classifier_free);
	FUZZ_CHECK(hl_classifier_gated_count(fuzz_classifier) > 0);
	FUZZ_CHECK(hl_classifier_gated_count(fuzz_whole) == 0);
	FUZZ_CHECK(hl_classifier_pattern_count(fuzz_whole) ==
	           hl_classifier_pattern_count(fuzz_classifier));
}

/* The same verdict, candidate by candidate. */
static void
fuzz_same_verdict(const struct hl_verdict *a, const struct hl_verdict *b)
{
	FUZZ_CHECK(strcmp(a->rule, b->rule) == 0);
	FUZZ_CHECK(a->evidence_line_number == b->evidence_line_number);
	FUZZ_CHECK(a->n_candidates == b->n_candidates);
	for (size_t i = 0; i < a->n_candidates; i++) {
		FUZZ_CHECK(strcmp(a->candidates[i].rule, b->candidates[i].rule) == 0);
		FUZZ_CHECK(a->candidates[i].matches == b->candidates[i].matches);
		FUZZ_CHECK(a->candidates[i].line_number == b->candidates[i].line_number);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_classify_input in;
	struct hl_verdict a, b;
	char step[128], path[64];
	const uint8_t *log;
	size_t n;
	int fd;

	if (!fuzz_classifier)
		fuzz_setup();
	fuzz_split_line(step, sizeof(step), &log, &n, data, size);
	memset(&in, 0, sizeof(in));
	in.event = "workflow_job";
	in.failed_step = step[0] ? step : NULL;
	in.log = (const char *)log;
	in.log_len = n;
	if (hl_classify(&a, fuzz_classifier, &in, &err) < 0)
		return 0;
	FUZZ_CHECK(a.agent && a.failure_type);
	if (hl_classify(&b, fuzz_whole, &in, &err) == 0) {
		fuzz_same_verdict(&a, &b);
		hl_verdict_release(&b);
	}
	fd = fuzz_memfile(path, sizeof(path), log, n);
	if (fd >= 0) {
		in.log = NULL;
		if (hl_classify_fd(&b, fuzz_classifier, &in, fd, n, &err) == 0) {
			FUZZ_CHECK(strcmp(a.agent, b.agent) == 0);
			FUZZ_CHECK(strcmp(a.failure_type, b.failure_type) == 0);
			FUZZ_CHECK(a.evidence_line_number == b.evidence_line_number);
			hl_verdict_release(&b);
		}
		close(fd);
	}
	hl_verdict_release(&a);
	return 0;
}
