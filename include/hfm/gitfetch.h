/*
 * gitfetch.h - fetch a repo's git history from the upstream hub into the
 * store's mirrors/, with libgit2 (`git = true` in a sync manifest).
 *
 * The result is an imported mirror like the importer's
 * (<store>/mirrors/<plural>/<org>/<name>.git, bare): the upstream's
 * branches, tags, refs/pr/N and refs/convert/X, HEAD pointing at its
 * default branch, so the git source serves it (and git clients clone it)
 * with the upstream gone.  Its LFS content is what the store's objects/
 * holds: sync fetches the files the manifest wants.
 *
 * A new mirror is fetched under tmp/ and renamed into place, so the final
 * path is absent or a complete repository; an existing one is fetched
 * into (objects first, then refs, as git does), and refs the upstream no
 * longer has are pruned.  The store's mirror lock (store.h) is held
 * throughout, so an import of the same repo waits.
 *
 * Threading: one call per repo at a time (the lock); any thread.
 */
#ifndef HFM_GITFETCH_H
#define HFM_GITFETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "path.h"

struct hfm_store;

struct hfm_gitfetch_opts {
	const char *upstream_url;        /* "https://huggingface.co", no trailing slash */
	const char *authorization;       /* "Bearer hf_...", or NULL: sent as HTTP Basic's
					    password when the upstream asks */
	const atomic_int *stop;          /* set: give up soon (may be NULL) */
	/* The lock is held by someone else: about to wait (may be NULL). */
	void (*on_wait)(void *cls);
	void *cls;
};

struct hfm_gitfetch_result {
	char *path;                      /* the mirror (malloc'd; hfm_gitfetch_result_dispose) */
	size_t refs;                     /* refs the mirror has now */
	unsigned received_objects;       /* objects the fetch received */
	uint64_t received_bytes;
	int created;                     /* the mirror is new */
};

/*
 * Fetch `id`'s repository from {upstream_url}/{prefix}{name}.git into the
 * store's mirror.  0, or a negative code with hfm_error_last() saying why
 * (HFM_EGATED: the upstream asked for credentials we lack or it refused;
 * HFM_ENOREPO: it has no such repository; HFM_ERROR: stopped).
 */
int hfm_gitfetch_mirror(struct hfm_gitfetch_result *out, const struct hfm_store *store,
			const struct hfm_repo_id *id, const struct hfm_gitfetch_opts *o);
void hfm_gitfetch_result_dispose(struct hfm_gitfetch_result *r);

#endif
