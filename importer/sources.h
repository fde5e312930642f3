/*
 * sources.h - step 1 of a job (run.h) for each kind of SOURCE
 * (enum hfm_imp_kind): write the git objects into the mirror, list the refs
 * and the LFS objects with their candidate files.
 *
 *   clone    a clone made by git (+ git-lfs), bare or not, smudged or not;
 *            read with libgit2 (gitclone.c)
 *   hfcache  one "models--org--name" folder of a Hugging Face cache:
 *            snapshots/<commit>/ become commits (hfcache.c)
 *   plain    a directory of files: one commit of them (plaindir.c)
 *
 * Which kind a directory is: probe.h.
 */
#ifndef HFM_IMP_SOURCES_H
#define HFM_IMP_SOURCES_H

#include "job.h"

/*
 * The repo a clone is a copy of, from the URL of its remote ("origin", else
 * its only remote), following a remote that is itself a local clone.  0, or
 * HFM_EINVAL with a message that says what was found.
 */
int hfm_imp_clone_infer(struct hfm_repo_id *out, const char *path);

/*
 * Step 1 for a clone: its refs (the Hub's branches, tags, refs/pr/N,
 * refs/convert/NAME), the git objects they reach that the mirror lacks (one
 * pack), and their LFS objects with git-lfs's store and the checked-out
 * files as candidates.
 */
int hfm_imp_clone_collect(struct hfm_imp_job *job);

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
