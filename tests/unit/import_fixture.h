/*
 * import_fixture.h - what the importer's unit tests share: a private temp
 * dir (also $HOME, so no user's git config leaks in), shell commands (git
 * computes the answers the importer must give), files, a progress display
 * whose output is kept in memory, and a job on a store of its own.
 *
 * Everything is made at test time; fx_done() removes the temp dir unless a
 * check failed, so a failure can be looked at.
 */
#ifndef HFM_IMPORT_FIXTURE_H
#define HFM_IMPORT_FIXTURE_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_sh.h"
#include "infer.h"
#include "job.h"
#include "tap.h"

static char fx_dir[256];

/* Create the temp dir and a git environment that does not depend on the user. */
static inline const char *fx_init(const char *name)
{
	char home[512];

	snprintf(fx_dir, sizeof(fx_dir), "/tmp/hfm-test-%s.XXXXXX", name);
	if (!mkdtemp(fx_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(home, sizeof(home), "%s/home", fx_dir);
	mkdir(home, 0755);
	setenv("HOME", home, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "t", 1);
	setenv("GIT_AUTHOR_EMAIL", "t@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "t", 1);
	setenv("GIT_COMMITTER_EMAIL", "t@example.com", 1);
	git_libgit2_init();
	return fx_dir;
}

/* Remove the temp dir unless something failed; then tap_done(). */
static inline int fx_done(void)
{
	char cmd[512];

	git_libgit2_shutdown();
	if (tap_failed) {
		printf("# kept %s\n", fx_dir);
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx_dir);
		if (system(cmd))
			printf("# could not remove %s\n", fx_dir);
	}
	return tap_done();
}

/* Write `len` bytes to fx_dir/rel (parents made), mode 0644. */
static inline void fx_write(const char *rel, const void *data, size_t len)
{
	char *path = hfm_asprintf("%s/%s", fx_dir, rel), *slash = path + strlen(fx_dir);
	FILE *f;

	while ((slash = strchr(slash + 1, '/'))) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	chmod(path, 0644);
	free(path);
}

static inline void fx_write_str(const char *rel, const char *text)
{
	fx_write(rel, text, strlen(text));
}

/* fx_dir/rel as a new string. */
static inline char *fx_path(const char *rel)
{
	return hfm_asprintf("%s/%s", fx_dir, rel);
}

/* A FILE whose output the test reads back (the progress display's). */
struct fx_capture {
	FILE *f;
	char *text;
	size_t len;
	size_t seen;   /* bytes of text already returned by fx_capture_new() */
};

static inline void fx_capture_open(struct fx_capture *c)
{
	memset(c, 0, sizeof(*c));
	c->f = open_memstream(&c->text, &c->len);
}

/* What was written since the last call (all of it the first time). */
static inline const char *fx_capture_new(struct fx_capture *c)
{
	size_t from = c->seen;

	fflush(c->f);
	c->seen = c->len;
	return c->text ? c->text + from : "";
}

static inline void fx_capture_close(struct fx_capture *c)
{
	fclose(c->f);
	free(c->text);
	memset(c, 0, sizeof(*c));
}

/* One job as main.c makes it, on a store of its own, its messages captured. */
struct fx_job {
	struct hfm_imp_opts opts;
	struct hfm_store *store;
	struct fx_capture said;
	struct hfm_progress *progress;
	struct hfm_imp_job job;
};

/*
 * Start a job importing `source` (may be NULL) into the store at fx_dir/store
 * as repo `name` (a model) of `kind`; no mirror is opened yet.
 */
static inline void fx_job_start(struct fx_job *x, const char *source, const char *name,
				enum hfm_imp_kind kind, int copy)
{
	char *root = fx_path("store");

	memset(x, 0, sizeof(*x));
	x->opts.store = root;
	x->opts.copy = copy;
	x->opts.type = -1;
	x->opts.display = HFM_SHOW_PLAIN;
	if (hfm_store_open(&x->store, root, 1)) {
		printf("# store: %s\n", hfm_error_last());
		exit(1);
	}
	fx_capture_open(&x->said);
	x->progress = hfm_progress_new(HFM_SHOW_PLAIN, x->said.f, "hfmirror-import");
	hfm_imp_job_init(&x->job, &x->opts, x->store, x->progress, NULL);
	x->job.kind = kind;
	x->job.source = source ? hfm_strdup(source) : NULL;
	if (hfm_repo_id_parse(&x->job.id, HFM_MODEL, name)) {
		printf("# bad repo name %s\n", name);
		exit(1);
	}
}

static inline void fx_job_end(struct fx_job *x)
{
	hfm_imp_job_dispose(&x->job);
	hfm_progress_free(x->progress);
	fx_capture_close(&x->said);
	hfm_store_free(x->store);
	free((char *)x->opts.store);
	memset(x, 0, sizeof(*x));
}

#endif
