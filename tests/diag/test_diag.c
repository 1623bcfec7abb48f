/*
 * test_diag.c - the pure parts of pod diagnostics (src/diag): JSON to YAML
 * (quoting of strings YAML would misread, the depth limit, the output cap),
 * the describe report of a Pod object, the container facts, and the
 * directory-relative writer and reader of a directory others can write.
 */
/* cmocka needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "diag/describe.h"
#include "diag/pod_diag.h"
#include "diag/yaml_emit.h"

#include "json/json.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *
parse(const char *s)
{
	json_t *v = NULL;

	assert_int_equal(hl_json_parse(&v, s, strlen(s), NULL), 0);
	return v;
}

static void
test_diag_yaml_quotes_what_yaml_would_misread(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	json_t *v = parse("{\"a\":\"true\",\"b\":\"007\",\"c\":\"\",\"d\":\"plain text\","
	                  "\"e\":7,\"f\":null,\"g\":[\"x\",false],\"null\":\"ü\"}");

	(void)state;
	assert_int_equal(hl_diag_json_to_yaml(&b, v, NULL), 0);
	assert_non_null(strstr(b.data, "a: \"true\"\n"));
	assert_non_null(strstr(b.data, "b: \"007\"\n"));
	assert_non_null(strstr(b.data, "c: \"\"\n"));
	assert_non_null(strstr(b.data, "d: plain text\n"));
	assert_non_null(strstr(b.data, "e: 7\n"));
	assert_non_null(strstr(b.data, "f: null\n"));
	assert_non_null(strstr(b.data, "- x\n"));
	assert_non_null(strstr(b.data, "- false\n"));
	assert_non_null(strstr(b.data, "\"null\": ü\n"));
	hl_buf_release(&b);
	json_decref(v);
}

/* Every YAML 1.1 implicit type is quoted, so a reader (PyYAML, go-yaml v2)
 * reads the event back as the same string: before, an event's
 * lastTimestamp was read as a date, "NO" as false, "1:20" as 80, and "<<"
 * made PyYAML fail on the whole file. */
static void
test_diag_yaml_quotes_yaml11_implicit_types(void **state)
{
	static const char *const quoted[] = {
		"2026-11-24T00:11:00Z",
		"2026-11-24",
		"2026-1-2 3:04:05.5 +01:00",
		"NO",
		"Yes",
		"TRUE",
		"OFF",
		"Y",
		"NULL",
		"1:20",
		"190:20:30.15",
		"1_000",
		"0b1011",
		"0o17",
		"0x_1F",
		".inf",
		"-.Inf",
		".NaN",
		"1.",
		".5",
		"<<",
		"=",
	};
	static const char *const plain[] = { "Back-off restarting",
		                             "BackOff",
		                             "v1.2.3",
		                             "kubelet",
		                             "10.0.0.5:8080",
		                             "app:1.4",
		                             "no-op",
		                             "2026-11-24x",
		                             "Nope" };
	struct hl_buf b = HL_BUF_INIT(0);
	json_t *v = json_array();
	char want[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++)
		json_array_append_new(v, json_string(quoted[i]));
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		json_array_append_new(v, json_string(plain[i]));
	assert_int_equal(hl_diag_json_to_yaml(&b, v, NULL), 0);
	for (i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
		snprintf(want, sizeof(want), "- \"%s\"\n", quoted[i]);
		if (!strstr(b.data, want))
			fail_msg("'%s' is not quoted:\n%s", quoted[i], b.data);
	}
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		snprintf(want, sizeof(want), "- %s\n", plain[i]);
		if (!strstr(b.data, want))
			fail_msg("'%s' is quoted needlessly:\n%s", plain[i], b.data);
	}
	hl_buf_release(&b);
	json_decref(v);
}

static void
test_diag_yaml_refuses_deep_nesting_and_respects_the_cap(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0), small = HL_BUF_INIT(8);
	struct hl_err err = HL_ERR_INIT;
	json_t *v = json_array(), *cur = v;
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		json_t *c = json_array();

		json_array_append_new(cur, c);
		cur = c;
	}
	assert_int_equal(hl_diag_json_to_yaml(&b, v, &err), -HL_EINVAL);
	assert_non_null(strstr(err.msg, "64"));
	json_decref(v);
	v = parse("{\"key\":\"a value longer than eight bytes\"}");
	assert_int_equal(hl_diag_json_to_yaml(&small, v, &err), -HL_ETOOBIG);
	hl_buf_release(&b);
	hl_buf_release(&small);
	json_decref(v);
}

static const char *pod_json =
        "{\"metadata\":{\"name\":\"api\",\"namespace\":\"prod\",\"labels\":{\"app\":\"api\"}},"
        "\"spec\":{\"nodeName\":\"n1\",\"initContainers\":[{\"name\":\"init\",\"image\":\"b\"}],"
        "\"containers\":[{\"name\":\"app\",\"image\":\"img:1\",\"resources\":{\"limits\":"
        "{\"memory\":\"1Gi\"}}},{\"name\":\"side\",\"image\":\"envoy\"}]},"
        "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\","
        "\"restartCount\":0,\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\","
        "\"exitCode\":137}},\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}},"
        "{\"name\":\"side\",\"restartCount\":0,\"ready\":true,\"state\":{\"running\":{}}}]}}";

static void
test_diag_container_facts(void **state)
{
	json_t *pod = parse(pod_json), *names = json_array();

	(void)state;
	assert_int_equal(hl_diag_pod_containers(names, pod, HL_DIAG_MAX_CONTAINERS), 3);
	assert_int_equal(json_array_size(names), 3);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "init");
	assert_string_equal(json_string_value(json_array_get(names, 2)), "side");
	/* a terminated last state counts as a previous instance even with 0
	 * restarts; a container without status has none */
	assert_true(hl_diag_has_previous(hl_diag_container_status(pod, "app")));
	assert_false(hl_diag_has_previous(hl_diag_container_status(pod, "side")));
	assert_null(hl_diag_container_status(pod, "init"));
	assert_false(hl_diag_has_previous(NULL));
	json_decref(names);
	json_decref(pod);
}

static void
test_diag_describe_report(void **state)
{
	struct hl_buf b = HL_BUF_INIT(0);
	json_t *pod = parse(pod_json);
	json_t *events = parse("{\"items\":[{\"type\":\"Warning\",\"reason\":\"BackOff\","
	                       "\"message\":\"back-off\",\"count\":3}]}");

	(void)state;
	hl_diag_describe_pod(&b, pod, events);
	assert_int_equal(hl_buf_error(&b), 0);
	assert_non_null(strstr(b.data, "Name:             api\n"));
	assert_non_null(strstr(b.data, "Init Containers:\n  init:\n"));
	assert_non_null(strstr(b.data, "    Last State:     Terminated\n      Reason:       "
	                               "OOMKilled\n      Exit Code:    137\n"));
	assert_non_null(strstr(b.data, "      memory:  1Gi\n"));
	assert_non_null(strstr(b.data, "BackOff"));
	assert_non_null(strstr(b.data, "(x3)"));
	hl_buf_reset(&b);
	hl_diag_describe_pod(&b, pod, NULL);
	assert_non_null(strstr(b.data, "Events:\n  <unavailable>\n"));
	hl_buf_release(&b);
	json_decref(events);
	json_decref(pod);
}

static void
test_diag_pod_names_that_cannot_name_a_file(void **state)
{
	struct hl_diag_report r;

	(void)state;
	assert_true(hl_diag_pod_name_valid("api-7d9f"));
	assert_false(hl_diag_pod_name_valid(""));
	assert_false(hl_diag_pod_name_valid(NULL));
	assert_false(hl_diag_pod_name_valid("."));
	assert_false(hl_diag_pod_name_valid(".."));
	assert_false(hl_diag_pod_name_valid("a/b"));
	/* as Kubernetes names them */
	assert_true(hl_diag_pod_name_valid("web.v2-abc12"));
	assert_false(hl_diag_pod_name_valid("Web-1"));
	assert_false(hl_diag_pod_name_valid("a..b"));
	assert_false(hl_diag_pod_name_valid("-a"));
	assert_false(hl_diag_pod_name_valid("a b"));
	assert_true(hl_diag_namespace_valid("kube-system"));
	assert_false(hl_diag_namespace_valid(".."));
	assert_false(hl_diag_namespace_valid("a.b"));
	assert_false(hl_diag_namespace_valid("Prod"));
	assert_false(hl_diag_namespace_valid(""));
	/* refused before any network call: no client needed */
	assert_int_equal(hl_diag_fetch_pod(&r, NULL, "ns", "../x", "/tmp", 0, NULL), -HL_EINVAL);
	assert_null(r.path[HL_DIAG_CURRENT_LOG]);
	hl_diag_report_release(&r);
	assert_int_equal(hl_diag_fetch_pod(&r, NULL, "..", "web-1", "/tmp", 0, NULL), -HL_EINVAL);
	assert_null(r.path[HL_DIAG_CURRENT_LOG]);
	hl_diag_report_release(&r);
	assert_string_equal(hl_diag_file_suffix(HL_DIAG_EVENTS), "events.yaml");
}

/* Every file named after a pod fits the file system's 255-byte names:
 * longer names get a shortened, hash-suffixed stem, shorter ones keep
 * theirs. The expected hash is sha256("p" x 253)'s first 16 hex digits. */
static void
test_diag_file_stem_fits_a_file_name(void **state)
{
	char pod[254], stem[HL_DIAG_STEM_MAX + 1], other[HL_DIAG_STEM_MAX + 1];

	(void)state;
	memset(pod, 'p', 253);
	pod[253] = '\0';
	hl_diag_file_stem(stem, pod);
	assert_int_equal(strlen(stem), HL_DIAG_STEM_MAX);
	assert_int_equal(strncmp(stem, pod, HL_DIAG_STEM_HEAD), 0);
	assert_string_equal(stem + HL_DIAG_STEM_HEAD, "-bc94c957f18ef836");
	assert_true(strlen(stem) + strlen("-previous.log") <= 255);
	/* two names sharing their head do not share a stem */
	pod[252] = 'q';
	hl_diag_file_stem(other, pod);
	assert_string_not_equal(stem, other);
	/* up to HL_DIAG_STEM_MAX bytes, the name itself */
	pod[HL_DIAG_STEM_MAX] = '\0';
	hl_diag_file_stem(stem, pod);
	assert_string_equal(stem, pod);
	hl_diag_file_stem(stem, "api-7d9f");
	assert_string_equal(stem, "api-7d9f");
	hl_diag_file_stem(stem, NULL);
	assert_string_equal(stem, "");
	/* namespace-qualified: "<ns>_<pod>", shortened the same way */
	hl_diag_file_stem_ns(stem, "staging", "api-7d9f");
	assert_string_equal(stem, "staging_api-7d9f");
	hl_diag_file_stem_ns(stem, NULL, "api-7d9f");
	assert_string_equal(stem, "api-7d9f");
	memset(pod, 'p', 253);
	pod[253] = '\0';
	hl_diag_file_stem_ns(stem, "staging", pod);
	assert_int_equal(strlen(stem), HL_DIAG_STEM_MAX);
	assert_int_equal(strncmp(stem, "staging_ppp", 11), 0);
	hl_diag_file_stem_ns(other, "prod", pod);
	assert_string_not_equal(stem, other);
	pod[HL_DIAG_STEM_MAX] = '\0';
	/* a pod name Kubernetes allows: parts are not held to 63 characters */
	assert_true(hl_diag_pod_name_valid(pod));
}

static void
slurp(char *out, size_t cap, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

/* The heal workspace's logs/ is the agent's to write: the writer and reader
 * work relative to the directory as opened. A file name that is a symbolic
 * link is replaced (written) or refused (read), never followed; the
 * directory's path swapped for a link after it was opened sends nothing to
 * the link's target (before: paths, checked once and used later). */
static void
test_diag_at_never_follows_links(void **state)
{
	char base[] = "/tmp/healer-diag-unit-XXXXXX", dir[128], moved[128], target[128],
	     secret[192], p[256], text[128];
	struct hl_err err = HL_ERR_INIT;
	struct stat st;
	int dfd, fd;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/logs", base);
	snprintf(moved, sizeof(moved), "%s/logs.orig", base);
	snprintf(target, sizeof(target), "%s/elsewhere", base);
	snprintf(secret, sizeof(secret), "%s/secret", target);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mkdir(target, 0755), 0);
	assert_non_null(f = fopen(secret, "w"));
	fputs("HEALER-SECRET-31\n", f);
	fclose(f);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(dfd >= 0);

	/* a file name planted as a link: read refused, write replaces the link */
	snprintf(p, sizeof(p), "%s/pod-current.log", dir);
	assert_int_equal(symlink(secret, p), 0);
	assert_int_equal(hl_diag_open_at(dfd, "pod-current.log", &err), -HL_EINVAL);
	assert_int_equal(hl_diag_write_at(dfd, "pod-current.log", "mine\n", 5, &err), 0);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	slurp(text, sizeof(text), secret);
	assert_string_equal(text, "HEALER-SECRET-31\n");
	/* a FIFO is refused without blocking; a missing file is not found */
	snprintf(p, sizeof(p), "%s/pod-events.yaml", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(hl_diag_open_at(dfd, "pod-events.yaml", &err), -HL_EINVAL);
	assert_int_equal(hl_diag_open_at(dfd, "pod-describe.txt", &err), -HL_ENOTFOUND);
	/* one component only */
	assert_int_equal(hl_diag_write_at(dfd, "../x", "x", 1, &err), -HL_EINVAL);
	assert_int_equal(hl_diag_open_at(dfd, "../elsewhere/secret", &err), -HL_EINVAL);

	/* the directory swapped for a link to elsewhere after it was opened */
	assert_int_equal(rename(dir, moved), 0);
	assert_int_equal(symlink(target, dir), 0);
	assert_int_equal(hl_diag_write_at(dfd, "pod-previous.log", "prev\n", 5, &err), 0);
	snprintf(p, sizeof(p), "%s/pod-previous.log", target);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/pod-previous.log", moved);
	slurp(text, sizeof(text), p);
	assert_string_equal(text, "prev\n");
	/* and a read through it takes the opened directory's file, not the
	 * target's of the same name */
	snprintf(p, sizeof(p), "%s/pod-current.log", target);
	assert_non_null(f = fopen(p, "w"));
	fputs("HEALER-SECRET-31\n", f);
	fclose(f);
	fd = hl_diag_open_at(dfd, "pod-current.log", &err);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, text, sizeof(text)), 5);
	assert_memory_equal(text, "mine\n", 5);
	close(fd);
	close(dfd);

	unlink(dir);
	snprintf(p, sizeof(p), "%s/pod-current.log", target);
	unlink(p);
	unlink(secret);
	rmdir(target);
	snprintf(p, sizeof(p), "%s/pod-current.log", moved);
	unlink(p);
	snprintf(p, sizeof(p), "%s/pod-previous.log", moved);
	unlink(p);
	snprintf(p, sizeof(p), "%s/pod-events.yaml", moved);
	unlink(p);
	rmdir(moved);
	rmdir(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diag_yaml_quotes_what_yaml_would_misread),
		cmocka_unit_test(test_diag_yaml_quotes_yaml11_implicit_types),
		cmocka_unit_test(test_diag_yaml_refuses_deep_nesting_and_respects_the_cap),
		cmocka_unit_test(test_diag_container_facts),
		cmocka_unit_test(test_diag_describe_report),
		cmocka_unit_test(test_diag_pod_names_that_cannot_name_a_file),
		cmocka_unit_test(test_diag_file_stem_fits_a_file_name),
		cmocka_unit_test(test_diag_at_never_follows_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
