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
 * A range (any other response) cannot be protected that way, so it never
 * reads bytes from the store that are not verified and were stored before
 * its request came (hfm_blob_unverified): those parts are relayed from
 * upstream again, unstored, or, when the fill will have the blob verified
 * about as soon (it has no more bytes to fetch than those parts hold), the
 * answer waits for the verified blob.  Its other bytes it reads as they
 * arrive, which is all a range on a cold blob has: upstream's bytes, as
 * unverified as a relay's.  A range starts the background fill of the blob
 * (hfm_blob_fill), unless the blob is larger than range_fill_max: then the
 * range is relayed and nothing stored.  With `strict`, a range always waits
 * for the verified blob (filled at once, whatever its size).  A relayed
 * part, like a relay stream, is answered at once: an upstream that fails
 * then ends the response early.  docs/proxy-cache.md has the costs.
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
	uint64_t arrived_ns;             /* mono ns the request came (hfm_ctx); 0 = unknown:
					    its first read or prime */
};

/* What blob streams are given (the online cache's; borrowed, outlive the streams). */
struct hfm_stream_cache {
	struct hfm_blobcache *bc;
	struct hfm_upstream *up;         /* relays what must not come from the store */
	uint64_t range_fill_max;         /* a range of a larger blob is relayed, not
					    stored; 0 = no limit */
	int strict;                      /* ranges wait for the verified blob */
	/*
	 * A blob another process fills (a node of a shared store) is followed
	 * (blobfollow.h): a whole-file answer reads its durable blocks, hashes
	 * them and holds the last byte until the digest matched, and takes the
	 * fill over if that process goes away; a range is relayed.  NULL: such
	 * a blob is an error, as before.  Both borrowed.
	 */
	struct hfm_followers *followers;
	const struct hfm_store *store;
};

/* A stream over the blob `o->oid` of `c->bc` (opened at first read). */
int hfm_stream_blob_new(struct hfm_stream **out, const struct hfm_stream_cache *c,
			const struct hfm_stream_origin *o);
/* A stream relaying one upstream GET of `up` (borrowed); stores nothing. */
int hfm_stream_relay_new(struct hfm_stream **out, struct hfm_upstream *up,
			 const struct hfm_stream_origin *o);

#endif
