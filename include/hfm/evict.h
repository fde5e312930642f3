/*
 * evict.h - keep the online cache's share of the store under a size limit.
 *
 * What counts and what may go: blobs the cache wrote, i.e. files under
 * <store>/objects that have one link and are marked as the cache's, plus
 * everything under <store>/partial.  The mark is the extended attribute
 * HFM_EVICT_XATTR (the blob cache sets it when it creates a partial blob;
 * the rename into objects/ keeps it) or, on a filesystem without user
 * xattrs (tmpfs without user_xattr, NFSv3, some FUSE mounts), an empty file
 * <store>/meta/cache-owned/<oid> (hfm_evict_mark() falls back to it).
 * Objects without either (imported by copy) and objects with more than one
 * link (imported as a hard link) are never counted nor removed.  A record
 * goes with its blob; one whose blob is neither in objects/ nor in partial/
 * (removed by hand, lost in a crash) is dropped by a pass once it is an hour
 * old.
 *
 * A pass measures the cache's bytes (allocated blocks, so sparse partial
 * blobs count for what they hold), and the imported objects' for /metrics
 * (the cache runs an evictor without a limit too, for that alone: the
 * store's gauges are as old as the last pass); above `limit` it removes files in
 * strategy order until the total is at most low_pct % of the limit:
 *   LRU          least recently used first: max(atime, mtime)
 *   FIFO         oldest first: mtime (when the blob was written)
 *   LARGE_FIRST  largest first
 * In use: a partial blob whose data file is locked (flock, held by the blob
 * cache of whichever process fills it) is skipped, as is partial data with no
 * map younger than an hour (being created), and so is an object someone
 * serves: hfm_store_object_open() leases it (store.h) and the pass removes
 * it with hfm_store_object_remove_unleased().  The cost: a blob read for
 * hours keeps its bytes counted until its readers are done, and the cache
 * may stay over the limit by what is being read.
 *
 * Several processes on one store (nodes of a shared filesystem, see
 * docs/scale-out.md): a pass first takes the lock file meta/evict.lock
 * (an OFD write lock, without waiting); when another process holds it the
 * pass is skipped (stats.skipped) and the next one tries again.
 *
 * Threading: hfm_evict_pass() is synchronous (tests, tools).  An evictor
 * runs passes on its own thread: one at start, then every `interval_s`, and
 * soon after a kick, but never two within `min_gap_ms` (kicks coalesce).
 * hfm_evictor_kick() and hfm_evictor_grew() are cheap (an atomic when a pass
 * is already due) and callable from any thread, also after
 * hfm_evictor_stop() by whoever still holds a reference (they do nothing
 * then).  The evictor is reference counted so that a blob cache may keep
 * telling it about growth until the cache itself is freed: the thread is
 * stopped by hfm_evictor_stop(), the memory freed with the last reference.
 * The store is borrowed.
 */
#ifndef HFM_EVICT_H
#define HFM_EVICT_H

#include <stdint.h>

#include "config.h"
#include "log.h"
#include "store.h"

#define HFM_EVICT_XATTR "user.hfmirror.cache"

struct hfm_evict_opts {
	const struct hfm_store *store;   /* borrowed */
	uint64_t limit;                  /* bytes; 0 = no limit (passes only measure) */
	unsigned low_pct;                /* evict down to this % of limit; 0 = 90 */
	enum hfm_clean_strategy strategy;
	unsigned interval_s;             /* evictor: seconds between passes; 0 = 60 */
	unsigned min_gap_ms;             /* evictor: least time from one pass to the next
					    (debounces kicks); 0 = 1000 */
	hfm_log_fn log;
	void *log_cls;
};

/* What a pass found in the store, after its removals (allocated bytes). */
struct hfm_store_usage {
	uint64_t cache_objects, cache_bytes;         /* objects/ written by the cache */
	uint64_t imported_objects, imported_bytes;   /* objects/ put there otherwise */
	uint64_t partial_blobs, partial_bytes;       /* partial/ (maps included) */
};

struct hfm_evict_stats {
	uint64_t used_before;            /* the cache's bytes when the pass began */
	uint64_t used_after;
	uint64_t removed;                /* files removed (a partial blob and its map = 1) */
	struct hfm_store_usage usage;
	uint64_t in_use;                 /* candidates kept: leased, locked or gone */
	int skipped;                     /* another process held the evict lock: no pass */
};

/*
 * Mark blob `oid`, whose data is behind `fd`, as written by the cache: the
 * xattr, else the record under meta/cache-owned/.  0 when the xattr was
 * set, 1 when the record was written instead, HFM_EIO when neither could be
 * (the blob is then kept forever, as an imported one).
 */
int hfm_evict_mark(const struct hfm_store *s, int fd, const char *oid);
/* Write the record alone (what hfm_evict_mark() falls back to).  0 or HFM_EIO. */
int hfm_evict_record(const struct hfm_store *s, const char *oid);

/*
 * One pass; 0 or HFM_EIO when the store cannot be read.  Without a limit it
 * only measures.  Either way it publishes the store's gauges (metrics.h:
 * bytes and objects by owner, partial blobs), and counts its removals.
 */
int hfm_evict_pass(struct hfm_evict_stats *out, const struct hfm_evict_opts *o);

struct hfm_evictor;
/*
 * Start the thread (its first pass runs at once).  `o` is copied.  Logs
 * once when the store's filesystem takes no user xattrs (records are used).
 * The caller holds the one reference; hfm_evictor_stop() drops it.
 */
int hfm_evictor_start(struct hfm_evictor **out, const struct hfm_evict_opts *o);
/* Ask for a pass soon: at once, or min_gap_ms after the last one began.  NULL is fine. */
void hfm_evictor_kick(struct hfm_evictor *e);
/*
 * The cache's use of the store grew by `bytes` (blocks written under
 * partial/), or with 0 a blob was published into objects/ (where it can go,
 * unlike a partial blob being filled).  Kicks a pass when the growth since
 * the last pass reaches 1/64 of the limit or takes the last measured total
 * over the limit, and after a publication while over the limit; otherwise
 * it only counts.  Shaped as hfm_blobcache_opts.grew (cls = the evictor,
 * NULL is fine).
 */
void hfm_evictor_grew(void *evictor, uint64_t bytes);

struct hfm_evictor_stats {
	uint64_t passes;                 /* finished */
	uint64_t kicks;                  /* requests that made a pass due (coalesced ones not counted) */
	uint64_t used;                   /* the cache's bytes after the last pass */
	uint64_t grown;                  /* bytes reported by hfm_evictor_grew() since the last pass began */
};
void hfm_evictor_stats(struct hfm_evictor_stats *out, struct hfm_evictor *e);

/* Another reference (for a blob cache's hfm_blobcache_opts.grew_cls); returns e. */
void *hfm_evictor_ref(struct hfm_evictor *e);
/* Drop a reference taken with hfm_evictor_ref(); shaped as hfm_blobcache_opts.grew_release. */
void hfm_evictor_unref(void *evictor);
/* Stop and join the thread, then drop the caller's reference.  NULL is fine. */
void hfm_evictor_stop(struct hfm_evictor *e);

#endif
