/*
 * src_modelbin.h - a plain directory tree served as a read-only Hub.
 *
 *   <root>/<org>/<name>/...            models
 *   <root>/<name>/...                  canonical models (a top-level directory
 *                                      that holds files itself, like "gpt2")
 *   <root>/datasets/<org>/<name>/...   datasets (canonical: datasets/<name>)
 *   <root>/spaces/<org>/<name>/...     spaces (canonical: spaces/<name>)
 *
 * One id per folder, the one routes and rules use: a top-level folder that
 * holds a file is a canonical repo and its sub-folders are its folders,
 * never repos; one that holds only folders is an org.  The folders above a
 * repo must be real; a repo folder may be a symlink only to where no repo is
 * (a dot-folder), never to another repo or an org.
 *
 * There is no git: each repo has one branch, `main`, whose commit id is the
 * sha1 of the sorted listing (path, size, mtime), so it changes exactly when
 * a file is added, removed or modified, and is the same across restarts.
 * The last few commits stay resolvable for a while, so a download pinned to
 * a commit that was just replaced still completes where files are unchanged.
 *
 * File ids are the Hub's.  A file is stored "as LFS" when the Hub would
 * store it so: larger than 10 MiB (the Hub refuses larger non-LFS files), or
 * matched by a `filter=lfs` pattern of the repo's .gitattributes, or binary
 * (a NUL byte in the first 8 KiB).  LFS files get their sha256 as etag and a
 * pointer blob id as tree oid; others get their git blob id.  Hashes come
 * from the hasher (hasher.h) and are persisted in the hash index.
 *
 * The listing is rescanned when a request finds it older than
 * `rescan_interval` seconds, and at once when an opened file does not match
 * its listing (size, mtime, inode).  Not listed: `.git`, a top-level `.cache`
 * (huggingface_hub's local-dir metadata), names starting with `.hfmirror`,
 * special files, names that are not valid repo paths, and symlinks that
 * resolve outside the repo's folder: not even into another repo, whose
 * rules may differ (files are opened below the repo's folder, fsutil.h).
 */
#ifndef HFM_SRC_MODELBIN_H
#define HFM_SRC_MODELBIN_H

#include "hasher.h"
#include "source.h"

/*
 * Create the source for directory `root`.  The hasher is borrowed and must
 * outlive the source.  HFM_EIO with a message if root is not a directory.
 */
int hfm_modelbin_new(struct hfm_source **out, const char *root, struct hfm_hasher *hasher,
		     double rescan_interval);

/* Queue background hashing of every file of every repo (startup warm-up). */
void hfm_modelbin_prefetch_all(struct hfm_source *src);

#endif
