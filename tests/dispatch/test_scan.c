/*
 * test_scan.c - directory dispatch's CodeRun files over time
 * (src/dispatch/dispatch.c): a scan reads only new or changed files (an
 * unchanged one costs a stat and still names its CodeRun), forgets removed
 * ones and reads everything again after hl_dispatch_scan_forget; the prune
 * removes old files in a terminal phase whose task is over, and keeps
 * active, young, unlabelled and still-running tasks' files.
 */
/* cmocka.h needs these headers before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "dispatch/dispatch.h"

#include "json/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* Sets path's mtime secs seconds ago (0: now). */
static void
back(const char *path, int secs)
{
	struct timeval tv[2];

	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= secs;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
}

/* Writes DIR/NAME.json, last written a second ago (a scan remembers it):
 * a CodeRun of task `task` (NULL: no label) in phase. */
static void
put(const char *dir, const char *name, const char *task, const char *phase)
{
	char path[512], tmp[520];
	json_t *m = json_pack("{s:{s:s, s:{s:s}}, s:{s:s}}", "metadata", "name", name, "labels",
	                      "app.kubernetes.io/name", "healer", "status", "phase", phase);
	FILE *f;

	if (task)
		json_object_set_new(json_object_get(json_object_get(m, "metadata"), "labels"),
		                    "healer/task-id", json_string(task));
	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(json_dumpf(m, f, 0), 0);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
	json_decref(m);
	back(path, 1);
}

/* Sets a file's mtime days ago. */
static void
age(const char *dir, const char *name, int days)
{
	char path[512];
	struct timeval tv[2];

	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= (time_t)days * 86400;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
}

static char *
mkdir_tmp(void)
{
	char tmpl[] = "/tmp/healer-scan-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void
rm_dir(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* One scan: the files it read; *changed and *named: the CodeRuns it
 * returned and the names it saw. */
static uint64_t
scan(struct hl_dispatch *d, struct hl_dispatch_scan *s, size_t *changed, size_t *named)
{
	struct hl_err err = HL_ERR_INIT;
	json_t *list = NULL, *names = json_object();
	uint64_t parsed = 0;

	assert_int_equal(hl_dispatch_scan(d, s, "app.kubernetes.io/name=healer", &list, names,
	                                  &parsed, &err),
	                 0);
	*changed = json_array_size(list);
	*named = json_object_size(names);
	json_decref(list);
	json_decref(names);
	return parsed;
}

static void
test_scan_reads_changed_only(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_dispatch *d = NULL;
	struct hl_dispatch_scan *s = hl_dispatch_scan_new();
	char *dir = mkdir_tmp(), path[512];
	size_t changed, named;
	int i;

	(void)state;
	assert_non_null(s);
	assert_int_equal(hl_dispatch_open_with(&d, HL_DISPATCH_DIRECTORY, dir, "cto", NULL, &err),
	                 0);
	for (i = 0; i < 20; i++) {
		char name[32];

		snprintf(name, sizeof(name), "cr-%02d", i);
		put(dir, name, "t1", "Failed");
	}
	snprintf(path, sizeof(path), "%s/foreign.json", dir);
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs("not json", f);
		fclose(f);
		back(path, 1);
	}
	assert_int_equal(scan(d, s, &changed, &named), 21);
	assert_int_equal(changed, 20);
	assert_int_equal(named, 20);
	/* nothing changed: no file read, every CodeRun still named */
	for (i = 0; i < 3; i++) {
		assert_int_equal(scan(d, s, &changed, &named), 0);
		assert_int_equal(changed, 0);
		assert_int_equal(named, 20);
	}
	/* one rewritten (a new inode), one removed */
	put(dir, "cr-03", "t1", "Succeeded");
	snprintf(path, sizeof(path), "%s/cr-07.json", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(scan(d, s, &changed, &named), 1);
	assert_int_equal(changed, 1);
	assert_int_equal(named, 19);
	/* forgotten: all read again */
	hl_dispatch_scan_forget(s);
	assert_int_equal(scan(d, s, &changed, &named), 20);
	assert_int_equal(changed, 19);
	/* a file written this moment is read on every scan (a rewrite in
	 * place within one timestamp tick looks unchanged), then, older,
	 * remembered */
	put(dir, "cr-racy", "t1", "Pending");
	snprintf(path, sizeof(path), "%s/cr-racy.json", dir);
	back(path, 0);
	assert_int_equal(scan(d, s, &changed, &named), 1);
	assert_int_equal(scan(d, s, &changed, &named), 1);
	back(path, 1);
	assert_int_equal(scan(d, s, &changed, &named), 1);
	assert_int_equal(scan(d, s, &changed, &named), 0);
	hl_dispatch_scan_free(s);
	hl_dispatch_close(d);
	rm_dir(dir);
	free(dir);
}

/* The tasks the test calls over. */
static bool
task_done(void *arg, const char *task_id)
{
	(void)arg;
	return strcmp(task_id, "t-running") != 0;
}

static void
test_prune_old_finished_only(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_dispatch *d = NULL;
	char *dir = mkdir_tmp(), path[512];
	int64_t removed = 0;
	struct timeval now;

	(void)state;
	assert_int_equal(hl_dispatch_open_with(&d, HL_DISPATCH_DIRECTORY, dir, "cto", NULL, &err),
	                 0);
	put(dir, "old-done", "t-final", "Succeeded");
	age(dir, "old-done", 40);
	put(dir, "old-failed", "t-final2", "Failed");
	age(dir, "old-failed", 40);
	put(dir, "old-active", "t-final3", "Running");
	age(dir, "old-active", 40);
	put(dir, "old-task-running", "t-running", "Failed");
	age(dir, "old-task-running", 40);
	put(dir, "old-unlabelled", NULL, "Succeeded");
	age(dir, "old-unlabelled", 40);
	put(dir, "young-done", "t-final4", "Succeeded");
	gettimeofday(&now, NULL);
	assert_int_equal(hl_dispatch_prune(d, (int64_t)now.tv_sec * 1000 - 30LL * 86400 * 1000,
	                                   task_done, NULL, &removed, &err),
	                 0);
	assert_int_equal(removed, 2);
	snprintf(path, sizeof(path), "%s/old-done.json", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/old-failed.json", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/old-active.json", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/old-task-running.json", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/old-unlabelled.json", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/young-done.json", dir);
	assert_int_equal(access(path, F_OK), 0);
	hl_dispatch_close(d);
	rm_dir(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_reads_changed_only),
		cmocka_unit_test(test_prune_old_finished_only),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
