/*
 * hashindex.h - persistent memo of file hashes, so nothing is hashed twice.
 *
 * Keyed by (device, inode, size, mtime in ns): a file that keeps all four is
 * assumed unchanged; anything else is a new key and gets hashed again.  The
 * on-disk form is an append-only file of fixed-size records (104 bytes),
 * each checking itself (a magic and an FNV-1a checksum of the rest); the
 * last record for a (device, inode) wins.  A record that does not check
 * (crash mid-append, bit rot) is skipped with a warning, the reader finds
 * the next one that does, and the file is compacted on that open, so a
 * damaged index costs re-hashing, never a wrong id.  A header a crash tore
 * (a prefix of it or zeros, or followed by an intact record) is rebuilt
 * with a warning; a file that is no index at all is left alone and the
 * index kept in memory.
 *
 * The index is safe to share between threads, and between processes on
 * one or several machines (nodes of a shared store, the importer): every
 * append and compaction holds an exclusive OFD lock on the file (fcntl;
 * POSIX locks where the kernel has no OFD locks), so records never
 * interleave, also on NFS where O_APPEND is not atomic across clients; a
 * writer whose file another process compacted (renamed over) reopens it,
 * and one that finds a torn record at the end pads it to a record boundary.
 * Each process sees the others' records at its next open.
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
