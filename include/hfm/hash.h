/*
 * hash.h - the Hub's object ids.
 *
 * The Hub names a file by its git blob id (sha1 of "blob <size>\0" + bytes)
 * and, for files stored with LFS, by the sha256 of the content (the LFS oid).
 * The git blob of an LFS file is its pointer text, so its tree `oid` is the
 * blob id of the pointer.  Everything here writes lowercase hex.
 */
#ifndef HFM_HASH_H
#define HFM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define HFM_SHA1_HEX 40
#define HFM_SHA256_HEX 64

void hfm_hex(char *out, const unsigned char *in, size_t n);
/* Decode `2n` hex chars (either case) into n bytes; returns 0 or HFM_EINVAL. */
int hfm_unhex(unsigned char *out, const char *hex, size_t n);
/* True when s is exactly `n` lowercase hex digits. */
int hfm_is_hex(const char *s, size_t n);

/* One-shot digests of a memory block, hex out (NUL-terminated). */
void hfm_sha1_hex(char out[HFM_SHA1_HEX + 1], const void *data, size_t n);
void hfm_sha256_hex(char out[HFM_SHA256_HEX + 1], const void *data, size_t n);
/* Git blob id of `n` bytes. */
void hfm_git_blob_id(char out[HFM_SHA1_HEX + 1], const void *data, size_t n);

/*
 * Incremental hashing of file content: the git blob id (whose header needs
 * the total size up front) and the sha256, in one pass.
 */
struct hfm_hashctx;
struct hfm_hashctx *hfm_hashctx_new(uint64_t total_size, int want_sha1, int want_sha256);
void hfm_hashctx_update(struct hfm_hashctx *h, const void *data, size_t n);
/* Writes the requested digests ("" for those not requested) and frees h. */
void hfm_hashctx_final(struct hfm_hashctx *h, char sha1[HFM_SHA1_HEX + 1],
		       char sha256[HFM_SHA256_HEX + 1]);

/*
 * Hash a whole open file.  `binary` (may be NULL) is set when the first 8 KiB
 * hold a NUL byte, the test git and the Hub use for "binary".
 * Returns 0, or HFM_EIO if the file could not be read to `size` bytes.
 */
int hfm_hash_fd(int fd, uint64_t size, char sha1[HFM_SHA1_HEX + 1],
		char sha256[HFM_SHA256_HEX + 1], int *binary);
/* The same, reporting the bytes read through `fn` (may be NULL). */
int hfm_hash_fd_progress(int fd, uint64_t size, char sha1[HFM_SHA1_HEX + 1],
			 char sha256[HFM_SHA256_HEX + 1], int *binary,
			 hfm_progress_fn *fn, void *payload);

/*
 * Git LFS pointers.  hfm_lfs_pointer() writes the canonical pointer text for
 * (oid, size); hfm_lfs_pointer_len() is its length without writing it;
 * hfm_lfs_pointer_id() is the git blob id of that text (the tree `oid` of an
 * LFS file).  hfm_lfs_pointer_parse() recognises a pointer blob (spec v1,
 * keys in order, at most 1024 bytes) and returns 0 with oid/size, or
 * HFM_EINVAL if `data` is not a pointer.
 */
int hfm_lfs_pointer(struct hfm_buf *out, const char *oid, uint64_t size);
size_t hfm_lfs_pointer_len(uint64_t size);
void hfm_lfs_pointer_id(char out[HFM_SHA1_HEX + 1], const char *oid, uint64_t size);
int hfm_lfs_pointer_parse(char oid[HFM_SHA256_HEX + 1], uint64_t *size,
			  const void *data, size_t n);

#endif
