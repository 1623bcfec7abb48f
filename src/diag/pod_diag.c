/*
 * pod_diag.c - pod diagnostics to files; see pod_diag.h.
 *
 * Order: the Pod object first (it names the containers and tells which
 * have a previous instance); when the API did not answer at all the other
 * calls are skipped. Then the events, then every log in one parallel batch,
 * then the files. Invariants: every problem is recorded once in the
 * report (at most DIAG_MAX_PROBLEMS lines); nothing is written outside dir;
 * a file is written only when its content was fetched.
 */
#include "pod_diag.h"

#include "base/buf.h"
#include "base/file.h"
#include "base/str.h"
#include "describe.h"
#include "yaml_emit.h"

#include "json/json.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIAG_LOG_CAP      (64u * 1024 * 1024)  /* one log */
#define DIAG_LOG_TOTAL    (128u * 1024 * 1024) /* all the logs of one call */
#define DIAG_MAX_PROBLEMS 64
#define DIAG_CHUNK        (64u * 1024) /* a copy's buffer */
#define DIAG_ERR_BODY     (64u * 1024) /* an error answer's body (its Status) */

void
hl_diag_report_init(struct hl_diag_report *r)
{
	memset(r, 0, sizeof(*r));
}

void
hl_diag_report_release(struct hl_diag_report *r)
{
	size_t i;

	for (i = 0; i < HL_DIAG_NFILES; i++)
		free(r->path[i]);
	for (i = 0; i < r->nproblems; i++)
		free(r->problems[i]);
	free(r->problems);
	hl_diag_report_init(r);
}

const char *
hl_diag_file_suffix(enum hl_diag_file f)
{
	static const char *const names[HL_DIAG_NFILES] = { "current.log", "previous.log",
		                                           "events.yaml", "describe.txt" };

	return (unsigned)f < HL_DIAG_NFILES ? names[f] : "";
}

void
hl_diag_file_stem(char out[HL_DIAG_STEM_MAX + 1], const char *pod)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	size_t n;

	pod = pod ? pod : "";
	n = strlen(pod);
	if (n <= HL_DIAG_STEM_MAX) {
		memcpy(out, pod, n + 1);
		return;
	}
	/* a 253-character pod name would make "<pod>-previous.log" 266 bytes:
	 * open() fails with ENAMETOOLONG */
	if (EVP_Digest(pod, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8)
		memset(md, 0, sizeof(md)); /* never for SHA-256; still a stable name */
	hl_str_hex(hex, md, 8);
	memcpy(out, pod, HL_DIAG_STEM_HEAD);
	out[HL_DIAG_STEM_HEAD] = '-';
	memcpy(out + HL_DIAG_STEM_HEAD + 1, hex, 16);
	out[HL_DIAG_STEM_MAX] = '\0';
}

void
hl_diag_file_stem_ns(char out[HL_DIAG_STEM_MAX + 1], const char *ns, const char *pod)
{
	char q[64 + 1 + 253 + 1];

	if (!ns || !*ns || strlen(ns) > 63 || strlen(pod ? pod : "") > 253) {
		hl_diag_file_stem(out, pod);
		return;
	}
	/* '_' is in no namespace or pod name: "<ns>_<pod>" is unambiguous */
	snprintf(q, sizeof(q), "%s_%s", ns, pod ? pod : "");
	hl_diag_file_stem(out, q);
}

bool
hl_diag_pod_name_valid(const char *pod)
{
	return hl_str_k8s_subdomain_valid(pod);
}

bool
hl_diag_namespace_valid(const char *ns)
{
	return hl_str_k8s_label_valid(ns);
}

static void diag_problem(struct hl_diag_report *r, const char *fmt, ...) HL_PRINTF(2, 3);

static void
diag_problem(struct hl_diag_report *r, const char *fmt, ...)
{
	char **p;
	char *line = NULL;
	va_list ap;
	int n;

	if (r->nproblems >= DIAG_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return; /* out of memory: the problem goes unrecorded */
	p = realloc(r->problems, (r->nproblems + 1) * sizeof(*p));
	if (!p) {
		free(line);
		return;
	}
	r->problems = p;
	r->problems[r->nproblems++] = line;
}

struct diag_ctx {
	struct hl_diag_report *r;
	const char *dir; /* for the report: the files are dirfd's */
	int dirfd;
	const char *pod;
	char stem[HL_DIAG_STEM_MAX + 1]; /* the files' names: hl_diag_file_stem */
	int first_code;                  /* the first fetch error, for the final error */
};

static void
diag_note(struct diag_ctx *c, const char *what, const struct hl_err *err)
{
	diag_problem(c->r, "could not get %s for pod '%s': %s", what, c->pod, err->msg);
	if (!c->first_code)
		c->first_code = err->code ? err->code : HL_EUPSTREAM;
}

static bool
diag_name_ok(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strlen(name) <= NAME_MAX;
}

/* A new temporary file of its own in dirfd for name (O_EXCL|O_NOFOLLOW:
 * never through a link planted at the predictable name): the descriptor,
 * its name in tmp, or -HL_EIO. */
static int
diag_tmp_open(int dirfd, const char *name, char tmp[NAME_MAX + 1], struct hl_err *err)
{
	static atomic_ulong seq;
	char suffix[64];
	size_t keep;
	int fd;

	/* one temporary name per call; a name near NAME_MAX keeps as much of
	 * itself as fits with the suffix */
	snprintf(suffix, sizeof(suffix), ".tmp.%ld.%lu", (long)getpid(), atomic_fetch_add(&seq, 1));
	keep = strlen(name);
	if (keep + strlen(suffix) > NAME_MAX)
		keep = NAME_MAX - strlen(suffix);
	snprintf(tmp, NAME_MAX + 1, "%.*s%s", (int)keep, name, suffix);
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	return fd;
}

/* Writes all of data at the descriptor's offset: 0 or -1 (errno). */
static int
diag_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Ends a temporary file of diag_tmp_open: synced, closed and renamed over
 * name (fd closed, tmp removed on failure). */
static int
diag_tmp_commit(int dirfd, int fd, const char *tmp, const char *name, struct hl_err *err)
{
	int rc, e;

	rc = fsync(fd);
	e = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return hl_err_set(err, HL_EIO, "cannot sync '%s': %s", tmp, strerror(e));
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		e = errno;
		(void)unlinkat(dirfd, tmp, 0);
		return hl_err_set(err, HL_EIO, "cannot rename to '%s': %s", name, strerror(e));
	}
	(void)fsync(dirfd);
	return 0;
}

int
hl_diag_write_at(int dirfd, const char *name, const void *data, size_t len, struct hl_err *err)
{
	char tmp[NAME_MAX + 1];
	int fd, e;

	if (!diag_name_ok(name))
		return hl_err_set(err, HL_EINVAL, "'%s' is not a file name", name ? name : "");
	if ((fd = diag_tmp_open(dirfd, name, tmp, err)) < 0)
		return fd;
	if (diag_write_all(fd, data, len) < 0) {
		e = errno;
		close(fd);
		(void)unlinkat(dirfd, tmp, 0);
		return hl_err_set(err, HL_EIO, "cannot write '%s': %s", tmp, strerror(e));
	}
	return diag_tmp_commit(dirfd, fd, tmp, name, err);
}

int
hl_diag_open_at(int dirfd, const char *name, struct hl_err *err)
{
	struct stat st;
	int fd;

	if (!diag_name_ok(name))
		return hl_err_set(err, HL_EINVAL, "'%s' is not a file name", name ? name : "");
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return hl_err_set(err, HL_ENOTFOUND, "'%s' does not exist", name);
	if (fd < 0 && errno == ELOOP)
		return hl_err_set(err, HL_EINVAL, "'%s' is a symbolic link", name);
	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot open '%s': %s", name, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hl_err_set(err, HL_EINVAL, "'%s' is not a regular file", name);
	}
	return fd;
}

static void
diag_write(struct diag_ctx *c, enum hl_diag_file f, const struct hl_buf *b)
{
	struct hl_err err = HL_ERR_INIT;
	char path[PATH_MAX], name[NAME_MAX + 1];

	if ((size_t)snprintf(name, sizeof(name), "%s-%s", c->stem, hl_diag_file_suffix(f)) >=
	            sizeof(name) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", c->dir, name) >= sizeof(path)) {
		diag_problem(c->r, "could not write %s: path too long", hl_diag_file_suffix(f));
		return;
	}
	if (hl_diag_write_at(c->dirfd, name, b->data, b->len, &err) < 0) {
		diag_problem(c->r, "could not write '%s': %s", path, err.msg);
		return;
	}
	c->r->path[f] = strdup(path);
	if (!c->r->path[f])
		diag_problem(c->r, "out of memory recording '%s'", path);
}

/* Removes the file of kind f left by an earlier call for a pod of this name
 * (a pod recreated under its name, a StatefulSet's): the pod object says it
 * has no such content now, and a stale previous.log would be read as this
 * pod's last crash. */
static void
diag_remove_stale(struct diag_ctx *c, enum hl_diag_file f)
{
	char name[NAME_MAX + 1];

	if ((size_t)snprintf(name, sizeof(name), "%s-%s", c->stem, hl_diag_file_suffix(f)) >=
	    sizeof(name))
		return;
	if (unlinkat(c->dirfd, name, 0) < 0 && errno != ENOENT)
		diag_problem(c->r, "could not remove the stale '%s/%s': %s", c->dir, name,
		             strerror(errno));
}

/*
 * One log streamed to an unlinked temporary file of the output directory
 * (a log is never whole in memory): the file holds at most twice cap
 * bytes and drops its head once per cap bytes, so the last cap bytes are
 * kept (keep_tail, as the fetch layer does in memory) at linear cost.
 */
struct diag_sink {
	int fd;
	const struct hl_fetch_res *res; /* its attempts: a retry starts over */
	int attempt;
	size_t cap, len; /* len: the bytes in the file */
	bool truncated, failed;
	int err; /* errno of a failed write */
};

/* Keeps the last keep bytes of the sink's file, moved to its start. */
static int
diag_sink_keep(struct diag_sink *s, size_t keep)
{
	char buf[DIAG_CHUNK];
	size_t from = s->len - keep, done = 0;

	while (done < keep) {
		size_t n = keep - done < sizeof(buf) ? keep - done : sizeof(buf);
		ssize_t r = pread(s->fd, buf, n, (off_t)(from + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || pwrite(s->fd, buf, (size_t)r, (off_t)done) != r)
			return -1;
		done += (size_t)r;
	}
	if (ftruncate(s->fd, (off_t)keep) < 0)
		return -1;
	s->len = keep;
	s->truncated = true;
	return 0;
}

/* hl_fetch_data_fn: a chunk of a 2xx log answer into the sink's file. */
static int
diag_sink_data(void *ud, const char *data, size_t n)
{
	struct diag_sink *s = ud;
	size_t done = 0;

	if (s->failed)
		return -1;
	if (s->res->attempts != s->attempt) {
		/* another attempt sends the log from its start again */
		s->attempt = s->res->attempts;
		s->len = 0;
		s->truncated = false;
		if (ftruncate(s->fd, 0) < 0)
			goto fail;
	}
	if (n >= s->cap) {
		s->truncated = s->truncated || s->len > 0 || n > s->cap;
		data += n - s->cap;
		n = s->cap;
		s->len = 0;
		if (ftruncate(s->fd, 0) < 0)
			goto fail;
	} else if (s->len + n > 2 * s->cap && diag_sink_keep(s, s->cap - n) < 0) {
		goto fail;
	}
	while (done < n) {
		ssize_t w = pwrite(s->fd, data + done, n - done, (off_t)(s->len + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		done += (size_t)w;
	}
	s->len += n;
	return 0;
fail:
	s->err = errno ? errno : EIO;
	s->failed = true;
	return -1;
}

/* Appends the sink's file to fd (the diagnostics file being written) and
 * a newline when its last byte is none. */
static int
diag_sink_copy(int fd, const struct diag_sink *s)
{
	char buf[DIAG_CHUNK], last = '\n';
	size_t done = 0;

	while (done < s->len) {
		size_t n = s->len - done < sizeof(buf) ? s->len - done : sizeof(buf);
		ssize_t r = pread(s->fd, buf, n, (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		if (diag_write_all(fd, buf, (size_t)r) < 0)
			return -1;
		last = buf[r - 1];
		done += (size_t)r;
	}
	return last == '\n' ? 0 : diag_write_all(fd, "\n", 1);
}

/* Appends a formatted line to fd. */
static int diag_fd_printf(int fd, const char *fmt, ...) HL_PRINTF(2, 3);

static int
diag_fd_printf(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	return diag_write_all(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/*
 * Writes the file of kind f (the current or the previous log) from the
 * requests [from, to): one "==> container X <==" section each, the log as
 * its sink holds it, or why it is unavailable (msgs[i], NULL when it was
 * fetched).
 */
static void
diag_write_log(struct diag_ctx *c, enum hl_diag_file f, const json_t *names, size_t from, size_t to,
               const struct diag_sink *sinks, char (*msgs)[256])
{
	struct hl_err err = HL_ERR_INIT;
	char path[PATH_MAX], name[NAME_MAX + 1], tmp[NAME_MAX + 1];
	size_t i;
	int fd, e = 0;

	if ((size_t)snprintf(name, sizeof(name), "%s-%s", c->stem, hl_diag_file_suffix(f)) >=
	            sizeof(name) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", c->dir, name) >= sizeof(path)) {
		diag_problem(c->r, "could not write %s: path too long", hl_diag_file_suffix(f));
		return;
	}
	if ((fd = diag_tmp_open(c->dirfd, name, tmp, &err)) < 0) {
		diag_problem(c->r, "could not write '%s': %s", path, err.msg);
		return;
	}
	for (i = from; i < to && !e; i++) {
		const char *cn = json_string_value(json_array_get(names, i - from));

		if (diag_fd_printf(fd, "==> container %s <==\n", cn ? cn : "(default)") < 0)
			e = errno;
		else if (msgs[i][0] && diag_fd_printf(fd, "(log unavailable: %s)\n", msgs[i]) < 0)
			e = errno;
		else if (!msgs[i][0] && sinks[i].truncated &&
		         diag_fd_printf(fd, "(log truncated to its last %zu bytes)\n",
		                        sinks[i].len) < 0)
			e = errno;
		else if (!msgs[i][0] && diag_sink_copy(fd, &sinks[i]) < 0)
			e = errno;
	}
	if (e) {
		close(fd);
		(void)unlinkat(c->dirfd, tmp, 0);
		diag_problem(c->r, "could not write '%s': %s", path, strerror(e));
		return;
	}
	if (diag_tmp_commit(c->dirfd, fd, tmp, name, &err) < 0) {
		diag_problem(c->r, "could not write '%s': %s", path, err.msg);
		return;
	}
	c->r->path[f] = strdup(path);
	if (!c->r->path[f])
		diag_problem(c->r, "out of memory recording '%s'", path);
}

/*
 * Fetches the current log of every container in names and the previous log
 * of every container in prevnames, all in one parallel batch, each streamed
 * to a file of its own (never a whole log in memory), then writes the
 * current and the previous log files (one "==> container X <==" section
 * each) when at least one of their sections was fetched. Returns through
 * cur_ok and prev_ok how many sections succeeded.
 */
static void
diag_fetch_logs(const struct hl_kube *k, struct diag_ctx *c, const char *ns, const json_t *names,
                const json_t *prevnames, long tail, int *cur_ok, int *prev_ok)
{
	size_t nc = json_array_size(names), np = json_array_size(prevnames), n = nc + np, i;
	struct hl_fetch_req *reqs = calloc(n ? n : 1, sizeof(*reqs));
	struct hl_fetch_res *res = calloc(n ? n : 1, sizeof(*res));
	struct hl_buf *urls = calloc(n ? n : 1, sizeof(*urls));
	struct hl_buf *auths = calloc(n ? n : 1, sizeof(*auths));
	struct diag_sink *sinks = calloc(n ? n : 1, sizeof(*sinks));
	char(*msgs)[256] = calloc(n ? n : 1, sizeof(*msgs));
	struct hl_err err = HL_ERR_INIT;
	/* the logs of one call share one budget on disk */
	size_t cap = n > 0 && DIAG_LOG_TOTAL / n < DIAG_LOG_CAP ? DIAG_LOG_TOTAL / n : DIAG_LOG_CAP;

	*cur_ok = *prev_ok = 0;
	if (!reqs || !res || !urls || !auths || !sinks || !msgs) {
		err.code = HL_ENOMEM;
		hl_strlcpy(err.msg, "out of memory", sizeof(err.msg));
		diag_note(c, "logs", &err);
		n = 0;
		goto out;
	}
	for (i = 0; i < n; i++)
		sinks[i].fd = -1;
	for (i = 0; i < n; i++) {
		bool previous = i >= nc;
		const char *cn = json_string_value(previous ? json_array_get(prevnames, i - nc)
		                                            : json_array_get(names, i));
		char tmp[NAME_MAX + 1];

		hl_buf_init(&urls[i], 0);
		hl_buf_init(&auths[i], 0);
		hl_fetch_res_init(&res[i]);
		if (hl_kube_pod_log_req(k, &reqs[i], &urls[i], &auths[i], ns, c->pod, cn, tail,
		                        previous, DIAG_ERR_BODY, &err) < 0) {
			diag_note(c, "logs", &err);
			n = i + 1; /* release what was initialized */
			goto out;
		}
		/* unlinked at once: nothing is left behind, whatever happens */
		if ((sinks[i].fd = diag_tmp_open(c->dirfd, ".log", tmp, &err)) < 0) {
			diag_note(c, "logs", &err);
			n = i + 1;
			goto out;
		}
		(void)unlinkat(c->dirfd, tmp, 0);
		sinks[i].res = &res[i];
		sinks[i].cap = cap;
		reqs[i].on_data = diag_sink_data;
		reqs[i].on_data_ud = &sinks[i];
	}
	if (hl_fetch_run(reqs, res, n, 0, &err) < 0) {
		diag_note(c, "logs", &err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool previous = i >= nc;
		const char *cn = json_string_value(previous ? json_array_get(prevnames, i - nc)
		                                            : json_array_get(names, i));
		struct hl_err e = HL_ERR_INIT;
		char what[160];

		snprintf(what, sizeof(what), "%s log of container '%s'",
		         previous ? "previous" : "current", cn ? cn : "(default)");
		if (hl_kube_check(&res[i], what, &e) == 0 && (sinks[i].failed || res[i].stopped))
			hl_err_set(&e, HL_EIO, "%s: cannot write it: %s", what,
			           strerror(sinks[i].err ? sinks[i].err : EIO));
		if (e.code) {
			hl_strlcpy(msgs[i], e.msg, sizeof(msgs[i]));
			if (!msgs[i][0])
				hl_strlcpy(msgs[i], "unknown error", sizeof(msgs[i]));
			diag_note(c, what, &e);
			continue;
		}
		if (sinks[i].len > cap && diag_sink_keep(&sinks[i], cap) < 0) {
			hl_err_set(&e, HL_EIO, "%s: cannot write it: %s", what, strerror(errno));
			hl_strlcpy(msgs[i], e.msg, sizeof(msgs[i]));
			diag_note(c, what, &e);
			continue;
		}
		if (previous)
			(*prev_ok)++;
		else
			(*cur_ok)++;
	}
	if (*cur_ok > 0)
		diag_write_log(c, HL_DIAG_CURRENT_LOG, names, 0, nc, sinks, msgs);
	if (*prev_ok > 0)
		diag_write_log(c, HL_DIAG_PREVIOUS_LOG, prevnames, nc, n, sinks, msgs);
out:
	for (i = 0; i < n; i++) {
		hl_fetch_res_release(&res[i]);
		hl_buf_release(&urls[i]);
		if (auths[i].len)
			explicit_bzero(auths[i].data, auths[i].len);
		hl_buf_release(&auths[i]);
		if (sinks && sinks[i].fd >= 0)
			close(sinks[i].fd);
	}
	free(reqs);
	free(res);
	free(urls);
	free(auths);
	free(sinks);
	free(msgs);
}

/* The events as a v1 List (what `kubectl get events -o yaml` prints). */
static json_t *
diag_event_list(const json_t *events)
{
	json_t *items = json_object_get(events, "items");

	return json_is_array(items)
	               ? json_pack("{s:s, s:O, s:s, s:{s:s}}", "apiVersion", "v1", "items", items,
	                           "kind", "List", "metadata", "resourceVersion", "")
	               : json_pack("{s:s, s:[], s:s, s:{s:s}}", "apiVersion", "v1", "items", "kind",
	                           "List", "metadata", "resourceVersion", "");
}

int
hl_diag_fetch_pod(struct hl_diag_report *report, const struct hl_kube *k, const char *ns,
                  const char *pod, const char *dir, long tail_lines, struct hl_err *err)
{
	struct hl_err e = HL_ERR_INIT;
	int dfd, rc;

	hl_diag_report_init(report);
	if (!hl_diag_pod_name_valid(pod))
		return hl_err_set(err, HL_EINVAL, "'%.253s' is not a pod name", pod ? pod : "");
	if (ns && !hl_diag_namespace_valid(ns))
		return hl_err_set(err, HL_EINVAL, "'%.253s' is not a namespace", ns);
	if (!dir || !*dir)
		return hl_err_set(err, HL_EINVAL, "no output directory for pod '%s'", pod);
	if (hl_file_mkdirs(dir, &e) < 0)
		return hl_err_set(err, HL_EIO, "output directory '%s': %s", dir, e.msg);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return hl_err_set(err, HL_EIO, "output directory '%s': %s", dir, strerror(errno));
	rc = hl_diag_fetch_pod_at(report, k, ns, pod, NULL, dfd, dir, tail_lines, err);
	close(dfd);
	return rc;
}

int
hl_diag_fetch_pod_at(struct hl_diag_report *report, const struct hl_kube *k, const char *ns,
                     const char *pod, const char *stem, int dirfd, const char *dir, long tail_lines,
                     struct hl_err *err)
{
	struct hl_buf ev = HL_BUF_INIT(0), desc = HL_BUF_INIT(0);
	json_t *podj = NULL, *events = NULL, *names = NULL, *prevnames = NULL, *n;
	struct hl_err e = HL_ERR_INIT;
	struct diag_ctx c;
	size_t i, all = 0;
	int ret = 0, cur_ok = 0, prev_ok = 0;

	hl_diag_report_init(report);
	if (!hl_diag_pod_name_valid(pod))
		return hl_err_set(err, HL_EINVAL, "'%.253s' is not a pod name", pod ? pod : "");
	if (ns && !hl_diag_namespace_valid(ns))
		return hl_err_set(err, HL_EINVAL, "'%.253s' is not a namespace", ns);
	if (dirfd < 0 || !dir || !*dir)
		return hl_err_set(err, HL_EINVAL, "no output directory for pod '%s'", pod);
	if (!ns || !*ns)
		ns = k->namespace;
	c.r = report;
	c.dir = dir;
	c.dirfd = dirfd;
	c.pod = pod;
	if (stem && *stem && strlen(stem) <= HL_DIAG_STEM_MAX && diag_name_ok(stem))
		hl_strlcpy(c.stem, stem, sizeof(c.stem));
	else
		hl_diag_file_stem(c.stem, pod);
	c.first_code = 0;

	names = json_array();
	prevnames = json_array();
	if (!names || !prevnames) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (hl_kube_get_pod(k, &podj, ns, pod, &e) < 0) {
		diag_note(&c, "the pod object", &e);
		podj = NULL;
		/* the API is unreachable: do not try every other call too */
		report->api_unreachable =
		        e.code == HL_EIO || e.code == HL_ETIMEOUT || e.code == HL_EAUTH;
		report->pod_missing = e.code == HL_ENOTFOUND;
		json_array_append_new(names, json_null()); /* the default container */
	} else {
		all = hl_diag_pod_containers(names, podj, HL_DIAG_MAX_CONTAINERS);
	}
	if (!report->api_unreachable) {
		e.code = 0;
		if (hl_kube_list_events(k, &events, ns, pod, &e) < 0) {
			diag_note(&c, "events", &e);
			events = NULL;
		}

		/* logs: every container's current log and, for containers that
		 * restarted, the previous one, in one parallel batch */
		json_array_foreach(names, i, n)
		{
			if (podj && hl_diag_has_previous(
			                    hl_diag_container_status(podj, json_string_value(n))))
				json_array_append(prevnames, n);
		}
		diag_fetch_logs(k, &c, ns, names, prevnames, tail_lines, &cur_ok, &prev_ok);
		/* after what could not be fetched: the first problem is the
		 * one that says why a call failed */
		if (all > HL_DIAG_MAX_CONTAINERS)
			diag_problem(report,
			             "pod '%s' lists %zu containers: only the logs of the first %d "
			             "were fetched",
			             pod, all, HL_DIAG_MAX_CONTAINERS);
		if (prev_ok == 0 && podj && json_array_size(prevnames) == 0)
			diag_remove_stale(&c, HL_DIAG_PREVIOUS_LOG);
	}

	if (events) {
		json_t *list = diag_event_list(events);

		e.code = 0;
		if (list && hl_diag_json_to_yaml(&ev, list, &e) == 0)
			diag_write(&c, HL_DIAG_EVENTS, &ev);
		else
			diag_problem(report, "could not render events of pod '%s' as YAML: %s", pod,
			             list ? e.msg : "out of memory");
		json_decref(list);
	}

	if (podj) {
		hl_diag_describe_pod(&desc, podj, events);
		if (hl_buf_error(&desc))
			diag_problem(report, "could not describe pod '%s': out of memory", pod);
		else
			diag_write(&c, HL_DIAG_DESCRIBE, &desc);
	}

	if (!report->path[HL_DIAG_CURRENT_LOG] && !report->path[HL_DIAG_EVENTS] &&
	    !report->path[HL_DIAG_DESCRIBE])
		ret = hl_err_set(err, c.first_code ? c.first_code : HL_EIO,
		                 "could not fetch any diagnostics for pod '%s' in namespace '%s'",
		                 pod, ns);
out:
	json_decref(podj);
	json_decref(events);
	json_decref(names);
	json_decref(prevnames);
	hl_buf_release(&ev);
	hl_buf_release(&desc);
	return ret;
}
