/* blobcache.c - sparse partial blobs, block bitmaps, single-flight fetches. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/blobcache.h"
#include "hfm/blobfollow.h"
#include "hfm/evict.h"
#include "hfm/hash.h"
#include "hfm/metrics.h"

#define NBUCKETS 1024
#define HASH_CHUNK (1u << 20)            /* catch-up reads */
#define HASH_TASK_BYTES (16ull << 20)    /* per turn of a blob on a hashing thread */
/* Handed-over buffers waiting for the digests of all blobs: past this, a
 * writer with any waiting waits too (HFM_BLOB_HASH_QUEUE is per blob). */
#define HASH_QUEUE_TOTAL (64ull << 20)
#define POOL_MAX 16                      /* idle HFM_BLOB_BUF buffers kept */
#define SMALL_MAX (1ull << 20)           /* opts.memory_max 0 */

/*
 * The background fill (hfm_blob_fill) fetches what readers do not: it
 * starts a fetch only when no other fetch of the blob is active and none
 * ended within fill_idle_ms (1 s), so parallel Range readers each fetch their own
 * part and a sequential reader's next request does not find the fill ahead
 * of it; one fetch at a time, of at most FILL_RUN_BYTES, so a reader that
 * comes meanwhile finds most of the blob still free for its own fetches.
 * After two verification failures in a row a blob is not filled again for
 * fail_backoff_ms, doubling with each further one up to FILL_BACKOFF_MAX:
 * a Range request on a blob whose upstream keeps sending wrong bytes must
 * not cost a whole blob each time.
 */
#define FILL_RUN_BYTES (64ull << 20)
#define FILL_BACKOFF_MAX 64              /* times fail_backoff_ms */

/* born[] of a block that holds no bytes */
#define BORN_NONE UINT64_MAX

/*
 * The map file: a 128-byte header, then one bit per block (bit i%8 of byte
 * i/8).  Integers are little-endian.  The oid in the header makes a map
 * renamed by hand, or left from another blob, fail validation.
 */
#define MAP_MAGIC "HFMBMAP1"
#define MAP_HDR 128

enum blob_state {
	B_PARTIAL,                       /* blocks missing */
	B_VERIFYING,                     /* all filled: the digest catches up, then finish */
	B_COMPLETE,                      /* in objects/ */
};

enum task_kind {
	TASK_FLUSH,                      /* sync_bytes are waiting, or a fetch ended */
	TASK_TIMER,                      /* sync_ms after a block was filled */
	TASK_FINISH,
	TASK_HASH,                       /* the digest has work (hashing threads) */
	TASK_FILL,                       /* the fill may go on (a timer) */
	TASK_KEEP,                       /* a timer that only holds its reference */
	TASK_DIRSYNC,                    /* sync the directories publishing changed (no blob) */
	TASK_COMMIT,                     /* publish the staged small blobs (no blob) */
};

struct blob_task {
	struct blob_task *next;
	enum task_kind kind;
	uint64_t due;                    /* timers (TASK_TIMER, TASK_FILL): mono ns */
	struct hfm_blob *b;              /* reference held; NULL for TASK_DIRSYNC, TASK_COMMIT */
	struct staged *batch;            /* TASK_COMMIT: a full batch (NULL: the one open then) */
};

/* A small blob verified, waiting for its batch (staged, synced, linked together). */
struct staged {
	struct staged *next;
	struct hfm_blob *b;              /* reference held */
	int fd;                          /* its staged file, once written */
	char name[96];                   /* "" unnamed (O_TMPFILE) */
};

struct hfm_blobcache {
	const struct hfm_store *store;
	int partial_fd;
	uint32_t bs_shift;
	uint32_t run_blocks, readahead_blocks;
	uint64_t sync_bytes;
	uint64_t sync_ns;
	uint64_t fail_backoff_ns;
	uint64_t fill_idle_ns;
	struct hfm_blobcache_opts o;     /* as given: callbacks and log */
	atomic_int mark_failed;          /* logged once */
	atomic_int fills_stopped;        /* hfm_blobcache_stop_fills() */

	pthread_mutex_t lock;            /* registry, refs, tasks */
	pthread_cond_t task_cv;           /* on CLOCK_MONOTONIC */
	struct hfm_blob *buckets[NBUCKETS];
	struct blob_task *task_head, *task_tail;
	struct blob_task *timer_head;    /* by due time */
	int stopping;
	int nworkers;
	pthread_t *workers;
	/* TASK_HASH goes to its own threads: a digest never waits behind an fdatasync */
	pthread_cond_t hash_cv;
	struct blob_task *hash_head, *hash_tail;
	int hash_stopping;
	int nhashers;
	pthread_t *hashers;
	atomic_uint_fast64_t hq_total;   /* bytes handed over, not hashed yet (all blobs) */
	/*
	 * Directories that publishing changed and that are not synced yet
	 * (under lock): objects/<2 hex> by its first byte, and partial/.  One
	 * TASK_DIRSYNC syncs them sync_ms after the first, once for all the
	 * blobs published meanwhile (a snapshot of many small files).
	 */
	uint8_t dirty_objdirs[256 / 8];
	int dirty_partial;
	int dirsync_queued;
	uint64_t small_lim;              /* blobs smaller live in memory until published */
	/* their bytes now, and the bound: a batch whose sync waits behind other
	 * writers (syncfs) must not let verified blobs pile up in memory */
	_Atomic uint64_t small_held;
	uint64_t small_held_max;
	/*
	 * Group commit of small blobs (under lock): each joins the open batch
	 * as it verifies (no I/O, on the upstream thread), and a worker
	 * publishes a batch at once: each written to an unnamed file under
	 * tmp/, all made durable together (hfm_store_sync_fds: two device
	 * flushes, not one per blob), then each linked into objects/.  A batch
	 * closes at batch_max blobs or batch_bytes (a TASK_COMMIT with it), or
	 * batch_ns after its first blob (a TASK_COMMIT timer takes it): one
	 * worker wake-up per batch.  Its blobs are read from memory meanwhile,
	 * as before they are published.
	 */
	struct staged *staged, **staged_tail;
	unsigned nstaged;
	uint64_t staged_bytes;
	int commit_queued;
	unsigned batch_max;
	uint64_t batch_bytes, batch_ns;

	pthread_mutex_t pool_lock;       /* a leaf: taken under any other lock */
	void *pool[POOL_MAX];
	int npool;

	atomic_uint_fast64_t n_open, n_fetches, n_fetch_failures, n_bytes, n_syncs, n_verified,
		n_corrupt, n_hashed_given, n_hashed_read, n_dirsyncs, n_batches;
};

struct hfm_blob_fetch {
	atomic_int refs;
	struct hfm_blob *b;              /* reference held until done */
	uint64_t first, end;             /* blocks [first, end) */
	uint64_t off, len;               /* bytes */
	/* under b->lock */
	uint64_t pos;                    /* bytes written from off */
	int active;                      /* on b->fetches: its unfilled blocks are in flight */
	int fill;                        /* the background fill's */
	int done;
	int result;
	struct hfm_blob_fetch *next;
};

struct hfm_blob {
	struct hfm_blobcache *bc;
	int refs;                        /* under bc->lock */
	struct hfm_blob *hnext;
	char oid[HFM_SHA256_HEX + 1];
	uint64_t size;
	uint32_t shift;                  /* block size = 1 << shift (from the map) */
	uint64_t nblocks;
	size_t mapbytes;

	pthread_mutex_t io_lock;         /* serialises flush/finish tasks */
	pthread_mutex_t lock;
	int fd;                          /* read-write data, -1 once complete */
	int ro_fd;                       /* read-only, same inode, kept after publish */
	int map_fd;                      /* -1 once complete */
	uint8_t *filled;                 /* readable (page cache at least) */
	uint8_t *durable;                /* bit set in the map on disk */
	/*
	 * Per block: when its first byte was written (mono ns), 0 for blocks
	 * found on disk, BORN_NONE while it holds none.  A Range response
	 * treats bytes born before its request came as stored, unverified
	 * bytes (hfm_blob_unverified).
	 */
	uint64_t *born;
	uint64_t nfilled;
	uint64_t undurable;              /* bytes filled since the last sync */
	int flush_queued;                /* a TASK_FLUSH is queued */
	int timer_queued;                /* a TASK_TIMER is queued */
	int map_named;                   /* the map's header and name are durable */
	/*
	 * The digest the oid names, over [0, hash_pos) in order, so that
	 * verification is done when the last block lands.  Bytes up to
	 * hash_end are claimed: hashed, or in buffers handed over by the
	 * writer whose bytes started at hash_end (hq_*: a cold download is
	 * one sequential fetch, hashed from its own buffers), or being read
	 * back from the file by a hashing thread (present bytes that waited
	 * at the cursor: out of order, Range first, after a restart).  One
	 * TASK_HASH at a time works on a blob (hash_task); it sets hash_busy
	 * (under lock) to use `hash` without the lock until it clears it;
	 * hash_stale asks it to start the digest over then.  NULL `hash`:
	 * verify by reading the whole file.
	 */
	struct hfm_hashctx *hash;
	uint64_t hash_pos, hash_end;
	struct hash_chunk *hq_head, *hq_tail;
	uint64_t hq_bytes;
	uint64_t hash_read;              /* bytes read back to hash them (logged) */
	int hash_busy;
	int hash_stale;
	int hash_task;                   /* a TASK_HASH is queued or running */
	struct hfm_waitq hash_waiters;   /* writers waiting for the digest */
	int finish_queued;               /* a TASK_FINISH is queued */
	enum blob_state state;
	uint64_t discards;               /* verification failures so far */
	uint64_t discarded_ns;           /* mono ns of the last one */
	/* the background fill (hfm_blob_fill; FILL_* above) */
	int fill_on;
	int fill_urgent;                 /* a request waits for it: no idle wait */
	char *fill_url, *fill_auth;      /* its origin: copies of the first asker's */
	int fill_fetches;                /* its fetches in flight (0 or 1) */
	uint64_t fill_after;             /* mono ns: no fill fetch starts before */
	int fill_timer;                  /* a TASK_FILL is queued */
	int pumping, pump_again;         /* fill_pump() runs; run it once more */
	int fill_rc;                     /* why the last fill ended early */
	unsigned fill_fails;             /* verification failures in a row */
	uint64_t fill_backoff_until;     /* mono ns */
	struct hfm_blob_fetch *fetches;  /* active ones */
	struct hfm_waitq waiters;
	/*
	 * A small blob (one block and below bc->small_lim) has no files under
	 * partial/: its one fetch writes here, the bytes are verified when the
	 * last one lands and only then readable (state B_VERIFYING: verified,
	 * in memory; a reader never sees an unverified byte, so a whole-file
	 * answer need not hold back its last one), and a worker publishes
	 * them (a staged file, one fsync, a rename).  Kept until the struct
	 * goes, so its readers read memory before and after publication.
	 */
	char *mem;
	int small;
};

/*
 * A buffer handed over for the digest (hfm_blob_fetch_write_buf).  Until
 * it is hashed, readers of the blob copy its bytes from it
 * (hfm_blob_read_recent) rather than read the file back; `readers` of
 * them (under b->lock) copy without the lock, so a chunk the digest is
 * done with while one does is left `orphan` to the last of them to free.
 */
struct hash_chunk {
	struct hash_chunk *next;
	void *buf;                       /* HFM_BLOB_BUF bytes, from the pool */
	size_t n;
	uint64_t off;                    /* the blob's offset of buf[0] */
	int readers;
	int orphan;
};

static int bit(const uint8_t *m, uint64_t i)
{
	return (m[i >> 3] >> (i & 7)) & 1;
}

static void set_bit(uint8_t *m, uint64_t i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static uint64_t block_start(const struct hfm_blob *b, uint64_t i)
{
	return i << b->shift;
}

static uint64_t block_end(const struct hfm_blob *b, uint64_t i)
{
	uint64_t e = (i + 1) << b->shift;

	return e < b->size ? e : b->size;
}

/* ---- buffers handed over for hashing ----------------------------------- */

static void *pool_get(struct hfm_blobcache *bc)
{
	void *p = NULL;

	pthread_mutex_lock(&bc->pool_lock);
	if (bc->npool)
		p = bc->pool[--bc->npool];
	pthread_mutex_unlock(&bc->pool_lock);
	/* kept, not freed: a new buffer would cost 64 page faults */
	return p ? p : hfm_malloc(HFM_BLOB_BUF);
}

static void pool_put(struct hfm_blobcache *bc, void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&bc->pool_lock);
	if (bc->npool < POOL_MAX) {
		bc->pool[bc->npool++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&bc->pool_lock);
	free(p);
}

/* Under b->lock: a chunk off the queue goes, unless readers copy from it. */
static void chunk_release(struct hfm_blob *b, struct hash_chunk *c)
{
	if (c->readers) {
		c->orphan = 1;
		return;
	}
	pool_put(b->bc, c->buf);
	free(c);
}

/* Under b->lock: the handed-over buffers go back unhashed; hash_end = hash_pos. */
static void hq_drop(struct hfm_blob *b)
{
	struct hash_chunk *c;

	while ((c = b->hq_head)) {
		b->hq_head = c->next;
		atomic_fetch_sub(&b->bc->hq_total, c->n);
		chunk_release(b, c);
	}
	b->hq_tail = NULL;
	b->hq_bytes = 0;
	b->hash_end = b->hash_pos;
}

/*
 * Under b->lock: the writers waiting for the digest (to be woken after the
 * lock), once the handed-over bytes are down to half the limit.
 */
static struct hfm_waitq_node *hash_room(struct hfm_blob *b)
{
	if (b->hq_bytes > HFM_BLOB_HASH_QUEUE / 2)
		return NULL;
	return hfm_waitq_take(&b->hash_waiters);
}

/* Under b->lock, not busy: the digest starts over at byte 0. */
static void hash_reset(struct hfm_blob *b)
{
	int is256 = strlen(b->oid) == HFM_SHA256_HEX;

	if (b->hash)
		hfm_hashctx_final(b->hash, NULL, NULL);
	b->hash = hfm_hashctx_new(b->size, !is256, is256);
	b->hash_pos = 0;
	hq_drop(b);
	b->hash_stale = 0;
}

/* Under b->lock, not busy: no digest any more; verify() reads the whole file. */
static void hash_drop(struct hfm_blob *b)
{
	if (b->hash)
		hfm_hashctx_final(b->hash, NULL, NULL);
	b->hash = NULL;
	hq_drop(b);
	b->hash_stale = 0;
}

/* Under b->lock: end a hash_busy section (advanced by n bytes). */
static void hash_unbusy(struct hfm_blob *b, uint64_t n)
{
	b->hash_pos += n;
	b->hash_busy = 0;
	if (b->hash_stale)
		hash_reset(b);
}

/* Under b->lock: the digest covers the blob, or there is none (finish may go). */
static int hash_done(const struct hfm_blob *b)
{
	return !b->hash_task && (!b->hash || b->hash_pos == b->size);
}

static uint64_t present_end(struct hfm_blob *b, uint64_t off, uint64_t max);

/*
 * Under b->lock: 1 when present bytes wait at the digest's cursor and no
 * TASK_HASH is queued or running (the caller then queues one).
 */
static int hash_wants_task(struct hfm_blob *b)
{
	if (!b->hash || b->hash_task || b->state == B_COMPLETE || b->hash_end >= b->size ||
	    present_end(b, b->hash_end, 1) == b->hash_end)
		return 0;
	b->hash_task = 1;
	return 1;
}

/* Under b->lock: 1 when a TASK_FINISH is to be queued now (all there, digest done). */
static int finish_wanted(struct hfm_blob *b)
{
	if (b->state != B_VERIFYING || b->finish_queued || !hash_done(b))
		return 0;
	b->finish_queued = 1;
	return 1;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int write_all(int fd, const void *data, size_t n, uint64_t off)
{
	const char *p = data;

	while (n) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static void sync_dir(int dirfd)
{
	fsync(dirfd);
}

static struct blob_task *task_push_at_locked(struct hfm_blobcache *bc, struct hfm_blob *b,
					     enum task_kind kind, uint64_t due);

static unsigned hexval(char c)
{
	return (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
}

/*
 * Publishing changed objects/<oid's 2 hex> (oid may be NULL) and, with
 * `partial`, partial/: a TASK_DIRSYNC syncs them sync_ms from the first
 * change, with every other directory changed meanwhile.  The objects are
 * whole on disk already (fsync before rename); until then a power loss may
 * only take a new name away, and the blob is fetched again.
 */
static void dir_changed(struct hfm_blobcache *bc, const char *oid, int partial)
{
	pthread_mutex_lock(&bc->lock);
	if (oid)
		set_bit(bc->dirty_objdirs, hexval(oid[0]) << 4 | hexval(oid[1]));
	bc->dirty_partial |= partial;
	if (!bc->dirsync_queued) {
		bc->dirsync_queued = 1;
		task_push_at_locked(bc, NULL, TASK_DIRSYNC, hfm_mono_ns() + bc->sync_ns);
	}
	pthread_mutex_unlock(&bc->lock);
}

/* TASK_DIRSYNC: sync what dir_changed() noted. */
static void dirsync(struct hfm_blobcache *bc)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t dirs[sizeof(bc->dirty_objdirs)];
	int partial, fds[256 + 1];
	size_t n = 0;

	pthread_mutex_lock(&bc->lock);
	memcpy(dirs, bc->dirty_objdirs, sizeof(dirs));
	memset(bc->dirty_objdirs, 0, sizeof(dirs));
	partial = bc->dirty_partial;
	bc->dirty_partial = 0;
	bc->dirsync_queued = 0;
	pthread_mutex_unlock(&bc->lock);
	/* a snapshot changes many: synced together (hfm_store_sync_fds) */
	for (unsigned i = 0; i < 256; i++)
		if (bit(dirs, i)) {
			char d[3] = { hex[i >> 4], hex[i & 15], '\0' };
			if ((fds[n] = hfm_store_object_dir_open(bc->store, d)) >= 0)
				n++;
		}
	if (partial)
		fds[n++] = bc->partial_fd;
	if (n && hfm_store_sync_fds(bc->store, fds, n))
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR, "blobcache: directory sync: %s",
			hfm_error_last());
	for (size_t i = 0; i < n; i++)
		if (fds[i] != bc->partial_fd)
			close(fds[i]);
	atomic_fetch_add(&bc->n_dirsyncs, 1);
}

/* ---- tasks --------------------------------------------------------------- */

static void task_append(struct blob_task **head, struct blob_task **tail, struct blob_task *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

/*
 * Call with bc->lock held; takes a blob reference for the task.  `due`
 * (mono ns) makes it a timer: it runs then, not before.
 */
static struct blob_task *task_push_at_locked(struct hfm_blobcache *bc, struct hfm_blob *b,
					     enum task_kind kind, uint64_t due)
{
	struct blob_task *j = hfm_malloc(sizeof(*j)), **pp;

	j->kind = kind;
	j->b = b;
	j->due = due;
	j->batch = NULL;
	if (b)
		b->refs++;
	if (kind == TASK_HASH) {
		task_append(&bc->hash_head, &bc->hash_tail, j);
		pthread_cond_signal(&bc->hash_cv);
		return j;
	}
	if (due) {
		/* few timers wait at once (one per blob and kind): a list will do */
		for (pp = &bc->timer_head; *pp && (*pp)->due <= due; pp = &(*pp)->next)
			;
		j->next = *pp;
		*pp = j;
	} else {
		task_append(&bc->task_head, &bc->task_tail, j);
	}
	/* a worker waiting for nothing, or for a later timer, looks again */
	pthread_cond_signal(&bc->task_cv);
	return j;
}

static void task_push_locked(struct hfm_blobcache *bc, struct hfm_blob *b, enum task_kind kind)
{
	task_push_at_locked(bc, b, kind, kind == TASK_TIMER ? hfm_mono_ns() + bc->sync_ns : 0);
}

static void task_push_at(struct hfm_blobcache *bc, struct hfm_blob *b, enum task_kind kind,
			 uint64_t due)
{
	pthread_mutex_lock(&bc->lock);
	task_push_at_locked(bc, b, kind, due);
	pthread_mutex_unlock(&bc->lock);
}

static void task_push(struct hfm_blobcache *bc, struct hfm_blob *b, enum task_kind kind)
{
	pthread_mutex_lock(&bc->lock);
	task_push_locked(bc, b, kind);
	pthread_mutex_unlock(&bc->lock);
}

/* ---- files ---------------------------------------------------------------- */

static void map_name(char *out, const char *oid, const char *suffix)
{
	snprintf(out, 96, "%s%s", oid, suffix);
}

/*
 * Lock the data file so that no second process (a node of a shared store)
 * fills, recreates or truncates the same partial blob.  The data file, not
 * the map: it exists first, so whoever holds its lock alone decides that a
 * partial blob without a usable map is stale, and a process that finds it
 * locked follows the fill instead (blobfollow.h).  The evictor takes the
 * same lock before it removes a partial blob.
 */
#define MOVED 2  /* lock_data(): the name no longer names the file locked */

static int lock_data(struct hfm_blob *b)
{
	struct stat held, named;

	if (hfm_follow_lock_fill(b->fd))
		return hfm_error_set(HFM_EIO, "partial blob %s is in use by another process",
				     b->oid);
	/*
	 * Opened by name, locked after: meanwhile its filler may have published
	 * it (renamed into objects/, under this lock) and let go.  Truncating
	 * or filling that file would write into a published object.
	 */
	if (fstat(b->fd, &held) || fstatat(b->bc->partial_fd, b->oid, &named, AT_SYMLINK_NOFOLLOW) ||
	    held.st_ino != named.st_ino || held.st_dev != named.st_dev)
		return MOVED;
	return 0;
}

static void close_files(struct hfm_blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	if (b->ro_fd >= 0)
		close(b->ro_fd);
	if (b->map_fd >= 0)
		close(b->map_fd);
	b->fd = b->ro_fd = b->map_fd = -1;
}

/* The file fd will be blob b's: the evictor may remove it (evict.h). */
static void mark_ours(struct hfm_blob *b, int fd)
{
	struct hfm_blobcache *bc = b->bc;

	if (hfm_evict_mark(bc->store, fd, b->oid) < 0 && !atomic_exchange(&bc->mark_failed, 1))
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_WARN, "blobcache: %s: %s; blobs it "
			"cannot mark as the cache's are never evicted", b->oid, hfm_error_last());
}

static void size_bitmaps(struct hfm_blob *b, uint32_t shift)
{
	b->shift = shift;
	b->nblocks = (b->size + (1ull << shift) - 1) >> shift;
	b->mapbytes = (size_t)((b->nblocks + 7) / 8);
	free(b->filled);
	free(b->durable);
	free(b->born);
	b->filled = hfm_calloc(b->mapbytes ? b->mapbytes : 1, 1);
	b->durable = hfm_calloc(b->mapbytes ? b->mapbytes : 1, 1);
	b->born = hfm_malloc((b->nblocks ? b->nblocks : 1) * sizeof(*b->born));
	for (uint64_t i = 0; i < b->nblocks; i++)
		b->born[i] = BORN_NONE;
	b->nfilled = 0;
	b->undurable = 0;
}

/*
 * Start the blob afresh: remove the map first (a crash then leaves data
 * without a map, which reads as empty), create the sparse data file, then
 * publish a zeroed map by rename.
 */
static int create_files(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	char mapn[96], tmpn[96];
	uint8_t hdr[MAP_HDR];
	int pfd = bc->partial_fd, rc;

	close_files(b);
	size_bitmaps(b, bc->bs_shift);
	hash_reset(b);
	map_name(mapn, b->oid, ".map");
	map_name(tmpn, b->oid, ".map.tmp");
	/* truncated only under its lock: another process may be filling it */
	for (int tries = 0;; tries++) {
		b->fd = openat(pfd, b->oid, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (b->fd < 0) {
			rc = hfm_error_set(HFM_EIO, "partial/%s: %s", b->oid, strerror(errno));
			goto fail;
		}
		if ((rc = lock_data(b)) == 0)
			break;
		close_files(b);
		if (rc != MOVED)
			return rc;
		if (tries == 2)
			return hfm_error_set(HFM_EIO, "partial/%s keeps being replaced", b->oid);
	}
	unlinkat(pfd, mapn, 0);
	if (ftruncate(b->fd, 0) < 0 || ftruncate(b->fd, (off_t)b->size) < 0) {
		rc = hfm_error_set(HFM_EIO, "partial/%s: %s", b->oid, strerror(errno));
		goto fail;
	}
	mark_ours(b, b->fd);
	b->ro_fd = openat(pfd, b->oid, O_RDONLY | O_CLOEXEC);
	b->map_fd = openat(pfd, tmpn, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (b->ro_fd < 0 || b->map_fd < 0) {
		rc = hfm_error_set(HFM_EIO, "partial/%s: %s", tmpn, strerror(errno));
		goto fail;
	}
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, MAP_MAGIC, 8);
	put_le(hdr + 8, b->shift, 4);
	put_le(hdr + 16, b->size, 8);
	memcpy(hdr + 24, b->oid, strlen(b->oid));
	/*
	 * Not made durable here (on the request's thread, for every blob):
	 * the first flush that marks blocks durable does it, and a blob
	 * complete before any flush is published without one.  A crash before
	 * then leaves data without a valid map, which reads as empty.
	 */
	if (write_all(b->map_fd, hdr, sizeof(hdr), 0) ||
	    (b->mapbytes && write_all(b->map_fd, b->durable, b->mapbytes, MAP_HDR)) ||
	    renameat(pfd, tmpn, pfd, mapn) < 0) {
		rc = hfm_error_set(HFM_EIO, "partial/%s: %s", mapn, strerror(errno));
		goto fail;
	}
	b->map_named = 0;
	return 0;
fail:
	close_files(b);
	unlinkat(pfd, tmpn, 0);
	return rc;
}

/*
 * Reopen a partial blob left by an earlier run (or another process).  1 when
 * the files are consistent and loaded, 0 when they must be created afresh,
 * MOVED when the data was renamed away meanwhile (look for the object
 * again), or an error.
 */
static int load_files(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	char mapn[96];
	uint8_t hdr[MAP_HDR];
	struct stat st;
	uint64_t shift, i;
	ssize_t n;
	int rc;

	map_name(mapn, b->oid, ".map");
	b->fd = openat(bc->partial_fd, b->oid, O_RDWR | O_CLOEXEC);
	if (b->fd < 0)
		return errno == ENOENT ? 0 : hfm_error_set(HFM_EIO, "partial/%s: %s", b->oid,
							   strerror(errno));
	if ((rc = lock_data(b))) {
		close_files(b);
		return rc;              /* in use, or MOVED: published meanwhile? */
	}
	b->map_fd = openat(bc->partial_fd, mapn, O_RDWR | O_CLOEXEC);
	if (b->map_fd < 0 || fstat(b->fd, &st) < 0 || (uint64_t)st.st_size != b->size)
		goto stale;
	n = pread(b->map_fd, hdr, sizeof(hdr), 0);
	shift = n == (ssize_t)sizeof(hdr) ? get_le(hdr + 8, 4) : 0;
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, MAP_MAGIC, 8) || shift < 12 || shift > 30 ||
	    get_le(hdr + 16, 8) != b->size || strncmp((char *)hdr + 24, b->oid, HFM_SHA256_HEX + 1))
		goto stale;
	/* the block size is the map's: a changed configuration applies to new blobs */
	size_bitmaps(b, (uint32_t)shift);
	if (b->mapbytes &&
	    pread(b->map_fd, b->durable, b->mapbytes, MAP_HDR) != (ssize_t)b->mapbytes)
		goto stale;
	for (i = 0; i < b->nblocks; i++)
		if (bit(b->durable, i)) {
			b->nfilled++;
			b->born[i] = 0;      /* stored before anyone asked this process */
		}
	/* bits past the last block mean the map is not ours */
	for (i = b->nblocks; i < (uint64_t)b->mapbytes * 8; i++)
		if (bit(b->durable, i))
			goto stale;
	memcpy(b->filled, b->durable, b->mapbytes);
	hash_reset(b);                   /* not kept across runs: caught up by reading */
	b->ro_fd = openat(bc->partial_fd, b->oid, O_RDONLY | O_CLOEXEC);
	if (b->ro_fd < 0) {
		close_files(b);
		return hfm_error_set(HFM_EIO, "partial/%s: %s", b->oid, strerror(errno));
	}
	return 1;
stale:
	hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_INFO, "blobcache: partial %s has no usable map, "
		"starting it again", b->oid);
	close_files(b);
	return 0;
}

/* ---- the registry --------------------------------------------------------- */

static size_t bucket_of(const char *oid)
{
	size_t h = 0;

	/* the oid is a hash already: its first hex digits are uniform */
	for (int i = 0; i < 8; i++)
		h = h * 16 + (size_t)(oid[i] <= '9' ? oid[i] - '0' : oid[i] - 'a' + 10);
	return h % NBUCKETS;
}

static struct hfm_blob *blob_alloc(struct hfm_blobcache *bc, const char *oid, uint64_t size)
{
	struct hfm_blob *b = hfm_calloc(1, sizeof(*b));

	b->bc = bc;
	b->refs = 1;
	snprintf(b->oid, sizeof(b->oid), "%s", oid);
	b->size = size;
	b->fd = b->ro_fd = b->map_fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->io_lock, NULL);
	return b;
}

/* 1 when `size` more bytes of small blobs may be held in memory (then counted). */
static int small_hold(struct hfm_blobcache *bc, uint64_t size)
{
	uint64_t n = (size ? size : 1);

	if (atomic_fetch_add(&bc->small_held, n) + n <= bc->small_held_max)
		return 1;
	atomic_fetch_sub(&bc->small_held, n);
	return 0;
}

static void blob_destroy(struct hfm_blob *b)
{
	close_files(b);
	if (b->small)
		atomic_fetch_sub(&b->bc->small_held, b->size ? b->size : 1);
	free(b->mem);
	hash_drop(b);
	free(b->filled);
	free(b->durable);
	free(b->born);
	free(b->fill_url);
	free(b->fill_auth);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->io_lock);
	free(b);
}

static void flush(struct hfm_blob *b);

static int blob_load_once(struct hfm_blob *b);

/*
 * A small blob's bytes against its oid (all of them are in b->mem; no
 * fetch writes now).  0, or HFM_EUPSTREAM with what they hash to: the
 * upstream sent them (blobfetch remembers such a failure for a moment).
 */
static int small_verify(struct hfm_blob *b)
{
	char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
	int is256 = strlen(b->oid) == HFM_SHA256_HEX;
	struct hfm_hashctx *h = hfm_hashctx_new(b->size, !is256, is256);

	hfm_hashctx_update(h, b->mem, (size_t)b->size);
	hfm_hashctx_final(h, sha1, sha256);
	if (strcmp(is256 ? sha256 : sha1, b->oid))
		return hfm_error_set(HFM_EUPSTREAM, "upstream sent content that hashes to %s, "
				     "not %s", is256 ? sha256 : sha1, b->oid);
	return 0;
}

/* Called with bc->lock; fills a new blob from disk.  May queue a finish task. */
static int blob_load(struct hfm_blob *b)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = blob_load_once(b);
		if (rc != MOVED)
			return rc;
		if (tries == 2)
			return hfm_error_set(HFM_EIO, "partial/%s keeps being replaced", b->oid);
	}
}

static int blob_load_once(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	uint64_t osize;
	int fd, rc;

	rc = hfm_store_object_open(&fd, &osize, bc->store, b->oid);
	if (rc == 0) {
		if (osize != b->size) {
			close(fd);
			return hfm_error_set(HFM_EINVAL, "object %s has %llu bytes, not %llu", b->oid,
					     (unsigned long long)osize, (unsigned long long)b->size);
		}
		b->ro_fd = fd;
		b->state = B_COMPLETE;
		size_bitmaps(b, bc->bs_shift);
		memset(b->filled, 0xff, b->mapbytes);
		b->nfilled = b->nblocks;
		return 0;
	}
	if (rc != HFM_ENOENT)
		return rc;
	if (b->size < bc->small_lim && small_hold(bc, b->size)) {
		/* no files until it is verified (struct hfm_blob, `mem`) */
		b->small = 1;
		size_bitmaps(b, bc->bs_shift);
		b->mem = hfm_malloc(b->size ? b->size : 1);
		if (b->size == 0 && small_verify(b) == 0) {
			b->state = B_VERIFYING;      /* nothing to fetch: publish it */
			if (finish_wanted(b))
				task_push_locked(bc, b, TASK_FINISH);
		}
		return 0;
	}
	rc = load_files(b);
	if (rc < 0 || rc == MOVED)
		return rc;
	if (rc == 0 && (rc = create_files(b)))
		return rc;
	if (b->nfilled == b->nblocks) {
		/* complete but not verified: a crash came between the last bit and
		 * publish.  Not shared yet, so no b->lock: the digest reads it all. */
		b->state = B_VERIFYING;
		if (hash_wants_task(b))
			task_push_locked(bc, b, TASK_HASH);
		else if (finish_wanted(b))
			task_push_locked(bc, b, TASK_FINISH);
	}
	return 0;
}

int hfm_blob_open(struct hfm_blob **out, struct hfm_blobcache *bc, const char *oid,
		  uint64_t size)
{
	struct hfm_blob *b;
	size_t h;
	int rc;

	*out = NULL;
	if (!hfm_store_oid_valid(oid))
		return hfm_error_set(HFM_EINVAL, "invalid blob id %s", oid);
	h = bucket_of(oid);
	pthread_mutex_lock(&bc->lock);
	for (b = bc->buckets[h]; b; b = b->hnext)
		if (strcmp(b->oid, oid) == 0)
			break;
	if (b) {
		if (b->size != size) {
			pthread_mutex_unlock(&bc->lock);
			return hfm_error_set(HFM_EINVAL, "blob %s has %llu bytes, not %llu", oid,
					     (unsigned long long)b->size,
					     (unsigned long long)size);
		}
		b->refs++;
		pthread_mutex_unlock(&bc->lock);
		*out = b;
		return 0;
	}
	/* Disk work under the registry lock: it is a few syscalls, once per
	 * blob, and it keeps two openers from creating the same files. */
	b = blob_alloc(bc, oid, size);
	rc = blob_load(b);
	if (rc) {
		pthread_mutex_unlock(&bc->lock);
		blob_destroy(b);
		return rc;
	}
	b->hnext = bc->buckets[h];
	bc->buckets[h] = b;
	atomic_fetch_add(&bc->n_open, 1);
	pthread_mutex_unlock(&bc->lock);
	*out = b;
	return 0;
}

void hfm_blob_release(struct hfm_blob *b)
{
	struct hfm_blobcache *bc;
	struct hfm_blob **pp;

	if (!b)
		return;
	bc = b->bc;
	pthread_mutex_lock(&bc->lock);
	if (--b->refs > 0) {
		pthread_mutex_unlock(&bc->lock);
		return;
	}
	for (pp = &bc->buckets[bucket_of(b->oid)]; *pp != b; pp = &(*pp)->hnext)
		;
	*pp = b->hnext;
	atomic_fetch_sub(&bc->n_open, 1);
	pthread_mutex_unlock(&bc->lock);
	/* fetches and tasks hold references, so this is rare: make it durable */
	if (b->state != B_COMPLETE && b->undurable)
		flush(b);
	blob_destroy(b);
}

const char *hfm_blob_oid(const struct hfm_blob *b)
{
	return b->oid;
}

uint64_t hfm_blob_size(const struct hfm_blob *b)
{
	return b->size;
}

int hfm_blob_complete(struct hfm_blob *b)
{
	int c;

	pthread_mutex_lock(&b->lock);
	c = b->state == B_COMPLETE;
	pthread_mutex_unlock(&b->lock);
	return c;
}

uint64_t hfm_blob_discards(struct hfm_blob *b)
{
	uint64_t d;

	pthread_mutex_lock(&b->lock);
	d = b->discards;
	pthread_mutex_unlock(&b->lock);
	return d;
}

uint64_t hfm_blob_discarded_ns(struct hfm_blob *b)
{
	uint64_t t;

	pthread_mutex_lock(&b->lock);
	t = b->discarded_ns;
	pthread_mutex_unlock(&b->lock);
	return t;
}

int hfm_blob_wait_verified(struct hfm_blob *b, uint64_t discards_seen, struct hfm_waiter *w)
{
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	if (b->discards != discards_seen)
		rc = hfm_error_set(HFM_ECORRUPT, "blob %s failed verification", b->oid);
	else if (b->state != B_COMPLETE) {
		/* VERIFYING, or PARTIAL while a fetch still writes: both wake b->waiters */
		hfm_waitq_add(&b->waiters, w);
		rc = HFM_EAGAIN;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int hfm_blob_in_memory(const struct hfm_blob *b)
{
	return b->small;
}

ssize_t hfm_blob_read_memory(struct hfm_blob *b, void *buf, size_t n, uint64_t off)
{
	int readable;

	pthread_mutex_lock(&b->lock);
	readable = b->small && b->state != B_PARTIAL;
	pthread_mutex_unlock(&b->lock);
	if (!readable || off > b->size)
		return hfm_error_set(HFM_EINVAL, "blob %s: no verified bytes in memory at %llu",
				     b->oid, (unsigned long long)off);
	/* verified bytes are never written again */
	n = (size_t)HFM_MIN((uint64_t)n, b->size - off);
	memcpy(buf, b->mem + off, n);
	return (ssize_t)n;
}

/* Chunks one hfm_blob_read_recent() copies from: 1 MiB and a bit, in HFM_BLOB_BUF */
#define RECENT_CHUNKS 8

size_t hfm_blob_read_recent(struct hfm_blob *b, void *buf, size_t n, uint64_t off)
{
	struct hash_chunk *take[RECENT_CHUNKS], *c, *gone[RECENT_CHUNKS];
	size_t k = 0, ngone = 0, got = 0, i;
	uint64_t at = off;

	pthread_mutex_lock(&b->lock);
	/* the queue is in order and without gaps, from the digest's cursor on */
	for (c = b->hq_head; c && c->off + c->n <= at; c = c->next)
		;
	for (; c && c->off <= at && got < n && k < RECENT_CHUNKS; c = c->next) {
		size_t m = (size_t)HFM_MIN(c->off + c->n - at, (uint64_t)(n - got));

		c->readers++;
		take[k++] = c;
		got += m;
		at += m;
	}
	pthread_mutex_unlock(&b->lock);
	/* bytes of a queued chunk were written to the file from it, and are never written again */
	for (i = 0, at = off; i < k; i++) {
		size_t from = (size_t)(at - take[i]->off);
		size_t m = (size_t)HFM_MIN((uint64_t)(take[i]->n - from), off + got - at);

		memcpy((char *)buf + (at - off), (char *)take[i]->buf + from, m);
		at += m;
	}
	pthread_mutex_lock(&b->lock);
	for (i = 0; i < k; i++)
		if (!--take[i]->readers && take[i]->orphan)
			gone[ngone++] = take[i];
	pthread_mutex_unlock(&b->lock);
	for (i = 0; i < ngone; i++) {
		pool_put(b->bc, gone[i]->buf);
		free(gone[i]);
	}
	return got;
}

int hfm_blob_fd(struct hfm_blob *b)
{
	uint64_t size;
	int fd;

	if (b->small) {
		/* no file before it is published; then the object's */
		if (!hfm_blob_complete(b))
			return hfm_error_set(HFM_EIO, "blob %s is in memory only", b->oid);
		if (hfm_store_object_open(&fd, &size, b->bc->store, b->oid))
			return hfm_error_set(HFM_EIO, "blob %s: %s", b->oid, hfm_error_last());
		return fd;
	}
	pthread_mutex_lock(&b->lock);
	fd = b->ro_fd >= 0 ? fcntl(b->ro_fd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&b->lock);
	if (fd < 0)
		return hfm_error_set(HFM_EIO, "blob %s: %s", b->oid, strerror(errno));
	return fd;
}

static void fill_end(struct hfm_blob *b, int rc);
static void fill_pump(struct hfm_blob *b);

/* ---- what is where (under b->lock) --------------------------------------- */

static struct hfm_blob_fetch *fetch_covering(struct hfm_blob *b, uint64_t block)
{
	struct hfm_blob_fetch *f;

	for (f = b->fetches; f; f = f->next)
		if (block >= f->first && block < f->end)
			return f;
	return NULL;
}

static uint64_t contiguous(struct hfm_blob *b, uint64_t off)
{
	uint64_t pos = off;

	/* a small blob's bytes are readable once verified, not before */
	if (b->state == B_COMPLETE || (b->small && b->state == B_VERIFYING))
		return off < b->size ? b->size - off : 0;
	if (b->small)
		return 0;
	while (pos < b->size) {
		uint64_t i = pos >> b->shift;
		struct hfm_blob_fetch *f;

		if (bit(b->filled, i)) {
			pos = block_end(b, i);
			continue;
		}
		/* bytes of a block still arriving: readable up to the fetch's mark */
		f = fetch_covering(b, i);
		if (f && f->off + f->pos > pos) {
			pos = f->off + f->pos;
			continue;
		}
		break;
	}
	return pos - off;
}

/* contiguous(), but looking no further than `max` bytes from off. */
static uint64_t present_end(struct hfm_blob *b, uint64_t off, uint64_t max)
{
	uint64_t pos = off, lim = max < b->size - off ? off + max : b->size;

	while (pos < lim) {
		uint64_t i = pos >> b->shift;
		struct hfm_blob_fetch *f;

		if (b->state == B_COMPLETE || bit(b->filled, i))
			pos = block_end(b, i);
		else if ((f = fetch_covering(b, i)) && f->off + f->pos > pos)
			pos = f->off + f->pos;
		else
			break;
	}
	return pos < lim ? pos : lim;
}

uint64_t hfm_blob_available(struct hfm_blob *b, uint64_t off)
{
	uint64_t n;

	pthread_mutex_lock(&b->lock);
	n = contiguous(b, off);
	pthread_mutex_unlock(&b->lock);
	return n;
}

size_t hfm_blob_ranges(struct hfm_blob *b, struct hfm_blob_range *out, size_t max)
{
	uint64_t i, prev_end = UINT64_MAX;
	size_t n = 0;

	pthread_mutex_lock(&b->lock);
	for (i = 0; i < b->nblocks; i++) {
		if (!bit(b->filled, i))
			continue;
		if (n && prev_end == block_start(b, i)) {
			if (n <= max)
				out[n - 1].end = block_end(b, i);
		} else {
			if (n < max) {
				out[n].start = block_start(b, i);
				out[n].end = block_end(b, i);
			}
			n++;
		}
		prev_end = block_end(b, i);
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* ---- fetches -------------------------------------------------------------- */

static struct hfm_blob_fetch *fetch_ref(struct hfm_blob_fetch *f)
{
	atomic_fetch_add(&f->refs, 1);
	return f;
}

static void fetch_unref(struct hfm_blob_fetch *f)
{
	if (f && atomic_fetch_sub(&f->refs, 1) == 1)
		free(f);
}

static void unlink_fetch(struct hfm_blob *b, struct hfm_blob_fetch *f)
{
	struct hfm_blob_fetch **pp;

	for (pp = &b->fetches; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			f->next = NULL;
			f->active = 0;
			return;
		}
}

/* Under b->lock: a new active fetch for blocks [first, end). */
static struct hfm_blob_fetch *fetch_new(struct hfm_blob *b, uint64_t first, uint64_t end)
{
	struct hfm_blob_fetch *f = hfm_calloc(1, sizeof(*f));

	/* The fetcher's reference; it also covers b->fetches, because
	 * hfm_blob_fetch_done() unlinks before dropping it. */
	atomic_init(&f->refs, 1);
	f->b = b;
	f->first = first;
	f->end = end;
	f->off = block_start(b, first);
	f->len = block_end(b, end - 1) - f->off;
	f->active = 1;
	f->next = b->fetches;
	b->fetches = f;
	return f;
}

/*
 * Under b->lock: new fetches for missing blocks that nobody fetches, whose
 * first block lies in [first, first + readahead] and before `end` (bytes).
 * A run grows over adjacent missing blocks up to run_blocks (and `end`).
 */
static size_t plan(struct hfm_blob *b, uint64_t first, uint64_t end,
		   struct hfm_blob_fetch **out, size_t max)
{
	struct hfm_blobcache *bc = b->bc;
	uint64_t last = (end + (1ull << b->shift) - 1) >> b->shift;   /* exclusive */
	uint64_t win = first + bc->readahead_blocks + 1, i = first;
	size_t n = 0;

	if (last > b->nblocks)
		last = b->nblocks;
	if (win > last)
		win = last;
	while (i < win && n < max) {
		uint64_t j;

		if (bit(b->filled, i) || fetch_covering(b, i)) {
			i++;
			continue;
		}
		for (j = i + 1; j < last && j - i < bc->run_blocks && !bit(b->filled, j) &&
			     !fetch_covering(b, j); j++)
			;
		out[n++] = fetch_new(b, i, j);
		i = j;
	}
	return n;
}

/* Under b->lock: end f (it stays referenced by whoever holds it). */
static void fetch_end_locked(struct hfm_blob *b, struct hfm_blob_fetch *f, int rc)
{
	if (f->done)
		return;
	if (rc == 0 && f->pos < f->len)
		rc = hfm_error_set(HFM_EUPSTREAM, "upstream sent %llu of %llu bytes",
				   (unsigned long long)f->pos, (unsigned long long)f->len);
	f->done = 1;
	f->result = rc;
	if (f->active)
		unlink_fetch(b, f);
}

static void start_fetches(struct hfm_blob *b, struct hfm_blob_fetch **fs, size_t n,
			  const struct hfm_blob_origin *origin)
{
	struct hfm_blobcache *bc = b->bc;
	size_t i;

	for (i = 0; i < n; i++) {
		struct hfm_blob_fetch *f = fs[i];
		int rc;

		pthread_mutex_lock(&bc->lock);
		b->refs++;               /* the fetch's reference on its blob */
		pthread_mutex_unlock(&bc->lock);
		atomic_fetch_add(&bc->n_fetches, 1);
		hfm_metrics_inc(HFM_M_CACHE_FILLS_IN_FLIGHT);
		rc = bc->o.fetch(bc->o.fetch_cls, f, origin);
		if (rc)
			hfm_blob_fetch_done(f, rc);
	}
}

struct hfm_blob *hfm_blob_fetch_blob(const struct hfm_blob_fetch *f)
{
	return f->b;
}

uint64_t hfm_blob_fetch_offset(const struct hfm_blob_fetch *f)
{
	return f->off;
}

uint64_t hfm_blob_fetch_length(const struct hfm_blob_fetch *f)
{
	return f->len;
}

void *hfm_blob_fetch_buf(struct hfm_blob_fetch *f)
{
	return pool_get(f->b->bc);
}

void hfm_blob_fetch_buf_put(struct hfm_blob_fetch *f, void *buf)
{
	pool_put(f->b->bc, buf);
}

static void publish_small(struct hfm_blob *b);

/*
 * fetch_write() of a small blob, n bytes at pos (checked): into its
 * memory; the last bytes verify it, and then it is readable (and queued
 * to be published) or discarded.
 */
static int small_write(struct hfm_blob_fetch *f, const void *data, size_t n, uint64_t pos)
{
	struct hfm_blob *b = f->b;
	struct hfm_blobcache *bc = b->bc;
	struct hfm_waitq_node *wake;
	int rc, publish = 0;

	/* the fetch owns the blob's one block: nobody else writes these bytes,
	 * and nobody reads them before they are verified */
	memcpy(b->mem + f->off + pos, data, n);
	atomic_fetch_add(&bc->n_bytes, n);
	pthread_mutex_lock(&b->lock);
	f->pos = pos + n;
	if (n && b->born[0] == BORN_NONE)
		b->born[0] = hfm_mono_ns();
	if (f->pos < f->len) {
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	pthread_mutex_unlock(&b->lock);

	rc = small_verify(b);
	pthread_mutex_lock(&b->lock);
	if (rc == 0) {
		memset(b->filled, 0xff, b->mapbytes);
		b->nfilled = b->nblocks;
		unlink_fetch(b, f);
		b->state = B_VERIFYING;      /* verified: readable, to be published */
		publish = 1;
	} else {
		/* nothing was stored or read: the next fetch starts over */
		fetch_end_locked(b, f, rc);
		b->discards++;
		b->discarded_ns = hfm_mono_ns();
		fill_end(b, HFM_ECORRUPT);
	}
	wake = hfm_waitq_take(&b->waiters);
	pthread_mutex_unlock(&b->lock);
	if (rc) {
		atomic_fetch_add(&bc->n_corrupt, 1);
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR, "blobcache: %s discarded: %s",
			b->oid, hfm_error_last());
		hfm_error_set(rc, "upstream sent content that is not %s", b->oid);
	}
	if (publish)
		publish_small(b);
	hfm_waitq_fire(wake);
	return rc;
}

/*
 * Store n bytes at the fetch's position.  `own` (may be NULL): a pool
 * buffer holding them, taken for the digest when they are its next bytes.
 */
static int fetch_write(struct hfm_blob_fetch *f, const void *data, size_t n, void **own)
{
	struct hfm_blob *b = f->b;
	struct hfm_blobcache *bc = b->bc;
	struct hfm_waitq_node *wake = NULL;
	struct hash_chunk *c = NULL;
	uint64_t pos, i, end, grown = 0;
	enum task_kind task = TASK_FLUSH;
	int queue = 0, hash_task = 0, finish, here = 0;

	pthread_mutex_lock(&b->lock);
	pos = f->pos;
	if (f->done || !f->active || n > f->len - pos) {
		pthread_mutex_unlock(&b->lock);
		return hfm_error_set(HFM_EINVAL, "blob %s: write past the fetched range", b->oid);
	}
	pthread_mutex_unlock(&b->lock);
	if (b->small)
		return small_write(f, data, n, pos);

	/* b->fd cannot change while this fetch is active (it owns unfilled blocks) */
	if (n && write_all(b->fd, data, n, f->off + pos))
		return hfm_error_set(HFM_EIO, "write partial/%s: %s", b->oid, strerror(errno));
	atomic_fetch_add(&bc->n_bytes, n);
	if (own && *own && n)
		c = hfm_malloc(sizeof(*c));

	pthread_mutex_lock(&b->lock);
	/*
	 * The digest's next bytes, never read back: from the writer's buffer
	 * on a hashing thread when it gave one (the transfer goes on while
	 * they are hashed), else here.  Nobody claimed them meanwhile: a
	 * read-back claims only up to f->pos, which moves below.
	 */
	if (n && b->hash && b->hash_end == f->off + pos && !b->hash_task && !c) {
		b->hash_task = b->hash_busy = here = 1;
		b->hash_end += n;
	} else if (c && b->hash && b->hash_end == f->off + pos) {
		c->next = NULL;
		c->buf = *own;
		c->n = n;
		c->off = f->off + pos;
		c->readers = c->orphan = 0;
		*own = NULL;
		if (b->hq_tail)
			b->hq_tail->next = c;
		else
			b->hq_head = c;
		b->hq_tail = c;
		b->hq_bytes += n;
		b->hash_end += n;
		atomic_fetch_add(&bc->hq_total, n);
		c = NULL;
		if (!b->hash_task)
			hash_task = b->hash_task = 1;
	}
	f->pos = pos + n;
	end = f->off + f->pos;
	if (n) {
		uint64_t now = hfm_mono_ns();
		for (i = (f->off + pos) >> b->shift; i <= (end - 1) >> b->shift; i++)
			if (b->born[i] == BORN_NONE)
				b->born[i] = now;
	}
	for (i = (f->off + pos) >> b->shift; i < f->end && block_end(b, i) <= end; i++) {
		if (bit(b->filled, i))
			continue;
		set_bit(b->filled, i);
		b->nfilled++;
		grown += block_end(b, i) - block_start(b, i);
	}
	b->undurable += grown;
	if (f->pos == f->len)
		unlink_fetch(b, f);
	/* every write is announced: the fetcher sizes them (blobfetch.c gathers) */
	wake = hfm_waitq_take(&b->waiters);
	if (b->nfilled == b->nblocks && b->state == B_PARTIAL) {
		/* finish once the digest has caught up (the hashing thread queues it) */
		b->state = B_VERIFYING;
	} else if (b->undurable >= bc->sync_bytes && !b->flush_queued) {
		b->flush_queued = 1;
		queue = 1;
	} else if (grown && !b->flush_queued && !b->timer_queued) {
		/* the first block that waits: durable within sync_ms, come what may */
		b->timer_queued = 1;
		task = TASK_TIMER;
		queue = 1;
	}
	hash_task |= hash_wants_task(b);
	finish = finish_wanted(b);
	pthread_mutex_unlock(&b->lock);
	free(c);
	if (queue)
		task_push(bc, b, task);
	if (grown && bc->o.grew)
		bc->o.grew(bc->o.grew_cls, grown);
	hfm_waitq_fire(wake);            /* readers go on while this hashes */
	if (here) {
		hfm_hashctx_update(b->hash, data, n);
		pthread_mutex_lock(&b->lock);
		hash_unbusy(b, n);
		b->hash_task = 0;
		/* what other writers handed over meanwhile, or what waits to be read */
		if (b->hq_head)
			hash_task = b->hash_task = 1;
		else
			hash_task = hash_wants_task(b);
		finish = finish_wanted(b);
		wake = hfm_waitq_take(&b->hash_waiters);
		pthread_mutex_unlock(&b->lock);
		hfm_waitq_fire(wake);
	}
	if (hash_task)
		task_push(bc, b, TASK_HASH);
	if (finish)
		task_push(bc, b, TASK_FINISH);
	return 0;
}

int hfm_blob_fetch_write(struct hfm_blob_fetch *f, const void *data, size_t n)
{
	return fetch_write(f, data, n, NULL);
}

int hfm_blob_fetch_write_buf(struct hfm_blob_fetch *f, void **buf, size_t n)
{
	return fetch_write(f, *buf, n, buf);
}

int hfm_blob_fetch_hash_wait(struct hfm_blob_fetch *f, struct hfm_waiter *w)
{
	struct hfm_blob *b = f->b;
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	/* only the writer that feeds the digest waits for it (its bytes end at hash_end) */
	if (!f->done && b->hash && b->hq_bytes && b->hash_end == f->off + f->pos &&
	    (b->hq_bytes >= HFM_BLOB_HASH_QUEUE ||
	     atomic_load(&b->bc->hq_total) >= HASH_QUEUE_TOTAL)) {
		hfm_waitq_add(&b->hash_waiters, w);
		rc = HFM_EAGAIN;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void hfm_blob_fetch_done(struct hfm_blob_fetch *f, int rc)
{
	struct hfm_blob *b = f->b;
	struct hfm_blobcache *bc = b->bc;
	struct hfm_waitq_node *wake, *hash_wake = NULL;
	int queue_flush = 0, hash_task = 0;
	uint64_t i;

	hfm_metrics_sub(HFM_M_CACHE_FILLS_IN_FLIGHT, 1);
	pthread_mutex_lock(&b->lock);
	fetch_end_locked(b, f, rc);
	rc = f->result;
	/* blocks it did not complete hold nothing now: the next fetch writes them anew */
	for (i = f->first; rc && i < f->end; i++)
		if (!bit(b->filled, i))
			b->born[i] = BORN_NONE;
	if (f->fill) {
		b->fill_fetches--;
		if (rc)
			fill_end(b, rc);     /* its waiters are woken below */
	} else if (!b->fill_urgent) {
		b->fill_after = hfm_mono_ns() + bc->fill_idle_ns;
	}
	if (rc && b->hash) {
		/* Hashed (or claimed) bytes of a block that goes back to missing
		 * may come again different: without a way to rewind, start over. */
		uint64_t h = b->hash_end >> b->shift;
		if (b->hash_end != block_start(b, h) && h >= f->first && h < f->end &&
		    !bit(b->filled, h)) {
			if (b->hash_busy) {
				b->hash_stale = 1;
			} else {
				hash_reset(b);
				hash_wake = hash_room(b);
				hash_task = hash_wants_task(b);
			}
		}
	}
	wake = hfm_waitq_take(&b->waiters);
	if (b->undurable && !b->flush_queued && b->state == B_PARTIAL) {
		b->flush_queued = 1;
		queue_flush = 1;
	}
	pthread_mutex_unlock(&b->lock);
	if (rc) {
		atomic_fetch_add(&bc->n_fetch_failures, 1);
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_WARN,
			"blobcache: fetch of %s bytes %llu-%llu failed: %s", b->oid,
			(unsigned long long)f->off, (unsigned long long)(f->off + f->len - 1),
			hfm_error_last());
	}
	if (queue_flush)
		task_push(bc, b, TASK_FLUSH);
	if (hash_task)
		task_push(bc, b, TASK_HASH);
	hfm_waitq_fire(wake);
	hfm_waitq_fire(hash_wake);
	f->b = NULL;
	fetch_unref(f);                  /* the fetcher's */
	fill_pump(b);                    /* under the fetch's reference */
	hfm_blob_release(b);             /* the fetch's reference on its blob */
}

/* ---- the background fill --------------------------------------------------- */

/* Under b->lock: the fill stops; the caller wakes b->waiters (a reader may wait for it). */
static void fill_end(struct hfm_blob *b, int rc)
{
	if (!b->fill_on)
		return;
	b->fill_on = 0;
	b->fill_urgent = 0;
	b->fill_rc = rc;
	free(b->fill_url);
	free(b->fill_auth);
	b->fill_url = b->fill_auth = NULL;
}

/*
 * Under b->lock: the fill's next move.  *out gets a new fetch to start, or
 * *timer is set when it must wait until b->fill_after; returns 1 when the
 * fill ended (wake the waiters).
 */
static int fill_step(struct hfm_blob *b, struct hfm_blob_fetch **out, int *timer)
{
	struct hfm_blobcache *bc = b->bc;
	uint64_t i, j, run;

	if (!b->fill_on)
		return 0;
	if (atomic_load(&bc->fills_stopped)) {
		fill_end(b, hfm_error_set(HFM_ERROR, "blob cache stopping"));
		return 1;
	}
	if (b->state != B_PARTIAL) {
		fill_end(b, 0);              /* all there: verification takes over */
		return 1;
	}
	if (b->fill_fetches || b->fetches)
		return 0;                    /* the end of that fetch moves us on */
	if (hfm_mono_ns() < b->fill_after) {
		if (!b->fill_timer)
			*timer = b->fill_timer = 1;
		return 0;
	}
	/* nothing is in flight: the first block missing is the first to fetch */
	for (i = 0; i < b->nblocks && bit(b->filled, i); i++)
		;
	if (i == b->nblocks)
		return 0;
	run = HFM_MIN((uint64_t)bc->run_blocks, FILL_RUN_BYTES >> b->shift);
	for (j = i + 1; j < b->nblocks && j - i < run && !bit(b->filled, j); j++)
		;
	*out = fetch_new(b, i, j);
	(*out)->fill = 1;
	b->fill_fetches++;
	return 0;
}

/*
 * Let the fill take its next step.  The caller holds a reference on b.
 * Reentrant: a fetch started here may end (and call this) before the start
 * returns; that call only asks the running one to look again.
 */
static void fill_pump(struct hfm_blob *b)
{
	pthread_mutex_lock(&b->lock);
	if (b->pumping) {
		b->pump_again = 1;
		pthread_mutex_unlock(&b->lock);
		return;
	}
	b->pumping = 1;
	do {
		struct hfm_blob_fetch *f = NULL;
		struct hfm_waitq_node *wake = NULL;
		char *url = NULL, *auth = NULL;
		uint64_t due = 0;
		int timer = 0;

		b->pump_again = 0;
		if (fill_step(b, &f, &timer))
			wake = hfm_waitq_take(&b->waiters);
		if (f) {
			url = hfm_strdup(b->fill_url);
			auth = b->fill_auth ? hfm_strdup(b->fill_auth) : NULL;
		}
		due = b->fill_after;
		pthread_mutex_unlock(&b->lock);
		hfm_waitq_fire(wake);
		if (timer)
			task_push_at(b->bc, b, TASK_FILL, due);
		if (f) {
			struct hfm_blob_origin o = { url, auth };
			start_fetches(b, &f, 1, &o);
			free(url);
			free(auth);
		}
		pthread_mutex_lock(&b->lock);
	} while (b->pump_again);
	b->pumping = 0;
	pthread_mutex_unlock(&b->lock);
}

int hfm_blob_fill(struct hfm_blob *b, const struct hfm_blob_origin *origin, int urgent)
{
	uint64_t t = hfm_mono_ns();
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	if (b->state != B_PARTIAL || (b->fill_on && (b->fill_urgent || !urgent))) {
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	if (b->fill_on) {
		/* a request waits for this one now: no more idle waits */
		b->fill_urgent = 1;
		b->fill_after = 0;
		pthread_mutex_unlock(&b->lock);
		fill_pump(b);
		return 0;
	}
	if (atomic_load(&b->bc->fills_stopped)) {
		pthread_mutex_unlock(&b->lock);
		return hfm_error_set(HFM_ERROR, "blob cache stopping");
	}
	if (t < b->fill_backoff_until) {
		rc = hfm_error_set(HFM_EUPSTREAM, "blob %s failed verification %u times in a row; "
				   "not filled again for %llu s", b->oid, b->fill_fails,
				   (unsigned long long)((b->fill_backoff_until - t) / 1000000000 + 1));
		pthread_mutex_unlock(&b->lock);
		return rc;
	}
	b->fill_on = 1;
	b->fill_urgent = urgent;
	b->fill_rc = 0;
	b->fill_url = hfm_strdup(origin->url);
	b->fill_auth = origin->authorization ? hfm_strdup(origin->authorization) : NULL;
	if (urgent)
		b->fill_after = 0;
	else if (b->fill_after < t + b->bc->fill_idle_ns)
		b->fill_after = t + b->bc->fill_idle_ns;   /* readers that come with this one go first */
	pthread_mutex_unlock(&b->lock);

	fill_pump(b);

	pthread_mutex_lock(&b->lock);
	if (!b->fill_on && b->state == B_PARTIAL)
		rc = hfm_error_set(b->fill_rc ? b->fill_rc : HFM_EUPSTREAM,
				   "the fill of blob %s failed at once", b->oid);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int hfm_blob_filling(struct hfm_blob *b)
{
	int on;

	pthread_mutex_lock(&b->lock);
	on = b->fill_on || b->state != B_PARTIAL;
	pthread_mutex_unlock(&b->lock);
	return on;
}

void hfm_blobcache_stop_fills(struct hfm_blobcache *bc)
{
	atomic_store(&bc->fills_stopped, 1);
}

size_t hfm_blob_unverified(struct hfm_blob *b, uint64_t since_ns, uint64_t start, uint64_t end,
			   struct hfm_blob_range *out, size_t max, uint64_t *unfilled)
{
	uint64_t i, stored;
	size_t n = 0;

	if (!since_ns)
		since_ns = hfm_mono_ns();
	if (end > b->size)
		end = b->size;
	pthread_mutex_lock(&b->lock);
	*unfilled = 0;
	if (b->small) {
		/* nothing of it is readable unverified */
		*unfilled = b->state == B_PARTIAL ? b->size : 0;
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	if (b->state == B_COMPLETE || start >= end || !max) {
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	stored = b->nfilled << b->shift;
	if (b->nblocks && bit(b->filled, b->nblocks - 1))
		stored -= (b->nblocks << b->shift) - b->size;   /* the last block is short */
	*unfilled = b->size - stored;
	for (i = start >> b->shift; i <= (end - 1) >> b->shift; i++) {
		uint64_t a = block_start(b, i), e;
		struct hfm_blob_fetch *f;

		if (bit(b->filled, i))
			e = block_end(b, i);
		else if ((f = fetch_covering(b, i)) && f->off + f->pos > a)
			e = HFM_MIN(block_end(b, i), f->off + f->pos);
		else
			continue;
		/* born after the request came: it reads them as they arrive */
		if (b->born[i] != BORN_NONE && b->born[i] > since_ns)
			continue;
		if (a < start)
			a = start;
		if (e > end)
			e = end;
		if (n && out[n - 1].end == a)
			out[n - 1].end = e;
		else if (n < max)
			out[n++] = (struct hfm_blob_range){ a, e };
		else
			out[n - 1].end = e;      /* full: the gap is counted in */
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* ---- readers -------------------------------------------------------------- */

void hfm_blob_reader_dispose(struct hfm_blob_reader *r)
{
	fetch_unref(r->waiting);
	*r = (struct hfm_blob_reader){ 0 };   /* as new, if used again */
}

static void reader_wait_on(struct hfm_blob_reader *r, struct hfm_blob_fetch *f)
{
	if (r->waiting == f)
		return;
	fetch_unref(r->waiting);
	r->waiting = f ? fetch_ref(f) : NULL;
}

struct blocking {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int woken;
};

static void blocking_wake(void *cls)
{
	struct blocking *s = cls;

	pthread_mutex_lock(&s->lock);
	s->woken = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

static int ensure_blocking(uint64_t *avail, struct hfm_blob *b, struct hfm_blob_reader *r,
			   uint64_t off, uint64_t end, const struct hfm_blob_origin *origin)
{
	struct blocking s;
	int rc;

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cv, NULL);
	for (;;) {
		struct hfm_waiter *w;

		s.woken = 0;
		w = hfm_waiter_new(blocking_wake, &s);
		rc = hfm_blob_ensure(avail, b, r, off, end, origin, w);
		if (rc == HFM_EAGAIN) {
			pthread_mutex_lock(&s.lock);
			while (!s.woken)
				pthread_cond_wait(&s.cv, &s.lock);
			pthread_mutex_unlock(&s.lock);
		}
		/* after cancel the callback is not running: s may go away */
		hfm_waiter_cancel(w);
		hfm_waiter_unref(w);
		if (rc != HFM_EAGAIN)
			break;
	}
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.lock);
	return rc;
}

int hfm_blob_ensure(uint64_t *avail, struct hfm_blob *b, struct hfm_blob_reader *r,
		    uint64_t off, uint64_t end, const struct hfm_blob_origin *origin, struct hfm_waiter *w)
{
	struct hfm_blob_fetch *fs[8];
	int started = 0, rc = 0;
	size_t n;

	*avail = 0;
	if (off >= b->size)
		return hfm_error_set(HFM_EINVAL, "offset %llu is not below the size %llu",
				     (unsigned long long)off, (unsigned long long)b->size);
	if (end > b->size || end <= off)
		end = b->size;
	if (!w)
		return ensure_blocking(avail, b, r, off, end, origin);

	pthread_mutex_lock(&b->lock);
	if (!r->attached) {
		r->attached = 1;
		r->discards = b->discards;
	}
	for (;;) {
		uint64_t blk = off >> b->shift;
		struct hfm_blob_fetch *f;

		if (b->discards != r->discards) {
			/* what this reader read may be wrong, and its fd is the old file */
			rc = hfm_error_set(HFM_ECORRUPT, "blob %s failed verification", b->oid);
			reader_wait_on(r, NULL);
			break;
		}
		*avail = contiguous(b, off);
		if (b->state == B_COMPLETE || b->state == B_VERIFYING) {
			reader_wait_on(r, NULL);
			break;
		}
		f = *avail ? NULL : fetch_covering(b, blk);
		if (!*avail && !f && r->waiting && r->waiting->done && r->waiting->result &&
		    blk >= r->waiting->first && blk < r->waiting->end) {
			/* the fetch this reader waited for failed: end the response */
			rc = r->waiting->result;
			reader_wait_on(r, NULL);
			break;
		}
		/* start what is missing at off, or in the readahead window after it */
		n = plan(b, blk, end, fs, HFM_ARRAY_SIZE(fs));
		if (!*avail && !f && n)
			reader_wait_on(r, fs[0]);
		if (n) {
			pthread_mutex_unlock(&b->lock);
			start_fetches(b, fs, n, origin);
			pthread_mutex_lock(&b->lock);
			if (!started++)
				continue;        /* look again: a start may have failed */
		}
		if (*avail) {
			reader_wait_on(r, NULL);
			break;
		}
		if (f) {
			reader_wait_on(r, f);
			hfm_waitq_add(&b->waiters, w);
			rc = HFM_EAGAIN;
			break;
		}
		/* not present, not in flight, nothing started (second pass) */
		rc = hfm_error_set(HFM_EUPSTREAM, "blob %s: no fetch for offset %llu", b->oid,
				   (unsigned long long)off);
		break;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* ---- durability and publication (worker threads) -------------------------- */

/*
 * Make filled blocks durable: fdatasync the data, then set their bits in
 * the map.  The order is the whole point: a bit on disk always describes
 * data already on disk.  Called with b->io_lock (one writer of the map).
 */
static void flush(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	size_t lo = SIZE_MAX, hi = 0, i;
	uint8_t *target;
	int fd, map_fd, named;

	pthread_mutex_lock(&b->lock);
	if (b->state == B_COMPLETE || b->map_fd < 0) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	target = hfm_malloc(b->mapbytes ? b->mapbytes : 1);
	for (i = 0; i < b->mapbytes; i++) {
		target[i] = b->durable[i] | b->filled[i];
		if (target[i] != b->durable[i]) {
			if (lo == SIZE_MAX)
				lo = i;
			hi = i + 1;
		}
	}
	b->undurable = 0;
	fd = b->fd;
	map_fd = b->map_fd;
	named = b->map_named;
	pthread_mutex_unlock(&b->lock);

	if (lo == SIZE_MAX) {
		free(target);
		return;
	}
	/* the map's header and name (create_files) before its first bits count */
	if (fdatasync(fd) < 0 || write_all(map_fd, target + lo, hi - lo, MAP_HDR + lo) ||
	    (!named && fdatasync(map_fd) < 0)) {
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR, "blobcache: sync partial/%s: %s",
			b->oid, strerror(errno));
		free(target);
		return;
	}
	if (!named)
		sync_dir(bc->partial_fd);
	atomic_fetch_add(&bc->n_syncs, 1);
	pthread_mutex_lock(&b->lock);
	memcpy(b->durable + lo, target + lo, hi - lo);
	b->map_named = 1;
	pthread_mutex_unlock(&b->lock);
	free(target);
}

/*
 * A turn of the digest on a hashing thread (TASK_HASH): the buffers writers
 * handed over, in order, and present bytes at the cursor read back from the
 * file (page cache, usually), up to HASH_TASK_BYTES; then the next blob's
 * turn.  A read error drops the digest: finish() then verifies by reading
 * the whole file.  The last turn, once every block is there and hashed,
 * queues the finish.
 */
static void hash_run(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	struct hfm_waitq_node *wake;
	uint64_t budget = HASH_TASK_BYTES;
	char *buf = NULL;
	int again, finish;

	pthread_mutex_lock(&b->lock);
	while (budget && b->hash && b->state != B_COMPLETE) {
		struct hash_chunk *c = b->hq_head;
		uint64_t pos, end;
		ssize_t got = 0;
		int fd;

		if (c) {
			b->hq_head = c->next;
			if (!b->hq_head)
				b->hq_tail = NULL;
			b->hash_busy = 1;
			pthread_mutex_unlock(&b->lock);
			hfm_hashctx_update(b->hash, c->buf, c->n);
			atomic_fetch_add(&bc->n_hashed_given, c->n);
			pthread_mutex_lock(&b->lock);
			b->hq_bytes -= c->n;
			atomic_fetch_sub(&bc->hq_total, c->n);
			hash_unbusy(b, c->n);
			budget -= HFM_MIN(budget, (uint64_t)c->n);
			chunk_release(b, c);
			if ((wake = hash_room(b))) {
				pthread_mutex_unlock(&b->lock);
				hfm_waitq_fire(wake);
				pthread_mutex_lock(&b->lock);
			}
			continue;
		}
		/* nothing handed over: hash_end == hash_pos, read what is there */
		pos = b->hash_pos;
		end = present_end(b, pos, HFM_MIN((uint64_t)HASH_CHUNK, budget));
		if (end == pos)
			break;
		b->hash_end = end;
		b->hash_busy = 1;
		fd = b->ro_fd;               /* stays: finish() waits for this task */
		pthread_mutex_unlock(&b->lock);

		if (!buf)
			buf = hfm_malloc(HASH_CHUNK);
		/* present bytes are not written again while they are claimed */
		while ((uint64_t)got < end - pos) {
			ssize_t k = pread(fd, buf + got, (size_t)(end - pos) - (size_t)got,
					  (off_t)pos + got);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			got += k;
		}
		if ((uint64_t)got == end - pos) {
			hfm_hashctx_update(b->hash, buf, (size_t)got);
			atomic_fetch_add(&bc->n_hashed_read, (uint64_t)got);
		}
		pthread_mutex_lock(&b->lock);
		b->hash_read += (uint64_t)HFM_MAX(got, 0);
		if ((uint64_t)got != end - pos) {
			hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_WARN, "blobcache: read partial/%s "
				"to hash it: %s", b->oid, got < 0 ? strerror(errno) : "short read");
			b->hash_busy = 0;
			hash_drop(b);
			break;
		}
		hash_unbusy(b, end - pos);
		budget -= end - pos;
	}
	/* more to do: behind the other blobs' turns */
	again = b->hash && b->state != B_COMPLETE &&
		(b->hq_head || present_end(b, b->hash_end, 1) > b->hash_end);
	if (!again)
		b->hash_task = 0;
	finish = finish_wanted(b);
	/* no more to hash now: nothing is left for a writer to wait for */
	wake = again ? hash_room(b) : hfm_waitq_take(&b->hash_waiters);
	pthread_mutex_unlock(&b->lock);
	free(buf);
	if (again)
		task_push(bc, b, TASK_HASH);
	if (finish)
		task_push(bc, b, TASK_FINISH);
	hfm_waitq_fire(wake);
}

/*
 * Check the complete blob against its oid: the in-order digest (finish runs
 * once it covers the blob), or, without one, a read of the whole file.
 * Called with b->io_lock; nothing writes or hashes now.
 */
static int verify(struct hfm_blob *b)
{
	char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
	int is256 = strlen(b->oid) == HFM_SHA256_HEX;
	struct hfm_hashctx *h = NULL;
	uint64_t pos;

	pthread_mutex_lock(&b->lock);
	pos = b->hash_pos;
	if (b->hash && !b->hash_busy) {
		h = b->hash;
		b->hash = NULL;          /* create_files() starts a new one if need be */
	}
	pthread_mutex_unlock(&b->lock);
	if (!h || pos != b->size) {
		if (h)
			hfm_hashctx_final(h, NULL, NULL);
		return hfm_store_verify_fd(b->ro_fd, b->size, b->oid);
	}
	hfm_hashctx_final(h, sha1, sha256);
	if (strcmp(is256 ? sha256 : sha1, b->oid))
		return hfm_error_set(HFM_ECORRUPT, "content hashes to %s, expected %s",
				     is256 ? sha256 : sha1, b->oid);
	return 0;
}

/* An object is published: tell the listener, then the readers. */
static void published(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	struct hfm_waitq_node *wake;

	atomic_fetch_add(&bc->n_verified, 1);
	hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_INFO, "blobcache: %s complete (%llu bytes, "
		"%llu read back to hash)", b->oid, (unsigned long long)b->size,
		(unsigned long long)b->hash_read);
	/* an object, unlike a partial blob being filled, may be evicted;
	 * told before the blob reads as complete, so whoever sees it
	 * complete knows the listener was told */
	if (bc->o.grew) {
		if (b->small && b->size)
			bc->o.grew(bc->o.grew_cls, b->size);   /* never counted as partial */
		bc->o.grew(bc->o.grew_cls, 0);
	}
	pthread_mutex_lock(&b->lock);
	b->state = B_COMPLETE;
	if (b->fd >= 0)
		close(b->fd);
	if (b->map_fd >= 0)
		close(b->map_fd);
	b->fd = b->map_fd = -1;
	fill_end(b, 0);
	b->fill_fails = 0;
	wake = hfm_waitq_take(&b->waiters);
	pthread_mutex_unlock(&b->lock);
	hfm_waitq_fire(wake);
}

/*
 * Publish a small blob verified in memory, with others (struct
 * hfm_blobcache, `staged`): it joins the open batch now, without I/O (the
 * upstream thread calls this when its last byte verified it); a worker
 * writes each blob of a closed batch to a staged file under tmp/ (no name
 * where the filesystem allows), makes them durable together, then links
 * (or renames) each into objects/, never replacing an object already there
 * (the directory synced later, with others').  Nothing is linked before
 * its batch's sync returned, so a crash leaves no object without its bytes
 * (an unnamed file just goes).  A failure leaves it verified in memory,
 * served to whoever holds it; the next opener of its oid fetches it again.
 */
static void commit_batch(struct hfm_blobcache *bc, struct staged *list);

/* Under bc->lock: the open batch, closed. */
static struct staged *take_batch_locked(struct hfm_blobcache *bc)
{
	struct staged *list = bc->staged;

	bc->staged = NULL;
	bc->staged_tail = &bc->staged;
	bc->nstaged = 0;
	bc->staged_bytes = 0;
	return list;
}

static void not_stored(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;

	hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR, "blobcache: %s not stored: %s", b->oid,
		hfm_error_last());
}

static void publish_small(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	struct staged *st = hfm_calloc(1, sizeof(*st));

	st->b = b;
	st->fd = -1;
	pthread_mutex_lock(&bc->lock);
	b->refs++;                       /* the batch's */
	*bc->staged_tail = st;
	bc->staged_tail = &st->next;
	bc->staged_bytes += b->size;
	if (++bc->nstaged >= bc->batch_max || bc->staged_bytes >= bc->batch_bytes) {
		struct staged *full = take_batch_locked(bc);
		task_push_at_locked(bc, NULL, TASK_COMMIT, 0)->batch = full;
	} else if (!bc->commit_queued) {
		/* a timer that takes whatever batch is open when it runs */
		bc->commit_queued = 1;
		task_push_at_locked(bc, NULL, TASK_COMMIT, hfm_mono_ns() + bc->batch_ns);
	}
	pthread_mutex_unlock(&bc->lock);
}

/* Write a small blob to a staged file: 0, or not stored (logged). */
static int stage_small(struct staged *st)
{
	struct hfm_blob *b = st->b;
	struct hfm_blobcache *bc = b->bc;
	int rc;

	if ((rc = hfm_store_stage_unnamed(&st->fd, st->name, bc->store)))
		goto fail;
	if (write_all(st->fd, b->mem, (size_t)b->size, 0)) {
		rc = hfm_error_set(HFM_EIO, "write a staged %s: %s", b->oid, strerror(errno));
		close(st->fd);
		if (st->name[0])
			hfm_store_abort(bc->store, st->name);
		goto fail;
	}
	mark_ours(b, st->fd);
	return 0;
fail:
	not_stored(b);
	return rc;
}

/* TASK_COMMIT of a timer: the open batch's time is up. */
static void commit_due(struct hfm_blobcache *bc)
{
	struct staged *list;

	pthread_mutex_lock(&bc->lock);
	bc->commit_queued = 0;
	list = take_batch_locked(bc);
	pthread_mutex_unlock(&bc->lock);
	commit_batch(bc, list);
}

/* A closed batch: each blob staged, one sync for all, then each linked and published. */
static void commit_batch(struct hfm_blobcache *bc, struct staged *list)
{
	struct staged *st, *next, **pp;
	size_t n = 0;
	int *fds, rc, synced;

	for (pp = &list; (st = *pp);) {
		if (stage_small(st)) {
			*pp = st->next;
			hfm_blob_release(st->b);
			free(st);
		} else {
			pp = &st->next;
			n++;
		}
	}
	if (!list)
		return;
	fds = hfm_malloc(n * sizeof(*fds));
	n = 0;
	for (st = list; st; st = st->next)
		fds[n++] = st->fd;
	synced = bc->o.sync_staged ? bc->o.sync_staged(bc->o.sync_staged_cls, fds, n)
				   : hfm_store_sync_fds(bc->store, fds, n);
	free(fds);
	atomic_fetch_add(&bc->n_batches, 1);
	for (st = list; st; st = next) {
		struct hfm_blob *b = st->b;

		next = st->next;
		rc = synced;
		if (!rc)
			rc = hfm_store_publish_fd(bc->store, bc->store->tmp_fd, st->name, st->fd,
						  b->oid, HFM_STORE_VERIFIED | HFM_STORE_NOREPLACE |
						  HFM_STORE_DIR_LATER | HFM_STORE_DURABLE);
		close(st->fd);
		if (rc && st->name[0])
			hfm_store_abort(bc->store, st->name);
		if (rc) {
			not_stored(b);
		} else {
			dir_changed(bc, b->oid, 0);
			published(b);
		}
		hfm_blob_release(b);
		free(st);
	}
}

/* Verify a blob whose blocks are all present; publish it or start it over. */
static void finish(struct hfm_blob *b)
{
	struct hfm_blobcache *bc = b->bc;
	struct hfm_waitq_node *wake;
	char mapn[96];
	uint64_t keep;
	int rc;

	/*
	 * No flush: publishing makes the data durable (fsync, then the
	 * rename), and the map's last bits do not matter to a blob that is
	 * published or discarded now.  A small blob so never syncs its map.
	 */
	pthread_mutex_lock(&b->lock);
	b->finish_queued = 0;
	if (b->state != B_VERIFYING) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	pthread_mutex_unlock(&b->lock);
	if (b->small) {
		publish_small(b);
		return;
	}

	/* No fetch is active (every block is filled) and the digest is done
	 * (finish_wanted), so nothing writes or hashes now. */
	map_name(mapn, b->oid, ".map");
	rc = verify(b);
	if (rc == 0)
		rc = hfm_store_publish_fd(bc->store, bc->partial_fd, b->oid, b->ro_fd, b->oid,
					  HFM_STORE_VERIFIED | HFM_STORE_DIR_LATER);
	if (rc == 0) {
		unlinkat(bc->partial_fd, mapn, 0);
		dir_changed(bc, b->oid, 1);
		published(b);
		return;
	}
	hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR,
		"blobcache: %s discarded: %s", b->oid, hfm_error_last());
	/* the map goes first: data without a map reads as empty */
	unlinkat(bc->partial_fd, mapn, 0);
	unlinkat(bc->partial_fd, b->oid, 0);
	pthread_mutex_lock(&b->lock);
	rc = create_files(b);
	b->state = B_PARTIAL;
	b->discards++;
	b->discarded_ns = hfm_mono_ns();
	/* the next request fills it again; only a repeat offender waits */
	fill_end(b, HFM_ECORRUPT);
	if (++b->fill_fails >= 2) {
		unsigned k = b->fill_fails - 2 < 6 ? b->fill_fails - 2 : 6;
		uint64_t mult = HFM_MIN(1ull << k, (uint64_t)FILL_BACKOFF_MAX);
		b->fill_backoff_until = hfm_mono_ns() + bc->fail_backoff_ns * mult;
	}
	/*
	 * What the failure taught (when, how often in a row) lives in this
	 * struct: keep it at least that long, though no reader holds it (the
	 * requests that waited are run again, with new streams).
	 */
	keep = HFM_MAX(b->fill_backoff_until, b->discarded_ns + bc->fail_backoff_ns);
	wake = hfm_waitq_take(&b->waiters);
	pthread_mutex_unlock(&b->lock);
	task_push_at(bc, b, TASK_KEEP, keep);
	/* counted once the old files are gone: the stat tells it is over */
	atomic_fetch_add(&bc->n_corrupt, 1);
	if (rc)
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR, "blobcache: recreate %s: %s", b->oid,
			hfm_error_last());
	hfm_waitq_fire(wake);
}

/* Under bc->lock: timers that are due (every one when stopping) join the queue. */
static void timers_due(struct hfm_blobcache *bc)
{
	uint64_t now = bc->timer_head && !bc->stopping ? hfm_mono_ns() : 0;

	while (bc->timer_head && (bc->stopping || bc->timer_head->due <= now)) {
		struct blob_task *j = bc->timer_head;
		bc->timer_head = j->next;
		task_append(&bc->task_head, &bc->task_tail, j);
	}
}

static void dirsync(struct hfm_blobcache *bc);

static void run_task(struct hfm_blobcache *bc, struct blob_task *j)
{
	struct hfm_blob *b = j->b;

	if (j->kind == TASK_DIRSYNC) {
		dirsync(bc);
		return;
	}
	if (j->kind == TASK_COMMIT) {
		if (j->batch)
			commit_batch(bc, j->batch);
		else
			commit_due(bc);
		return;
	}
	if (j->kind == TASK_KEEP)
		return;                  /* its reference goes with it */
	if (j->kind == TASK_FILL) {
		/* not behind a sync or a hash of this blob: it only starts a fetch */
		pthread_mutex_lock(&b->lock);
		b->fill_timer = 0;
		pthread_mutex_unlock(&b->lock);
		fill_pump(b);
		return;
	}
	if (j->kind == TASK_HASH) {
		hash_run(b);             /* a hashing thread; not behind a sync */
		return;
	}
	pthread_mutex_lock(&b->io_lock);
	if (j->kind == TASK_FINISH) {
		finish(b);
	} else {
		/* blocks filled from now on queue the next one */
		pthread_mutex_lock(&b->lock);
		if (j->kind == TASK_TIMER)
			b->timer_queued = 0;
		else
			b->flush_queued = 0;
		pthread_mutex_unlock(&b->lock);
		flush(b);
	}
	pthread_mutex_unlock(&b->io_lock);
}

/* Run a popped task (without bc->lock) and drop it with its blob reference. */
static void task_run_free(struct hfm_blobcache *bc, struct blob_task *j)
{
	run_task(bc, j);
	hfm_blob_release(j->b);
	free(j);
}

/* Under bc->lock: the next task of the queue, or NULL. */
static struct blob_task *task_pop(struct blob_task **head, struct blob_task **tail)
{
	struct blob_task *j = *head;

	if (j) {
		*head = j->next;
		if (!*head)
			*tail = NULL;
	}
	return j;
}

static void *hasher(void *arg)
{
	struct hfm_blobcache *bc = arg;

	pthread_setname_np(pthread_self(), "hfm-blob-hash");
	pthread_mutex_lock(&bc->lock);
	for (;;) {
		struct blob_task *j = task_pop(&bc->hash_head, &bc->hash_tail);

		if (!j) {
			if (bc->stopping)
				break;
			pthread_cond_wait(&bc->hash_cv, &bc->lock);
			continue;
		}
		pthread_mutex_unlock(&bc->lock);
		task_run_free(bc, j);
		pthread_mutex_lock(&bc->lock);
	}
	pthread_mutex_unlock(&bc->lock);
	return NULL;
}

static void *worker(void *arg)
{
	struct hfm_blobcache *bc = arg;

	pthread_setname_np(pthread_self(), "hfm-blob-sync");
	pthread_mutex_lock(&bc->lock);
	for (;;) {
		struct blob_task *j;

		timers_due(bc);
		j = bc->task_head;
		if (!j) {
			if (bc->stopping)
				break;           /* queue and timers drained */
			if (bc->timer_head)
				hfm_cond_wait_mono(&bc->task_cv, &bc->lock, bc->timer_head->due);
			else
				pthread_cond_wait(&bc->task_cv, &bc->lock);
			continue;
		}
		task_pop(&bc->task_head, &bc->task_tail);
		pthread_mutex_unlock(&bc->lock);
		task_run_free(bc, j);
		pthread_mutex_lock(&bc->lock);
	}
	pthread_mutex_unlock(&bc->lock);
	return NULL;
}

/* ---- the cache ------------------------------------------------------------ */

int hfm_blobcache_new(struct hfm_blobcache **out, const struct hfm_store *store,
		      const struct hfm_blobcache_opts *o)
{
	uint32_t bs = o->block_size ? o->block_size : 1u << 20;
	long page = sysconf(_SC_PAGESIZE);
	struct hfm_blobcache *bc;
	int i, rc, partial_fd = -1;

	*out = NULL;
	if (!o->fetch)
		rc = hfm_error_set(HFM_EINVAL, "blobcache needs a fetch callback");
	else if ((bs & (bs - 1)) || bs < (uint32_t)(page > 4096 ? page : 4096) || bs > (1u << 30))
		rc = hfm_error_set(HFM_EINVAL, "block size %u is not a power of two "
				   "between the page size and 1 GiB", bs);
	else if (!(rc = hfm_store_mkdirs(store, "partial")) &&
		 (partial_fd = openat(store->root_fd, "partial",
				      O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = hfm_error_set(HFM_EIO, "%s/partial: %s", store->root, strerror(errno));
	if (rc) {
		/* grew_cls is ours from here on, even when there is no cache */
		if (o->grew_release)
			o->grew_release(o->grew_cls);
		return rc;
	}
	bc = hfm_calloc(1, sizeof(*bc));
	bc->store = store;
	bc->partial_fd = partial_fd;
	bc->bs_shift = (uint32_t)__builtin_ctz(bs);
	bc->run_blocks = o->run_blocks ? o->run_blocks : 64;
	bc->readahead_blocks = o->readahead_blocks ? o->readahead_blocks : 32;
	/* 8 MiB: a sync there costs ~6 ms on a virtio disk, in a worker (docs/proxy-cache.md) */
	bc->sync_bytes = o->sync_bytes ? o->sync_bytes : 8ull << 20;
	bc->sync_ns = (uint64_t)(o->sync_ms ? o->sync_ms : 1000) * 1000000;
	bc->fail_backoff_ns = (uint64_t)(o->fail_backoff_ms ? o->fail_backoff_ms : 10000) * 1000000;
	bc->fill_idle_ns = (uint64_t)(o->fill_idle_ms ? o->fill_idle_ms : 1000) * 1000000;
	/* one block at most (a small blob is one fetch), 1 MiB unless told: its
	 * memory is held while it is fetched and read */
	if (o->memory_max >= 0)
		bc->small_lim = HFM_MIN(o->memory_max ? (uint64_t)o->memory_max : SMALL_MAX,
					(uint64_t)bs) + 1;
	bc->small_held_max = o->memory_held_max ? o->memory_held_max : 256ull << 20;
	bc->batch_max = o->publish_batch ? o->publish_batch : 64;
	bc->batch_bytes = 16ull << 20;
	bc->batch_ns = (uint64_t)(o->publish_ms ? o->publish_ms : 20) * 1000000;
	bc->staged_tail = &bc->staged;
	bc->o = *o;
	pthread_mutex_init(&bc->lock, NULL);
	pthread_mutex_init(&bc->pool_lock, NULL);
	hfm_cond_init_mono(&bc->task_cv);
	pthread_cond_init(&bc->hash_cv, NULL);
	bc->workers = hfm_calloc((size_t)(o->workers > 0 ? o->workers : 2), sizeof(*bc->workers));
	bc->hashers = hfm_calloc((size_t)(o->hash_workers > 0 ? o->hash_workers : 1),
				 sizeof(*bc->hashers));
	for (i = 0; i < (o->workers > 0 ? o->workers : 2); i++, bc->nworkers++)
		if ((errno = pthread_create(&bc->workers[i], NULL, worker, bc)))
			goto fail;
	for (i = 0; i < (o->hash_workers > 0 ? o->hash_workers : !o->hash_workers); i++,
	     bc->nhashers++)
		if ((errno = pthread_create(&bc->hashers[i], NULL, hasher, bc)))
			goto fail;
	*out = bc;
	return 0;
fail:
	rc = hfm_error_set(HFM_ERROR, "blobcache thread: %s", strerror(errno));
	hfm_blobcache_free(bc);
	return rc;
}

void hfm_blobcache_free(struct hfm_blobcache *bc)
{
	int i;

	if (!bc)
		return;
	atomic_store(&bc->fills_stopped, 1);
	pthread_mutex_lock(&bc->lock);
	bc->stopping = 1;
	pthread_cond_broadcast(&bc->task_cv);
	pthread_cond_broadcast(&bc->hash_cv);
	pthread_mutex_unlock(&bc->lock);
	for (i = 0; i < bc->nhashers; i++)
		pthread_join(bc->hashers[i], NULL);
	for (i = 0; i < bc->nworkers; i++)
		pthread_join(bc->workers[i], NULL);
	/*
	 * What one pool queued for the other after that one stopped (a hash's
	 * finish), and small blobs still in the open batch (their TASK_COMMIT
	 * may have run before they joined): publishing queues directory syncs,
	 * which this loop runs too.
	 */
	for (;;) {
		struct blob_task *j;
		struct staged *batch = NULL;

		pthread_mutex_lock(&bc->lock);
		timers_due(bc);
		j = task_pop(&bc->hash_head, &bc->hash_tail);
		if (!j)
			j = task_pop(&bc->task_head, &bc->task_tail);
		if (!j)
			batch = take_batch_locked(bc);
		pthread_mutex_unlock(&bc->lock);
		if (j)
			task_run_free(bc, j);
		else if (batch)
			commit_batch(bc, batch);
		else
			break;
	}
	if (bc->o.grew_release)
		bc->o.grew_release(bc->o.grew_cls);
	if (atomic_load(&bc->n_open))
		hfm_log(bc->o.log, bc->o.log_cls, HFM_LOG_ERROR,
			"blobcache: freed with %llu blobs still open",
			(unsigned long long)atomic_load(&bc->n_open));
	free(bc->workers);
	free(bc->hashers);
	while (bc->npool)
		free(bc->pool[--bc->npool]);
	close(bc->partial_fd);
	pthread_cond_destroy(&bc->task_cv);
	pthread_cond_destroy(&bc->hash_cv);
	pthread_mutex_destroy(&bc->pool_lock);
	pthread_mutex_destroy(&bc->lock);
	free(bc);
}

void hfm_blobcache_stats(struct hfm_blobcache_stats *out, struct hfm_blobcache *bc)
{
	out->open_blobs = atomic_load(&bc->n_open);
	out->fetches = atomic_load(&bc->n_fetches);
	out->fetch_failures = atomic_load(&bc->n_fetch_failures);
	out->bytes_written = atomic_load(&bc->n_bytes);
	out->syncs = atomic_load(&bc->n_syncs);
	out->verified = atomic_load(&bc->n_verified);
	out->corrupt = atomic_load(&bc->n_corrupt);
	out->hashed_given = atomic_load(&bc->n_hashed_given);
	out->hashed_read = atomic_load(&bc->n_hashed_read);
	out->dirsyncs = atomic_load(&bc->n_dirsyncs);
	out->publish_batches = atomic_load(&bc->n_batches);
}
