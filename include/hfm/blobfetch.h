/*
 * blobfetch.h - fill blob-cache fetches (blobcache.h) from upstream
 * (upstream.h) with HTTP Range requests.
 *
 * Plug hfm_blobfetch_start in as hfm_blobcache_opts.fetch with the struct
 * hfm_blobfetch as fetch_cls.  Each fetch becomes one GET of its origin's
 * URL (struct hfm_blob_origin, sent with its Authorization) with
 * `Range: bytes=a-b` for the fetch's coalesced blocks, following redirects
 * (the Hub's CDN gets the Range but not the token).
 *
 * What upstream answers is checked, not trusted:
 *  - 206 must carry exactly the Content-Range asked for, with the blob's
 *    size as total; anything else fails the fetch (HFM_EUPSTREAM).
 *  - 200 means the Range was ignored: the body is the whole blob, so the
 *    bytes before the fetch are skipped, the fetch's bytes are used, and the
 *    transfer is stopped after them (logged: it wastes bandwidth).
 *  - 401/403 fail with HFM_EGATED, other statuses with HFM_EUPSTREAM.
 *  - A body that ends early (dropped connection) fails the fetch; blocks it
 *    completed stay, the rest are released and their waiters get the error.
 * Connection failures before any header are retried (max_attempts).
 * The body is written to the cache in aligned pieces of 256 KiB, not as
 * libcurl hands it over (16 KiB): bytes wait at most 20 ms for the rest of
 * their piece (checked as more arrive) and are always written before the
 * fetch ends, whether it succeeded or failed.
 * A fetch that failed is not started again for 2 s (same blob, offset, URL
 * and Authorization): hfm_blobfetch_start answers its error at once, so
 * readers woken by the failure that come back get it instead of waiting on
 * a new attempt.
 *
 * Threading: hfm_blobfetch_start runs on the reader's thread and never
 * blocks; everything else runs on the upstream thread.  The blobfetch only
 * holds options: free it after the upstream (whose free ends all transfers).
 */
#ifndef HFM_BLOBFETCH_H
#define HFM_BLOBFETCH_H

#include "blobcache.h"
#include "log.h"
#include "upstream.h"

struct hfm_blobfetch;

struct hfm_blobfetch_opts {
	int max_attempts;                /* per fetch, before headers; 0 = 3 */
	long retry_base_ms;              /* 0 = 250 */
	hfm_log_fn log;
	void *log_cls;
};

/* `up` is borrowed. */
int hfm_blobfetch_new(struct hfm_blobfetch **out, struct hfm_upstream *up,
		      const struct hfm_blobfetch_opts *opts);
void hfm_blobfetch_free(struct hfm_blobfetch *bf);

/* The hfm_blobcache_opts.fetch callback (cls = struct hfm_blobfetch *). */
int hfm_blobfetch_start(void *cls, struct hfm_blob_fetch *f, const struct hfm_blob_origin *o);

#endif
