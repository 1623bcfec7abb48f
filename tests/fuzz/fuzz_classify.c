/*
 * fuzz_classify.c - libFuzzer target for job logs, the largest outside
 * input a worker reads (src/classify: cleaning, the Vectorscan scan, the
 * PCRE2 quote patterns, scoring): the first line is the failed step's name,
 * the rest the log, classified with the built-in rules, in memory and
 * through a file descriptor (hl_classify_fd).
 *
 * Oracle: both ways give the same agent, failure type and evidence line.
 */
#include "classify/classify.h"
#include "fuzz.h"

#include <string.h>
#include <unistd.h>

static struct hl_classifier *fuzz_classifier;

static void
fuzz_classifier_free(void)
{
	hl_classifier_free(fuzz_classifier);
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

	if (!fuzz_classifier) {
		FUZZ_CHECK(hl_classifier_new(&fuzz_classifier, NULL, &err) == 0);
		atexit(fuzz_classifier_free);
	}
	fuzz_split_line(step, sizeof(step), &log, &n, data, size);
	memset(&in, 0, sizeof(in));
	in.event = "workflow_job";
	in.failed_step = step[0] ? step : NULL;
	in.log = (const char *)log;
	in.log_len = n;
	if (hl_classify(&a, fuzz_classifier, &in, &err) < 0)
		return 0;
	FUZZ_CHECK(a.agent && a.failure_type);
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
