/*
 * sources.h - the kinds of SOURCE the importer reads, and step 1 of a job
 * (run.h) for each: write the git objects into the mirror, list the refs and
 * the LFS objects with their candidate files.
 *
 *   git      a clone made by git (+ git-lfs), bare or not, smudged or not;
 *            read with libgit2 (gitsrc.c)
 *   hfcache  one "models--org--name" folder of a Hugging Face cache:
 *            snapshots/<commit>/ become commits (hfcache.c)
 *   plain    a directory of files: one commit of them (plaindir.c)
 */
#ifndef HFM_IMP_SOURCES_H
#define HFM_IMP_SOURCES_H

#include "job.h"

/*
 * What kind of source the directory `path` is.  A directory that is none of
 * the others but holds "models--*", "datasets--*" or "spaces--*" folders is
 * a whole cache (~/.cache/huggingface/hub): *cache_root is set and *kind is
 * HFM_IMP_SRC_HFCACHE; list its repos with hfm_imp_hfcache_list().  0, or
 * HFM_EINVAL with a message when `path` is not a directory.
 */
int hfm_imp_probe(enum hfm_imp_kind *kind, int *cache_root, const char *path);

/* The repo folders of a cache root, sorted (free each and the array). */
int hfm_imp_hfcache_list(char ***out, size_t *n, const char *root);

/*
 * The repo a clone is a copy of, from the URL of its remote ("origin", else
 * its only remote), following a remote that is itself a local clone.  0, or
 * HFM_EINVAL with a message that says what was found.
 */
int hfm_imp_git_infer(struct hfm_repo_id *out, const char *path);

int hfm_imp_git_collect(struct hfm_imp_job *job);

struct hfm_imp_file;
struct hfm_lfs_attrs;
/*
 * One file of a plain directory (also a cache snapshot file that is not a
 * link into blobs/): hash it (or take its hashes from the hash index), write
 * its blob, or its LFS pointer and list the LFS object with the file as
 * candidate.  Sets f->blob and f->keep.  `ref` names the ref for messages.
 */
int hfm_imp_plain_file(struct hfm_imp_job *job, struct hfm_imp_file *f,
		       const struct hfm_lfs_attrs *attrs, const char *ref);
int hfm_imp_hfcache_collect(struct hfm_imp_job *job);
int hfm_imp_plain_collect(struct hfm_imp_job *job);

#endif
