/*
 * retention.c - the removal of old ended deliveries; see retention.h.
 */
#include "retention.h"

#include "base/clock.h"
#include "base/log.h"
#include "base/pause.h"
#include "base/str.h"
#include "diag/pod_diag.h"
#include "loop/loop.h"
#include "store/intake.h"
#include "store/ledger.h"
#include "store/loop.h"

#include "json/json.h"
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETENTION_INTERVAL_MS (60LL * 60 * 1000) /* between passes */
#define RETENTION_BATCH       500                /* deliveries per transaction */
#define RETENTION_PAUSE_MS    50                 /* after each batch */
#define RETENTION_PASS_MS     (60LL * 1000)      /* a pass's longest run */
#define RETENTION_DAY_MS      (24LL * 60 * 60 * 1000)
#define RETENTION_COMPACT     256 /* free pages given back per transaction */
/* a heal workspace file no open alert task names, last written this long
 * ago: its task ended (or it never had one) */
#define RETENTION_FILE_GRACE_MS (24LL * 60 * 60 * 1000)
#define RETENTION_MAX_STEMS     20000

struct hl_retention {
	const struct hl_config *cfg;
	struct hl_store *store;
	struct hl_pause pause;
	atomic_uint_fast64_t removed, freed_bytes, passes_ok, passes_failed, files_removed;
};

/* The file stems of the pods the open alert tasks (running, verifying or
 * waiting for a slot) name: their files stay. */
struct retention_stems {
	char **v;
	size_t n, cap;
	bool full; /* too many to hold: none is taken for unused */
};

static void
retention_stem_add(struct retention_stems *st, const char *stem)
{
	char **v;

	if (st->n >= RETENTION_MAX_STEMS) {
		st->full = true;
		return;
	}
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 64;

		if (!(v = realloc(st->v, cap * sizeof(*v)))) {
			st->full = true;
			return;
		}
		st->v = v;
		st->cap = cap;
	}
	if (!(st->v[st->n] = strdup(stem))) {
		st->full = true;
		return;
	}
	st->n++;
}

/* hl_task_each_fn: the stems of one open task's pod (both: the plain one
 * and the namespace-qualified one the heal flow may have taken). */
static int
retention_stems_of(void *arg, const struct hl_task_record *t, struct hl_err *err)
{
	struct retention_stems *st = arg;
	char stem[HL_DIAG_STEM_MAX + 1];
	json_t *doc = NULL;
	const char *ns, *pod;

	(void)err;
	if (!t->kind || strcmp(t->kind, "alert") != 0 || !t->event_json ||
	    hl_json_parse(&doc, t->event_json, strlen(t->event_json), NULL) < 0)
		return 0;
	ns = hl_json_str(doc, "alert.labels.namespace");
	pod = hl_json_str(doc, "alert.labels.pod");
	if (pod && *pod) {
		hl_diag_file_stem(stem, pod);
		retention_stem_add(st, stem);
		hl_diag_file_stem_ns(stem, ns, pod);
		retention_stem_add(st, stem);
	}
	json_decref(doc);
	return 0;
}

/* The stems of every open alert task; false when the store could not say
 * (then no file is taken for one of an ended task). */
static bool
retention_stems_load(struct hl_retention *r, struct retention_stems *st)
{
	static const char *const open_states[] = { "running", "verifying", "queued" };
	struct hl_err err = HL_ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(open_states) / sizeof(open_states[0]); i++) {
		struct hl_task_query q = { .state = open_states[i], .limit = 500 };

		if (hl_store_task_each(r->store, &q, retention_stems_of, st, &err) < 0) {
			hl_log_kv(
			        HL_LOG_WARN,
			        "the heal workspace's files of ended tasks are kept this pass: the "
			        "store did not list the open tasks",
			        "error", err.msg, NULL);
			return false;
		}
	}
	return !st->full;
}

static void
retention_stems_free(struct retention_stems *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		free(st->v[i]);
	free(st->v);
}

/* The stem of a heal workspace file ("<stem>-current.log" ... in logs/,
 * "A7-<stem>.md" in alerts/) into out; false for any other name. */
static bool
retention_file_stem(char out[HL_DIAG_STEM_MAX + 1], const char *name, bool alerts)
{
	size_t n = strlen(name), i;

	if (alerts) {
		if (n < 6 || strncmp(name, "A7-", 3) != 0 || strcmp(name + n - 3, ".md") != 0 ||
		    n - 6 > HL_DIAG_STEM_MAX)
			return false;
		memcpy(out, name + 3, n - 6);
		out[n - 6] = '\0';
		return true;
	}
	for (i = 0; i < HL_DIAG_NFILES; i++) {
		const char *suf = hl_diag_file_suffix((enum hl_diag_file)i);
		size_t sl = strlen(suf);

		if (n > sl + 1 && strcmp(name + n - sl, suf) == 0 && name[n - sl - 1] == '-' &&
		    n - sl - 1 <= HL_DIAG_STEM_MAX) {
			memcpy(out, name, n - sl - 1);
			out[n - sl - 1] = '\0';
			return true;
		}
	}
	return false;
}

static bool
retention_stem_open(const struct retention_stems *st, const char *stem)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (strcmp(st->v[i], stem) == 0)
			return true;
	return false;
}

/*
 * The heal workspace's files (diagnostics under logs/, analyses under
 * alerts/) last written before cut_ms: a pod's are written again at each
 * alert of it, so these are of pods long gone (a Deployment's pods take new
 * names at every rollout, and each kept up to 128 MiB of logs for good).
 * Sooner, those last written before grace_ms whose pod no open alert task
 * names: their task ended (its agent is done with them) or never was.
 * Every replica prunes its own workspace; a link is removed, never followed.
 */
static void
retention_workspace(struct hl_retention *r, int64_t cut_ms, int64_t grace_ms)
{
	static const char *const subdirs[] = { "logs", "alerts" };
	struct retention_stems st = { 0 };
	bool ended_known = retention_stems_load(r, &st);
	size_t i;

	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		char path[4096];
		struct dirent *de;
		DIR *dir;
		int dfd;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", r->cfg->heal_workspace,
		                     subdirs[i]) >= sizeof(path) ||
		    (dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		if (!(dir = fdopendir(dfd))) {
			close(dfd);
			continue;
		}
		while ((de = readdir(dir)) != NULL) {
			struct stat sb;
			char stem[HL_DIAG_STEM_MAX + 1];
			int64_t mtime_ms;
			bool gone;

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			    fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !(S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)))
				continue;
			mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
			gone = mtime_ms < cut_ms ||
			       (ended_known && mtime_ms < grace_ms &&
			        retention_file_stem(stem, de->d_name, i == 1) &&
			        !retention_stem_open(&st, stem));
			if (gone && unlinkat(dfd, de->d_name, 0) == 0)
				atomic_fetch_add(&r->files_removed, 1);
		}
		closedir(dir);
	}
	retention_stems_free(&st);
}

/* One pass: 0, or < 0 when the store failed (err); *more: it stopped
 * with old deliveries left (its time ran out, or the thread stops). */
static int
retention_pass(struct hl_retention *r, int64_t *removed, bool *more, struct hl_err *err)
{
	int64_t cut = hl_time_wall_ms() - (int64_t)r->cfg->retention_days * RETENTION_DAY_MS;
	int64_t until = hl_time_mono_ms() + RETENTION_PASS_MS, n;
	int rc;

	*removed = 0;
	do {
		if ((rc = hl_store_prune(r->store, &n, cut, RETENTION_BATCH, err)) < 0)
			return rc;
		*removed += n;
		atomic_fetch_add(&r->removed, (uint64_t)n);
	} while (n == RETENTION_BATCH && hl_time_mono_ms() < until &&
	         hl_pause_sleep(&r->pause, RETENTION_PAUSE_MS));
	*more = n == RETENTION_BATCH;
	if (*more || *removed == 0)
		return 0;
	/* the space of what went back to the file system, in small steps
	 * (each holds the store's write lock), within the pass's time */
	do {
		if ((rc = hl_store_compact(r->store, &n, RETENTION_COMPACT, err)) < 0)
			return rc;
		atomic_fetch_add(&r->freed_bytes, (uint64_t)n);
	} while (n > 0 && hl_time_mono_ms() < until &&
	         hl_pause_sleep(&r->pause, RETENTION_PAUSE_MS));
	return 0;
}

static void *
retention_main(void *arg)
{
	struct hl_retention *r = arg;
	int64_t tick = (int64_t)r->cfg->lease_seconds * 1000 / 3, next = 0, ws_next = 0;

	pthread_setname_np(pthread_self(), "hl-retention");
	if (tick < 100)
		tick = 100;
	do {
		struct hl_err err = HL_ERR_INIT;
		int64_t removed = 0;
		bool lead = false, more = false;
		char n[24];

		if (hl_time_mono_ms() >= ws_next) {
			int64_t keep_ms = (int64_t)r->cfg->retention_days * RETENTION_DAY_MS;

			retention_workspace(r, hl_time_wall_ms() - keep_ms,
			                    hl_time_wall_ms() - RETENTION_FILE_GRACE_MS);
			(void)hl_loop_prune_coderuns(r->cfg, r->store, hl_time_wall_ms() - keep_ms);
			ws_next = hl_time_mono_ms() + RETENTION_INTERVAL_MS;
		}
		if (hl_time_mono_ms() < next)
			continue;
		/* one replica at a time; kept by calling within the lease */
		if (hl_store_leader(r->store, &lead, "retention", hl_store_owner(r->store),
		                    (int64_t)r->cfg->lease_seconds * 1000, &err) < 0 ||
		    !lead)
			continue;
		if (retention_pass(r, &removed, &more, &err) < 0) {
			atomic_fetch_add(&r->passes_failed, 1);
			hl_log_kv(HL_LOG_WARN, "removing old deliveries failed", "error", err.msg,
			          NULL);
			next = hl_time_mono_ms() + 60 * 1000;
			continue;
		}
		atomic_fetch_add(&r->passes_ok, 1);
		snprintf(n, sizeof(n), "%" PRId64, removed);
		hl_log_kv(removed ? HL_LOG_INFO : HL_LOG_DEBUG, "removed old deliveries", "removed",
		          n, NULL);
		/* a pass cut short goes on after a pause, not an hour */
		next = hl_time_mono_ms() + (more ? tick : RETENTION_INTERVAL_MS);
	} while (hl_pause_sleep(&r->pause, tick));
	return NULL;
}

int
hl_retention_start(struct hl_retention **out, const struct hl_config *cfg, struct hl_store *store,
                   struct hl_err *err)
{
	struct hl_retention *r;

	*out = NULL;
	if (cfg->retention_days <= 0)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	r->cfg = cfg;
	r->store = store;
	if (hl_pause_start(&r->pause, retention_main, r) < 0) {
		free(r);
		return hl_err_set(err, HL_ENOMEM, "cannot start the retention thread");
	}
	*out = r;
	return 0;
}

void
hl_retention_stop(struct hl_retention *r)
{
	if (!r)
		return;
	hl_pause_finish(&r->pause);
	free(r);
}

void
hl_retention_metrics(struct hl_retention *r, struct hl_buf *out)
{
	uint64_t n = r ? atomic_load(&r->removed) : 0;
	uint64_t freed = r ? atomic_load(&r->freed_bytes) : 0;
	uint64_t ok = r ? atomic_load(&r->passes_ok) : 0;
	uint64_t bad = r ? atomic_load(&r->passes_failed) : 0;

	hl_buf_append_str(out, "# HELP healer_retention_removed_total Ended deliveries older than "
	                       "the retention this replica removed.\n"
	                       "# TYPE healer_retention_removed_total counter\n");
	hl_buf_appendf(out, "healer_retention_removed_total %" PRIu64 "\n", n);
	hl_buf_append_str(out, "# HELP healer_retention_freed_bytes_total Bytes of the SQLite "
	                       "store's file given back to the file system after removals.\n"
	                       "# TYPE healer_retention_freed_bytes_total counter\n");
	hl_buf_appendf(out, "healer_retention_freed_bytes_total %" PRIu64 "\n", freed);
	hl_buf_append_str(out, "# HELP healer_retention_passes_total Retention passes, by result.\n"
	                       "# TYPE healer_retention_passes_total counter\n");
	hl_buf_appendf(out, "healer_retention_passes_total{result=\"ok\"} %" PRIu64 "\n", ok);
	hl_buf_appendf(out, "healer_retention_passes_total{result=\"error\"} %" PRIu64 "\n", bad);
	hl_buf_append_str(out,
	                  "# HELP healer_retention_files_removed_total Files of the heal "
	                  "workspace (pods' diagnostics and analyses) older than the retention "
	                  "this replica removed.\n"
	                  "# TYPE healer_retention_files_removed_total counter\n");
	hl_buf_appendf(out, "healer_retention_files_removed_total %" PRIu64 "\n",
	               r ? (uint64_t)atomic_load(&r->files_removed) : 0);
}
