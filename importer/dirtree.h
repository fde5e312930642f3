/*
 * dirtree.h - a directory of files as git trees and a commit in the mirror.
 *
 * Used by the sources that have no git objects of their own (plain
 * directories, Hugging Face cache snapshots).  Listing follows symlinks
 * (a cache snapshot is nothing but symlinks into blobs/; a --local-dir
 * download may be too) and cuts directory loops; it skips what
 * plainrepo.h says is not a repo file, special files, and names that are
 * not valid repo paths (with a message).  Every file gets mode 100644, as
 * on the Hub, so equal content gives equal trees across runs and sources.
 */
#ifndef HFM_IMP_DIRTREE_H
#define HFM_IMP_DIRTREE_H

#include <git2.h>
#include <sys/stat.h>
#include "hfm/progress.h"

struct hfm_imp_file {
	char *rel;             /* repo path, '/'-separated */
	char *abs;             /* absolute path (the symlink's, if it is one) */
	struct stat st;        /* of the file itself, links followed */
	int is_link;           /* the directory entry is a symlink */
	git_oid blob;          /* set by the caller */
	int keep;              /* set by the caller: 1 to put the file in the tree */
};

struct hfm_imp_filelist {
	struct hfm_imp_file *v;   /* sorted by rel (strcmp) */
	size_t n, cap;
};

/* List the files below `root`; 0 or HFM_EIO when root cannot be read. */
int hfm_imp_dir_list(struct hfm_imp_filelist *out, const char *root,
		     struct hfm_progress *progress);
void hfm_imp_filelist_dispose(struct hfm_imp_filelist *l);

/* Write the trees of the kept files of `l` into `repo`; *out is the root tree. */
int hfm_imp_dir_tree(git_oid *out, git_repository *repo, const struct hfm_imp_filelist *l);

/*
 * Write a commit of `tree` with `parent` (may be NULL), authored and
 * committed by hfmirror-import at `when` (seconds, UTC): the same inputs
 * give the same commit id, so a re-run makes nothing new.
 */
int hfm_imp_dir_commit(git_oid *out, git_repository *repo, const git_oid *tree,
		       const git_oid *parent, int64_t when, const char *message);

#endif
