/*
 * blobcache.h - blobs that arrive from upstream a block at a time.
 *
 * A blob the online cache has not got completely lives under the store as
 *
 *   <store>/partial/<oid>       the content, sparse, at its final offsets
 *   <store>/partial/<oid>.map   header + one bit per block: durable on disk
 *
 * where <oid> is the blob's Hub id (64 hex sha256 for LFS content, 40 hex
 * git blob sha1 otherwise) and its size is known up front.  Data sits at its
 * content offset with no header, so block boundaries are page aligned and a
 * cached range is answered as (fd, offset, length) like any other file.
 * When every block is present the content is verified against the oid,
 * renamed into objects/ (the same inode: open fds stay valid) and the map
 * is deleted.  A blob that fails verification is discarded whole (new empty
 * files) and logged with its oid; every reader that started before then
 * gets HFM_ECORRUPT from its next hfm_blob_ensure() (its response ends
 * short), and the next request fills it afresh.
 * The digest is computed in order as bytes arrive, on the cache's own
 * hashing threads (hash_workers), so neither the writer nor a reader waits
 * for sha256: a write at the digest's cursor hands its buffer over
 * (hfm_blob_fetch_write_buf), and present bytes that wait at the cursor (a
 * block that came out of order, a Range first, bytes found after a
 * restart) are read back from the file.  So verification rarely has
 * anything left to read when the last block lands.  A writer the digest
 * falls behind (more than HFM_BLOB_HASH_QUEUE bytes handed over and not
 * hashed yet) is told to wait (hfm_blob_fetch_hash_wait): memory stays
 * bounded and the transfer goes no faster than it is hashed.  The digest
 * lives in memory only: after a restart it starts at byte 0.
 *
 * Small blobs (one block at most, opts.memory_max) skip all of that: no
 * files under partial/, no map, no lock; fetched into memory, verified,
 * readable only then, and published from memory (hfm_blob_in_memory),
 * several at once: a batch is made durable by one sync, then linked.
 *
 * Publishing renames into objects/<2 hex>; the directories it changed are
 * synced by a worker `sync_ms` later, once for all the blobs published
 * meanwhile (the data itself is fsynced before the rename).
 *
 * Blocks: 1 MiB by default (a power of two, at least a page).  That is the
 * smallest unit fetched (a 1-byte probe costs at most 1 MiB) and the unit of
 * the bitmap (a 50 GB blob needs 6 KiB of map).  It does not drive request
 * or fsync counts: a fetch covers up to `run_blocks` adjacent missing
 * blocks in one upstream request, and durability is batched (below).
 *
 * Durability: a block is "filled" as soon as its last byte is written (the
 * page cache serves it to readers at once) and becomes "durable" later, when
 * a worker has fdatasync'ed the data file and then set the block's bit in
 * the map.  Bits are only ever set, always after the data they describe is
 * on disk, so after a crash (kill -9, power loss) the map never claims a
 * block that is not there; blocks filled but not yet durable are simply
 * fetched again.  A blob whose map is complete on open is verified then.
 * A worker makes a blob's filled blocks durable once `sync_bytes` of them
 * are waiting, `sync_ms` after the first of them was filled (so a stalled
 * or slow transfer keeps its progress too), and when a fetch ends with
 * blocks still missing (failed, cut off, or more to come): a crash loses
 * about min(sync_bytes, sync_ms of transfer) of a blob's progress.  The
 * map's header and name are made durable by its first such flush, not
 * when the blob is created; a blob complete before then is published
 * (fsync, rename) without ever syncing its map.  The writer never waits
 * for a sync.
 *
 * Single flight: each missing block belongs to at most one fetch at a time,
 * so concurrent readers of the same range share one upstream request.  A
 * reader calls hfm_blob_ensure(): it answers how many bytes are readable
 * from an offset right now (counting bytes of a block still arriving, so a
 * reader streams as data comes rather than a block at a time), or arms the
 * reader's waiter and returns HFM_EAGAIN, starting fetches as needed.  A
 * fetch that fails releases its blocks (not present, no longer in flight)
 * and the readers waiting on it get its error, so their responses end early
 * instead of hanging.  Sequential readers get readahead: a new fetch starts
 * for missing blocks within `readahead_blocks` ahead of the reader, up to
 * the end of the range it asked for.
 *
 * Stored is not verified.  Bytes present in partial/ may be wrong until the
 * whole blob verified, so a response that cannot hold back its end (a
 * Range) must not be served bytes another transfer stored before it came:
 * each block remembers when its first byte was written (8 bytes a block in
 * memory; blocks found on disk count as written before any request), and
 * hfm_blob_unverified() tells a reader which parts of its range are such.
 * The background fill (hfm_blob_fill) then fetches the whole blob so that
 * it is verified and published soon, without refetching what readers fetch
 * (it goes when their fetches are quiet, one fetch at a time).
 *
 * Fetching is a callback (opts.fetch) given each reader's origin (a URL and
 * credentials), so this module knows nothing about HTTP; blobfetch.h
 * provides one on top of upstream.h.
 *
 * Threading: everything may be called from any thread.  One struct
 * hfm_blob exists per oid in the process (hfm_blob_open returns the shared
 * one); its state is under its own lock.  Waiters are woken after that lock
 * is released.  `workers` threads make blocks durable and verify complete
 * blobs, `hash_workers` threads compute digests, so neither fdatasync nor
 * hashing runs on a caller's thread.  Only one process may use a partial
 * blob at a time (an flock on its data file; blobfollow.h reads it meanwhile).
 */
#ifndef HFM_BLOBCACHE_H
#define HFM_BLOBCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "store.h"
#include "wait.h"

struct hfm_blobcache;
struct hfm_blob;
struct hfm_blob_fetch;

/*
 * Where a blob comes from, as one reader knows it.  The reader passes it to
 * hfm_blob_ensure(); a fetch that call starts gets it, so each fetch uses
 * the URL and credentials of the reader that needed it (a gated blob is
 * fetched with a token that may read it).  Borrowed: valid during the
 * fetch callback only.
 */
struct hfm_blob_origin {
	const char *url;                 /* a URL whose body is the blob (a /resolve/ URL) */
	const char *authorization;       /* the reader's Authorization, or NULL */
};

struct hfm_blobcache_opts {
	uint32_t block_size;             /* bytes, power of two >= page; 0 = 1 MiB */
	uint32_t run_blocks;             /* most blocks one fetch covers; 0 = 64 */
	uint32_t readahead_blocks;       /* window ahead of a reader; 0 = 32 */
	uint64_t sync_bytes;             /* make filled data durable every ...; 0 = 8 MiB */
	unsigned sync_ms;                /* ... and this long after it was filled at most; 0 = 1000 */
	int workers;                     /* durability/verification threads; 0 = 2 */
	int hash_workers;                /* digest threads (each ~1.7 GB/s of sha256 on
					    a 2020s core); 0 = 1; -1 = none, digests
					    wait for hfm_blobcache_free (tests) */
	unsigned fail_backoff_ms;        /* after a second verification failure in a
					    row, no fill (hfm_blob_fill) this long,
					    doubling with each further one; readers
					    are never refused; 0 = 10000 */
	unsigned fill_idle_ms;           /* a fill fetches once readers' fetches were
					    quiet this long; 0 = 1000 */
	int64_t memory_max;              /* blobs of at most this many bytes (and one
					    block) are small: fetched into memory,
					    verified, then published (below); 0 =
					    1 MiB; -1 = none (every blob under partial/) */
	unsigned publish_batch;          /* small blobs published together (one sync,
					    hfm_store_sync_fds); 0 = 64; 1 = each
					    alone */
	unsigned publish_ms;             /* ... once the first waited this long; 0 = 20 */
	uint64_t memory_held_max;        /* small blobs' bytes in memory at once (being
					    fetched, read or waiting for their batch);
					    past it a small blob is filled under
					    partial/ as a large one; 0 = 256 MiB */
	/*
	 * Tests: called instead of hfm_store_sync_fds() to make a batch of
	 * staged small blobs durable (nothing of them is in objects/ yet); a
	 * failure publishes none of them.  NULL in the server.
	 */
	int (*sync_staged)(void *cls, const int *fds, size_t n);
	void *sync_staged_cls;
	/*
	 * Start fetching [hfm_blob_fetch_offset(f), +hfm_blob_fetch_length(f)).
	 * Called without locks, on the thread of the reader that needed it;
	 * `origin` is what that reader passed to hfm_blob_ensure().  Must not
	 * block on the network.  Return 0 and later call hfm_blob_fetch_write()
	 * with the bytes in order and hfm_blob_fetch_done() exactly once (from
	 * any thread, possibly before returning); or return a negative code
	 * without calling either, and the fetch ends with that code.
	 */
	int (*fetch)(void *cls, struct hfm_blob_fetch *f, const struct hfm_blob_origin *origin);
	void *fetch_cls;
	/*
	 * Told how the cache's use of the store grows: `bytes` of blocks just
	 * filled under partial/, or 0 when a blob was published into objects/
	 * (hfm_evictor_grew fits).  Called without locks from fetching and
	 * worker threads; must be cheap.  NULL = nobody listens.  The cache
	 * owns grew_cls: grew_release(grew_cls), if set, is called once nothing
	 * calls grew any more, by hfm_blobcache_free() (or a failing
	 * hfm_blobcache_new()).
	 */
	void (*grew)(void *cls, uint64_t bytes);
	void (*grew_release)(void *cls);
	void *grew_cls;
	hfm_log_fn log;
	void *log_cls;
};

/* `store` is borrowed and must outlive the cache. */
int hfm_blobcache_new(struct hfm_blobcache **out, const struct hfm_store *store,
		      const struct hfm_blobcache_opts *opts);
/*
 * Finish queued durability and verification work (small blobs waiting
 * for their batch are published) and stop the workers.
 * Every blob must have been released, and every fetch done.
 */
void hfm_blobcache_free(struct hfm_blobcache *bc);
/*
 * No fill starts a fetch any more (fills end at their next step).  Call it
 * before stopping the fetcher (hfm_up_free), so the fetches that end then
 * do not start new ones.
 */
void hfm_blobcache_stop_fills(struct hfm_blobcache *bc);

struct hfm_blobcache_stats {
	uint64_t open_blobs;             /* in memory now */
	uint64_t fetches;                /* started */
	uint64_t fetch_failures;
	uint64_t bytes_written;
	uint64_t syncs;                  /* fdatasync + map updates */
	uint64_t verified;               /* published into objects/ */
	uint64_t corrupt;                /* discarded after verification failed */
	uint64_t hashed_given;           /* digest bytes hashed from writers' buffers */
	uint64_t hashed_read;            /* ... read back from the file to hash them */
	uint64_t dirsyncs;               /* rounds of directory syncs after publishing */
	uint64_t publish_batches;        /* syncs of staged small blobs (group commits) */
};
void hfm_blobcache_stats(struct hfm_blobcache_stats *out, struct hfm_blobcache *bc);

/* ---- blobs -------------------------------------------------------------- */

/*
 * The shared blob `oid` of `size` bytes, created empty under partial/ if it
 * is neither there nor in objects/.  HFM_EINVAL for a bad oid or a size
 * that differs from what is known; HFM_EIO for disk errors or a partial
 * blob locked by another process.  Release with hfm_blob_release().
 */
int hfm_blob_open(struct hfm_blob **out, struct hfm_blobcache *bc, const char *oid,
		  uint64_t size);
void hfm_blob_release(struct hfm_blob *b);

const char *hfm_blob_oid(const struct hfm_blob *b);
uint64_t hfm_blob_size(const struct hfm_blob *b);
/* 1 once verified and published in objects/. */
int hfm_blob_complete(struct hfm_blob *b);
/*
 * Verification failures of this blob so far.  A reader that must not pass
 * on unverified bytes notes it when it starts and hands it to
 * hfm_blob_wait_verified().
 */
uint64_t hfm_blob_discards(struct hfm_blob *b);
/* hfm_mono_ns() of the last verification failure, 0 if none. */
uint64_t hfm_blob_discarded_ns(struct hfm_blob *b);
/*
 * 0 once the blob is verified and published; HFM_ECORRUPT if it failed
 * verification since `discards_seen`; else arms w (woken when the blob's
 * state changes) and returns HFM_EAGAIN.  w must not be NULL.
 */
int hfm_blob_wait_verified(struct hfm_blob *b, uint64_t discards_seen, struct hfm_waiter *w);
/*
 * A new read-only fd for the content (the caller closes it).  It reads the
 * same inode before and after publication, so a response may keep it.
 */
int hfm_blob_fd(struct hfm_blob *b);

/*
 * 1 for a small blob (opts.memory_max): it has no files under partial/.
 * Its one fetch writes into memory, and when the last byte lands the
 * bytes are verified: then they are readable (hfm_blob_ensure() says so,
 * and hfm_blob_read_memory() copies them) and a worker publishes them
 * with the other small blobs verified within opts.publish_ms (each a
 * staged file under tmp/; one sync for the batch, hfm_store_sync_fds;
 * then each linked into objects/ unless the object is there already: no
 * name before its bytes are durable); else they are discarded, the fetch fails with
 * HFM_EUPSTREAM and its readers get that error.  No byte of a small blob
 * is ever readable unverified, whole-file answer or Range.  Another
 * process of a shared store that needs it fetches it too (no lock, no
 * follower): small blobs cost that little upstream.  hfm_blob_fd() of a
 * small blob is the published object's (HFM_EIO before).
 */
int hfm_blob_in_memory(const struct hfm_blob *b);
/* Copy up to n verified bytes of a small blob from off: the count, or an error. */
ssize_t hfm_blob_read_memory(struct hfm_blob *b, void *buf, size_t n, uint64_t off);

/* Bytes readable from `off` right now, without waiting or fetching. */
uint64_t hfm_blob_available(struct hfm_blob *b, uint64_t off);

struct hfm_blob_range {
	uint64_t start, end;             /* [start, end) */
};
/* The filled ranges (merged), at most `max` of them; returns how many exist. */
size_t hfm_blob_ranges(struct hfm_blob *b, struct hfm_blob_range *out, size_t max);

/*
 * Per-reader state for hfm_blob_ensure: which fetch the reader waits for,
 * so that fetch's failure reaches it, and the blob's discards when it
 * started.  Zero-initialise; dispose when done.
 */
struct hfm_blob_reader {
	struct hfm_blob_fetch *waiting;
	uint64_t discards;
	int attached;
};
void hfm_blob_reader_dispose(struct hfm_blob_reader *r);

/*
 * Make bytes from `off` readable; `end` (> off, <= size) is where the reader
 * will stop, bounding fetches and readahead.
 *  0            *avail >= 1 bytes from off are readable now (may exceed end)
 *  HFM_EAGAIN   nothing at off yet; a fetch is in flight and w is armed
 *  error        the fetch this reader waited on failed (its code), starting
 *               one failed (HFM_EOFFLINE, ...), HFM_ECORRUPT once the blob
 *               failed verification after the reader's first call; HFM_EINVAL
 *               when off is not below size
 * With w == NULL the call waits (blocking) instead of returning HFM_EAGAIN.
 */
int hfm_blob_ensure(uint64_t *avail, struct hfm_blob *b, struct hfm_blob_reader *r,
		    uint64_t off, uint64_t end, const struct hfm_blob_origin *origin,
		    struct hfm_waiter *w);

/*
 * The parts of [start, end) that hold bytes stored before `since_ns` (mono
 * ns; 0 = now) that are not verified: in blocks whose first byte was
 * written then (or found on disk), up to what is written now.  Bytes of
 * [start, end) not among them arrive after since_ns.  At most `max`
 * ranges, in order, merged; past `max` the last one grows to cover the
 * rest (gaps included).  Returns how many are in `out`; *unfilled gets the
 * blob's bytes not stored yet (what a fill still fetches).  None once the
 * blob is complete.
 */
size_t hfm_blob_unverified(struct hfm_blob *b, uint64_t since_ns, uint64_t start, uint64_t end,
			   struct hfm_blob_range *out, size_t max, uint64_t *unfilled);

/*
 * Start the background fill of the whole blob from `origin` (copied; the
 * fill keeps the first asker's), unless one runs, so that the blob is
 * verified and published.  It fetches the blocks nobody fetches, one fetch
 * at a time, once no other fetch of the blob has been active for
 * fill_idle_ms; `urgent` (a request waits for it): at once, and a running
 * fill stops waiting for quiet.  It ends when every block is there, or
 * early when one of its fetches fails or verification fails (then b's
 * waiters are woken: see hfm_blob_filling).  0 when it runs or is not
 * needed (complete, verifying); HFM_EUPSTREAM during the backoff after
 * repeated verification failures (fail_backoff_ms), or the error of a
 * fetch that failed at once.
 */
int hfm_blob_fill(struct hfm_blob *b, const struct hfm_blob_origin *origin, int urgent);
/* 1 while a fill runs or the blob is verifying or complete. */
int hfm_blob_filling(struct hfm_blob *b);

/* ---- the fetcher's side ------------------------------------------------- */

struct hfm_blob *hfm_blob_fetch_blob(const struct hfm_blob_fetch *f);
uint64_t hfm_blob_fetch_offset(const struct hfm_blob_fetch *f);
uint64_t hfm_blob_fetch_length(const struct hfm_blob_fetch *f);
/*
 * Store the next n bytes of the fetch's range (in order).  HFM_EINVAL if n
 * runs past the range, HFM_EIO on a write error (the fetcher then ends the
 * fetch with that code).  Each call is one pwrite and wakes the blob's
 * waiting readers, so the fetcher chooses the granularity: few large writes
 * are cheap, and bytes it holds back are not yet readable.
 */
int hfm_blob_fetch_write(struct hfm_blob_fetch *f, const void *data, size_t n);
/*
 * Writes from buffers the cache may keep.  A buffer of hfm_blob_fetch_buf()
 * holds HFM_BLOB_BUF bytes; hfm_blob_fetch_write_buf() stores the first n
 * (as hfm_blob_fetch_write) and, when they are the next bytes of the
 * blob's digest, keeps the buffer to hash it on a hashing thread (then
 * *buf is NULL: take a new one), else leaves it with the caller.  Give
 * buffers back with hfm_blob_fetch_buf_put().  All before
 * hfm_blob_fetch_done().
 */
#define HFM_BLOB_BUF (256u * 1024)
void *hfm_blob_fetch_buf(struct hfm_blob_fetch *f);
void hfm_blob_fetch_buf_put(struct hfm_blob_fetch *f, void *buf);
int hfm_blob_fetch_write_buf(struct hfm_blob_fetch *f, void **buf, size_t n);
/*
 * 0 when the fetch may write on; HFM_EAGAIN when the blob's digest is
 * HFM_BLOB_HASH_QUEUE bytes behind this fetch's writes (its buffers wait to
 * be hashed): w is armed and fires once the digest has caught up halfway
 * (or the fetch's bytes no longer wait for it).  The fetcher stops taking
 * bytes meanwhile (libcurl: pause the transfer).
 */
#define HFM_BLOB_HASH_QUEUE (8u << 20)
int hfm_blob_fetch_hash_wait(struct hfm_blob_fetch *f, struct hfm_waiter *w);
/*
 * End the fetch: rc 0 when all bytes were written (else it counts as
 * HFM_EUPSTREAM), or the failure.  Blocks not completely written go back to
 * missing; readers waiting on this fetch are woken.  Drops the fetcher's
 * reference: f must not be used afterwards.
 */
void hfm_blob_fetch_done(struct hfm_blob_fetch *f, int rc);

/*
 * Reading back what a fetch just wrote, from memory: the buffers a fetch
 * handed over (hfm_blob_fetch_write_buf) stay until the digest has hashed
 * them, a few MiB behind a cold download, and a reader that keeps up with
 * the download finds its bytes there.  Copies up to n bytes at off from
 * them and returns the count: the bytes the file holds there, without the
 * pread; 0 when off's bytes are not in such a buffer (read the file), and
 * fewer than n when the buffers end first.  Only for bytes
 * hfm_blob_ensure() said are readable.  Any thread; never blocks on I/O.
 */
size_t hfm_blob_read_recent(struct hfm_blob *b, void *buf, size_t n, uint64_t off);

#endif
