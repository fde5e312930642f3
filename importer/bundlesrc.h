/*
 * bundlesrc.h - a bundle as a source of hfmirror-import (hfm/bundle.h, written by hfmirror export):
 * verify everything, then publish, so a refused bundle changes nothing in
 * the store (docs/airgap.md).
 *
 *   bundlesrc.c          the run: open, check the signature (--trust), plan
 *                        (what the store has, what the bundle must bring, and
 *                        that an incremental bundle's base is here), read the
 *                        payload into the staging area (stage.h: hashed by a
 *                        pool of workers as it arrives), the checks, publish,
 *                        report
 *   bundlesrc_git.c      git mirrors: index the pack in the staging area, check
 *                        every revision's tree against the manifest's file list
 *                        and the history's connectivity; publish the pack, then
 *                        move every ref at once (one packed-refs rename)
 *   bundlesrc_publish.c  objects into objects/, then the cache's metadata of
 *                        each repo, its revisions switched at once (an exchange
 *                        of the revs/ directory)
 *   bundlesrc_grants.c   a cache repo's grants of gated repos (grant/revoke
 *                        records) merged into the store's meta/grants.jsonl
 *                        (grants.h), user names mapped by --grant-users
 *
 * Publishing goes objects first (content-addressed: harmless to a reader),
 * then per repo: git packs, commit-keyed metadata, and last the pointers
 * (refs, revs/) that make a revision visible.  A running server reads the
 * old revision or the new one, never a revision whose files are not there.
 */
#ifndef HFM_IMP_BUNDLESRC_H
#define HFM_IMP_BUNDLESRC_H

#include <stdio.h>

#include "hfm/bundle.h"
#include "hfm/bundleio.h"
#include "hfm/grants.h"
#include "job.h"
#include "stage.h"

/* What became of one payload entry. */
enum hfm_imp_item_state {
	HFM_IMP_ITEM_NEED = 0,       /* to be read from the payload */
	HFM_IMP_ITEM_STAGED,         /* staged by an earlier run (or this one) */
	HFM_IMP_ITEM_PRESENT,        /* the store has it already */
};

/* Per repo of the manifest: what publishing changed. */
struct hfm_imp_bundle_repo {
	size_t revs_new, revs_moved;
	size_t git_objects;           /* objects in its pack */
	char *pack;                   /* indexed pack in the staging area: "pack-<hash>" */
};

/* --grant-users: outside name -> inside name (NULL: dropped). */
struct hfm_imp_grant_user {
	char *from, *to;
};

struct hfm_imp_grant_users {
	struct hfm_imp_grant_user *v;
	size_t n;
};

struct hfm_imp_bundle {
	const struct hfm_imp_opts *opts;
	struct hfm_store *store;
	struct hfm_progress *progress;
	const char *path;             /* the bundle as given */
	struct hfm_bundle_in *in;
	struct hfm_bundle_manifest *m;
	struct hfm_imp_stage *st;
	char signer[17];              /* the signing key's id, "" unsigned */
	int trusted;
	enum hfm_imp_item_state *state;   /* per manifest item */
	struct hfm_bundle_item **byname;  /* items sorted by member name */
	struct hfm_imp_bundle_repo *repos;
	size_t staged_before, need;
	uint64_t need_bytes;
	size_t objects_new, objects_present, meta_files;
	uint64_t bytes_new;
	struct hfm_imp_grant_users *grant_users;    /* NULL: names as they are */
	struct hfm_grants_merged grants;             /* what the merges did */
	size_t grants_carried, grants_dropped;       /* records; not merged (--grant-users) */
};

/* 1 when `path` is a bundle: "-", a directory with a manifest, a tar file
 * whose first member is "manifest". */
int hfm_imp_bundle_probe(const char *path);

/*
 * Import the bundle at `path` into the store.  0 when published, or an
 * error code with a message (the store unchanged).  The text summary goes
 * to stderr (unless quiet), the JSON line to `json` (may be NULL).
 */
int hfm_imp_bundle_run(const struct hfm_imp_opts *opts, struct hfm_store *store,
		       struct hfm_progress *progress, const char *path, struct hfm_buf *json);

/* bundlesrc_git.c: index and check repo `ri`'s pack (`pack`: its item, or NULL); then
 * publish it. */
int hfm_imp_bundle_git_verify(struct hfm_imp_bundle *b, size_t ri,
			      const struct hfm_bundle_item *pack);
int hfm_imp_bundle_git_publish(struct hfm_imp_bundle *b, size_t ri);

/* bundlesrc_publish.c: every staged object into objects/; then a cache repo's metadata. */
int hfm_imp_bundle_publish_objects(struct hfm_imp_bundle *b);
int hfm_imp_bundle_cache_publish(struct hfm_imp_bundle *b, size_t ri);
/*
 * bundlesrc_grants.c: before anything is read or published, load
 * --grant-users and check that the store's grants file reads (a merge
 * must not fail half way); then, when a cache repo is published (before
 * its revisions switch), merge its records.  _dispose frees the map.
 */
int hfm_imp_bundle_grants_check(struct hfm_imp_bundle *b);
int hfm_imp_bundle_grants_publish(struct hfm_imp_bundle *b, size_t ri);
void hfm_imp_bundle_grants_dispose(struct hfm_imp_bundle *b);
/* Lock repo `ri` of the manifest against other imports (meta/import-locks). */
int hfm_imp_bundle_lock(int *fd, struct hfm_imp_bundle *b, size_t ri);

#endif
