/*
 * hashindex.h - persistent memo of file hashes, so nothing is hashed twice.
 *
 * Keyed by (device, inode, size, mtime in ns): a file that keeps all four is
 * assumed unchanged; anything else is a new key and gets hashed again.  The
 * on-disk form is an append-only file of fixed-size checksummed records; the
 * last record for a (device, inode) wins.  A torn or corrupt record (crash
 * mid-append, bit rot) is skipped with a warning and the file is compacted on
 * the next open, so a damaged index costs re-hashing, never a wrong id.
 *
 * The index is safe to share between threads.  Several processes may append
 * to the same file (each record is one O_APPEND write); each sees the
 * others' records at its next open.
 */
#ifndef HFM_HASHINDEX_H
#define HFM_HASHINDEX_H

#include <stdint.h>
#include <sys/stat.h>
#include "hash.h"

struct hfm_hash_key {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
};

struct hfm_hash_rec {
	char sha1[HFM_SHA1_HEX + 1];       /* git blob id of the content */
	char sha256[HFM_SHA256_HEX + 1];   /* sha256 of the content */
	uint8_t binary;                    /* NUL byte in the first 8 KiB */
};

struct hfm_hashindex;

/*
 * Open the index at `path`, creating it (and its directory) if needed.
 * NULL path: memory only.  If the file cannot be used, the index still opens
 * in memory and `*warning` (may be NULL) says why (a static string or "").
 */
int hfm_hashindex_open(struct hfm_hashindex **out, const char *path, const char **warning);
void hfm_hashindex_free(struct hfm_hashindex *idx);

void hfm_hash_key_from_stat(struct hfm_hash_key *k, const struct stat *st);

/* 0 with *out filled, or HFM_ENOENT. */
int hfm_hashindex_get(struct hfm_hashindex *idx, const struct hfm_hash_key *k,
		      struct hfm_hash_rec *out);
/* Remember and persist; 0, or HFM_EIO if the append failed (kept in memory). */
int hfm_hashindex_put(struct hfm_hashindex *idx, const struct hfm_hash_key *k,
		      const struct hfm_hash_rec *rec);
/* Number of live entries (tests, stats). */
size_t hfm_hashindex_count(struct hfm_hashindex *idx);

#endif
