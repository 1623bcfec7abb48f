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

int
hl_diag_write_at(int dirfd, const char *name, const void *data, size_t len, struct hl_err *err)
{
	static atomic_ulong seq;
	char tmp[NAME_MAX + 1], suffix[64];
	const char *p = data;
	size_t keep;
	int fd, rc, e;

	if (!diag_name_ok(name))
		return hl_err_set(err, HL_EINVAL, "'%s' is not a file name", name ? name : "");
	/* one temporary name per call; a name near NAME_MAX keeps as much of
	 * itself as fits with the suffix */
	snprintf(suffix, sizeof(suffix), ".tmp.%ld.%lu", (long)getpid(), atomic_fetch_add(&seq, 1));
	keep = strlen(name);
	if (keep + strlen(suffix) > NAME_MAX)
		keep = NAME_MAX - strlen(suffix);
	snprintf(tmp, sizeof(tmp), "%.*s%s", (int)keep, name, suffix);
	/* a new file of our own: never through a link planted at the
	 * (predictable) temporary name */
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return hl_err_set(err, HL_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = errno;
			close(fd);
			(void)unlinkat(dirfd, tmp, 0);
			return hl_err_set(err, HL_EIO, "cannot write '%s': %s", tmp, strerror(e));
		}
		p += w;
		len -= (size_t)w;
	}
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
 * Fetches the current log of every container in names and the previous log
 * of every container in prevnames, all in one parallel batch, into cur and
 * prev (one "==> container X <==" section each). Returns through cur_ok and
 * prev_ok how many sections succeeded.
 */
static void
diag_fetch_logs(const struct hl_kube *k, struct diag_ctx *c, const char *ns, const json_t *names,
                const json_t *prevnames, long tail, struct hl_buf *cur, struct hl_buf *prev,
                int *cur_ok, int *prev_ok)
{
	size_t nc = json_array_size(names), np = json_array_size(prevnames), n = nc + np, i;
	struct hl_fetch_req *reqs = calloc(n ? n : 1, sizeof(*reqs));
	struct hl_fetch_res *res = calloc(n ? n : 1, sizeof(*res));
	struct hl_buf *urls = calloc(n ? n : 1, sizeof(*urls));
	struct hl_buf *auths = calloc(n ? n : 1, sizeof(*auths));
	struct hl_err err = HL_ERR_INIT;
	/* every log is in memory at once: they share one budget */
	size_t cap = n > 0 && DIAG_LOG_TOTAL / n < DIAG_LOG_CAP ? DIAG_LOG_TOTAL / n : DIAG_LOG_CAP;

	*cur_ok = *prev_ok = 0;
	if (!reqs || !res || !urls || !auths) {
		err.code = HL_ENOMEM;
		hl_strlcpy(err.msg, "out of memory", sizeof(err.msg));
		diag_note(c, "logs", &err);
		n = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool previous = i >= nc;
		const char *cn = json_string_value(previous ? json_array_get(prevnames, i - nc)
		                                            : json_array_get(names, i));

		hl_buf_init(&urls[i], 0);
		hl_buf_init(&auths[i], 0);
		hl_fetch_res_init(&res[i]);
		if (hl_kube_pod_log_req(k, &reqs[i], &urls[i], &auths[i], ns, c->pod, cn, tail,
		                        previous, cap, &err) < 0) {
			diag_note(c, "logs", &err);
			n = i + 1; /* release what was initialized */
			goto out;
		}
	}
	if (hl_fetch_run(reqs, res, n, 0, &err) < 0) {
		diag_note(c, "logs", &err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		bool previous = i >= nc;
		const char *cn = json_string_value(previous ? json_array_get(prevnames, i - nc)
		                                            : json_array_get(names, i));
		struct hl_buf *out = previous ? prev : cur;
		struct hl_err e = HL_ERR_INIT;
		char what[160];

		snprintf(what, sizeof(what), "%s log of container '%s'",
		         previous ? "previous" : "current", cn ? cn : "(default)");
		hl_buf_appendf(out, "==> container %s <==\n", cn ? cn : "(default)");
		if (hl_kube_check(&res[i], what, &e) < 0) {
			hl_buf_appendf(out, "(log unavailable: %s)\n", e.msg);
			diag_note(c, what, &e);
			continue;
		}
		if (previous)
			(*prev_ok)++;
		else
			(*cur_ok)++;
		if (res[i].truncated)
			hl_buf_appendf(out, "(log truncated to its last %zu bytes)\n",
			               res[i].body.len);
		hl_buf_append(out, res[i].body.data, res[i].body.len);
		if (res[i].body.len && res[i].body.data[res[i].body.len - 1] != '\n')
			hl_buf_append_char(out, '\n');
	}
out:
	for (i = 0; i < n; i++) {
		hl_fetch_res_release(&res[i]);
		hl_buf_release(&urls[i]);
		if (auths[i].len)
			explicit_bzero(auths[i].data, auths[i].len);
		hl_buf_release(&auths[i]);
	}
	free(reqs);
	free(res);
	free(urls);
	free(auths);
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
	rc = hl_diag_fetch_pod_at(report, k, ns, pod, dfd, dir, tail_lines, err);
	close(dfd);
	return rc;
}

int
hl_diag_fetch_pod_at(struct hl_diag_report *report, const struct hl_kube *k, const char *ns,
                     const char *pod, int dirfd, const char *dir, long tail_lines,
                     struct hl_err *err)
{
	struct hl_buf cur = HL_BUF_INIT(0), prev = HL_BUF_INIT(0), ev = HL_BUF_INIT(0),
	              desc = HL_BUF_INIT(0);
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
		diag_fetch_logs(k, &c, ns, names, prevnames, tail_lines, &cur, &prev, &cur_ok,
		                &prev_ok);
		/* after what could not be fetched: the first problem is the
		 * one that says why a call failed */
		if (all > HL_DIAG_MAX_CONTAINERS)
			diag_problem(report,
			             "pod '%s' lists %zu containers: only the logs of the first %d "
			             "were fetched",
			             pod, all, HL_DIAG_MAX_CONTAINERS);
		if (cur_ok > 0)
			diag_write(&c, HL_DIAG_CURRENT_LOG, &cur);
		if (prev_ok > 0)
			diag_write(&c, HL_DIAG_PREVIOUS_LOG, &prev);
		else if (podj && json_array_size(prevnames) == 0)
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
	hl_buf_release(&cur);
	hl_buf_release(&prev);
	hl_buf_release(&ev);
	hl_buf_release(&desc);
	return ret;
}
