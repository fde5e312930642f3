/*
 * bundleio.h - how a bundle (bundle.h) lies on disk or on the wire.
 *
 * The payload is a POSIX tar stream (ustar headers, a pax header for a name
 * longer than 100 bytes or a size of 8 GiB or more), so `tar -t` lists it.
 * Two forms:
 *
 *   a directory   DIR/manifest, DIR/manifest.sig (when signed) and the
 *                 payload in volumes DIR/payload.000, payload.001, ...: the
 *                 tar stream cut into pieces of at most --split bytes (one
 *                 volume without --split).  The manifest names each volume
 *                 with its size and sha256; it is written last, so a
 *                 directory without one is an export that did not finish.
 *   a tar stream  members "manifest", then "manifest.sig" when signed, then
 *                 the payload members, then the end blocks: `-o -` writes it
 *                 to stdout for a one-way link, and the importer reads it
 *                 from a pipe without seeking.
 *
 * The reader checks a directory's volume set before reading (every volume
 * there, with its size; no other payload.* file), and each volume's sha256
 * when it has read to the volume's end (a mismatch is reported at the end,
 * or with the first entry that fails: hfm_bundle_in_damage()).  Members never need to start at a
 * volume boundary: a member may continue in the next volume.
 *
 * A writer or reader belongs to one thread.
 */
#ifndef HFM_BUNDLEIO_H
#define HFM_BUNDLEIO_H

#include <stdint.h>

#include "buf.h"
#include "bundle.h"

#define HFM_TAR_BLOCK 512
#define HFM_TAR_NAME_MAX (3 * HFM_PATH_MAX)

/* ---- tar headers: pure functions ------------------------------------------------ */

/*
 * Append the header of a regular-file member `name` of `size` bytes (a pax
 * header first when needed).  mtime is seconds since the epoch.
 */
int hfm_tar_header(struct hfm_buf *out, const char *name, uint64_t size, int64_t mtime);
/* Zero bytes that follow `size` bytes of member data. */
size_t hfm_tar_padding(uint64_t size);

enum hfm_tar_type {
	HFM_TAR_FILE,            /* a regular file member */
	HFM_TAR_PAX,             /* pax extended header: its records apply to the next member */
	HFM_TAR_GLOBAL,          /* pax global header: skipped */
	HFM_TAR_END,             /* a zero block */
};

struct hfm_tar_hdr {
	enum hfm_tar_type type;
	char name[256];          /* ustar prefix/name (a pax path replaces it later) */
	uint64_t size;
};

/*
 * Parse one 512-byte header block: checksum, magic, octal (or base-256)
 * size, type.  0, or HFM_EINVAL with a message (another type of member,
 * damaged header).
 */
int hfm_tar_parse(struct hfm_tar_hdr *h, const unsigned char block[HFM_TAR_BLOCK]);
/*
 * Parse the records of a pax header's data.  *path (malloc'd, may stay NULL)
 * and *size (with *has_size) get the "path" and "size" records; others are
 * ignored.  0 or HFM_EINVAL.
 */
int hfm_tar_pax(char **path, uint64_t *size, int *has_size, const char *data, size_t n);

/* ---- writing ---------------------------------------------------------------------- */

struct hfm_bundle_out;

/*
 * Payload volumes DIR/payload.NNN of at most `split` bytes each (0: one
 * volume; else at least 1 MiB).  DIR must exist.  A volume is written as
 * payload.NNN.part and renamed when full.
 */
int hfm_bundle_out_dir(struct hfm_bundle_out **out, const char *dir, uint64_t split);
/* A tar stream on `fd` (not closed by the writer). */
int hfm_bundle_out_fd(struct hfm_bundle_out **out, int fd);

/* One member: begin, its `size` bytes by write/copy, end. */
int hfm_bundle_out_begin(struct hfm_bundle_out *o, const char *name, uint64_t size);
int hfm_bundle_out_write(struct hfm_bundle_out *o, const void *p, size_t n);
/* Copy `size` bytes of `fd` from offset 0 (kernel copy into a stream when it can). */
int hfm_bundle_out_copy(struct hfm_bundle_out *o, int fd, uint64_t size);
int hfm_bundle_out_end(struct hfm_bundle_out *o);

/*
 * The end blocks; a directory writer closes its last volume (made durable)
 * and adds every volume to `m` (may be NULL for a stream).
 */
int hfm_bundle_out_finish(struct hfm_bundle_out *o, struct hfm_bundle_manifest *m);
/* Bytes written so far (headers and padding included). */
uint64_t hfm_bundle_out_bytes(const struct hfm_bundle_out *o);
/* Free; an unfinished directory writer removes its .part volume. */
void hfm_bundle_out_free(struct hfm_bundle_out *o);

/* Write DIR/name durably (temporary name, fsync, rename). */
int hfm_bundle_write_file(const char *dir, const char *name, const void *p, size_t n);

/* ---- reading ---------------------------------------------------------------------- */

struct hfm_bundle_in;

/*
 * Open a bundle: "-" (a tar stream on stdin), a directory, or a tar file.
 * Reads the manifest and the signature (stream: its first members).
 * 0, or HFM_EINVAL/HFM_EIO with a message naming what is wrong.
 */
int hfm_bundle_in_open(struct hfm_bundle_in **out, const char *path);
void hfm_bundle_in_free(struct hfm_bundle_in *in);

/* The manifest's bytes, and the signature's (NULL when unsigned). */
const char *hfm_bundle_in_manifest(const struct hfm_bundle_in *in, size_t *n);
const char *hfm_bundle_in_sig(const struct hfm_bundle_in *in, size_t *n);
/* 1 for a directory bundle. */
int hfm_bundle_in_is_dir(const struct hfm_bundle_in *in);

/*
 * Directory bundles: check the volume set against the manifest before any
 * is read.  HFM_EINVAL naming a missing, short, long or unlisted volume, or
 * a directory bundle whose manifest lists no volumes.
 */
int hfm_bundle_in_volumes(struct hfm_bundle_in *in, const struct hfm_bundle_manifest *m);

/*
 * The next payload member (pax records applied): 0 with *name (points into
 * `in`, valid until the next call) and *size; HFM_ENOENT at the end of the
 * archive; HFM_EINVAL/HFM_EIO with a message.  Unread data of the previous
 * member is skipped.
 */
int hfm_bundle_in_next(struct hfm_bundle_in *in, const char **name, uint64_t *size);
/*
 * Up to `n` bytes of the current member's data into `buf`, at least one
 * unless the member is done: *got = 0 then.  A stream that ends inside a
 * member is HFM_EINVAL ("truncated").  `view` variant: a pointer into the
 * reader's buffer instead of a copy.
 */
int hfm_bundle_in_read(struct hfm_bundle_in *in, void *buf, size_t n, size_t *got);
int hfm_bundle_in_view(struct hfm_bundle_in *in, const void **p, size_t max, size_t *got);
/*
 * After HFM_ENOENT: read to the end (only zeros may follow the end blocks),
 * check the last volume's digest and that every volume was read.
 */
int hfm_bundle_in_finish(struct hfm_bundle_in *in);

/* Where the reader is: "payload.002 (volume 3 of 5)", or "the stream". */
void hfm_bundle_in_where(const struct hfm_bundle_in *in, struct hfm_buf *out);
/* The volumes that hold payload bytes [from, to): "payload.002 to payload.004 (volumes 3 to 5 of 9)". */
void hfm_bundle_in_span(const struct hfm_bundle_in *in, uint64_t from, uint64_t to,
			struct hfm_buf *out);
/*
 * A volume whose digest did not match (the reader goes on, so that the
 * entry the damage is in is named by its own check): a message, or NULL.
 * hfm_bundle_in_finish() fails with it.  Version 2 bundles are read
 * hashing only the volumes' framing: asked after a failure, this hashes
 * the whole volumes once to name the damaged one (the failure path only).
 */
const char *hfm_bundle_in_damage(struct hfm_bundle_in *in);
/* Payload bytes read so far. */
uint64_t hfm_bundle_in_offset(const struct hfm_bundle_in *in);

#endif
