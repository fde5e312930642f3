/*
 * sync.h - `hfmirror sync`: fetch what a manifest declares into the store,
 * so that an offline hfmirror serves it (docs/sync.md).
 *
 * The manifest (sync.toml) lists repos, each with the revisions wanted and
 * include/exclude patterns over its file paths.  A run drives the online
 * cache source (src_cache.h) as a client, exactly as the server's requests
 * do: it resolves every revision upstream, has the cache fetch and keep
 * what an offline server needs to answer for it (meta/: the revision's
 * mapping, info with and without blobs, the recursive tree, the expanded
 * listing of every directory holding a wanted file, the refs, HEAD), then
 * opens every wanted file through the cache and reads it to the end, so the
 * blob cache fetches it (single flight, Range resume of partial blobs,
 * verification) and publishes it under objects/.  What `--offline` later
 * answers is therefore exactly what the cache stored.
 *
 * A file whose object is already under objects/ is not fetched again; a
 * partial blob resumes from its durable blocks.  Repos the proxy rules deny
 * are not asked for; repos the cache rules deny are listed and their files
 * reported skipped (the cache would not store them).
 *
 * Threading: hfm_sync_plan() and hfm_sync_fetch() run on the caller's
 * thread (the fetch with `jobs` worker threads of its own);
 * hfm_sync_stop() and hfm_sync_totals() may be called from any thread.
 */
#ifndef HFM_SYNC_H
#define HFM_SYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "buf.h"
#include "path.h"

/* Only pointers here: config.cpp (C++) reads the manifest without source.h. */
struct hfm_rules;
struct hfm_source;
struct hfm_store;

/* ---- the manifest ------------------------------------------------------------ */

struct hfm_sync_want {
	struct hfm_repo_id id;
	char **revisions;                /* at least one; ["main"] when the file names none */
	size_t n_revisions;
	char **include;                  /* fnmatch patterns ("*" crosses "/"); none = every file */
	size_t n_include;
	char **exclude;
	size_t n_exclude;
	int git;                         /* also fetch its git history into mirrors/ (gitfetch.h) */
	unsigned line;                   /* of its [[repo]] in the file */
};

struct hfm_sync_manifest {
	char *path;
	struct hfm_sync_want *repos;
	size_t n;
};

/*
 * Read a manifest (config.cpp: toml++ stays in that one file).  On a problem
 * returns HFM_EINVAL (HFM_EIO if unreadable) and appends one line per
 * problem to `err`: "FILE:LINE: key: why", keys as repo[N].id.
 */
int hfm_sync_manifest_read(struct hfm_sync_manifest **out, const char *path,
			   struct hfm_buf *err);
void hfm_sync_manifest_free(struct hfm_sync_manifest *m);

/*
 * 1 if `path` is wanted: it matches an include pattern (or there are none)
 * and no exclude pattern.  Patterns are huggingface_hub's allow/ignore
 * patterns: Python fnmatch, "*" crosses "/", a trailing "/" means the
 * folder: "data/" means every file under data/.
 */
int hfm_sync_wants(const struct hfm_sync_want *w, const char *path);

/* ---- a run ------------------------------------------------------------------ */

struct hfm_sync;

struct hfm_sync_opts {
	struct hfm_source *cache;        /* the online cache, not offline; borrowed */
	const struct hfm_store *store;   /* the cache's store; borrowed */
	const struct hfm_rules *proxy_rules;  /* a repo denied is not asked for; NULL = all */
	const struct hfm_rules *cache_rules;  /* a repo denied is skipped; NULL = all */
	const char *authorization;       /* "Bearer hf_..." for gated and private repos, or NULL */
	const char *upstream_url;        /* the cache's upstream, for repos with git = true */
	/* 1 if the cache knows the repo is gated or private (hfm_cachesrc_restricted):
	   such repos get no git mirror (it has no gating).  NULL: none is. */
	int (*restricted)(struct hfm_source *cache, const struct hfm_repo_id *id);
	unsigned jobs;                   /* files fetched at once; 0 = 4 */
	/* A branch or tag the upstream could not answer for, resolved to the
	   commit the store maps it to (as the cache does), is not a failure. */
	int allow_stale;
	/* Lines worth telling while planning ("acme/x@main: commit ..."); may be NULL. */
	void (*say)(void *cls, const char *line);
	void *say_cls;
};

int hfm_sync_new(struct hfm_sync **out, const struct hfm_sync_manifest *m,
		 const struct hfm_sync_opts *o);
void hfm_sync_free(struct hfm_sync *s);

/*
 * Resolve every revision, fetch the metadata the offline server needs
 * (unless `dry_run`, which asks only what tells the files and their sizes),
 * and work out the files to fetch.  0, or HFM_ERROR once stopped.
 * Failures of repos and revisions are recorded, not returned.
 */
int hfm_sync_plan(struct hfm_sync *s, int dry_run);
/*
 * Fetch the planned files with `jobs` threads; returns when all are done
 * or failed, or soon after hfm_sync_stop().  `tick` (may be NULL) is
 * called on the caller's thread about every `tick_ms` while it waits.
 */
int hfm_sync_fetch(struct hfm_sync *s, void (*tick)(void *cls), void *cls, unsigned tick_ms);
/*
 * Fetch the git history of every repo with `git = true` that planning
 * found (not skipped, not failed) into the store's mirrors/ (gitfetch.h),
 * one repo after another.  Failures are recorded, not returned; 0, or
 * HFM_ERROR once stopped.  Call after hfm_sync_fetch(), not on a dry run.
 */
int hfm_sync_git(struct hfm_sync *s);
/* Stop planning or fetching soon (from any thread, a signal handler's thread too). */
void hfm_sync_stop(struct hfm_sync *s);
int hfm_sync_stopped(struct hfm_sync *s);

/* Progress of the fetch so far. */
struct hfm_sync_totals {
	uint64_t files, bytes;           /* planned to fetch */
	uint64_t files_done, bytes_done; /* finished (fetched or failed); bytes include
					    the parts of files under way */
	unsigned running;                /* files under way */
	const char *current;             /* one of them (a repo-relative path), or NULL;
					    valid until the next call */
};
void hfm_sync_totals(struct hfm_sync *s, struct hfm_sync_totals *out);

/*
 * Repo i's report as one JSON object on one line (no newline), once it is
 * finished (every file fetched, failed or skipped), else 0 with nothing
 * written.  Call with increasing i to emit each repo once.
 */
int hfm_sync_repo_finished(struct hfm_sync *s, size_t i);
void hfm_sync_report_json(struct hfm_buf *out, struct hfm_sync *s, size_t i);
/* The whole report for people: per repo, per revision, the totals. */
void hfm_sync_report_text(struct hfm_buf *out, struct hfm_sync *s);
/*
 * One line per branch or tag resolved to the store's commit because the
 * upstream could not answer ("<prefix>REPO@REV: ..."); nothing when there
 * is none.  Such a revision is a failure unless opts.allow_stale.
 */
void hfm_sync_report_stale(struct hfm_buf *out, struct hfm_sync *s, const char *prefix);
/* 1 if anything failed (a repo, a revision, a file) or the run was stopped. */
int hfm_sync_failed(struct hfm_sync *s);
size_t hfm_sync_nrepos(const struct hfm_sync *s);

/* The `hfmirror sync` command (cmd_sync.c): 0 all done, 1 something failed, 2 usage. */
int hfm_sync_main(const char *prog, int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
