/*
 * plainrepo.h - a repository given as a plain directory of files: which
 * directory entries are not files of the repo, and which files the Hub
 * would store with LFS.
 *
 * Shared by model-bin (which serves such a directory as it is) and the
 * importer (which turns one into a git mirror), so that a file gets the
 * same id, and the same LFS-or-not answer, from both.
 *
 * The LFS rule is the Hub's: a file is stored with LFS when it is larger
 * than 10 MiB (the Hub refuses larger regular files), or binary (a NUL byte
 * in its first 8 KiB), or matched by a `filter=lfs` pattern of the repo's
 * top-level .gitattributes (the last matching line wins; `-filter`,
 * `!filter` and other filters turn it off).
 */
#ifndef HFM_PLAINREPO_H
#define HFM_PLAINREPO_H

#include <stdint.h>

#define HFM_LFS_SIZE_THRESHOLD (10ull * 1024 * 1024)

/* The filter lines of one .gitattributes; immutable once built. */
struct hfm_lfs_attrs;

/*
 * Parse .gitattributes text (NUL-terminated).  Never fails; lines that say
 * nothing about the filter are ignored.  Free with hfm_lfs_attrs_free().
 */
struct hfm_lfs_attrs *hfm_lfs_attrs_parse(const char *text);
/* Read and parse `<repo_fd>/.gitattributes` (up to 1 MiB); empty if absent. */
struct hfm_lfs_attrs *hfm_lfs_attrs_read(int repo_fd);
void hfm_lfs_attrs_free(struct hfm_lfs_attrs *a);

/* 1 when the attributes say filter=lfs for repo path `path`. */
int hfm_lfs_attrs_match(const struct hfm_lfs_attrs *a, const char *path);

/* The whole rule above.  `a` may be NULL (no .gitattributes). */
int hfm_lfs_wanted(const struct hfm_lfs_attrs *a, const char *path, uint64_t size,
		   int binary);

/*
 * 1 when the entry `name` of the repo directory `rel_dir` ("" for the top)
 * is not a file of the repo: ".", "..", ".git", names starting with
 * ".hfmirror", and a top-level ".cache" (huggingface_hub's local-dir
 * metadata).
 */
int hfm_plainrepo_skip(const char *rel_dir, const char *name);

#endif
