/*
 * The evictor's pass: only marked single-link objects and partial blobs
 * count and go, in strategy order, down to the low-water mark; imported
 * objects (unmarked, or hard-linked) and partial blobs whose map is locked
 * stay, and so do objects a reader has leased; a pass is skipped while
 * another process holds the store's evict lock.  Records under
 * meta/cache-owned/ mark blobs as xattrs do.  The
 * thread: kicks, growth reports, debouncing, references.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hfm/evict.h"
#include "hfm/metrics.h"
#include "tap.h"

static char root[256];
static struct hfm_store *store;

static void oid_of(char *oid, int n, int len)
{
	for (int i = 0; i < len; i++)
		oid[i] = "0123456789abcdef"[(n * 7 + i) % 16];
	oid[0] = 'a' + n % 6;
	oid[len] = '\0';
}

/* objects/<xx>/<oid> of `kb` KiB, marked or not, times set to t (seconds ago). */
static void put(const char *dir, const char *name, int kb, int mark, int ago_atime, int ago_mtime)
{
	char path[512];
	struct timespec ts[2];
	char *buf = calloc(1024, (size_t)kb);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	memset(buf, 'x', 1024 * (size_t)kb);
	if (write(fd, buf, 1024 * (size_t)kb) < 0)
		abort();
	fsync(fd);
	if (mark)
		hfm_evict_mark(store, fd, name);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[1] = ts[0];
	ts[0].tv_sec -= ago_atime;
	ts[1].tv_sec -= ago_mtime;
	futimens(fd, ts);
	close(fd);
	free(buf);
}

static int exists(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	return access(path, F_OK) == 0;
}

static void object_dir(char *dir, const char *oid)
{
	sprintf(dir, "objects/%.2s", oid);
}

/* Make meta/cache-owned/<oid> look `ago` seconds old. */
static void age_record(const char *oid, int ago)
{
	char path[512];
	struct timespec ts[2];

	snprintf(path, sizeof(path), "%s/meta/cache-owned/%s", root, oid);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= ago;
	ts[1] = ts[0];
	utimensat(AT_FDCWD, path, ts, 0);
}

/* Where user xattrs are missing, records mark the cache's blobs. */
static void test_records(void)
{
	struct hfm_evict_opts o = { .store = store, .strategy = HFM_CLEAN_LRU };
	struct hfm_evict_stats st;
	char oid[5][65], dir[5][32], path[512], lnk[512];

	for (int i = 0; i < 5; i++) {
		oid_of(oid[i], 20 + i, 64);
		object_dir(dir[i], oid[i]);
	}
	/* 0: recorded, no xattr (as on tmpfs without user_xattr); 1: recorded but hard-linked */
	put(dir[0], oid[0], 300, 0, 500, 500);
	TAP_IS_INT(hfm_evict_record(store, oid[0]), 0, "records: record a blob");
	put(dir[1], oid[1], 300, 0, 600, 600);
	hfm_evict_record(store, oid[1]);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir[1], oid[1]);
	snprintf(lnk, sizeof(lnk), "%s/imported-copy-2", root);
	TAP_OK(link(path, lnk) == 0, "records: setup: object 1 has a second link");
	/* 2: a record whose blob is gone, an hour old; 3: the same, young (being made) */
	hfm_evict_record(store, oid[2]);
	age_record(oid[2], 7200);
	hfm_evict_record(store, oid[3]);
	/* 4: an idle partial blob (data and map) with a record */
	char mapn[80];
	snprintf(mapn, sizeof(mapn), "%s.map", oid[4]);
	put("partial", oid[4], 100, 0, 8000, 8000);
	put("partial", mapn, 1, 0, 8000, 8000);
	hfm_evict_record(store, oid[4]);
	TAP_OK(exists("meta/cache-owned", oid[0]) && exists("meta/cache-owned", oid[4]),
	       "records: under meta/cache-owned/");

	o.limit = 10u << 20;
	hfm_evict_pass(&st, &o);
	TAP_OK(st.used_before >= 400 * 1024 && st.used_before < 440 * 1024,
	       "records: the recorded object counts, the hard-linked one not (%llu bytes)",
	       (unsigned long long)st.used_before);
	TAP_OK(!exists("meta/cache-owned", oid[2]), "records: an old record without a blob is dropped");
	TAP_OK(exists("meta/cache-owned", oid[3]), "records: a young one stays");
	TAP_OK(exists("meta/cache-owned", oid[1]), "records: the hard-linked object's stays");

	o.limit = 200 * 1024;
	hfm_evict_pass(&st, &o);
	TAP_OK(!exists(dir[0], oid[0]) && !exists("meta/cache-owned", oid[0]),
	       "records: the recorded object is evicted, with its record");
	TAP_OK(!exists("partial", oid[4]) && !exists("meta/cache-owned", oid[4]),
	       "records: the partial blob too, with its record");
	TAP_OK(exists(dir[1], oid[1]), "records: the hard-linked object stays");
	unlink(lnk);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir[1], oid[1]);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meta/cache-owned/%s", root, oid[1]);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meta/cache-owned/%s", root, oid[3]);
	unlink(path);
}

/* Wait (bounded) until the evictor finished `n` passes. */
static int wait_passes(struct hfm_evictor *e, uint64_t n)
{
	struct hfm_evictor_stats es;

	for (int i = 0; i < 3000; i++) {
		hfm_evictor_stats(&es, e);
		if (es.passes >= n)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void test_kick(void)
{
	struct hfm_evict_opts o = { .store = store, .strategy = HFM_CLEAN_LRU, .interval_s = 3600 };
	struct hfm_evictor_stats es;
	struct hfm_evictor *e = NULL;
	void *ref;

	/* the limit is far above what the store holds: passes only measure */
	o.limit = 64u << 20;
	TAP_IS_INT(hfm_evictor_start(&e, &o), 0, "kick: evictor starts");
	TAP_OK(wait_passes(e, 1), "kick: first pass at start");
	hfm_evictor_grew(e, 512u << 10);
	hfm_evictor_grew(e, 0);
	hfm_evictor_stats(&es, e);
	TAP_OK(es.kicks == 0 && es.grown == 512u << 10,
	       "kick: growth below 1/64 of the limit only counts (%llu kicks)",
	       (unsigned long long)es.kicks);
	hfm_evictor_grew(e, 512u << 10);
	hfm_evictor_stats(&es, e);
	TAP_IS_INT(es.kicks, 1, "kick: growth reaching 1/64 of the limit kicks");
	TAP_OK(wait_passes(e, 2), "kick: and a pass follows, long before the interval");
	hfm_evictor_grew(e, 60u << 20);
	hfm_evictor_stats(&es, e);
	TAP_IS_INT(es.kicks, 2, "kick: growth over the limit kicks");
	TAP_OK(wait_passes(e, 3), "kick: another pass");
	hfm_evictor_kick(e);
	TAP_OK(wait_passes(e, 4), "kick: hfm_evictor_kick asks for one too");
	/* a blob cache keeps its reference past stop: calls then do nothing */
	ref = hfm_evictor_ref(e);
	hfm_evictor_stop(e);
	hfm_evictor_grew(ref, 1u << 30);
	hfm_evictor_kick(ref);
	hfm_evictor_stats(&es, ref);
	TAP_OK(es.passes == 4 && es.kicks == 3, "kick: nothing after stop");
	hfm_evictor_unref(ref);

	/* debounced: within min_gap_ms of a pass, kicks wait and coalesce */
	o.min_gap_ms = 3600 * 1000;
	TAP_IS_INT(hfm_evictor_start(&e, &o), 0, "debounce: evictor starts");
	TAP_OK(wait_passes(e, 1), "debounce: first pass at start");
	hfm_evictor_kick(e);
	hfm_evictor_kick(e);
	hfm_evictor_grew(e, 10u << 20);
	hfm_evictor_stats(&es, e);
	TAP_OK(es.kicks == 1 && es.passes == 1,
	       "debounce: three requests, one kick, no pass yet (%llu kicks, %llu passes)",
	       (unsigned long long)es.kicks, (unsigned long long)es.passes);
	hfm_evictor_stop(e);
	TAP_OK(1, "debounce: stop does not wait for the gap");
}

int main(void)
{
	struct hfm_evict_stats st;
	char oid[8][65], dir[8][32], path[512], lnk[512];

	snprintf(root, sizeof(root), "%s/hfm-evict.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root) || hfm_store_open(&store, root, 1))
		return 1;
	snprintf(path, sizeof(path), "%s/partial", root);
	mkdir(path, 0755);
	for (int i = 0; i < 8; i++) {
		oid_of(oid[i], i, 64);
		object_dir(dir[i], oid[i]);
	}
	/* 0..3: cache-written, 100 KiB each; LRU order 2, 0, 3, 1; FIFO order 3, 2, 1, 0 */
	put(dir[0], oid[0], 100, 1, 300, 100);
	put(dir[1], oid[1], 100, 1, 10, 200);
	put(dir[2], oid[2], 100, 1, 400, 300);
	put(dir[3], oid[3], 200, 1, 50, 400);
	/* 4: imported by copy (no mark); 5: marked but hard-linked (imported) */
	put(dir[4], oid[4], 500, 0, 9000, 9000);
	put(dir[5], oid[5], 500, 1, 9000, 9000);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir[5], oid[5]);
	snprintf(lnk, sizeof(lnk), "%s/imported-copy", root);
	TAP_OK(link(path, lnk) == 0, "setup: object 5 has a second link");
	/* 6: a partial blob, old; 7: a partial blob in use (map locked) */
	put("partial", oid[6], 100, 1, 8000, 8000);
	put("partial", oid[7], 100, 1, 8000, 8000);
	char mapn[80];
	snprintf(mapn, sizeof(mapn), "%s.map", oid[7]);
	put("partial", mapn, 1, 0, 8000, 8000);
	snprintf(path, sizeof(path), "%s/partial/%s", root, oid[7]);
	int lockfd = open(path, O_RDWR);
	TAP_OK(lockfd >= 0 && flock(lockfd, LOCK_EX | LOCK_NB) == 0, "data of blob 7 locked");

	struct hfm_evict_opts o = { .store = store, .limit = 0, .strategy = HFM_CLEAN_LRU };
	TAP_IS_INT(hfm_evict_pass(&st, &o), 0, "no limit: pass ok");
	TAP_IS_INT((int)st.removed, 0, "no limit: nothing removed");
	/* ... but it measures the store, for /metrics */
	TAP_OK(st.usage.cache_objects == 4 && st.usage.cache_bytes >= 500 * 1024,
	       "no limit: the cache's objects measured (%llu, %llu bytes)",
	       (unsigned long long)st.usage.cache_objects, (unsigned long long)st.usage.cache_bytes);
	TAP_OK(st.usage.imported_objects == 2 && st.usage.imported_bytes >= 1000 * 1024,
	       "no limit: imported objects (a copy, a hard link) measured apart (%llu, %llu bytes)",
	       (unsigned long long)st.usage.imported_objects,
	       (unsigned long long)st.usage.imported_bytes);
	TAP_IS_INT(st.usage.partial_blobs, 2, "no limit: partial blobs measured");
	TAP_OK(hfm_metrics_get(HFM_M_STORE_OBJECTS + HFM_MO_IMPORTED) == 2 &&
	       hfm_metrics_get(HFM_M_STORE_BYTES + HFM_MO_CACHE) == (int64_t)st.usage.cache_bytes &&
	       hfm_metrics_get(HFM_M_STORE_SCANNED) > 0,
	       "the pass publishes the store's gauges");
	int64_t evicted0 = hfm_metrics_get(HFM_M_CACHE_EVICTIONS);
	int64_t evicted_bytes0 = hfm_metrics_get(HFM_M_CACHE_EVICTED_BYTES);

	/* counted: 0..3 (500 KiB) + 6, 7 (+ map) ~ 701 KiB; not 4 nor 5 */
	o.limit = 10u << 20;
	hfm_evict_pass(&st, &o);
	TAP_OK(st.used_before >= 700 * 1024 && st.used_before < 760 * 1024,
	       "only cache-written blobs count (%llu bytes)", (unsigned long long)st.used_before);
	TAP_IS_INT((int)st.removed, 0, "under the limit: nothing removed");

	/* LRU, limit 600 KiB: low water 540 KiB: removes 6 (oldest), then 2 */
	o.limit = 600 * 1024;
	hfm_evict_pass(&st, &o);
	TAP_OK(!exists("partial", oid[6]), "LRU: the idle partial blob went first");
	TAP_OK(!exists(dir[2], oid[2]), "LRU: then the least recently used object");
	TAP_OK(exists(dir[0], oid[0]) && exists(dir[1], oid[1]) && exists(dir[3], oid[3]),
	       "LRU: stops at the low-water mark");
	TAP_OK(st.used_after <= 540 * 1024, "LRU: down to 90%% (%llu)", (unsigned long long)st.used_after);
	TAP_IS_INT(hfm_metrics_get(HFM_M_CACHE_EVICTIONS) - evicted0, st.removed,
		   "LRU: the removals are counted");
	TAP_IS_INT(hfm_metrics_get(HFM_M_CACHE_EVICTED_BYTES) - evicted_bytes0,
		   st.used_before - st.used_after, "LRU: and the bytes they freed");
	TAP_OK(st.usage.cache_objects == 3 && st.usage.partial_blobs == 1,
	       "LRU: the usage after the pass (%llu objects, %llu partial)",
	       (unsigned long long)st.usage.cache_objects, (unsigned long long)st.usage.partial_blobs);
	TAP_OK(exists("partial", oid[7]) && exists("partial", mapn), "a locked partial blob stays");
	TAP_OK(exists(dir[4], oid[4]) && exists(dir[5], oid[5]), "imported objects stay");

	/* FIFO, limit 350 KiB, low 315, 504 KiB left: 7 is older but locked; 3 goes */
	o.limit = 350 * 1024;
	o.strategy = HFM_CLEAN_FIFO;
	hfm_evict_pass(&st, &o);
	TAP_OK(!exists(dir[3], oid[3]), "FIFO: oldest written first");
	TAP_OK(exists(dir[0], oid[0]) && exists(dir[1], oid[1]), "FIFO: newer ones stay");

	/* another process of the store (a node) evicting: this pass is skipped */
	snprintf(path, sizeof(path), "%s/meta/evict.lock", root);
	int elock = open(path, O_RDWR | O_CREAT, 0644);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	TAP_OK(elock >= 0 && fcntl(elock, F_OFD_SETLK, &fl) == 0, "evict lock held by another");
	o.limit = 1;
	TAP_IS_INT(hfm_evict_pass(&st, &o), 0, "evict lock: pass ok");
	TAP_OK(st.skipped && st.removed == 0 && exists(dir[0], oid[0]) && exists(dir[1], oid[1]),
	       "evict lock: the pass is skipped, nothing removed");
	close(elock);

	/* leases: LRU would take 0 first, but a request serves it (store.h) */
	int leased;
	uint64_t lsize;
	TAP_IS_INT(hfm_store_object_open(&leased, &lsize, store, oid[0]), 0, "lease: object 0 opened");
	o.limit = 150 * 1024;
	o.strategy = HFM_CLEAN_LRU;
	hfm_evict_pass(&st, &o);
	TAP_OK(!st.skipped && exists(dir[0], oid[0]), "lease: a served object stays");
	TAP_OK(!exists(dir[1], oid[1]), "lease: the next one goes instead");
	TAP_OK(st.in_use >= 1, "lease: counted as in use (%llu)", (unsigned long long)st.in_use);
	close(leased);

	/* LARGE_FIRST: unlock 7; 7 (100 KiB + map) is larger than 0 and 1 (100 KiB) */
	flock(lockfd, LOCK_UN);
	close(lockfd);
	o.limit = 150 * 1024;
	o.strategy = HFM_CLEAN_LARGE_FIRST;
	hfm_evict_pass(&st, &o);
	TAP_OK(!exists("partial", oid[7]) && !exists("partial", mapn), "LARGE_FIRST: the larger, with its map");
	TAP_OK(exists(dir[0], oid[0]), "LARGE_FIRST: stops when under the mark");
	TAP_OK(exists(dir[4], oid[4]) && exists(dir[5], oid[5]), "imported objects still stay");

	/* the thread: a pass at start */
	struct hfm_evictor *e = NULL;
	o.limit = 1;
	TAP_IS_INT(hfm_evictor_start(&e, &o), 0, "evictor starts");
	for (int i = 0; i < 100 && exists(dir[0], oid[0]); i++)
		usleep(20000);
	TAP_OK(!exists(dir[0], oid[0]), "evictor: first pass at start");
	hfm_evictor_kick(e);
	hfm_evictor_stop(e);
	TAP_OK(exists(dir[4], oid[4]) && exists(dir[5], oid[5]), "evictor: imported objects stay");

	/* what is left: 4 and 5, imported; they never count */
	test_records();
	test_kick();

	hfm_store_free(store);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	if (system(path))
		return 1;
	return tap_done();
}
