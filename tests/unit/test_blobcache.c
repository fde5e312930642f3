/* test_blobcache.c - partial blobs, single flight, crashes, verification. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hfm/blobcache.h"
#include "hfm/hash.h"
#include "logcap.h"
#include "tap.h"

#define BS (64u * 1024)

/* ---- a fetcher the test drives ------------------------------------------ */

enum { F_MANUAL, F_SYNC, F_ASYNC };

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int mode;
	int fail_start;                  /* returned by the callback when set */
	struct hfm_blob_fetch *q[256];
	const uint8_t *qsrc[256];
	int nq;
	int nfetches;
	uint64_t fetched;                /* bytes asked for */
	int stop;
	int bufs;                        /* serve through the cache's buffers, as blobfetch.c */
	uint64_t kept;                   /* buffers the cache kept for its digest */
} fk = { .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Write n bytes from src through a cache buffer (fk.bufs); *buf is NULL when kept. */
static int write_buf(struct hfm_blob_fetch *f, void **buf, const uint8_t *src, size_t n)
{
	int rc;

	if (!*buf)
		*buf = hfm_blob_fetch_buf(f);
	memcpy(*buf, src, n);
	rc = hfm_blob_fetch_write_buf(f, buf, n);
	if (!*buf)
		__atomic_add_fetch(&fk.kept, 1, __ATOMIC_SEQ_CST);
	return rc;
}

/* Write the whole range of f from src in small pieces, then end it. */
static void serve(struct hfm_blob_fetch *f, const uint8_t *src)
{
	uint64_t off = hfm_blob_fetch_offset(f), len = hfm_blob_fetch_length(f), done = 0;
	size_t piece = fk.bufs ? HFM_BLOB_BUF / 4 : 10000;
	void *buf = NULL;
	int rc = 0;

	while (done < len && !rc) {
		size_t n = len - done < piece ? (size_t)(len - done) : piece;
		if (fk.bufs)
			rc = write_buf(f, &buf, src + off + done, n);
		else
			rc = hfm_blob_fetch_write(f, src + off + done, n);
		done += n;
	}
	if (buf)
		hfm_blob_fetch_buf_put(f, buf);
	hfm_blob_fetch_done(f, rc);
}

/*
 * The fake upstream serves bytes from memory: the origin's URL names the
 * buffer ("mem:<address>"), as a fill keeps only the URL of the origin it
 * was given.
 */
static const struct hfm_blob_origin *ORIGIN(const uint8_t *p)
{
	static __thread char urls[8][48];
	static __thread struct hfm_blob_origin o[8];
	static __thread unsigned next;
	unsigned i = next++ % 8;

	snprintf(urls[i], sizeof(urls[i]), "mem:%p", (const void *)p);
	o[i].url = urls[i];
	o[i].authorization = NULL;
	return &o[i];
}

static int fake_fetch(void *cls, struct hfm_blob_fetch *f, const struct hfm_blob_origin *origin)
{
	void *p = NULL;
	const uint8_t *src;
	int mode;

	if (sscanf(origin->url, "mem:%p", &p) != 1)
		abort();
	src = p;

	pthread_mutex_lock(&fk.lock);
	fk.nfetches++;
	fk.fetched += hfm_blob_fetch_length(f);
	mode = fk.mode;
	if (fk.fail_start) {
		pthread_mutex_unlock(&fk.lock);
		return fk.fail_start;
	}
	if (mode != F_SYNC) {
		fk.q[fk.nq] = f;
		fk.qsrc[fk.nq++] = src;
		pthread_cond_broadcast(&fk.cv);
	}
	pthread_mutex_unlock(&fk.lock);
	if (mode == F_SYNC)
		serve(f, src);
	return 0;
}

static struct hfm_blob_fetch *take_fetch(void)
{
	struct hfm_blob_fetch *f = NULL;

	pthread_mutex_lock(&fk.lock);
	if (fk.nq) {
		f = fk.q[0];
		memmove(fk.q, fk.q + 1, (size_t)(fk.nq - 1) * sizeof(fk.q[0]));
		memmove(fk.qsrc, fk.qsrc + 1, (size_t)(fk.nq - 1) * sizeof(fk.qsrc[0]));
		fk.nq--;
	}
	pthread_mutex_unlock(&fk.lock);
	return f;
}

/* F_ASYNC: an "upstream" thread serving queued fetches. */
static void *async_server(void *arg)
{
	pthread_mutex_lock(&fk.lock);
	for (;;) {
		struct hfm_blob_fetch *f;
		const uint8_t *src;
		while (!fk.nq && !fk.stop)
			pthread_cond_wait(&fk.cv, &fk.lock);
		if (!fk.nq)
			break;
		f = fk.q[0];
		src = fk.qsrc[0];
		memmove(fk.q, fk.q + 1, (size_t)(fk.nq - 1) * sizeof(fk.q[0]));
		memmove(fk.qsrc, fk.qsrc + 1, (size_t)(fk.nq - 1) * sizeof(fk.qsrc[0]));
		fk.nq--;
		pthread_mutex_unlock(&fk.lock);
		serve(f, src);
		pthread_mutex_lock(&fk.lock);
	}
	pthread_mutex_unlock(&fk.lock);
	return NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static char root[] = "/tmp/hfm-blobcache-XXXXXX";
static struct hfm_store *store;

#define NEVER_MS 3600000u                /* a sync_ms that never comes in a test */

/* What the cache told its grew callback. */
static struct {
	uint64_t bytes;
	int publishes, releases;
} grew;

static void count_grew(void *cls, uint64_t bytes)
{
	(void)cls;
	if (bytes)
		__atomic_add_fetch(&grew.bytes, bytes, __ATOMIC_SEQ_CST);
	else
		__atomic_add_fetch(&grew.publishes, 1, __ATOMIC_SEQ_CST);
}

static void count_release(void *cls)
{
	(void)cls;
	grew.releases++;
}

static void cache_opts(struct hfm_blobcache_opts *o, uint64_t sync_bytes, unsigned sync_ms)
{
	memset(o, 0, sizeof(*o));
	o->block_size = BS;
	o->run_blocks = 8;
	o->readahead_blocks = 4;
	o->sync_bytes = sync_bytes;
	o->sync_ms = sync_ms;
	o->fetch = fake_fetch;
	o->log = logcap;
}

static struct hfm_blobcache *new_cache_sync(uint64_t sync_bytes, unsigned sync_ms)
{
	struct hfm_blobcache_opts o;
	struct hfm_blobcache *bc = NULL;

	cache_opts(&o, sync_bytes, sync_ms);
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	return bc;
}

/* A cache whose fills wait `idle_ms` (0: the default second) for quiet. */
static struct hfm_blobcache *new_cache_fill(unsigned idle_ms, unsigned backoff_ms)
{
	struct hfm_blobcache_opts o;
	struct hfm_blobcache *bc = NULL;

	cache_opts(&o, 0, 0);
	o.fill_idle_ms = idle_ms;
	o.fail_backoff_ms = backoff_ms;
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	return bc;
}

static struct hfm_blobcache *new_cache(uint64_t sync_bytes, unsigned backoff_ms)
{
	return sync_bytes ? new_cache_sync(sync_bytes, 0) : new_cache_fill(0, backoff_ms);
}

/* Wait (bounded) until the counter at `field` of the cache's stats reaches n. */
static int wait_stat(struct hfm_blobcache *bc, size_t field, uint64_t n)
{
	struct hfm_blobcache_stats st;
	int i;

	for (i = 0; i < 3000; i++) {
		hfm_blobcache_stats(&st, bc);
		if (*(const uint64_t *)((const char *)&st + field) >= n)
			return 1;
		usleep(10000);
	}
	return 0;
}

/* ... until the cache has made blocks durable `n` times. */
#define wait_syncs(bc, n) wait_stat(bc, offsetof(struct hfm_blobcache_stats, syncs), n)
/* ... until `n` blobs failed verification. */
#define wait_corrupt(bc, n) wait_stat(bc, offsetof(struct hfm_blobcache_stats, corrupt), n)

static uint8_t *random_content(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	srand(seed);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
	return p;
}

/* Whether <root>/partial/<oid><suffix> exists. */
static int partial_exists(const char *oid, const char *suffix)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/partial/%s%s", root, oid, suffix);
	return stat(p, &st) == 0;
}

static int object_matches(const char *oid, const uint8_t *content, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	uint64_t size;
	int fd, ok;

	if (hfm_store_object_open(&fd, &size, store, oid)) {
		free(buf);
		return 0;
	}
	ok = size == n && pread(fd, buf, n + 1, 0) == (ssize_t)n && memcmp(buf, content, n) == 0;
	close(fd);
	free(buf);
	return ok;
}

/* Wait (bounded) until the blob is published. */
static int wait_complete(struct hfm_blob *b)
{
	int i;

	for (i = 0; i < 500 && !hfm_blob_complete(b); i++)
		usleep(10000);
	return hfm_blob_complete(b);
}

/* Read the whole blob through ensure (blocking) and compare. */
static int read_all(struct hfm_blob *b, const uint8_t *content)
{
	struct hfm_blob_reader r = { 0 };
	uint64_t size = hfm_blob_size(b), off = 0, avail;
	uint8_t *buf = malloc(BS);
	int mem = hfm_blob_in_memory(b), fd = mem ? -1 : hfm_blob_fd(b), ok = mem || fd >= 0;

	while (ok && off < size) {
		size_t n;
		if (hfm_blob_ensure(&avail, b, &r, off, size, ORIGIN(content), NULL)) {
			ok = 0;
			break;
		}
		n = avail < BS ? (size_t)avail : BS;
		if ((mem ? hfm_blob_read_memory(b, buf, n, off)
			 : pread(fd, buf, n, (off_t)off)) != (ssize_t)n ||
		    memcmp(buf, content + off, n))
			ok = 0;
		off += n;
	}
	hfm_blob_reader_dispose(&r);
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

static int wakes;
static void count_wake(void *cls)
{
	__atomic_add_fetch((int *)cls, 1, __ATOMIC_SEQ_CST);
}

/* A fresh one-shot waiter that counts into `wakes`; freed at exit. */
static struct hfm_waiter *all_w[64];
static int n_w;

static struct hfm_waiter *W(void)
{
	struct hfm_waiter *w = hfm_waiter_new(count_wake, &wakes);

	if (n_w < 64)
		all_w[n_w++] = w;
	return w;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_single_flight(void)
{
	size_t size = 20 * BS + 1234;
	uint8_t *content = random_content(size, 1);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache(0, 0);
	struct hfm_blob *b, *b2;
	struct hfm_blob_reader r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct hfm_blob_fetch *f;
	struct hfm_blob_range rg[4];
	uint64_t avail;
	int rc;

	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	fk.nfetches = 0;
	TAP_IS_INT(hfm_blob_open(&b, bc, oid, size), 0, "open a new blob");
	TAP_OK(partial_exists(oid, "") && partial_exists(oid, ".map"),
	       "partial data and map created");
	TAP_IS_INT(hfm_blob_open(&b2, bc, oid, size), 0, "open again");
	TAP_OK(b == b2, "one shared object per oid");
	hfm_blob_release(b2);
	TAP_IS_INT(hfm_blob_open(&b2, bc, oid, size + 1), HFM_EINVAL, "a different size is refused");
	TAP_IS_INT(hfm_blob_available(b, 0), 0, "nothing present yet");

	rc = hfm_blob_ensure(&avail, b, &r1, 0, 1, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EAGAIN, "reader 1 waits");
	rc = hfm_blob_ensure(&avail, b, &r2, 100, 101, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EAGAIN, "reader 2 waits");
	TAP_IS_INT(fk.nfetches, 1, "single flight: one fetch for two readers");
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_offset(f) == 0 && hfm_blob_fetch_length(f) == BS,
	       "a 1-byte range fetches one block");

	/* half a block arrives: both woken, and it is readable already */
	hfm_blob_fetch_write(f, content, BS / 2);
	TAP_IS_INT(wakes, 2, "both readers woken by progress");
	TAP_IS_INT(hfm_blob_available(b, 0), BS / 2, "streaming: bytes readable before the block is");
	rc = hfm_blob_ensure(&avail, b, &r1, 0, 1, ORIGIN(content), W());
	TAP_OK(rc == 0 && avail == BS / 2, "ensure answers the high-water mark");
	TAP_IS_INT(hfm_blob_ranges(b, rg, 4), 0, "no complete block yet");
	TAP_IS_INT(hfm_blob_fetch_write(f, content + BS / 2, BS), HFM_EINVAL,
		   "writing past the fetch is refused");
	hfm_blob_fetch_write(f, content + BS / 2, BS / 2);
	hfm_blob_fetch_done(f, 0);
	TAP_IS_INT(hfm_blob_available(b, 0), BS, "block 0 present");

	/* out of order: block 10, then a failing fetch at block 15 */
	rc = hfm_blob_ensure(&avail, b, &r3, 10 * BS + 5, 11 * BS, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EAGAIN, "block 10 missing");
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_offset(f) == 10 * BS && hfm_blob_fetch_length(f) == BS,
	       "fetch for block 10 only (the reader's end bounds it)");
	serve(f, content);
	TAP_IS_INT(hfm_blob_available(b, 10 * BS + 5), BS - 5, "block 10 present");
	TAP_IS_INT(hfm_blob_available(b, 9 * BS), 0, "block 9 still missing");
	TAP_IS_INT(hfm_blob_ranges(b, rg, 4), 2, "two present ranges");
	TAP_OK(rg[0].start == 0 && rg[0].end == BS && rg[1].start == 10 * BS &&
	       rg[1].end == 11 * BS, "ranges are [0,1) and [10,11) blocks");

	hfm_blob_reader_dispose(&r2);
	wakes = 0;
	rc = hfm_blob_ensure(&avail, b, &r2, 15 * BS, size, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EAGAIN, "block 15 missing");
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_offset(f) == 15 * BS && hfm_blob_fetch_length(f) == 6 * BS - (BS - 1234),
	       "a run covers the missing blocks to the end (coalesced)");
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r3, 17 * BS, size, ORIGIN(content), W()), HFM_EAGAIN,
		   "a reader inside the run waits on it too");
	TAP_IS_INT(fk.nfetches, 3, "still no extra fetch");
	hfm_blob_fetch_write(f, content + 15 * BS, BS + 100);
	hfm_blob_fetch_done(f, hfm_error_set(HFM_EUPSTREAM, "connection dropped"));
	TAP_OK(wakes >= 2, "failure wakes the waiters");
	TAP_IS_INT(hfm_blob_available(b, 15 * BS), BS, "the block completed before the drop stays");
	TAP_IS_INT(hfm_blob_available(b, 16 * BS), 0, "the half block is released");
	rc = hfm_blob_ensure(&avail, b, &r3, 17 * BS, size, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EUPSTREAM, "a waiter of the failed fetch gets its error");
	rc = hfm_blob_ensure(&avail, b, &r3, 17 * BS, size, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EAGAIN, "asking again starts a new fetch");
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_offset(f) == 17 * BS, "the new fetch starts at the reader");
	hfm_blob_fetch_done(f, HFM_ETIMEOUT);

	/* a start that fails synchronously (offline) */
	fk.fail_start = HFM_EOFFLINE;
	hfm_blob_reader_dispose(&r3);
	rc = hfm_blob_ensure(&avail, b, &r3, 17 * BS, size, ORIGIN(content), W());
	TAP_IS_INT(rc, HFM_EOFFLINE, "a fetch that cannot start fails the reader at once");
	fk.fail_start = 0;

	/* finish with blocking readers and a synchronous fetcher */
	fk.mode = F_SYNC;
	TAP_OK(read_all(b, content), "every byte readable and right");
	TAP_OK(wait_complete(b), "verified and published");
	TAP_OK(object_matches(oid, content, size), "objects/ holds the content");
	TAP_OK(!partial_exists(oid, "") && !partial_exists(oid, ".map"),
	       "partial files gone");
	TAP_OK(read_all(b, content), "still readable after publish (same inode)");
	{
		struct hfm_blobcache_stats st;
		hfm_blobcache_stats(&st, bc);
		TAP_OK(st.verified == 1 && st.corrupt == 0 && st.open_blobs == 1, "stats");
	}

	hfm_blob_reader_dispose(&r1);
	hfm_blob_reader_dispose(&r2);
	hfm_blob_reader_dispose(&r3);
	hfm_blob_release(b);
	/* a later open finds the object */
	TAP_IS_INT(hfm_blob_open(&b, bc, oid, size), 0, "reopen a complete blob");
	TAP_OK(hfm_blob_complete(b) && hfm_blob_available(b, 7) == size - 7, "complete on open");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
}

/* A sequential reader gets the next run started before it needs it. */
static void test_readahead(void)
{
	size_t size = 30 * BS;
	uint8_t *content = random_content(size, 9);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache(0, 0);
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob_fetch *f;
	struct hfm_blob *b;
	uint64_t avail;
	int rc;

	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	fk.nfetches = 0;
	hfm_blob_open(&b, bc, oid, size);
	rc = hfm_blob_ensure(&avail, b, &r, 0, size, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_length(f) == 8 * BS && fk.nfetches == 1,
	       "readahead: first run is run_blocks long");
	serve(f, content);
	rc = hfm_blob_ensure(&avail, b, &r, BS, size, ORIGIN(content), W());
	TAP_OK(rc == 0 && avail == 7 * BS && fk.nfetches == 1,
	       "readahead: not yet, the run's end is beyond the window");
	rc = hfm_blob_ensure(&avail, b, &r, 5 * BS, size, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == 0 && avail == 3 * BS, "readahead: the reader is served from cache");
	TAP_OK(f && hfm_blob_fetch_offset(f) == 8 * BS && hfm_blob_fetch_length(f) == 8 * BS,
	       "readahead: the next run started while 3 blocks are left");
	hfm_blob_fetch_done(f, HFM_ETIMEOUT);
	rc = hfm_blob_ensure(&avail, b, &r, 20 * BS, 20 * BS + 1, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_length(f) == BS && !take_fetch(),
	       "readahead: bounded by the reader's end");
	hfm_blob_fetch_done(f, HFM_ETIMEOUT);
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
}

static void test_git_blob_and_corrupt(void)
{
	size_t size = 3 * BS + 10;
	uint8_t *good = random_content(size, 2), *bad = random_content(size, 3),
		*good2 = random_content(size, 7);
	char oid[HFM_SHA1_HEX + 1];
	struct hfm_blobcache *bc = new_cache(0, 300);
	struct hfm_blobcache_stats st;
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob *b;
	uint64_t avail;
	int rc, i;

	/* a 40-hex oid is a git blob id */
	hfm_git_blob_id(oid, good, size);
	fk.mode = F_SYNC;
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(read_all(b, good), "git blob: read");
	TAP_OK(wait_complete(b) && object_matches(oid, good, size), "git blob: verified by sha1");
	hfm_blob_release(b);

	/* upstream sends other bytes than the id says */
	hfm_git_blob_id(oid, good2, size);
	hfm_blob_open(&b, bc, oid, size);
	read_all(b, bad);
	for (i = 0; i < 300; i++) {
		hfm_blobcache_stats(&st, bc);
		if (st.corrupt)
			break;
		usleep(10000);
	}
	TAP_IS_INT(st.corrupt, 1, "corrupt: verification failed");
	TAP_OK(!hfm_blob_complete(b) && !hfm_store_object_exists(store, oid), "corrupt: not published");
	TAP_IS_INT(hfm_blob_available(b, 0), 0, "corrupt: discarded, nothing present");
	TAP_OK(partial_exists(oid, ".map"), "corrupt: started over with a fresh map");
	TAP_OK(logcap_has("discarded") && logcap_has(oid), "corrupt: logged with the reason");
	/* the next reader is not refused: upstream may be right again */
	TAP_OK(read_all(b, good2), "corrupt: the next request fetches it again at once");
	TAP_OK(wait_complete(b) && object_matches(oid, good2, size), "corrupt: and then verified");
	rc = hfm_blob_ensure(&avail, b, &r, 0, size, ORIGIN(bad), NULL);
	TAP_OK(rc == 0 && avail == size, "corrupt: a reader of the verified blob reads it");
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(good);
	free(bad);
	free(good2);
}

/*
 * The digest follows the bytes in order as they arrive (blobcache.c): a
 * blob filled back to front is still verified, and bytes hashed before a
 * fetch failed mid-block do not vouch for what the next fetch writes there.
 */
static void test_hash_in_order(void)
{
	size_t size = 12 * BS + 7;
	uint8_t *content = random_content(size, 11), *bad;
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache(0, 300);
	struct hfm_blobcache_stats st;
	struct hfm_blob_reader r = { 0 }, r2 = { 0 };
	struct hfm_blob_fetch *f;
	struct hfm_blob *b;
	uint64_t avail, corrupt0;
	int rc, i;

	/* the tail first (a Range request), then the head, then the middle */
	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	hfm_blob_open(&b, bc, oid, size);
	rc = hfm_blob_ensure(&avail, b, &r, 9 * BS, size, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_offset(f) == 9 * BS, "in order: tail first");
	serve(f, content);
	rc = hfm_blob_ensure(&avail, b, &r, 0, 3 * BS, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_length(f) == 3 * BS, "in order: then the head");
	serve(f, content);
	rc = hfm_blob_ensure(&avail, b, &r, 3 * BS, 9 * BS, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_length(f) == 6 * BS, "in order: the middle last");
	serve(f, content);
	TAP_OK(wait_complete(b) && object_matches(oid, content, size),
	       "in order: filled out of order, verified and published");
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);

	/* half a block arrives right, the fetch fails, the next one sends it wrong */
	size = 4 * BS;
	bad = malloc(size);
	memcpy(bad, content, size);
	bad[100] ^= 0x5a;
	hfm_sha256_hex(oid, content, size);
	hfm_blobcache_stats(&st, bc);
	corrupt0 = st.corrupt;
	hfm_blob_open(&b, bc, oid, size);
	rc = hfm_blob_ensure(&avail, b, &r, 0, size, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f, "rewrite: a fetch starts");
	hfm_blob_fetch_write(f, content, BS / 2);
	hfm_blob_fetch_done(f, HFM_ETIMEOUT);
	rc = hfm_blob_ensure(&avail, b, &r2, 0, size, ORIGIN(bad), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_offset(f) == 0, "rewrite: fetched again");
	hfm_blob_fetch_write(f, bad, BS / 2);
	hfm_blob_fetch_write(f, bad + BS / 2, size - BS / 2);
	hfm_blob_fetch_done(f, 0);
	for (i = 0; i < 300; i++) {
		hfm_blobcache_stats(&st, bc);
		if (st.corrupt > corrupt0)
			break;
		usleep(10000);
	}
	TAP_IS_INT(st.corrupt - corrupt0, 1, "rewrite: the wrong bytes fail verification");
	TAP_OK(!hfm_store_object_exists(store, oid), "rewrite: not published");
	usleep(350 * 1000);
	fk.mode = F_SYNC;
	TAP_OK(read_all(b, content) && wait_complete(b) &&
	       object_matches(oid, content, size), "rewrite: the right bytes then verify");
	hfm_blob_reader_dispose(&r);
	hfm_blob_reader_dispose(&r2);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(bad);
	free(content);
}

/*
 * A blob that arrives whole before any flush is published without one: its
 * data is made durable by publishing, and its map (about to go) never is.
 * A small one (one block: opts.memory_max) has no files under partial/ at
 * all: it is verified in memory, then published from there.
 */
static void test_small_no_sync(void)
{
	size_t size = BS / 2 + 7;
	uint8_t *content = random_content(size, 14);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache_sync(1ull << 40, NEVER_MS);
	struct hfm_blobcache_opts o;
	struct hfm_blobcache_stats st;
	struct hfm_blob *b;

	hfm_sha256_hex(oid, content, size);
	fk.mode = F_SYNC;
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(hfm_blob_in_memory(b) && !partial_exists(oid, "") && !partial_exists(oid, ".map"),
	       "small: in memory, nothing under partial/");
	TAP_OK(read_all(b, content) && wait_complete(b) && object_matches(oid, content, size),
	       "small: read, verified and published");
	hfm_blobcache_stats(&st, bc);
	TAP_IS_INT(st.syncs, 0, "small: no flush of its blocks or map");
	TAP_OK(!partial_exists(oid, "") && !partial_exists(oid, ".map"),
	       "small: published without a partial file");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* with memory_max -1 a one-block blob takes the partial/ path */
	hfm_sha256_hex(oid, content, BS / 2);
	cache_opts(&o, 1ull << 40, NEVER_MS);
	o.memory_max = -1;
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	hfm_blob_open(&b, bc, oid, BS / 2);
	TAP_OK(!hfm_blob_in_memory(b) && partial_exists(oid, "") && partial_exists(oid, ".map"),
	       "memory_max -1: a one-block blob under partial/ too");
	TAP_OK(read_all(b, content) && wait_complete(b) && object_matches(oid, content, BS / 2),
	       "memory_max -1: read, verified and published");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
}

/*
 * A small blob: concurrent readers (a whole read and a Range) share its one
 * fetch, and nothing of it is readable before its last byte verified it.
 * Wrong bytes from upstream fail the fetch with HFM_EUPSTREAM, publish
 * nothing, leave no file, and every reader that waited gets an error; a
 * transfer cut short leaves nothing either.  Then a right one publishes.
 */
static void test_small_memory(void)
{
	size_t size = BS - 3;
	uint8_t *content = random_content(size, 21), *bad = malloc(size), buf[16];
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache_sync(1ull << 40, NEVER_MS);
	struct hfm_blobcache_stats st;
	struct hfm_blob_reader r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct hfm_blob_fetch *f;
	struct hfm_blob *b;
	uint64_t avail, discards;
	int n0, rc1, rc2;

	hfm_sha256_hex(oid, content, size);
	memcpy(bad, content, size);
	bad[size / 2] ^= 0x40;
	fk.mode = F_MANUAL;
	n0 = fk.nfetches;
	hfm_blob_open(&b, bc, oid, size);
	rc1 = hfm_blob_ensure(&avail, b, &r1, 0, size, ORIGIN(bad), W());
	rc2 = hfm_blob_ensure(&avail, b, &r2, 100, 200, ORIGIN(bad), W());
	f = take_fetch();
	TAP_OK(rc1 == HFM_EAGAIN && rc2 == HFM_EAGAIN && f && fk.nfetches - n0 == 1 &&
	       hfm_blob_fetch_offset(f) == 0 && hfm_blob_fetch_length(f) == size,
	       "small: two readers, one fetch of the whole blob");
	TAP_IS_INT(hfm_blob_fetch_write(f, bad, size - 1), 0, "small: bytes written");
	TAP_IS_INT(hfm_blob_available(b, 0), 0, "small: nothing readable before the last byte");
	TAP_OK(hfm_blob_read_memory(b, buf, sizeof(buf), 0) < 0, "small: no copy of unverified bytes");
	TAP_IS_INT(hfm_blob_fetch_write(f, bad + size - 1, 1), HFM_EUPSTREAM,
		   "small: wrong bytes: the last write fails the fetch");
	hfm_blob_fetch_done(f, HFM_EUPSTREAM);
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r1, 0, size, ORIGIN(bad), W()), HFM_ECORRUPT,
		   "small: wrong bytes: the waiting reader gets an error");
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r2, 100, 200, ORIGIN(bad), W()), HFM_ECORRUPT,
		   "small: wrong bytes: the Range reader too");
	hfm_blobcache_stats(&st, bc);
	TAP_OK(st.corrupt == 1 && logcap_has("discarded") && logcap_has(oid),
	       "small: wrong bytes: counted and logged with the blob id");
	TAP_OK(hfm_blob_available(b, 0) == 0 && !hfm_blob_complete(b) &&
	       !hfm_store_object_exists(store, oid) && !partial_exists(oid, ""),
	       "small: wrong bytes: nothing readable, published or left");
	discards = hfm_blob_discards(b);
	TAP_IS_INT(discards, 1, "small: wrong bytes: one discard");

	/* cut short: half of it, then the transfer fails */
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r3, 0, size, ORIGIN(content), W()), HFM_EAGAIN,
		   "small: a new reader starts a new fetch");
	f = take_fetch();
	hfm_blob_fetch_write(f, content, size / 2);
	hfm_blob_fetch_done(f, HFM_EUPSTREAM);
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r3, 0, size, ORIGIN(content), W()), HFM_EUPSTREAM,
		   "small: cut short: its reader gets the fetch's error");
	TAP_OK(hfm_blob_available(b, 0) == 0 && !hfm_store_object_exists(store, oid) &&
	       hfm_blob_discards(b) == discards, "small: cut short: nothing readable or published");
	hfm_blob_reader_dispose(&r3);

	fk.mode = F_SYNC;
	TAP_OK(read_all(b, content) && wait_complete(b) && object_matches(oid, content, size),
	       "small: right bytes: read from memory, verified and published");
	TAP_OK(hfm_blob_read_memory(b, buf, sizeof(buf), size - 5) == 5 &&
	       !memcmp(buf, content + size - 5, 5), "small: published: still read from memory");
	hfm_blobcache_stats(&st, bc);
	TAP_IS_INT(st.dirsyncs, 0, "small: its directory is not synced per object (sync_ms later)");
	hfm_blob_reader_dispose(&r1);
	hfm_blob_reader_dispose(&r2);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* sync_ms after publishing, objects/<xx> is synced */
	bc = new_cache_sync(1ull << 40, 20);
	content[0] ^= 1;
	hfm_sha256_hex(oid, content, size);
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(read_all(b, content) && wait_complete(b) &&
	       wait_stat(bc, offsetof(struct hfm_blobcache_stats, dirsyncs), 1),
	       "small: its directory synced sync_ms after publishing");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
	free(bad);
}

/*
 * The digest hashes the buffers writers hand over (hfm_blob_fetch_write_buf)
 * on its own thread: a blob fetched in order is hashed from them with no
 * byte read back; a part that comes before the digest's cursor is not
 * kept and is read back once the cursor reaches it; wrong bytes in handed
 * buffers fail verification.
 */
/* What the batch sync hook saw (test_small_batch). */
static struct {
	char (*oids)[HFM_SHA256_HEX + 1];
	int noids;
	int calls;
	size_t total;                    /* blobs synced */
	size_t n[4];
	int present[4];                  /* of the test's objects, in objects/ then */
	int fail;                        /* the sync fails */
} sk;

static int hook_sync(void *cls, const int *fds, size_t n)
{
	int i, c = sk.calls++;

	(void)cls;
	(void)fds;
	sk.total += n;
	if (c < 4) {
		sk.n[c] = n;
		for (i = 0; i < sk.noids; i++)
			sk.present[c] += hfm_store_object_exists(store, sk.oids[i]);
	}
	return sk.fail ? hfm_error_set(HFM_EIO, "the test's sync fails") : 0;
}

/*
 * Small blobs are published in batches: staged as they verify, made
 * durable by one sync (whose hook sees none of the batch's objects in
 * objects/ yet), then linked.  Meanwhile they are read from memory.  A
 * batch closes when full (publish_batch) or publish_ms after its first
 * blob; hfm_blobcache_free publishes what waits; a failed sync publishes
 * none of its batch and leaves them readable from memory.
 */
/* The small blobs' memory is bounded (opts.memory_held_max): past it a small blob is
 * filled under partial/ like a large one, and the bytes come back when blobs go. */
static void test_small_held(void)
{
	enum { N = 4 };
	char oids[N][HFM_SHA256_HEX + 1];
	uint8_t *content[N];
	struct hfm_blobcache_opts o;
	struct hfm_blobcache_stats st;
	struct hfm_blobcache *bc;
	struct hfm_blob *b[N];
	int i, mem[N], ok = 1;

	for (i = 0; i < N; i++) {
		content[i] = random_content(100 + (size_t)i, 700 + (unsigned)i);
		hfm_sha256_hex(oids[i], content[i], 100 + (size_t)i);
	}
	cache_opts(&o, 1ull << 40, NEVER_MS);
	o.memory_held_max = 250;         /* two of them */
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	fk.mode = F_SYNC;
	for (i = 0; i < 3; i++) {
		hfm_blob_open(&b[i], bc, oids[i], 100 + (size_t)i);
		mem[i] = hfm_blob_in_memory(b[i]);
		ok &= read_all(b[i], content[i]);
	}
	TAP_OK(mem[0] && mem[1] && !mem[2],
	       "held: two small blobs in memory, the third over the bound is not");
	TAP_OK(ok && wait_complete(b[2]) && object_matches(oids[2], content[2], 102),
	       "held: ... all three read right, the third published through partial/");
	for (i = 0; i < 3; i++)
		ok &= wait_complete(b[i]);
	for (i = 0; i < 3; i++)
		hfm_blob_release(b[i]);
	for (i = 0; i < 500; i++) {
		hfm_blobcache_stats(&st, bc);
		if (!st.open_blobs)
			break;
		usleep(10000);
	}
	hfm_blob_open(&b[3], bc, oids[3], 103);
	TAP_OK(ok && hfm_blob_in_memory(b[3]) && read_all(b[3], content[3]),
	       "held: once they are gone, the next small blob is in memory again");
	hfm_blob_release(b[3]);
	hfm_blobcache_free(bc);
	for (i = 0; i < N; i++)
		free(content[i]);
}

static void test_small_batch(void)
{
	enum { N = 6 };
	char oids[N][HFM_SHA256_HEX + 1];
	uint8_t *content[N], buf[8];
	struct hfm_blobcache_opts o;
	struct hfm_blobcache_stats st;
	struct hfm_blobcache *bc;
	struct hfm_blob *b[N];
	int i, published = 0, readable = 0;

	for (i = 0; i < N; i++) {
		content[i] = random_content(100 + (size_t)i, 300 + (unsigned)i);
		hfm_sha256_hex(oids[i], content[i], 100 + (size_t)i);
	}
	memset(&sk, 0, sizeof(sk));
	sk.oids = oids;
	sk.noids = N;
	cache_opts(&o, 1ull << 40, NEVER_MS);
	o.publish_batch = 4;
	o.publish_ms = NEVER_MS;
	o.sync_staged = hook_sync;
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	fk.mode = F_SYNC;
	for (i = 0; i < 3; i++) {
		hfm_blob_open(&b[i], bc, oids[i], 100 + (size_t)i);
		readable += read_all(b[i], content[i]);
	}
	usleep(50000);                   /* the workers stage them meanwhile */
	for (i = 0; i < 3; i++)
		published += hfm_store_object_exists(store, oids[i]) + hfm_blob_complete(b[i]);
	TAP_OK(readable == 3 && published == 0 && sk.calls == 0,
	       "batch: three verified blobs are read from memory, none published yet");
	hfm_blob_open(&b[3], bc, oids[3], 103);
	TAP_OK(read_all(b[3], content[3]), "batch: the fourth is read");
	TAP_OK(wait_stat(bc, offsetof(struct hfm_blobcache_stats, publish_batches), 1) &&
	       wait_complete(b[0]) && wait_complete(b[3]), "batch: the fourth closes the batch");
	for (i = 0, published = 0; i < 4; i++)
		published += object_matches(oids[i], content[i], 100 + (size_t)i);
	TAP_OK(sk.calls == 1 && sk.n[0] == 4 && published == 4,
	       "batch: one sync for the four, then all four published");
	TAP_IS_INT(sk.present[0], 0, "batch: none of them was in objects/ at its sync");
	for (i = 4; i < N; i++) {
		hfm_blob_open(&b[i], bc, oids[i], 100 + (size_t)i);
		read_all(b[i], content[i]);
	}
	for (i = 0; i < N; i++)
		hfm_blob_release(b[i]);
	hfm_blobcache_free(bc);
	TAP_OK(sk.calls >= 2 && sk.total == N && sk.present[1] >= 4 &&
	       object_matches(oids[4], content[4], 104) && object_matches(oids[5], content[5], 105),
	       "batch: freeing the cache syncs and publishes the rest (stopping: as they come)");

	/* a failed sync: nothing of the batch published, still read from memory */
	memset(&sk, 0, sizeof(sk));
	sk.fail = 1;
	for (i = 0; i < 2; i++) {
		content[i][0] ^= 1;
		hfm_sha256_hex(oids[i], content[i], 100 + (size_t)i);
	}
	sk.oids = oids;
	sk.noids = 2;
	o.publish_batch = 2;
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	for (i = 0; i < 2; i++) {
		hfm_blob_open(&b[i], bc, oids[i], 100 + (size_t)i);
		read_all(b[i], content[i]);
	}
	wait_stat(bc, offsetof(struct hfm_blobcache_stats, publish_batches), 1);
	TAP_OK(sk.calls == 1 && !hfm_store_object_exists(store, oids[0]) &&
	       !hfm_store_object_exists(store, oids[1]) && !hfm_blob_complete(b[1]) &&
	       logcap_has("not stored"), "batch: a failed sync publishes none of it");
	TAP_OK(hfm_blob_read_memory(b[1], buf, sizeof(buf), 0) == sizeof(buf) &&
	       !memcmp(buf, content[1], sizeof(buf)), "batch: failed sync: still read from memory");
	for (i = 0; i < 2; i++)
		hfm_blob_release(b[i]);
	hfm_blobcache_free(bc);

	/* the first blob of a batch waits publish_ms at most */
	memset(&sk, 0, sizeof(sk));
	content[2][0] ^= 1;
	hfm_sha256_hex(oids[2], content[2], 102);
	o.publish_batch = 0;
	o.publish_ms = 20;
	if (hfm_blobcache_new(&bc, store, &o))
		abort();
	hfm_blob_open(&b[2], bc, oids[2], 102);
	TAP_OK(read_all(b[2], content[2]) && wait_complete(b[2]) && sk.calls == 1 &&
	       object_matches(oids[2], content[2], 102), "batch: alone, published publish_ms later");
	hfm_blobcache_stats(&st, bc);
	TAP_IS_INT(st.publish_batches, 1, "batch: counted");
	hfm_blob_release(b[2]);
	hfm_blobcache_free(bc);
	for (i = 0; i < N; i++)
		free(content[i]);
}

static void test_hash_given(void)
{
	size_t size = 40 * BS + 123;
	uint8_t *content = random_content(size, 12), *bad;
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache(0, 0);
	struct hfm_blobcache_stats s0, s1;
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob_fetch *f;
	struct hfm_blob *b;
	uint64_t avail, kept;
	void *buf = NULL;
	int rc, i;

	hfm_sha256_hex(oid, content, size);
	fk.bufs = 1;
	fk.mode = F_SYNC;
	hfm_blobcache_stats(&s0, bc);
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(read_all(b, content) && wait_complete(b) && object_matches(oid, content, size),
	       "given: read in order, verified and published");
	hfm_blobcache_stats(&s1, bc);
	TAP_IS_INT(s1.hashed_given - s0.hashed_given, size, "given: every byte hashed from the buffers");
	TAP_IS_INT(s1.hashed_read - s0.hashed_read, 0, "given: none read back");
	hfm_blob_release(b);

	/* the tail first: its buffers are not the digest's next bytes */
	size = 6 * BS;
	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	hfm_blobcache_stats(&s0, bc);
	hfm_blob_open(&b, bc, oid, size);
	rc = hfm_blob_ensure(&avail, b, &r, 3 * BS, size, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_offset(f) == 3 * BS, "given: the tail first");
	kept = fk.kept;
	write_buf(f, &buf, content + 3 * BS, 3 * BS);
	TAP_OK(buf && fk.kept == kept, "given: a buffer after the cursor stays with the writer");
	hfm_blob_fetch_buf_put(f, buf);
	buf = NULL;
	hfm_blob_fetch_done(f, 0);
	rc = hfm_blob_ensure(&avail, b, &r, 0, 3 * BS, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(rc == HFM_EAGAIN && f && hfm_blob_fetch_offset(f) == 0, "given: then the head");
	write_buf(f, &buf, content, BS);
	TAP_OK(!buf && fk.kept == kept + 1, "given: a buffer at the cursor is kept");
	write_buf(f, &buf, content + BS, 2 * BS);
	hfm_blob_fetch_buf_put(f, buf);
	buf = NULL;
	hfm_blob_fetch_done(f, 0);
	TAP_OK(wait_complete(b) && object_matches(oid, content, size), "given: out of order, verified");
	hfm_blobcache_stats(&s1, bc);
	TAP_OK(s1.hashed_read - s0.hashed_read >= 3 * BS &&
	       s1.hashed_given - s0.hashed_given + s1.hashed_read - s0.hashed_read == size,
	       "given: the tail read back, the head from its buffers");
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);

	/* wrong bytes handed over: the digest of the buffers catches them */
	size = 9 * BS + 1;
	bad = malloc(size);
	memcpy(bad, content, size);
	bad[5 * BS + 17] ^= 1;
	hfm_sha256_hex(oid, content, size);
	fk.mode = F_SYNC;
	hfm_blobcache_stats(&s0, bc);
	hfm_blob_open(&b, bc, oid, size);
	read_all(b, bad);
	for (i = 0; i < 300; i++) {
		hfm_blobcache_stats(&s1, bc);
		if (s1.corrupt > s0.corrupt)
			break;
		usleep(10000);
	}
	TAP_IS_INT(s1.corrupt - s0.corrupt, 1, "given: wrong bytes fail verification");
	TAP_OK(s1.hashed_given > s0.hashed_given && !hfm_store_object_exists(store, oid),
	       "given: hashed from the buffers, not published");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	fk.bufs = 0;
	free(bad);
	free(content);
}

/*
 * A writer whose buffers wait for the digest is told to wait once
 * HFM_BLOB_HASH_QUEUE bytes of them are not hashed; other fetches are not.
 * With no hashing thread (hash_workers -1) the digest only moves when the
 * cache is freed: that wakes the writer and still publishes the blob.
 */
static void test_hash_behind(void)
{
	size_t size = 2 * HFM_BLOB_HASH_QUEUE + 3 * (1u << 20), at = 12u << 20;
	uint8_t *content = random_content(size, 13);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache_opts o;
	struct hfm_blobcache *bc = NULL;
	struct hfm_blob_reader r = { 0 }, r2 = { 0 };
	struct hfm_blob_fetch *f, *g;
	struct hfm_blob *b;
	struct hfm_waiter *hw = NULL;
	uint64_t avail, done, first_wait = 0;
	void *buf = NULL, *gbuf = NULL;
	int hwakes = 0;

	cache_opts(&o, 0, NEVER_MS);
	o.block_size = 1u << 20;
	o.run_blocks = 12;
	o.readahead_blocks = 1;
	o.hash_workers = -1;
	TAP_OK(hfm_blobcache_new(&bc, store, &o) == 0, "behind: a cache without hashing threads");
	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	hfm_blob_open(&b, bc, oid, size);
	hfm_blob_ensure(&avail, b, &r, 0, at, ORIGIN(content), W());
	f = take_fetch();
	hfm_blob_ensure(&avail, b, &r2, at, size, ORIGIN(content), W());
	g = take_fetch();
	TAP_OK(f && g && hfm_blob_fetch_length(f) == at && hfm_blob_fetch_offset(g) == at,
	       "behind: two fetches");
	for (done = 0; done < at; done += HFM_BLOB_BUF) {
		write_buf(f, &buf, content + done, HFM_BLOB_BUF);
		if (!hw) {
			hw = hfm_waiter_new(count_wake, &hwakes);
			if (hfm_blob_fetch_hash_wait(f, hw) == HFM_EAGAIN)
				first_wait = done + HFM_BLOB_BUF;
			else
				hfm_waiter_unref(hw), hw = NULL;
		}
		if (done == HFM_BLOB_HASH_QUEUE) {
			/* another fetch's bytes, after the cursor: it has no digest to wait for */
			write_buf(g, &gbuf, content + at, HFM_BLOB_BUF);
			TAP_IS_INT(hfm_blob_fetch_hash_wait(g, W()), 0,
				   "behind: a fetch that does not feed the digest goes on");
		}
	}
	TAP_IS_INT(first_wait, HFM_BLOB_HASH_QUEUE, "behind: told to wait at the limit, not before");
	hfm_blob_fetch_done(f, 0);
	for (done = at + HFM_BLOB_BUF; done < size; done += HFM_BLOB_BUF)
		write_buf(g, &gbuf, content + done, HFM_MIN((size_t)HFM_BLOB_BUF, size - done));
	hfm_blob_fetch_buf_put(g, gbuf);
	hfm_blob_fetch_buf_put(g, buf);
	hfm_blob_fetch_done(g, 0);
	TAP_IS_INT(hwakes, 0, "behind: the writer is not woken while nothing hashes");
	hfm_blob_reader_dispose(&r);
	hfm_blob_reader_dispose(&r2);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	TAP_IS_INT(hwakes, 1, "behind: woken once the digest moved (the cache's end)");
	TAP_OK(object_matches(oid, content, size), "behind: hashed and published at the end");
	if (hw)
		hfm_waiter_unref(hw);
	free(content);
}

/*
 * A reader that keeps up with a download copies its bytes from the buffers
 * the digest has not hashed yet (hfm_blob_read_recent), not from the file:
 * with no hashing thread they stay queued, so the file may be spoilt on
 * disk and the reader still gets what was written.  Bytes before or after
 * the queued buffers are not there (0, or a short count).  While a
 * hashing thread returns buffers to the pool and the writer reuses them,
 * every copy a second thread makes is right (under ASan: no use after
 * free).
 */
struct recent_arg {
	struct hfm_blob *b;
	const uint8_t *content;
	uint64_t *written;
	int stop, ok, hits;
};

static void *recent_reader(void *p)
{
	struct recent_arg *a = p;
	uint8_t *out = malloc(HFM_BLOB_BUF * 5);
	unsigned seed = 7;

	while (!__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST)) {
		uint64_t w = __atomic_load_n(a->written, __ATOMIC_SEQ_CST);
		uint64_t off = w > 1 ? (uint64_t)rand_r(&seed) % w : 0;
		size_t n = (size_t)HFM_MIN(w - off, (uint64_t)HFM_BLOB_BUF * 5);
		size_t got = n ? hfm_blob_read_recent(a->b, out, n, off) : 0;

		if (got > n || (got && memcmp(out, a->content + off, got)))
			a->ok = 0;
		a->hits += got > 0;
	}
	free(out);
	return NULL;
}

static void test_read_recent(void)
{
	size_t size = 6 * HFM_BLOB_BUF + 123, n;
	uint8_t *content = random_content(size, 14), *out = malloc(size), *junk;
	char oid[HFM_SHA256_HEX + 1], p[512];
	struct hfm_blobcache_opts o;
	struct hfm_blobcache *bc = NULL;
	struct hfm_blob_reader r = { 0 };
	struct recent_arg ra = { 0 };
	struct hfm_blob_fetch *f;
	struct hfm_blob *b;
	uint64_t avail, written = 0;
	pthread_t th;
	void *buf = NULL;
	int fd;

	cache_opts(&o, 0, NEVER_MS);
	o.block_size = 1u << 20;
	o.run_blocks = 16;
	o.hash_workers = -1;
	hfm_blobcache_new(&bc, store, &o);
	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	hfm_blob_open(&b, bc, oid, size);
	hfm_blob_ensure(&avail, b, &r, 0, size, ORIGIN(content), W());
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_length(f) == size, "recent: one fetch of the blob");
	write_buf(f, &buf, content, HFM_BLOB_BUF);
	write_buf(f, &buf, content + HFM_BLOB_BUF, HFM_BLOB_BUF);
	write_buf(f, &buf, content + 2 * HFM_BLOB_BUF, HFM_BLOB_BUF);
	/* the file says otherwise now: what a reader gets comes from memory */
	junk = random_content(3 * HFM_BLOB_BUF, 15);
	snprintf(p, sizeof(p), "%s/partial/%s", root, oid);
	fd = open(p, O_WRONLY);
	TAP_OK(fd >= 0 && pwrite(fd, junk, 3 * HFM_BLOB_BUF, 0) == 3 * HFM_BLOB_BUF,
	       "recent: the partial file spoilt behind the cache's back");
	close(fd);
	n = hfm_blob_read_recent(b, out, 2 * HFM_BLOB_BUF + 100, 10);
	TAP_OK(n == 2 * HFM_BLOB_BUF + 100 && !memcmp(out, content + 10, n),
	       "recent: bytes across three queued buffers, as written");
	n = hfm_blob_read_recent(b, out, 2 * HFM_BLOB_BUF, 2 * HFM_BLOB_BUF);
	TAP_OK(n == HFM_BLOB_BUF && !memcmp(out, content + 2 * HFM_BLOB_BUF, n),
	       "recent: a read past the last queued buffer gets what is there");
	TAP_IS_INT(hfm_blob_read_recent(b, out, 100, 3 * HFM_BLOB_BUF), 0,
		   "recent: nothing after the queued buffers");
	/* put right again (the digest hashes the buffers, not the file) */
	fd = open(p, O_WRONLY);
	TAP_OK(fd >= 0 && pwrite(fd, content, 3 * HFM_BLOB_BUF, 0) == 3 * HFM_BLOB_BUF,
	       "recent: the partial file put right");
	close(fd);
	for (n = 3 * HFM_BLOB_BUF; n < size; n += HFM_BLOB_BUF)
		write_buf(f, &buf, content + n, (size_t)HFM_MIN((uint64_t)HFM_BLOB_BUF, size - n));
	hfm_blob_fetch_buf_put(f, buf);
	buf = NULL;
	hfm_blob_fetch_done(f, 0);
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	TAP_OK(object_matches(oid, content, size), "recent: the rest written, verified and published");
	free(junk);

	/* a hashing thread frees buffers while a reader copies from them */
	size = 64 * HFM_BLOB_BUF + 5;
	free(content);
	content = random_content(size, 16);
	hfm_sha256_hex(oid, content, size);
	o.hash_workers = 1;
	o.run_blocks = 64;
	hfm_blobcache_new(&bc, store, &o);
	hfm_blob_open(&b, bc, oid, size);
	hfm_blob_ensure(&avail, b, &r, 0, size, ORIGIN(content), W());
	f = take_fetch();
	ra.b = b;
	ra.content = content;
	ra.written = &written;
	ra.ok = 1;
	pthread_create(&th, NULL, recent_reader, &ra);
	while (written < size) {
		n = (size_t)HFM_MIN((uint64_t)HFM_BLOB_BUF, size - written);
		write_buf(f, &buf, content + written, n);
		__atomic_store_n(&written, written + n, __ATOMIC_SEQ_CST);
		usleep(200);
	}
	hfm_blob_fetch_buf_put(f, buf);
	hfm_blob_fetch_done(f, 0);
	TAP_OK(wait_complete(b), "recent: verified while a reader copied");
	__atomic_store_n(&ra.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(th, NULL);
	TAP_OK(ra.ok, "recent: every copy right (%d from memory)", ra.hits);
	TAP_OK(object_matches(oid, content, size), "recent: published");
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
	free(out);
}

/* A fetch queued within a few seconds (a fill's comes from a worker's timer), or NULL. */
static struct hfm_blob_fetch *next_fetch(void)
{
	struct hfm_blob_fetch *f;
	int i;

	for (i = 0; i < 1000 && !(f = take_fetch()); i++)
		usleep(5000);
	return f;
}

/* Serve fill fetches from src as they come until every block of b is there. */
static int serve_fill(struct hfm_blob *b, const uint8_t *src)
{
	struct hfm_blob_fetch *f;
	int n = 0;

	while (hfm_blob_available(b, 0) < hfm_blob_size(b) && (f = next_fetch())) {
		serve(f, src);
		n++;
	}
	return n;
}

/* Which stored bytes a Range that came at a given moment must not be served. */
static void test_unverified(void)
{
	size_t size = 10 * BS + 5;
	uint8_t *content = random_content(size, 21);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache_fill(NEVER_MS, 0);
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob_range rg[4];
	struct hfm_blob_fetch *f;
	struct hfm_waiter *w = hfm_waiter_new(count_wake, &wakes);
	struct hfm_blob *b;
	uint64_t avail, unfilled, t0, t1, t2;
	size_t n;

	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	fk.nq = 0;
	hfm_blob_open(&b, bc, oid, size);
	n = hfm_blob_unverified(b, 0, 0, size, rg, 4, &unfilled);
	TAP_OK(n == 0 && unfilled == size, "unverified: nothing stored, everything to fetch");

	t0 = hfm_mono_ns();
	hfm_blob_ensure(&avail, b, &r, 2 * BS, 3 * BS, ORIGIN(content), w);
	f = take_fetch();
	serve(f, content);
	t1 = hfm_mono_ns();
	n = hfm_blob_unverified(b, t1, 0, size, rg, 4, &unfilled);
	TAP_OK(n == 1 && rg[0].start == 2 * BS && rg[0].end == 3 * BS && unfilled == size - BS,
	       "unverified: a block stored before the request came");
	n = hfm_blob_unverified(b, t1, 2 * BS + 10, 2 * BS + 20, rg, 4, &unfilled);
	TAP_OK(n == 1 && rg[0].start == 2 * BS + 10 && rg[0].end == 2 * BS + 20,
	       "unverified: clipped to the range asked");
	TAP_IS_INT(hfm_blob_unverified(b, t0, 0, size, rg, 4, &unfilled), 0,
		   "unverified: bytes that arrived after the request came are not");
	TAP_IS_INT(hfm_blob_unverified(b, t1, 3 * BS, size, rg, 4, &unfilled), 0,
		   "unverified: none outside the stored block");

	/* half of block 5 in flight */
	hfm_blob_ensure(&avail, b, &r, 5 * BS, 6 * BS, ORIGIN(content), w);
	f = take_fetch();
	hfm_blob_fetch_write(f, content + 5 * BS, BS / 2);
	t2 = hfm_mono_ns();
	n = hfm_blob_unverified(b, t2, 4 * BS, size, rg, 4, &unfilled);
	TAP_OK(n == 1 && rg[0].start == 5 * BS && rg[0].end == 5 * BS + BS / 2,
	       "unverified: a block in flight, as far as it is written");
	TAP_IS_INT(hfm_blob_unverified(b, t1, 4 * BS, size, rg, 4, &unfilled), 0,
		   "unverified: ... not for a request that came before its first byte");
	hfm_blob_fetch_done(f, HFM_ETIMEOUT);
	TAP_IS_INT(hfm_blob_unverified(b, t2, 4 * BS, size, rg, 4, &unfilled), 0,
		   "unverified: a failed fetch's half block holds nothing");
	hfm_blob_reader_dispose(&r);     /* it would get the failure */
	hfm_blob_ensure(&avail, b, &r, 5 * BS, 6 * BS, ORIGIN(content), w);
	serve(take_fetch(), content);
	TAP_IS_INT(hfm_blob_unverified(b, t2, 4 * BS, size, rg, 4, &unfilled), 0,
		   "unverified: written anew after the request came");

	/* three stored runs, room for two: the gap is counted in */
	hfm_blob_ensure(&avail, b, &r, 8 * BS, 9 * BS, ORIGIN(content), w);
	serve(take_fetch(), content);
	n = hfm_blob_unverified(b, 0, 0, size, rg, 2, &unfilled);
	TAP_OK(n == 2 && rg[0].start == 2 * BS && rg[0].end == 3 * BS &&
	       rg[1].start == 5 * BS && rg[1].end == 9 * BS && unfilled == size - 3 * BS,
	       "unverified: past max, the last range grows over the rest");
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* blocks found on disk were stored before any request */
	bc = new_cache_fill(NEVER_MS, 0);
	TAP_OK(wait_syncs(bc, 0), "unverified: a new cache");
	hfm_blob_open(&b, bc, oid, size);
	n = hfm_blob_unverified(b, 1, 0, size, rg, 4, &unfilled);
	TAP_OK(n >= 1 && rg[0].start == 2 * BS, "unverified: blocks on disk count as stored (%zu)", n);
	fk.mode = F_SYNC;
	TAP_OK(read_all(b, content) && wait_complete(b), "unverified: then the blob completes");
	TAP_IS_INT(hfm_blob_unverified(b, 0, 0, size, rg, 4, &unfilled), 0,
		   "unverified: none once verified");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	hfm_waiter_unref(w);
	free(content);
}

/* The background fill: after the readers, what they did not fetch, once each. */
static void test_fill(void)
{
	size_t size = 20 * BS + 9;
	uint8_t *content = random_content(size, 22);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache_fill(30, 0);
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob_fetch *f, *g;
	struct hfm_waiter *w = hfm_waiter_new(count_wake, &wakes);
	struct hfm_blob *b;
	uint64_t avail;
	int n;

	hfm_sha256_hex(oid, content, size);
	fk.mode = F_MANUAL;
	fk.nq = 0;
	fk.nfetches = 0;
	fk.fetched = 0;
	hfm_blob_open(&b, bc, oid, size);
	hfm_blob_ensure(&avail, b, &r, 2 * BS, 3 * BS, ORIGIN(content), w);
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(content), 0), 0, "fill: starts");
	TAP_OK(hfm_blob_filling(b), "fill: runs");
	usleep(100 * 1000);
	TAP_IS_INT(fk.nfetches, 1, "fill: waits while a reader's fetch is active");
	serve(take_fetch(), content);
	f = next_fetch();
	TAP_OK(f && hfm_blob_fetch_offset(f) == 0 && hfm_blob_fetch_length(f) == 2 * BS,
	       "fill: then fetches the first blocks missing, up to what is there");
	/* a reader comes meanwhile: its fetch goes first, the fill waits for it */
	hfm_blob_ensure(&avail, b, &r, 10 * BS, 11 * BS, ORIGIN(content), w);
	g = take_fetch();
	TAP_OK(g && hfm_blob_fetch_offset(g) == 10 * BS, "fill: a reader fetches its own part");
	serve(f, content);
	usleep(100 * 1000);
	TAP_OK(!take_fetch(), "fill: no new fill fetch while the reader's runs");
	serve(g, content);
	/* the rest, one fill fetch at a time */
	for (n = 0; n < 10 && hfm_blob_available(b, 0) < size; n++) {
		if (!(f = next_fetch()))
			break;
		TAP_OK(!take_fetch(), "fill: one fetch at a time (%d)", n);
		serve(f, content);
	}
	TAP_OK(wait_complete(b) && object_matches(oid, content, size),
	       "fill: the blob is verified and published");
	TAP_IS_INT(fk.fetched, size, "fill: every byte fetched once");
	TAP_OK(!hfm_blob_filling(b) || hfm_blob_complete(b), "fill: over");
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(content), 0), 0, "fill: a complete blob needs none");
	TAP_IS_INT(fk.nq, 0, "fill: ... and fetches nothing");
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);

	/* urgent: at once; a failing fetch ends the fill and wakes who waits */
	content[0] ^= 1;
	hfm_sha256_hex(oid, content, size);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(content), 1), 0, "fill, urgent: starts");
	f = take_fetch();
	TAP_OK(f && hfm_blob_fetch_offset(f) == 0, "fill, urgent: fetches at once");
	wakes = 0;
	TAP_IS_INT(hfm_blob_wait_verified(b, hfm_blob_discards(b), W()), HFM_EAGAIN,
		   "fill, urgent: a request waits for the verified blob");
	hfm_blob_fetch_done(f, hfm_error_set(HFM_EUPSTREAM, "dropped"));
	TAP_OK(wakes >= 1, "fill: a failed fetch wakes the waiters");
	TAP_OK(!hfm_blob_filling(b), "fill: ... and ends the fill");
	TAP_IS_INT(fk.nq, 0, "fill: ... which fetches no more");
	fk.fail_start = HFM_EUPSTREAM;
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(content), 1), HFM_EUPSTREAM,
		   "fill: a fetch that cannot start is the answer at once");
	fk.fail_start = 0;
	hfm_blob_release(b);

	/* stopping: a fill waiting for its timer starts nothing */
	content[0] ^= 2;
	hfm_sha256_hex(oid, content, size);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(content), 0), 0, "fill, stopping: starts");
	hfm_blobcache_stop_fills(bc);
	usleep(100 * 1000);
	TAP_OK(!take_fetch() && !hfm_blob_filling(b), "fill, stopping: ended without a fetch");
	TAP_OK(hfm_blob_fill(b, ORIGIN(content), 1) < 0, "fill, stopping: none starts");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	hfm_waiter_unref(w);
	free(content);
}

/*
 * Verification fails: readers that started before end early, the next
 * request fills again; only a repeat offender is not filled for a while.
 */
static void test_fill_corrupt(void)
{
	size_t size = 6 * BS + 1;
	uint8_t *good = random_content(size, 23), *bad = malloc(size);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache_fill(10, 300);
	struct hfm_blob_reader r = { 0 }, r2 = { 0 };
	struct hfm_waiter *w = hfm_waiter_new(count_wake, &wakes);
	struct hfm_blob *b;
	uint64_t avail;

	memcpy(bad, good, size);
	bad[3 * BS + 7] ^= 0x10;
	hfm_sha256_hex(oid, good, size);
	fk.mode = F_MANUAL;
	fk.nq = 0;
	hfm_blob_open(&b, bc, oid, size);
	/* a reader of block 1 has started; the fill brings the rest, wrong */
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r, BS, 2 * BS, ORIGIN(bad), w), HFM_EAGAIN,
		   "corrupt fill: a reader waits");
	serve(take_fetch(), bad);
	TAP_OK(hfm_blob_ensure(&avail, b, &r, BS, 2 * BS, ORIGIN(bad), w) == 0 && avail >= BS,
	       "corrupt fill: the reader reads its block");
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(bad), 0), 0, "corrupt fill: starts");
	serve_fill(b, bad);
	TAP_OK(wait_corrupt(bc, 1), "corrupt fill: verification fails");
	TAP_OK(logcap_has("discarded") && logcap_has(oid), "corrupt fill: logged with the blob id");
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r, 2 * BS, 3 * BS, ORIGIN(bad), w), HFM_ECORRUPT,
		   "corrupt fill: a reader that started before ends early");
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r2, 2 * BS, 3 * BS, ORIGIN(good), w), HFM_EAGAIN,
		   "corrupt fill: a new reader fetches anew");
	serve(take_fetch(), good);
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(bad), 1), 0, "corrupt fill: the next fill starts at once");
	serve_fill(b, bad);
	TAP_OK(wait_corrupt(bc, 2), "corrupt fill: fails again");
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(good), 1), HFM_EUPSTREAM,
		   "corrupt fill: twice in a row, no fill for a while");
	TAP_IS_INT(fk.nq, 0, "corrupt fill: ... nothing fetched");
	hfm_blob_reader_dispose(&r2);
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r2, 0, BS, ORIGIN(good), w), HFM_EAGAIN,
		   "corrupt fill: readers are still served meanwhile");
	serve(take_fetch(), good);
	usleep(350 * 1000);
	TAP_IS_INT(hfm_blob_fill(b, ORIGIN(good), 1), 0, "corrupt fill: after the backoff, it fills");
	serve_fill(b, good);
	TAP_OK(wait_complete(b) && object_matches(oid, good, size),
	       "corrupt fill: and the right bytes verify");
	hfm_blob_reader_dispose(&r);
	hfm_blob_reader_dispose(&r2);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	hfm_waiter_unref(w);
	free(good);
	free(bad);
}

/* Write a map by hand (white box: the format documented in blobcache.c). */
static void write_map(const char *oid, uint64_t size, int all_bits)
{
	char p[512];
	uint8_t hdr[128];
	uint64_t nblocks = (size + BS - 1) / BS, i;
	uint8_t *bits = calloc(1, (size_t)(nblocks + 7) / 8);
	int fd, k;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, "HFMBMAP1", 8);
	hdr[8] = (uint8_t)__builtin_ctz(BS);
	for (k = 0; k < 8; k++)
		hdr[16 + k] = (uint8_t)(size >> (8 * k));
	memcpy(hdr + 24, oid, strlen(oid));
	for (i = 0; all_bits && i < nblocks; i++)
		bits[i / 8] |= (uint8_t)(1u << (i % 8));
	snprintf(p, sizeof(p), "%s/partial/%s.map", root, oid);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
	    write(fd, bits, (size_t)(nblocks + 7) / 8) < 0)
		abort();
	close(fd);
	free(bits);
}

static void write_data(const char *oid, const uint8_t *content, size_t n)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/partial/%s", root, oid);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (write(fd, content, n) != (ssize_t)n)
		abort();
	close(fd);
}

/* Fill blocks of `oid` in a child, then kill -9 it. */
static void child_fill_and_die(const char *oid, const uint8_t *content, size_t size,
			       uint64_t sync_bytes, int nblocks, int finish_fetch, int wait_sync)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct hfm_blobcache *bc = new_cache_sync(sync_bytes, NEVER_MS);
		struct hfm_blobcache_stats st;
		struct hfm_blob_reader r = { 0 };
		struct hfm_blob_fetch *f;
		struct hfm_blob *b;
		uint64_t avail;

		fk.mode = F_MANUAL;
		fk.nq = 0;
		hfm_blob_open(&b, bc, oid, size);
		hfm_blob_ensure(&avail, b, &r, 0, (uint64_t)nblocks * BS, ORIGIN(content), W());
		f = take_fetch();
		if (finish_fetch) {
			serve(f, content);
		} else {
			hfm_blob_fetch_write(f, content, hfm_blob_fetch_length(f));
		}
		while (wait_sync) {
			hfm_blobcache_stats(&st, bc);
			if (st.syncs)
				break;
			usleep(5000);
		}
		kill(getpid(), SIGKILL);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

static void test_crash(void)
{
	size_t size = 12 * BS + 99;
	uint8_t *content = random_content(size, 4);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc;
	struct hfm_blob *b;
	struct hfm_blob_range rg[4];

	hfm_sha256_hex(oid, content, size);

	/* data on disk but no map: nothing counts as present */
	write_data(oid, content, size);
	bc = new_cache(0, 0);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(hfm_blob_available(b, 0), 0, "crash: data without a map is not present");
	TAP_OK(partial_exists(oid, ".map"), "crash: a fresh map was written");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* a map for other data (bits, wrong size) is not trusted */
	write_data(oid, content, size - 1);
	write_map(oid, size, 1);
	bc = new_cache(0, 0);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(hfm_blob_available(b, 0), 0, "crash: data of the wrong size is not trusted");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* filled in a child that dies before any sync: not present after */
	child_fill_and_die(oid, content, size, 1ull << 40, 4, 0, 0);
	bc = new_cache(0, 0);
	TAP_IS_INT(hfm_blob_open(&b, bc, oid, size), 0, "crash: reopen after kill -9");
	TAP_IS_INT(hfm_blob_available(b, 0), 0, "crash: filled but never synced is not present");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* filled, fetch done, synced, then killed: present after */
	child_fill_and_die(oid, content, size, 1ull << 40, 4, 1, 1);
	bc = new_cache(0, 0);
	TAP_IS_INT(hfm_blob_open(&b, bc, oid, size), 0, "crash: reopen after a synced fill");
	TAP_IS_INT(hfm_blob_ranges(b, rg, 4), 1, "crash: one range present");
	TAP_OK(rg[0].start == 0 && rg[0].end == 4 * BS, "crash: exactly the synced blocks");
	fk.mode = F_SYNC;
	TAP_OK(read_all(b, content), "crash: the rest is fetched, content right");
	TAP_OK(wait_complete(b) && object_matches(oid, content, size), "crash: then verified");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);

	/* complete on disk but not yet verified (killed before publish) */
	{
		char oid2[HFM_SHA256_HEX + 1];
		uint8_t *c2 = random_content(size, 5);
		hfm_sha256_hex(oid2, c2, size);
		write_data(oid2, c2, size);
		write_map(oid2, size, 1);
		bc = new_cache(0, 0);
		fk.nfetches = 0;
		hfm_blob_open(&b, bc, oid2, size);
		TAP_OK(wait_complete(b) && object_matches(oid2, c2, size),
		       "crash: a complete map is verified and published on open");
		TAP_IS_INT(fk.nfetches, 0, "crash: without fetching anything");
		hfm_blob_release(b);
		hfm_blobcache_free(bc);
		free(c2);
	}
	free(content);
}

/*
 * How a fetch is filled before the process dies: `fill` gets the one fetch
 * from offset 0 (8 blocks) and the content; it returns when what it wants
 * durable is durable.
 */
typedef void fill_fn(struct hfm_blobcache *bc, struct hfm_blob_fetch *f, const uint8_t *content);

/* In a child: a cache of (sync_bytes, sync_ms), one fetch, `fill`, kill -9. */
static int child_run_and_die(const char *oid, const uint8_t *content, size_t size,
			     uint64_t sync_bytes, unsigned sync_ms, fill_fn *fill)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct hfm_blobcache *bc = new_cache_sync(sync_bytes, sync_ms);
		struct hfm_blob_reader r = { 0 };
		struct hfm_blob *b;
		uint64_t avail;

		fk.mode = F_MANUAL;
		fk.nq = 0;
		if (hfm_blob_open(&b, bc, oid, size))
			_exit(1);
		hfm_blob_ensure(&avail, b, &r, 0, size, ORIGIN(content), W());
		fill(bc, take_fetch(), content);
		/* no release, no free: the process just ends */
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* 4 blocks reach sync_bytes and are synced; 2.5 more are written, not synced. */
static void fill_by_bytes(struct hfm_blobcache *bc, struct hfm_blob_fetch *f,
			  const uint8_t *content)
{
	hfm_blob_fetch_write(f, content, 4 * BS);
	if (!wait_syncs(bc, 1))
		_exit(1);
	hfm_blob_fetch_write(f, content + 4 * BS, 2 * BS + BS / 2);
}

/* 3 blocks, far below sync_bytes: the timer makes them durable. */
static void fill_by_time(struct hfm_blobcache *bc, struct hfm_blob_fetch *f,
			 const uint8_t *content)
{
	hfm_blob_fetch_write(f, content, 3 * BS);
	if (!wait_syncs(bc, 1))
		_exit(1);
}

/* 2.5 blocks, then upstream drops the connection: the end of a fetch syncs. */
static void fill_then_fail(struct hfm_blobcache *bc, struct hfm_blob_fetch *f,
			   const uint8_t *content)
{
	hfm_blob_fetch_write(f, content, 2 * BS + BS / 2);
	hfm_blob_fetch_done(f, hfm_error_set(HFM_EUPSTREAM, "connection dropped"));
	if (!wait_syncs(bc, 1))
		_exit(1);
}

/* After the kill: exactly [0, blocks) present with the right bytes, the rest missing. */
static void check_resumes(const char *what, const char *oid, const uint8_t *content,
			  size_t size, uint64_t blocks)
{
	struct hfm_blobcache *bc = new_cache(0, 0);
	struct hfm_blob_range rg[4];
	struct hfm_blob *b;
	uint8_t *buf = malloc(blocks * BS);
	size_t n;
	int fd;

	TAP_IS_INT(hfm_blob_open(&b, bc, oid, size), 0, "%s: reopen after kill -9", what);
	n = hfm_blob_ranges(b, rg, 4);
	TAP_OK(n == 1 && rg[0].start == 0 && rg[0].end == blocks * BS,
	       "%s: the %llu durable blocks are present (%zu ranges, first ends at %llu)", what,
	       (unsigned long long)blocks, n, n ? (unsigned long long)rg[0].end : 0ull);
	TAP_IS_INT(hfm_blob_available(b, blocks * BS), 0,
		   "%s: the blocks filled after the last sync are missing", what);
	fd = hfm_blob_fd(b);
	TAP_OK(pread(fd, buf, blocks * BS, 0) == (ssize_t)(blocks * BS) &&
	       memcmp(buf, content, blocks * BS) == 0, "%s: and their bytes are right", what);
	close(fd);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(buf);
}

/* A process killed in the middle of a fetch resumes from what was made durable. */
static void test_crash_resume(void)
{
	size_t size = 12 * BS + 99;
	uint8_t *content = random_content(size, 11);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc;
	struct hfm_blob *b;

	static const struct {
		const char *what;
		uint64_t sync_bytes;
		unsigned sync_ms;
		fill_fn *fill;
		uint64_t durable;        /* blocks */
	} cases[] = {
		{ "resume by bytes", 4 * BS, NEVER_MS, fill_by_bytes, 4 },
		{ "resume by time", 1ull << 40, 50, fill_by_time, 3 },
		{ "resume after a failed fetch", 1ull << 40, NEVER_MS, fill_then_fail, 2 },
	};

	for (size_t i = 0; i < HFM_ARRAY_SIZE(cases); i++) {
		/* a new blob each time: an earlier one's durable blocks would count */
		content[0] = (uint8_t)i;
		hfm_sha256_hex(oid, content, size);
		TAP_OK(child_run_and_die(oid, content, size, cases[i].sync_bytes, cases[i].sync_ms,
					 cases[i].fill), "%s: killed mid-fetch", cases[i].what);
		check_resumes(cases[i].what, oid, content, size, cases[i].durable);
	}

	/* and the resumed blob completes, fetching only what was missing */
	bc = new_cache(0, 0);
	fk.mode = F_SYNC;
	fk.fetched = 0;
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(read_all(b, content) && wait_complete(b) &&
	       object_matches(oid, content, size), "resume: completes and verifies");
	TAP_IS_INT(fk.fetched, size - cases[HFM_ARRAY_SIZE(cases) - 1].durable * BS,
		   "resume: only the missing blocks were fetched");
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
}

/* The grew callback: every filled byte once, one call per publication, released at free. */
static void test_grew(void)
{
	size_t size = 10 * BS + 3;
	uint8_t *content = random_content(size, 12);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache_opts o;
	struct hfm_blobcache *bc;
	struct hfm_blob *b;

	hfm_sha256_hex(oid, content, size);
	memset(&grew, 0, sizeof(grew));
	cache_opts(&o, 0, 0);
	o.grew = count_grew;
	o.grew_release = count_release;
	TAP_IS_INT(hfm_blobcache_new(&bc, store, &o), 0, "grew: cache with a listener");
	fk.mode = F_SYNC;
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(read_all(b, content) && wait_complete(b), "grew: blob read and published");
	TAP_IS_INT(grew.bytes, size, "grew: told every filled byte once");
	TAP_IS_INT(grew.publishes, 1, "grew: told of the publication");
	hfm_blob_release(b);
	TAP_IS_INT(grew.releases, 0, "grew: not released while the cache lives");
	hfm_blobcache_free(bc);
	TAP_IS_INT(grew.releases, 1, "grew: released by hfm_blobcache_free");

	o.block_size = 3000;
	TAP_IS_INT(hfm_blobcache_new(&bc, store, &o), HFM_EINVAL, "grew: a cache that fails to start");
	TAP_IS_INT(grew.releases, 2, "grew: released by the failing hfm_blobcache_new");
	free(content);
}

/* kill -9 a child filling a blob at arbitrary moments; reopen must be sane. */
static void test_random_kill(void)
{
	size_t size = 150 * BS + 5;
	uint8_t *content = random_content(size, 8), *buf = malloc(BS);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blob_range rg[256];
	int round, ok = 1, any = 0;

	hfm_sha256_hex(oid, content, size);
	for (round = 0; round < 4; round++) {
		struct hfm_blobcache *bc;
		struct hfm_blob *b;
		size_t n, i;
		pid_t pid;
		int fd;

		int pfd[2];
		char c;

		fflush(stdout);
		if (pipe(pfd))
			abort();
		pid = fork();
		if (pid == 0) {
			struct hfm_blob *cb;
			bc = new_cache(2 * BS, 0);
			fk.mode = F_SYNC;
			hfm_blob_open(&cb, bc, oid, size);
			if (write(pfd[1], "g", 1) != 1)
				_exit(1);
			read_all(cb, content);
			pause();
			_exit(0);
		}
		/* kill it at a different point of the fill each round */
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			ok = 0;
		close(pfd[0]);
		usleep((useconds_t)(5000 + round * 15000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);

		bc = new_cache(0, 0);
		if (hfm_blob_open(&b, bc, oid, size)) {
			ok = 0;
			hfm_blobcache_free(bc);
			break;
		}
		n = hfm_blob_ranges(b, rg, 256);
		fd = hfm_blob_fd(b);
		for (i = 0; i < n && i < 256; i++) {
			uint64_t off;
			for (off = rg[i].start; off < rg[i].end; off += BS) {
				size_t k = rg[i].end - off < BS ? (size_t)(rg[i].end - off) : BS;
				if (pread(fd, buf, k, (off_t)off) != (ssize_t)k ||
				    memcmp(buf, content + off, k))
					ok = 0;
				any = 1;
			}
		}
		close(fd);
		hfm_blob_release(b);
		hfm_blobcache_free(bc);
	}
	TAP_OK(ok, "random kill -9: every block the map claims is on disk and right");
	TAP_OK(any, "random kill -9: some blocks survived the kills");
	{
		struct hfm_blobcache *bc = new_cache(0, 0);
		struct hfm_blob *b;
		fk.mode = F_SYNC;
		hfm_blob_open(&b, bc, oid, size);
		TAP_OK(read_all(b, content) && wait_complete(b) &&
		       object_matches(oid, content, size), "random kill -9: completes afterwards");
		hfm_blob_release(b);
		hfm_blobcache_free(bc);
	}
	free(buf);
	free(content);
}

struct reader_arg {
	struct hfm_blob *b;
	const uint8_t *content;
	int ok;
};

static void *reader_thread(void *arg)
{
	struct reader_arg *a = arg;

	a->ok = read_all(a->b, a->content);
	return NULL;
}

static void test_concurrent(void)
{
	size_t size = 48 * BS + 777;
	uint8_t *content = random_content(size, 6);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache(4 * BS, 0);
	struct hfm_blobcache_stats st;
	struct reader_arg ra[4];
	pthread_t th[4], srv;
	struct hfm_blob *b;
	int i, ok = 1;

	hfm_sha256_hex(oid, content, size);
	fk.mode = F_ASYNC;
	fk.stop = 0;
	fk.nq = 0;
	fk.fetched = 0;
	pthread_create(&srv, NULL, async_server, NULL);
	hfm_blob_open(&b, bc, oid, size);
	for (i = 0; i < 4; i++) {
		ra[i].b = b;
		ra[i].content = content;
		pthread_create(&th[i], NULL, reader_thread, &ra[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok &= ra[i].ok;
	}
	TAP_OK(ok, "concurrent: 4 readers got every byte right");
	TAP_OK(wait_complete(b) && object_matches(oid, content, size), "concurrent: published");
	hfm_blobcache_stats(&st, bc);
	TAP_IS_INT(fk.fetched, size, "concurrent: every block fetched exactly once");
	TAP_IS_INT(st.bytes_written, size, "concurrent: every byte written once");
	/* made durable while it was filled, in batches; the last batch is
	 * published instead of flushed, so one sync may be all there is */
	TAP_OK(st.syncs >= 1 && st.syncs < 48, "concurrent: durability batched (%llu syncs)",
	       (unsigned long long)st.syncs);
	pthread_mutex_lock(&fk.lock);
	fk.stop = 1;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.lock);
	pthread_join(srv, NULL);
	hfm_blob_release(b);
	hfm_blobcache_free(bc);
	free(content);
}

static void test_empty_and_bad(void)
{
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_blobcache *bc = new_cache(0, 0);
	struct hfm_blobcache_opts o;
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob *b;
	uint64_t avail;

	hfm_sha256_hex(oid, "", 0);
	TAP_IS_INT(hfm_blob_open(&b, bc, oid, 0), 0, "empty blob opens");
	TAP_OK(wait_complete(b) && object_matches(oid, (const uint8_t *)"", 0),
	       "empty blob published at once");
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r, 0, 0, NULL, NULL), HFM_EINVAL,
		   "ensure past the end is refused");
	hfm_blob_release(b);
	TAP_IS_INT(hfm_blob_open(&b, bc, "xyz", 1), HFM_EINVAL, "bad oid refused");
	hfm_blobcache_free(bc);
	memset(&o, 0, sizeof(o));
	o.fetch = fake_fetch;
	o.block_size = 3000;
	TAP_IS_INT(hfm_blobcache_new(&bc, store, &o), HFM_EINVAL, "odd block size refused");
}

int main(void)
{
	char cmd[600];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(root) || hfm_store_open(&store, root, 1)) {
		printf("Bail out! cannot make a store\n");
		return 1;
	}
	test_single_flight();
	test_readahead();
	test_git_blob_and_corrupt();
	test_hash_in_order();
	test_small_no_sync();
	test_small_memory();
	test_small_batch();
	test_small_held();
	test_hash_given();
	test_hash_behind();
	test_read_recent();
	test_unverified();
	test_fill();
	test_fill_corrupt();
	test_crash();
	test_crash_resume();
	test_grew();
	test_random_kill();
	test_concurrent();
	test_empty_and_bad();
	hfm_store_free(store);
	while (n_w)
		hfm_waiter_unref(all_w[--n_w]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	rc = system(cmd);
	(void)rc;
	return tap_done();
}
