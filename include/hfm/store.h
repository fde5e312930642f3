/*
 * store.h - the content-addressed store that the importer writes and the
 * online cache fills.
 *
 *   <root>/objects/<first 2 hex>/<oid>    complete blobs, named by Hub id:
 *                                         sha256 (64 hex) for LFS content,
 *                                         git blob sha1 (40 hex) otherwise
 *   <root>/partial/<oid>{,.map}           blobs still arriving (cache)
 *   <root>/mirrors/{models,datasets,spaces}/<org>/<name>.git
 *                                         bare git mirrors
 *   <root>/meta/...                       cached API answers, indexes
 *   <root>/tmp/                           staging; same filesystem as objects/
 *
 * Invariant: a file under objects/ is complete and was verified against its
 * name before it got that name.  Writers stage under tmp/ (or partial/),
 * fsync (the cache's small blobs: several at once, hfm_store_sync_fds),
 * then rename(2) (or link) into place and fsync the directory (the
 * cache: once for several objects, a second later), so a crash never
 * leaves a half object under its final name.  Everything under tmp/ may be
 * deleted when no writer runs (hfm_store_open() removes stale staging files
 * older than a day).
 *
 * A struct hfm_store is immutable after open and safe to share between
 * threads; it holds directory fds so lookups are openat() calls.
 */
#ifndef HFM_STORE_H
#define HFM_STORE_H

#include <stdint.h>
#include "buf.h"
#include "path.h"

struct hfm_store {
	char *root;          /* absolute path */
	int root_fd;
	int objects_fd;
	int tmp_fd;
	int read_only;       /* opened with HFM_STORE_READ_ONLY: nothing may write it */
};

/* hfm_store_open() flags */
#define HFM_STORE_CREATE 1       /* make the store's directories if missing */
/*
 * Never write it: no directories made, no stale staging files swept (a
 * node of a shared store that the filesystem cannot lock for it, see
 * docs/scale-out.md).  Its users check s->read_only before writing.
 */
#define HFM_STORE_READ_ONLY 2

/* Open the store at `root` (flags: HFM_STORE_*; 1 is HFM_STORE_CREATE). */
int hfm_store_open(struct hfm_store **out, const char *root, int flags);
void hfm_store_free(struct hfm_store *s);

/* 1 for a 40- or 64-hex lowercase oid. */
int hfm_store_oid_valid(const char *oid);

/* "<root>/objects/xx/<oid>" */
void hfm_store_object_path(struct hfm_buf *out, const struct hfm_store *s, const char *oid);
/*
 * Open a complete object read-only; HFM_ENOENT if absent.
 *
 * Leases: the fd carries a shared lease on the object for as long as it is
 * open (an OFD read lock, which closing the last fd of that open drops), so
 * that the evictor of any node sharing the store leaves an object alone
 * while someone serves it: on a local filesystem an unlinked open file
 * still reads, but on NFS another client's unlink turns the reader's
 * handle stale.  A lease costs one fcntl per open (a lock round trip to
 * the server on NFS); where locks are not supported the object is served
 * without one.
 */
int hfm_store_object_open(int *fd, uint64_t *size, const struct hfm_store *s, const char *oid);
/*
 * Remove object `oid` unless it is leased: takes the exclusive lock without
 * waiting (a reader's open meanwhile waits for the unlink and then misses).
 * 0 removed, 1 leased (kept), HFM_ENOENT, or HFM_EIO.
 */
int hfm_store_object_remove_unleased(const struct hfm_store *s, const char *oid);
int hfm_store_object_exists(const struct hfm_store *s, const char *oid);

/*
 * Verify that the open file `fd` of `size` bytes has id `oid` (sha256 for 64
 * hex, git blob sha1 for 40).  0, HFM_ECORRUPT (with a message) or HFM_EIO.
 */
int hfm_store_verify_fd(int fd, uint64_t size, const char *oid);

/*
 * Stage a new file under tmp/.  *fd is open for writing, `tmp_name` receives
 * its name relative to tmp/ (pass it to commit or abort).
 */
int hfm_store_stage(int *fd, struct hfm_buf *tmp_name, const struct hfm_store *s);
/*
 * Publish a staged file as object `oid`: fsync, verify (unless `verified`),
 * rename into objects/, fsync the directory.  On any failure the staged file
 * is removed.  If the object already exists the staged file is dropped and 0
 * returned.
 */
int hfm_store_commit(const struct hfm_store *s, const char *tmp_name, const char *oid,
		     int verified);
void hfm_store_abort(const struct hfm_store *s, const char *tmp_name);
/*
 * hfm_store_commit() for a file staged elsewhere on the store's filesystem
 * (`name` in directory `dirfd`, e.g. the cache's partial/): the same fsync,
 * optional verification, rename and directory fsync; the file is removed on
 * failure.  An fd open on it keeps reading the published object.
 */
int hfm_store_publish_at(const struct hfm_store *s, int dirfd, const char *name,
			 const char *oid, int verified);

/*
 * Stage a new file under tmp/ without a name where the filesystem can
 * (O_TMPFILE: name[0] is NUL), else with one unique to this host and
 * process (in `name`; hfm_store_abort() removes it).  Publish it with
 * hfm_store_publish_fd(): an unnamed one is linked into objects/.
 */
int hfm_store_stage_unnamed(int *fd, char name[96], const struct hfm_store *s);
/*
 * The same for a staged file the caller has open (`fd`, readable unless
 * HFM_STORE_VERIFIED; the caller closes it; `name` "" for an unnamed one,
 * which is linked and never replaces an object), with flags:
 *   HFM_STORE_VERIFIED   the caller verified the bytes: not read again
 *   HFM_STORE_NOREPLACE  an object already there stays (and `name` is
 *                        removed): a reader of its inode on another NFS
 *                        client would see it go stale if it were replaced
 *   HFM_STORE_DIR_LATER  objects/<2 hex> is not fsynced here: the caller
 *                        does it later (hfm_store_sync_object_dir), once
 *                        for several objects.  Until then a power loss
 *                        may take the new name away (never leave a wrong
 *                        or partial object under it: the data is fsynced
 *                        before the rename)
 *   HFM_STORE_DURABLE    the caller made the staged file durable already
 *                        (hfm_store_sync_fds): no fsync here
 * On failure `name` is left for the caller to remove.
 */
int hfm_store_publish_fd(const struct hfm_store *s, int dirfd, const char *name, int fd,
			 const char *oid, unsigned flags);
/*
 * Make the open files or directories `fds` (n >= 1, on the store's
 * filesystem: staged files before hfm_store_publish_fd with
 * HFM_STORE_DURABLE, directories after publishing) durable together:
 * for three or more, one syncfs(2) of the store's filesystem, then one
 * fsync of the first, whose device flush comes after every write the
 * syncfs waited for (a filesystem without a journal may flush before its
 * last inode writes complete): two flushes of the device where an fsync of
 * each costs one per file.  The syncfs also writes whatever else is dirty
 * on that filesystem, so it takes as long as that does.  Fewer, or where
 * syncfs fails (an old writeback error of another file is reported once):
 * an fsync of each.  0 or HFM_EIO with a message.
 */
int hfm_store_sync_fds(const struct hfm_store *s, const int *fds, size_t n);
/* fsync objects/<first 2 hex of oid> (hfm_store_publish_fd's HFM_STORE_DIR_LATER). */
void hfm_store_sync_object_dir(const struct hfm_store *s, const char *oid);
/* objects/<first 2 hex of oid> opened to be synced (several at once:
 * hfm_store_sync_fds): its fd, or -1 (errno) when it cannot be opened. */
int hfm_store_object_dir_open(const struct hfm_store *s, const char *oid);

/*
 * Add the file at `path` as object `oid`: a hard link when on the same
 * filesystem (the inode is shared, nothing is copied), else a copy through
 * tmp/.  The content is verified first.  *linked tells which happened.
 * 0, HFM_ECORRUPT (content does not match oid), HFM_EIO.
 */
int hfm_store_add_file(const struct hfm_store *s, const char *path, const char *oid,
		       int *linked);

/* How hfm_store_add_fd() added an object. */
enum hfm_store_added {
	HFM_STORE_PRESENT = 0,   /* it was there already; nothing was read */
	HFM_STORE_LINKED = 1,    /* hard link to the caller's inode */
	HFM_STORE_COPIED = 2,    /* copied through tmp/ */
};

/* Flags for hfm_store_add_fd(). */
#define HFM_STORE_COPY 1u        /* never hard link (the caller's file may change later) */
#define HFM_STORE_VERIFIED 2u    /* the caller just hashed this fd to `oid`: a link
				    publishes it without reading it again */
#define HFM_STORE_NOREPLACE 4u   /* hfm_store_publish_fd() */
#define HFM_STORE_DIR_LATER 8u   /* hfm_store_publish_fd() */
#define HFM_STORE_DURABLE 16u    /* hfm_store_publish_fd() */

/*
 * Add the open regular file `fd` as object `oid`.  The object is exactly the
 * inode behind `fd` (a link is made through /proc/self/fd, never by a path
 * that could have been swapped since), or a copy of its bytes.
 *
 * On the store's filesystem the file is verified and then hard-linked;
 * linkat() publishes it at once with its full content.  A failed link
 * (EPERM from protected_hardlinks, EMLINK, a bind mount boundary, no /proc)
 * falls back to the copy.  A copy reads the file once: it is hashed while it
 * is written to tmp/ and published only if the digest matches.  `fn` (may be
 * NULL) reports the bytes read.
 *
 * A hard link shares the inode: whoever writes the caller's file in place
 * afterwards changes the object.  Pass HFM_STORE_COPY when that may happen.
 * 0 with *how set, HFM_ECORRUPT (content does not match oid) or HFM_EIO.
 */
int hfm_store_add_fd(enum hfm_store_added *how, const struct hfm_store *s, int fd,
		     const char *oid, unsigned flags, hfm_progress_fn *fn, void *payload);

/* "<root>/mirrors/<plural>/<name>.git" */
void hfm_store_mirror_path(struct hfm_buf *out, const struct hfm_store *s,
			   const struct hfm_repo_id *id);

/*
 * Lock the mirror of `id` against the store's other writers of mirrors
 * (the importer, `hfmirror sync`): an flock on
 * meta/import-locks/<plural>--<org>#<name>, held until *fd is closed.
 * When another holds it, calls on_wait(cls) (may be NULL) and waits.
 */
int hfm_store_mirror_lock(int *fd, const struct hfm_store *s, const struct hfm_repo_id *id,
			  void (*on_wait)(void *cls), void *cls);

/*
 * The same for another of id's writers' locks: the file is named `prefix`
 * + "<plural>--<org>#<name>" ("" = the mirror's; "cache--" = its cached
 * metadata, which bundle imports write).
 */
int hfm_store_repo_lock(int *fd, const struct hfm_store *s, const char *prefix,
			const struct hfm_repo_id *id, void (*on_wait)(void *cls), void *cls);

/*
 * A name for a staging file under tmp/ that no other process uses, on any
 * node sharing the store: "<what>.<host>.<pid>.<n>" (swept when stale).
 */
void hfm_store_tmp_name(char name[96], const char *what);

/*
 * A scratch file under tmp/ for probes: unnamed (O_TMPFILE) where the
 * filesystem has them, else a name unique to this host and process, given
 * in `name` (remove it with unlinkat(s->tmp_fd, name, 0)); name[0] is NUL
 * for an unnamed one.  0 with *fd open read-write, or HFM_EIO.
 */
int hfm_store_scratch(int *fd, char name[96], const struct hfm_store *s);

/*
 * Can the store be used now: its objects readable and, unless read-only, a
 * file made under tmp/ (the disk full or read-only, the mount gone, a
 * stale NFS handle).  0 or HFM_EIO with a message.  For /readyz.
 */
int hfm_store_check(const struct hfm_store *s);

/* mkdir -p relative to the store root (mode 0755). */
int hfm_store_mkdirs(const struct hfm_store *s, const char *rel);

#endif
