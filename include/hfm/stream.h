/*
 * stream.h - the online cache's bodies that are still arriving
 * (HFM_BODY_STREAM; the read/prime/free contract is struct hfm_stream_ops
 * in source.h).
 *
 * Two kinds:
 *  - blob streams read a blob of the blob cache (blobcache.h): concurrent
 *    readers share its fetches and the bytes stay in the store;
 *  - relay streams pass one upstream GET through a bounded buffer without
 *    storing anything (cache rules deny the repo); upstream is paused while
 *    the buffer is full, so memory does not grow with the file.
 *
 * "Never wrong bytes": when a response covers the whole file (its first read
 * is at 0 and its end is the size), the stream never hands out the file's
 * last byte before the content was verified against its id.  A verification
 * failure ends the response with an error, so a client sees a short body,
 * never a complete wrong one.
 *
 * Nothing is fetched or created on disk before the first read or prime.
 */
#ifndef HFM_STREAM_H
#define HFM_STREAM_H

#include <stdint.h>

#include "blobcache.h"
#include "source.h"
#include "upstream.h"

/* Where and how a stream gets its bytes. */
struct hfm_stream_origin {
	const char *url;                 /* whose body is the content (copied) */
	const char *authorization;       /* the client's, or NULL (copied) */
	const char *oid;                 /* 40/64 hex: git blob sha1 or LFS sha256 */
	uint64_t size;
};

/* A stream over the blob `o->oid` of `bc` (borrowed; opened at first read). */
int hfm_stream_blob_new(struct hfm_stream **out, struct hfm_blobcache *bc,
			const struct hfm_stream_origin *o);
/* A stream relaying one upstream GET of `up` (borrowed); stores nothing. */
int hfm_stream_relay_new(struct hfm_stream **out, struct hfm_upstream *up,
			 const struct hfm_stream_origin *o);

#endif
