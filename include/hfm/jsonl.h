/*
 * jsonl.h - the small files an admin edits with `hfmirror token` and
 * `hfmirror grant` and the server reads while it runs: JSON lines.
 *
 * One JSON object per line; blank lines and lines starting with '#' are
 * comments.  Why JSON lines: one record per line lets every complaint name
 * FILE:LINE, a change is one line in a diff, the server already parses
 * JSON (cJSON), and a program rewrites the file without a TOML writer.
 *
 * Readers notice a change by the file's signature (device, inode, size,
 * mtime, ctime), taken with one stat() per use: a writer replaces the file
 * by rename(), so the next use after a change sees a new inode.
 *
 * Writers (the CLI, the server recording a grant, hfmirror-import merging
 * a bundle's grants) serialize on an flock() of FILE.lock and replace FILE
 * whole (a temporary name in the same directory, fsync, rename): a reader
 * sees the old file or the new one.
 *
 * The file discipline (this module, jsonl.c) is in the base library, without
 * cJSON, so that hfmirror-import can use it.  hfm_jsonl_read() and
 * hfm_jsonl_str() hand records over as cJSON objects: they are in the server
 * library only (jsonl_read.c); a reader without cJSON takes the lines
 * (hfm_jsonl_lines()) and parses its fixed record itself (grants.c).
 */
#ifndef HFM_JSONL_H
#define HFM_JSONL_H

#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define HFM_JSONL_MAX (16u << 20)        /* a larger file is refused */

struct hfm_filesig {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns, ctime_ns;
};

/* The signature of `path` now (exists = 0 when it is missing). */
void hfm_filesig_get(struct hfm_filesig *out, const char *path);
int hfm_filesig_same(const struct hfm_filesig *a, const struct hfm_filesig *b);

/*
 * Call fn for each record line of `path` (not blank, not a comment; leading
 * blanks skipped), in order, with its line number.  fn returns 0, or
 * HFM_EINVAL after appending "FILE:LINE: key: why\n" to err (hfm_jsonl_bad()
 * writes that).  Reading goes on after a bad record so that every problem
 * is reported.  Returns 0, HFM_ENOENT (no such file: nothing is appended),
 * HFM_EIO (unreadable, too large) or HFM_EINVAL.
 */
typedef int (*hfm_jsonl_line_fn)(void *cls, const char *s, size_t n, const char *path,
				 unsigned line, struct hfm_buf *err);
int hfm_jsonl_lines(const char *path, hfm_jsonl_line_fn fn, void *cls, struct hfm_buf *err);

/*
 * hfm_jsonl_lines() with each line parsed by cJSON: a line that is not a
 * JSON object is "FILE:LINE: record: not a JSON object".  Server library
 * only (jsonl_read.c).
 */
struct cJSON;
typedef int (*hfm_jsonl_fn)(void *cls, const struct cJSON *rec, const char *path, unsigned line,
			    struct hfm_buf *err);
int hfm_jsonl_read(const char *path, hfm_jsonl_fn fn, void *cls, struct hfm_buf *err);

/* Append "PATH:LINE: key: why\n" to err and return HFM_EINVAL. */
int hfm_jsonl_bad(struct hfm_buf *err, const char *path, unsigned line, const char *key,
		  const char *fmt, ...) HFM_PRINTF(5, 6);

/* The string member `key` of rec, or NULL when absent or not a string (jsonl_read.c). */
const char *hfm_jsonl_str(const struct cJSON *rec, const char *key);

/* Take the writers' lock of `path` (FILE.lock, created 0600); -1 and a message on failure. */
int hfm_jsonl_lock(const char *path);
void hfm_jsonl_unlock(int fd);

/* Replace `path` with `n` bytes of `data` atomically (mode for a new file). */
int hfm_jsonl_replace(const char *path, const char *data, size_t n, mode_t mode);

#endif
