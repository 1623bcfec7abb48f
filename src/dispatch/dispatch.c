/*
 * dispatch.c - submitting CodeRuns to Kubernetes, to a directory of
 * manifest files, or nowhere; and finding the active ones again.
 *
 * Directory mode publishes each manifest with link(2) from a durably
 * written temporary file, so two submitters of the same name race safely:
 * exactly one sees "created", the other "existing". Label selectors are
 * evaluated here for directory mode with the same grammar as the API server
 * (equality, inequality, existence, set-based in/notin). Opening a
 * directory dispatcher removes the temporary files a killed writer left.
 */
#include "dispatch.h"

#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "coderun.h"

#include "json/json.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DISPATCH_MAX_MANIFEST (8u * 1024 * 1024)

const char *
hl_dispatch_outcome_name(enum hl_dispatch_outcome o)
{
	switch (o) {
	case HL_DISPATCH_CREATED:
		return "created";
	case HL_DISPATCH_EXISTING:
		return "existing";
	case HL_DISPATCH_DRY_RUN:
		return "dry_run";
	}
	return "unknown";
}

bool
hl_dispatch_phase_active(const char *phase)
{
	return !phase || !*phase || strcmp(phase, "Pending") == 0 || strcmp(phase, "Running") == 0;
}

void
hl_dispatch_close(struct hl_dispatch *d)
{
	if (!d)
		return;
	free(d->dir);
	free(d->namespace);
	hl_kube_free(d->kube);
	free(d);
}

int
hl_dispatch_open_with(struct hl_dispatch **out, enum hl_dispatch_mode mode, const char *dir,
                      const char *namespace, struct hl_kube *kube, struct hl_err *err)
{
	struct hl_dispatch *d = calloc(1, sizeof(*d));

	if (!d) {
		hl_kube_free(kube);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	d->mode = mode;
	d->kube = kube;
	d->namespace = strdup(namespace && *namespace ? namespace : "cto");
	if (dir)
		d->dir = strdup(dir);
	if (!d->namespace || (dir && !d->dir)) {
		hl_dispatch_close(d);
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	if (mode == HL_DISPATCH_KUBERNETES && !kube) {
		hl_dispatch_close(d);
		return hl_err_set(err, HL_EINVAL,
		                  "kubernetes dispatch needs a cluster configuration");
	}
	if (mode == HL_DISPATCH_DIRECTORY && !dir) {
		hl_dispatch_close(d);
		return hl_err_set(err, HL_EINVAL, "directory dispatch needs a directory");
	}
	*out = d;
	return 0;
}

/*
 * Removes what a killed writer left in the CodeRun directory: the hidden
 * ".NAME.json.SUFFIX" files dispatch_write_new links from (and their
 * ".tmp.PID" staging files), and the "NAME.json.tmp.PID" staging files of
 * status updates. Only files older than DISPATCH_TMP_AGE_S: another
 * process may be writing one right now.
 */
#define DISPATCH_TMP_AGE_S 60

static void
dispatch_clean_tmp(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	struct stat st;
	time_t now = time(NULL);

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		const char *n = de->d_name;

		if (!((n[0] == '.' && strstr(n, ".json.")) || strstr(n, ".json.tmp.")))
			continue;
		if (fstatat(dirfd(dh), n, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_mtime > now - DISPATCH_TMP_AGE_S)
			continue;
		if (unlinkat(dirfd(dh), n, 0) == 0)
			hl_debug("removed the stale file '%s/%s'", dir, n);
	}
	closedir(dh);
}

int
hl_dispatch_open(struct hl_dispatch **out, const struct hl_config *cfg, struct hl_err *err)
{
	struct hl_kube *kube = NULL;
	char dir[PATH_MAX];
	int ret;

	dir[0] = '\0';
	if (cfg->dispatch == HL_DISPATCH_KUBERNETES) {
		ret = hl_kube_load(&kube, cfg->kubeconfig, err);
		if (ret < 0)
			return hl_err_wrap(err, "kubernetes dispatch");
	} else if (cfg->dispatch == HL_DISPATCH_DIRECTORY) {
		snprintf(dir, sizeof(dir), "%s/coderuns", cfg->data_dir ? cfg->data_dir : "./var");
		dispatch_clean_tmp(dir);
	}
	return hl_dispatch_open_with(out, cfg->dispatch, dir[0] ? dir : NULL, cfg->namespace, kube,
	                             err);
}

static void
dispatch_random_suffix(char *out, size_t n)
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char rnd[16];
	size_t i;

	if (n > sizeof(rnd))
		n = sizeof(rnd);
	if (getrandom(rnd, n, 0) != (ssize_t)n) {
		for (i = 0; i < n; i++)
			rnd[i] = (unsigned char)rand();
	}
	for (i = 0; i < n; i++)
		out[i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	out[n] = '\0';
}

static int
dispatch_file_path(char *out, size_t size, const struct hl_dispatch *d, const char *name)
{
	if ((size_t)snprintf(out, size, "%s/%s.json", d->dir, name) >= size)
		return -1;
	return 0;
}

static int
dispatch_write_new(struct hl_dispatch *d, enum hl_dispatch_outcome *outcome, const char *name,
                   json_t *manifest, struct hl_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX], sfx[9];
	char *text = NULL;
	int ret;

	ret = hl_file_mkdirs(d->dir, err);
	if (ret < 0)
		return ret;
	dispatch_random_suffix(sfx, 8);
	if (dispatch_file_path(path, sizeof(path), d, name) < 0 ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.json.%s", d->dir, name, sfx) >= sizeof(tmp))
		return hl_err_set(err, HL_EINVAL, "coderun path for '%s' is too long", name);
	if (access(path, F_OK) == 0) {
		*outcome = HL_DISPATCH_EXISTING;
		return 0;
	}
	text = hl_json_dump_sorted(manifest, true);
	if (!text)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	ret = hl_file_write_atomic(tmp, text, strlen(text), err);
	free(text);
	if (ret < 0)
		return ret;
	if (link(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		if (e == EEXIST) {
			*outcome = HL_DISPATCH_EXISTING;
			return 0;
		}
		return hl_err_set(err, HL_EIO, "coderun file '%s': %s", path, strerror(e));
	}
	unlink(tmp);
	*outcome = HL_DISPATCH_CREATED;
	return 0;
}

int
hl_dispatch_submit(struct hl_dispatch *d, enum hl_dispatch_outcome *outcome, char *name_out,
                   json_t *manifest, struct hl_err *err)
{
	json_t *meta = json_object_get(manifest, "metadata");
	const char *name, *gen;
	char assigned[64];
	int ret;

	if (!json_is_object(meta))
		return hl_err_set(err, HL_EINVAL, "coderun manifest has no metadata");
	if (!hl_json_str(meta, "namespace"))
		json_object_set_new(meta, "namespace", json_string(d->namespace));
	ret = hl_coderun_validate(manifest, err);
	if (ret < 0)
		return hl_err_wrap(err, "invalid coderun");
	name = hl_json_str(meta, "name");
	gen = hl_json_str(meta, "generateName");
	if (!name && d->mode != HL_DISPATCH_KUBERNETES) {
		char sfx[6];

		dispatch_random_suffix(sfx, 5);
		snprintf(assigned, sizeof(assigned), "%s%s", gen, sfx);
		json_object_set_new(meta, "name", json_string(assigned));
		json_object_del(meta, "generateName");
		name = hl_json_str(meta, "name");
	}
	switch (d->mode) {
	case HL_DISPATCH_NONE:
		hl_strlcpy(name_out, name, 64);
		*outcome = HL_DISPATCH_DRY_RUN;
		return 0;
	case HL_DISPATCH_DIRECTORY: {
		enum hl_dispatch_outcome o;

		ret = dispatch_write_new(d, &o, name, manifest, err);
		if (ret < 0)
			return ret;
		hl_strlcpy(name_out, name, 64);
		*outcome = o;
		return 0;
	}
	case HL_DISPATCH_KUBERNETES: {
		json_t *created = NULL;
		const char *ns = hl_json_str(meta, "namespace");

		ret = hl_kube_create_coderun(d->kube, &created, ns, manifest, err);
		if (ret == -HL_ECONFLICT && name) {
			/* 409 means "exists" only when it does: a conflict of
			 * another kind (an apiserver or webhook answering 409
			 * Conflict) must not be taken for a CodeRun that was
			 * never made. Ask; not found is a transient error, so
			 * the caller retries the create. */
			json_t *found = NULL;
			struct hl_err e = HL_ERR_INIT;
			char why[160];

			hl_strlcpy(why, err ? err->msg : "", sizeof(why));
			ret = hl_kube_get_coderun(d->kube, &found, ns, name, &e);
			json_decref(found);
			if (ret == -HL_ENOTFOUND)
				return hl_err_set(err, HL_EUPSTREAM,
				                  "coderun '%s' was answered 409 but does not "
				                  "exist: %s",
				                  name, why);
			if (ret < 0) {
				if (err)
					*err = e;
				return ret;
			}
			hl_strlcpy(name_out, name, 64);
			*outcome = HL_DISPATCH_EXISTING;
			return 0;
		}
		if (ret < 0)
			return ret;
		hl_strlcpy(name_out, hl_json_str_or(created, "metadata.name", name ? name : ""),
		           64);
		json_decref(created);
		*outcome = HL_DISPATCH_CREATED;
		return 0;
	}
	}
	return hl_err_set(err, HL_EINTERNAL, "unknown dispatch mode");
}

/* ---- label selectors ---- */

static char *
dispatch_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Is value one of the comma-separated items of list ("a, b,c")? */
static bool
dispatch_in_list(const char *value, char *list)
{
	char *save = NULL, *it;

	for (it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save))
		if (value && strcmp(dispatch_trim(it), value) == 0)
			return true;
	return false;
}

static int
dispatch_term(bool *match, const json_t *labels, char *term, struct hl_err *err)
{
	const char *have;
	char *op, *key;

	term = dispatch_trim(term);
	if (!*term)
		return hl_err_set(err, HL_EINVAL, "empty term in label selector");
	if (term[0] == '!') {
		key = dispatch_trim(term + 1);
		*match = json_object_get(labels, key) == NULL;
		return 0;
	}
	if ((op = strstr(term, "!=")) != NULL) {
		*op = '\0';
		key = dispatch_trim(term);
		have = json_string_value(json_object_get(labels, key));
		*match = !have || strcmp(have, dispatch_trim(op + 2)) != 0;
		return 0;
	}
	if ((op = strchr(term, '=')) != NULL) {
		char *v = op + 1;

		*op = '\0';
		if (*v == '=')
			v++;
		key = dispatch_trim(term);
		have = json_string_value(json_object_get(labels, key));
		*match = have && strcmp(have, dispatch_trim(v)) == 0;
		return 0;
	}
	{
		/* "key in (a,b)" / "key notin (a,b)" / "key" */
		char *sp = term;
		bool notin;
		char *open, *close;

		while (*sp && !isspace((unsigned char)*sp) && *sp != '(')
			sp++;
		if (!*sp) {
			*match = json_object_get(labels, term) != NULL;
			return 0;
		}
		*sp++ = '\0';
		key = term;
		sp = dispatch_trim(sp);
		if (strncmp(sp, "notin", 5) == 0) {
			notin = true;
			sp += 5;
		} else if (strncmp(sp, "in", 2) == 0) {
			notin = false;
			sp += 2;
		} else {
			return hl_err_set(err, HL_EINVAL, "label selector: bad operator near '%s'",
			                  sp);
		}
		open = strchr(sp, '(');
		close = strrchr(sp, ')');
		if (!open || !close || close < open)
			return hl_err_set(err, HL_EINVAL, "label selector: set needs '(...)'");
		*close = '\0';
		have = json_string_value(json_object_get(labels, key));
		*match = notin ? !dispatch_in_list(have, open + 1)
		               : dispatch_in_list(have, open + 1);
		return 0;
	}
}

int
hl_dispatch_selector_match(bool *match, const json_t *labels, const char *selector,
                           struct hl_err *err)
{
	char *copy, *p, *start;
	int depth = 0, ret = 0;
	bool all = true;

	if (!selector || !*selector) {
		*match = true;
		return 0;
	}
	copy = strdup(selector);
	if (!copy)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (p = start = copy;; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		if ((*p == ',' && depth == 0) || *p == '\0') {
			bool m = false, end = *p == '\0';

			*p = '\0';
			ret = dispatch_term(&m, labels, start, err);
			if (ret < 0)
				break;
			all = all && m;
			if (end)
				break;
			start = p + 1;
		}
	}
	free(copy);
	if (ret == 0)
		*match = all;
	return ret;
}

/* ---- finding CodeRuns ---- */

static int
dispatch_read_manifest(json_t **out, const char *path, struct hl_err *err)
{
	struct hl_buf b = HL_BUF_INIT(DISPATCH_MAX_MANIFEST);
	int ret = hl_file_read(&b, path, err);

	if (ret == 0)
		ret = hl_json_parse(out, b.data, b.len, err);
	hl_buf_release(&b);
	return ret;
}

static int
dispatch_collect(struct hl_dispatch *d, json_t **out, const char *selector, bool active_only,
                 struct hl_err *err)
{
	json_t *arr = json_array();
	int ret = 0;

	if (!arr)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	if (d->mode == HL_DISPATCH_KUBERNETES) {
		json_t *list = NULL, *it;
		size_t i;

		ret = hl_kube_list_coderuns(d->kube, &list, d->namespace, selector, err);
		if (ret < 0)
			goto out;
		json_array_foreach(json_object_get(list, "items"), i, it)
		{
			if (!active_only ||
			    hl_dispatch_phase_active(hl_json_str(it, "status.phase")))
				json_array_append(arr, it);
		}
		json_decref(list);
	} else if (d->mode == HL_DISPATCH_DIRECTORY) {
		DIR *dir = opendir(d->dir);
		struct dirent *de;

		if (!dir) {
			if (errno == ENOENT)
				goto out;
			ret = hl_err_set(err, HL_EIO, "coderun directory '%s': %s", d->dir,
			                 strerror(errno));
			goto out;
		}
		while ((de = readdir(dir)) != NULL) {
			char path[PATH_MAX];
			json_t *m = NULL;
			bool match = false;

			if (de->d_name[0] == '.' || !hl_str_ends_with(de->d_name, ".json"))
				continue;
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->dir, de->d_name) >=
			    sizeof(path))
				continue;
			if (dispatch_read_manifest(&m, path, NULL) < 0)
				continue; /* a foreign or damaged file is not ours */
			ret = hl_dispatch_selector_match(&match, hl_json_path(m, "metadata.labels"),
			                                 selector, err);
			if (ret < 0) {
				json_decref(m);
				break;
			}
			if (match && (!active_only ||
			              hl_dispatch_phase_active(hl_json_str(m, "status.phase"))))
				json_array_append(arr, m);
			json_decref(m);
		}
		closedir(dir);
	}
out:
	if (ret < 0) {
		json_decref(arr);
		return ret;
	}
	*out = arr;
	return 0;
}

int
hl_dispatch_find_active(struct hl_dispatch *d, json_t **out, const char *selector,
                        struct hl_err *err)
{
	return dispatch_collect(d, out, selector, true, err);
}

int
hl_dispatch_list(struct hl_dispatch *d, json_t **out, const char *selector, struct hl_err *err)
{
	return dispatch_collect(d, out, selector, false, err);
}

struct hl_dispatch_scan {
	json_t *files; /* file name -> [mtime s, mtime ns, size, inode, name or null] */
};

struct hl_dispatch_scan *
hl_dispatch_scan_new(void)
{
	struct hl_dispatch_scan *s = calloc(1, sizeof(*s));

	if (s && !(s->files = json_object())) {
		free(s);
		return NULL;
	}
	return s;
}

void
hl_dispatch_scan_free(struct hl_dispatch_scan *s)
{
	if (!s)
		return;
	json_decref(s->files);
	free(s);
}

void
hl_dispatch_scan_forget(struct hl_dispatch_scan *s)
{
	json_object_clear(s->files);
}

/* Whether the entry a scan kept for a file still describes st. */
static bool
dispatch_scan_same(const json_t *e, const struct stat *st)
{
	return e && json_integer_value(json_array_get(e, 0)) == (json_int_t)st->st_mtim.tv_sec &&
	       json_integer_value(json_array_get(e, 1)) == (json_int_t)st->st_mtim.tv_nsec &&
	       json_integer_value(json_array_get(e, 2)) == (json_int_t)st->st_size &&
	       json_integer_value(json_array_get(e, 3)) == (json_int_t)st->st_ino;
}

/* How recent a file's last write must be for a scan to read it again
 * (a file system's timestamps advance by a clock tick, up to 10 ms). */
#define DISPATCH_SCAN_RACY_NS 100000000LL

/* Whether st was written less than DISPATCH_SCAN_RACY_NS before now. */
static bool
dispatch_scan_racy(const struct stat *st, const struct timespec *now)
{
	long long m = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	long long n = (long long)now->tv_sec * 1000000000LL + now->tv_nsec;

	return n - m < DISPATCH_SCAN_RACY_NS;
}

int
hl_dispatch_scan(struct hl_dispatch *d, struct hl_dispatch_scan *s, const char *selector,
                 json_t **changed, json_t *names, uint64_t *parsed, struct hl_err *err)
{
	json_t *arr, *next;
	struct dirent *de;
	struct timespec now;
	DIR *dir;
	int ret = 0;

	if (d->mode != HL_DISPATCH_DIRECTORY)
		return hl_err_set(err, HL_EUNSUPPORTED, "a CodeRun scan is for directory dispatch");
	clock_gettime(CLOCK_REALTIME, &now); /* the clock of file times */
	if (!(dir = opendir(d->dir))) {
		if (errno != ENOENT)
			return hl_err_set(err, HL_EIO, "coderun directory '%s': %s", d->dir,
			                  strerror(errno));
		json_object_clear(s->files);
		return (*changed = json_array()) ? 0 : hl_err_set(err, HL_ENOMEM, "out of memory");
	}
	arr = json_array();
	next = json_object();
	if (!arr || !next) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	while ((de = readdir(dir)) != NULL) {
		char path[PATH_MAX];
		const char *name = NULL;
		json_t *m = NULL, *e;
		struct stat st;
		bool match = false;

		if (de->d_name[0] == '.' || !hl_str_ends_with(de->d_name, ".json"))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->dir, de->d_name) >=
		            sizeof(path) ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		e = json_object_get(s->files, de->d_name);
		if (dispatch_scan_same(e, &st)) {
			/* unchanged since it was read: only its name counts */
			json_object_set(next, de->d_name, e);
			if (json_is_string(json_array_get(e, 4)))
				json_object_set_new(names, json_string_value(json_array_get(e, 4)),
				                    json_true());
			continue;
		}
		(*parsed)++;
		if (dispatch_read_manifest(&m, path, NULL) == 0) {
			ret = hl_dispatch_selector_match(&match, hl_json_path(m, "metadata.labels"),
			                                 selector, err);
			if (ret < 0) {
				json_decref(m);
				break;
			}
			if (match && (name = hl_json_str(m, "metadata.name"))) {
				json_object_set_new(names, name, json_true());
				json_array_append(arr, m);
			}
		}
		/* a file written in the last moments is not remembered: a
		 * rewrite in place of the same size within one timestamp tick
		 * would look unchanged ("racily clean", as git calls it) */
		/* a foreign or damaged file is remembered too: read again once it
		 * changes */
		if (!dispatch_scan_racy(&st, &now))
			json_object_set_new(
			        next, de->d_name,
			        json_pack("[I, I, I, I, s?]", (json_int_t)st.st_mtim.tv_sec,
			                  (json_int_t)st.st_mtim.tv_nsec, (json_int_t)st.st_size,
			                  (json_int_t)st.st_ino, match ? name : NULL));
		json_decref(m);
	}
out:
	closedir(dir);
	if (ret < 0) {
		json_decref(arr);
		json_decref(next);
		return ret;
	}
	/* only the files present now: the cache is as large as the directory */
	json_decref(s->files);
	s->files = next;
	*changed = arr;
	return 0;
}

int
hl_dispatch_prune(struct hl_dispatch *d, int64_t cut_ms,
                  bool (*done)(void *arg, const char *task_id), void *arg, int64_t *removed,
                  struct hl_err *err)
{
	struct dirent *de;
	DIR *dir;

	if (d->mode != HL_DISPATCH_DIRECTORY)
		return 0;
	if (!(dir = opendir(d->dir)))
		return errno == ENOENT ? 0
		                       : hl_err_set(err, HL_EIO, "coderun directory '%s': %s",
		                                    d->dir, strerror(errno));
	while ((de = readdir(dir)) != NULL) {
		char path[PATH_MAX];
		const char *phase, *task;
		json_t *m = NULL;
		struct stat st;

		if (de->d_name[0] == '.' || !hl_str_ends_with(de->d_name, ".json"))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->dir, de->d_name) >=
		            sizeof(path) ||
		    lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 >= cut_ms)
			continue;
		if (dispatch_read_manifest(&m, path, NULL) < 0)
			continue;
		phase = hl_json_str(m, "status.phase");
		task = hl_json_str(m, "metadata.labels.healer/task-id");
		if (!hl_dispatch_phase_active(phase) && task && *task && done(arg, task) &&
		    unlink(path) == 0)
			(*removed)++;
		json_decref(m);
	}
	closedir(dir);
	return 0;
}

int
hl_dispatch_get(struct hl_dispatch *d, json_t **out, const char *name, struct hl_err *err)
{
	char path[PATH_MAX];

	switch (d->mode) {
	case HL_DISPATCH_KUBERNETES:
		return hl_kube_get_coderun(d->kube, out, d->namespace, name, err);
	case HL_DISPATCH_DIRECTORY:
		if (strchr(name, '/') || dispatch_file_path(path, sizeof(path), d, name) < 0)
			return hl_err_set(err, HL_EINVAL, "bad coderun name '%s'", name);
		if (access(path, F_OK) < 0)
			return hl_err_set(err, HL_ENOTFOUND, "coderun '%s' not found", name);
		return dispatch_read_manifest(out, path, err);
	case HL_DISPATCH_NONE:
		break;
	}
	return hl_err_set(err, HL_ENOTFOUND, "coderun '%s' not found (dispatch none)", name);
}

int
hl_dispatch_delete(struct hl_dispatch *d, const char *name, struct hl_err *err)
{
	char path[PATH_MAX];
	struct hl_buf p = HL_BUF_INIT(1024);
	long status = 0;
	int rc;

	switch (d->mode) {
	case HL_DISPATCH_KUBERNETES:
		hl_buf_appendf(&p, "/apis/%s/namespaces/", HL_CODERUN_API_VERSION);
		hl_fetch_url_escape(&p, d->namespace);
		hl_buf_append_str(&p, "/coderuns/");
		hl_fetch_url_escape(&p, name);
		hl_buf_append_str(&p, "?propagationPolicy=Background");
		rc = hl_buf_error(&p)
		             ? hl_err_set(err, HL_ENOMEM, "out of memory")
		             : hl_kube_call(d->kube, NULL, &status, "DELETE", p.data, NULL, err);
		hl_buf_release(&p);
		return rc == -HL_ENOTFOUND ? 0 : rc;
	case HL_DISPATCH_DIRECTORY:
		if (strchr(name, '/') || dispatch_file_path(path, sizeof(path), d, name) < 0)
			return hl_err_set(err, HL_EINVAL, "bad coderun name '%s'", name);
		if (unlink(path) < 0 && errno != ENOENT)
			return hl_err_set(err, HL_EIO, "cannot delete '%s': %s", path,
			                  strerror(errno));
		return 0;
	case HL_DISPATCH_NONE:
		break;
	}
	return 0;
}

int
hl_dispatch_set_status(struct hl_dispatch *d, const char *name, const char *phase,
                       const char *message, struct hl_err *err)
{
	char path[PATH_MAX];
	json_t *m = NULL, *st;
	char *text = NULL;
	int ret;

	if (d->mode != HL_DISPATCH_DIRECTORY)
		return hl_err_set(err, HL_EUNSUPPORTED,
		                  "coderun status is owned by the controller in mode '%s'",
		                  hl_dispatch_mode_name(d->mode));
	ret = hl_dispatch_get(d, &m, name, err);
	if (ret < 0)
		return ret;
	st = json_object_get(m, "status");
	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(m, "status", st);
	}
	json_object_set_new(st, "phase", json_string(phase));
	if (message)
		json_object_set_new(st, "message", json_string(message));
	text = hl_json_dump_sorted(m, true);
	json_decref(m);
	if (!text)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	dispatch_file_path(path, sizeof(path), d, name);
	ret = hl_file_write_atomic(path, text, strlen(text), err);
	free(text);
	return ret;
}
