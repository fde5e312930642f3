/*
 * fsutil.h - opening files below a root without escaping it.
 *
 * Symlink policy (model-bin and any local tree): a symlink is followed only
 * when its target, fully resolved, is inside the root.  The kernel enforces
 * this with openat2(RESOLVE_BENEATH); where that is unavailable, or refuses
 * an absolute symlink that does point inside the root, the resolved path of
 * the opened fd is checked against the root instead.
 */
#ifndef HFM_FSUTIL_H
#define HFM_FSUTIL_H

#include <stddef.h>

/*
 * Open `rel` (a checked relative path, see path.h) below the directory
 * `root_fd` whose canonical path is `root_real`.  Returns an fd (O_CLOEXEC
 * added) or -1 with errno set; EXDEV means "resolves outside the root".
 */
int hfm_open_beneath(int root_fd, const char *root_real, const char *rel, int flags);

/*
 * Write all `n` bytes of `p` to `fd`, retrying short writes and EINTR.
 * 0, or -1 with errno set (a write that returns 0 counts as EIO).
 */
int hfm_write_all(int fd, const void *p, size_t n);

/* 1 if the canonical form of `path` is `root_real` or below it. */
int hfm_path_within(const char *root_real, const char *path);

#endif
