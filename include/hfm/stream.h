/*
 * stream.h - a file body that is still arriving (HFM_BODY_STREAM).
 *
 * The online cache answers a file it has not got completely with a stream:
 * the HTTP layer asks for bytes at a content offset and gets what is there
 * now, or HFM_EAGAIN after the stream armed the request's waiter (the
 * connection is then suspended until the bytes come: nothing polls).
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
 * last byte before the content was verified against its id.  A verification failure ends the response with an
 * error, so a client sees a short body, never a complete wrong one.
 *
 * Ownership: the HTTP layer owns the stream it got in a struct hfm_body and
 * calls hfm_stream_free() once (also when the response was never sent, e.g.
 * HEAD).  Nothing is fetched or created on disk before the first read.
 *
 * Threading: one reader at a time per stream (MHD calls a response's reader
 * from one thread at a time); the wake may come from any thread.
 */
#ifndef HFM_STREAM_H
#define HFM_STREAM_H

#include <stdint.h>
#include <sys/types.h>

#include "blobcache.h"
#include "upstream.h"
#include "wait.h"

struct hfm_stream;

/*
 * Copy bytes at content offset `pos` (pos < end) into buf (max > 0); `end`
 * is where this response stops.  Returns the number of bytes (> 0),
 * HFM_EAGAIN with w armed, or a negative error: the response must end short.
 */
ssize_t hfm_stream_read(struct hfm_stream *s, uint64_t pos, uint64_t end, char *buf,
			size_t max, struct hfm_waiter *w);
void hfm_stream_free(struct hfm_stream *s);
/*
 * Before the status line is sent: 0 when bytes at `start` are readable now
 * (or the stream cannot tell without starting its transfer), HFM_EAGAIN
 * with w armed while the first bytes are on their way, or the error that
 * fetching them met.  So a dead upstream is a 502/504 answer, not a 200
 * that breaks off.  The caller may free the stream after HFM_EAGAIN: work
 * started continues (the blob cache keeps fetching) for the re-run.
 */
int hfm_stream_prime(struct hfm_stream *s, uint64_t start, uint64_t end, struct hfm_waiter *w);

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
