/*
 * job.h - the record of one import: one SOURCE into one mirror of the store.
 *
 * The importer in layers, each using only the ones below it:
 *
 *   main.c        the command line: which sources, which repo each one is
 *   run.h         the runner: a job's three steps in the order that keeps
 *                 the store consistent (see there); report.h beside it
 *   the steps     step 1, per kind of source (sources.h): gitclone.c (a
 *                 clone made by git), hfcache.c (a Hugging Face cache
 *                 folder), plaindir.c (a directory of files), the last two
 *                 through dirtree.h (hfcache.c hands a snapshot file that is
 *                 no cache blob to plaindir.c); step 2, lfsimport.h; step 3,
 *                 mirror.h (which also creates and locks the mirror);
 *                 probe.h (what kind a source is) beside them
 *   job.h         this record: what the runner hands the steps, what they
 *                 fill in and what report.h reads
 *   leaves        lfsset.h, keyset.h, infer.h (and hfm/progress.h, shared)
 *
 * All of it stands on the core library's base and store (include/hfm/).
 * The steps write their results into the record (its fields and the
 * hfm_imp_job_add_*() functions here); nothing below the runner calls it.
 */
#ifndef HFM_IMP_JOB_H
#define HFM_IMP_JOB_H

#include <git2.h>
#include "hfm/hashindex.h"
#include "hfm/path.h"
#include "hfm/store.h"
#include "lfsset.h"
#include "hfm/progress.h"

/* What the command line asked for, shared by every job. */
struct hfm_imp_opts {
	const char *store;       /* store root */
	const char *name;        /* --name, or NULL to infer */
	int type;                /* --type as enum hfm_repo_type, or -1 to infer */
	int copy;                /* --copy: never hard link */
	int json;                /* --json summary on stdout */
	enum hfm_display display;
	const char **trust;      /* --trust: public keys a bundle must be signed by */
	size_t ntrust;
	unsigned jobs;           /* --jobs: verifying threads for bundles; 0 = one per CPU */
	const char *grant_users; /* --grant-users: bundles' user names -> the store's, or NULL */
	int no_grants;           /* --no-grants: leave bundles' grants out */
};

enum hfm_imp_kind {
	HFM_IMP_SRC_CLONE,           /* a clone made by git, bare or not */
	HFM_IMP_SRC_HFCACHE,         /* one models--org--name folder of a HF cache */
	HFM_IMP_SRC_PLAIN,           /* a directory of files */
};

/* One ref the import sets in the mirror. */
struct hfm_imp_ref {
	char *name;              /* "refs/heads/main", "refs/pr/1", ... */
	git_oid target;
};

/* A candidate file that failed verification. */
struct hfm_imp_corrupt {
	char oid[HFM_SHA256_HEX + 1];
	char *path;
	char *reason;
};

struct hfm_imp_job {
	const struct hfm_imp_opts *opts;
	struct hfm_store *store;              /* borrowed */
	struct hfm_progress *progress;    /* borrowed */
	struct hfm_hashindex *hashes;         /* borrowed; may be NULL */

	char *source;                         /* absolute path */
	enum hfm_imp_kind kind;
	struct hfm_repo_id id;
	char *mirror_path;
	git_repository *mirror;               /* opened by mirror.h before step 1 */

	/* filled by the source in step 1 */
	struct hfm_imp_ref *refs;
	size_t nrefs;
	char *head;                           /* branch HEAD should name, or NULL */
	char **shallow;                       /* commits whose parents are absent */
	size_t nshallow;
	struct hfm_imp_lfsset lfs;
	size_t git_objects;                   /* git objects packed (clones only) */

	/* filled by steps 2 and 3 */
	size_t linked, copied, present;
	uint64_t bytes;                       /* bytes linked or copied */
	struct hfm_imp_corrupt *corrupt;
	size_t ncorrupt;
	size_t refs_new, refs_moved;
};

void hfm_imp_job_init(struct hfm_imp_job *job, const struct hfm_imp_opts *opts,
		      struct hfm_store *store, struct hfm_progress *progress,
		      struct hfm_hashindex *hashes);
void hfm_imp_job_dispose(struct hfm_imp_job *job);

/* Record a ref to set (replacing an earlier one of the same name). */
void hfm_imp_job_add_ref(struct hfm_imp_job *job, const char *name, const git_oid *target);
/* Record a candidate that failed verification. */
void hfm_imp_job_add_corrupt(struct hfm_imp_job *job, const char *oid, const char *path,
			     const char *reason);

/* Objects still missing from the store after the run. */
size_t hfm_imp_job_missing(const struct hfm_imp_job *job);

/*
 * libgit2's last error as an HFM_ERROR message prefixed with `what`; returns
 * HFM_ERROR.  Every step reads or writes git objects, so it lives here.
 */
int hfm_imp_git_error(const char *what);

#endif
