/*
 * gitpack.h - the answer to a git-upload-pack request (protocol v0/v1
 * negotiation, v2 fetch) as a body stream: acknowledgements, the shallow
 * boundary, and a pack built by libgit2's packbuilder, sent while it is
 * produced.
 *
 * Each answer runs on a worker thread of its own with its own libgit2
 * handle on the repository, writing pkt-lines into a bounded ring (1 MiB)
 * that the HTTP transport drains through the stream's read op.  A full ring
 * blocks the worker (memory does not grow with the pack); an empty one arms
 * the request's waiter and suspends the connection (nothing polls).  When
 * the client hangs up, freeing the stream tells the worker to stop: it
 * notices between objects (and within 0.5 s during libgit2's delta search),
 * frees what it holds and exits; no server thread waits for it.
 *
 * What is sent (gitprotocol-pack(5), gitprotocol-v2(5)):
 *  - the objects reachable from the wants and not from the client's haves,
 *    walked newest first as git's rev-list does (stopping once only
 *    uninteresting commits are left), with the trees and blobs of the
 *    boundary commits excluded;
 *  - deepen N: commits deeper than N from the wants are left out and the
 *    last ones kept are sent as "shallow" lines; deepen-relative counts
 *    from the client's current boundary; deepen-since T cuts at commit
 *    time T; the client's "shallow" commits are treated as having no
 *    parents, and those the new depth reaches past are "unshallow";
 *  - annotated tags that are wanted, and with include-tag those that point
 *    at a commit being sent;
 *  - progress on side-band 2 unless no-progress; errors as an "ERR" line
 *    before the pack, or on side-band 3 during it.
 * A want that is not an object of the repository is "not our ref" (any
 * object of the repository may be wanted: a mirror has no hidden refs).
 * libgit2 writes deltas against objects in the same pack (REF_DELTA), which
 * every client reads; thin packs are never sent.  One shortcut: when the
 * objects to send are exactly those of the repository's only pack file
 * (no loose objects; a full clone of a mirror made by `git clone --mirror`
 * that wants every ref), that file is sent as it is, as git does, instead
 * of packing its objects again (the client must have asked for ofs-delta).
 *
 * The pool bounds the work: at most `max_streams` answers exist at once
 * (hfm_gitpack_start() says HFM_EUNAVAIL beyond: answer 503), and at most
 * `max_busy` of them walk or pack at the same time (the others wait for a
 * turn on their own thread).
 *
 * Threading: start/free may be called from any thread; one stream is read by
 * one thread at a time (source.h).
 */
#ifndef HFM_GITPACK_H
#define HFM_GITPACK_H

#include "gitproto.h"
#include "source.h"

struct hfm_gitpack_pool;

/* 0 = defaults: 64 streams, one busy per CPU. */
int hfm_gitpack_pool_new(struct hfm_gitpack_pool **out, unsigned max_streams,
			 unsigned max_busy);
/* Cancel every answer still running and wait for their workers. */
void hfm_gitpack_pool_free(struct hfm_gitpack_pool *p);

/*
 * A stream of the answer to `q` (an upload or fetch request; copied) over
 * the repository libgit2 opens at `git_path` (copied).  Nothing runs before
 * the first read.  The stream ends (read returns 0) after the last byte; its
 * length is not known in advance (send it chunked).  HFM_EUNAVAIL when the
 * pool is full.
 */
int hfm_gitpack_start(struct hfm_stream **out, struct hfm_gitpack_pool *p, const char *git_path,
		      const struct hfm_upload_req *q);

/* Counters for /metrics and tests: answers started, objects sent, whole packs sent as they are. */
struct hfm_gitpack_stats {
	uint64_t started, objects, running, whole;
};
void hfm_gitpack_stats(struct hfm_gitpack_stats *out, struct hfm_gitpack_pool *p);

#endif
