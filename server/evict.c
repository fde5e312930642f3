/* evict.c - size limit for the cache's blobs (see evict.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "hfm/evict.h"
#include "hfm/hash.h"
#include "hfm/metrics.h"

#define FRESH_NOMAP_S 3600               /* partial data with no map younger than this: being made */
#define RECORD_DIR "meta/cache-owned"    /* marks where the filesystem has no user xattrs */
#define EVICT_LOCK "meta/evict.lock"     /* one evicting process at a time, across nodes */

struct cand {
	char name[HFM_SHA256_HEX + 4];   /* oid; objects: "xx/<oid>" */
	int partial;
	uint64_t bytes;
	int64_t used_ns, made_ns;
};

struct cands {
	struct cand *v;
	size_t n, cap;
	uint64_t total;
	struct hfm_store_usage use;
};

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static void cand_add(struct cands *c, const char *name, int partial, const struct stat *st,
		     uint64_t extra)
{
	struct cand *k;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = hfm_realloc(c->v, c->cap * sizeof(*c->v));
	}
	k = &c->v[c->n++];
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->partial = partial;
	k->bytes = (uint64_t)st->st_blocks * 512 + extra;
	k->made_ns = ts_ns(&st->st_mtim);
	k->used_ns = ts_ns(&st->st_atim) > k->made_ns ? ts_ns(&st->st_atim) : k->made_ns;
	c->total += k->bytes;
	if (partial) {
		c->use.partial_blobs++;
		c->use.partial_bytes += k->bytes;
	} else {
		c->use.cache_objects++;
		c->use.cache_bytes += k->bytes;
	}
}

/* A candidate went: the usage follows. */
static void cand_gone(struct cands *c, const struct cand *k)
{
	if (k->partial) {
		c->use.partial_blobs--;
		c->use.partial_bytes -= k->bytes;
	} else {
		c->use.cache_objects--;
		c->use.cache_bytes -= k->bytes;
	}
	hfm_metrics_inc(HFM_M_CACHE_EVICTIONS);
	hfm_metrics_add(HFM_M_CACHE_EVICTED_BYTES, k->bytes);
}

/*
 * Open `name` under `at` for reading entries: always a new open file
 * description (a dup of a kept fd would share, and leave, its offset).
 * *fd (may be NULL) gets the directory's fd, owned by the DIR.
 */
static DIR *open_dir(int at, const char *name, int *fd)
{
	int dfd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;

	if (!d && dfd >= 0)
		close(dfd);
	if (fd)
		*fd = dfd;
	return d;
}

/* ---- marks ------------------------------------------------------------------ */

int hfm_evict_record(const struct hfm_store *s, const char *oid)
{
	int dfd, fd, rc = 0;

	if (!hfm_store_oid_valid(oid))
		return hfm_error_set(HFM_EIO, "cannot record %s: not a blob id", oid);
	if ((rc = hfm_store_mkdirs(s, RECORD_DIR)))
		return rc;
	dfd = openat(s->root_fd, RECORD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = dfd < 0 ? -1 : openat(dfd, oid, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	/* a fresh mtime: a pass leaves young records alone (their blob is being made) */
	if (fd < 0 || futimens(fd, NULL) < 0)
		rc = hfm_error_set(HFM_EIO, "%s/%s/%s: %s", s->root, RECORD_DIR, oid, strerror(errno));
	if (fd >= 0)
		close(fd);
	/* a record lost in a power cut would keep its blob forever */
	if (!rc)
		fsync(dfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int hfm_evict_mark(const struct hfm_store *s, int fd, const char *oid)
{
	if (fsetxattr(fd, HFM_EVICT_XATTR, "1", 1, 0) == 0)
		return 0;
	return hfm_evict_record(s, oid) ? HFM_EIO : 1;
}

/* The records under RECORD_DIR, sorted, for one pass. */
struct records {
	DIR *d;                          /* NULL when there are none */
	int dfd;                         /* owned by d */
	char (*oid)[HFM_SHA256_HEX + 1];
	uint8_t *seen;                   /* its blob was found by the scans */
	size_t n, cap;
};

static int oid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void records_load(struct records *r, const struct hfm_store *s)
{
	struct dirent *de;

	memset(r, 0, sizeof(*r));
	r->dfd = -1;
	if (!(r->d = open_dir(s->root_fd, RECORD_DIR, &r->dfd)))
		return;
	while ((de = readdir(r->d))) {
		if (!hfm_store_oid_valid(de->d_name))
			continue;
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->oid = hfm_realloc(r->oid, r->cap * sizeof(*r->oid));
		}
		snprintf(r->oid[r->n++], sizeof(*r->oid), "%.64s", de->d_name);
	}
	if (r->n)
		qsort(r->oid, r->n, sizeof(*r->oid), oid_cmp);
	r->seen = hfm_calloc(r->n ? r->n : 1, 1);
}

/* Note that blob `oid` exists; 1 when it has a record. */
static int records_saw(struct records *r, const char *oid)
{
	char (*k)[HFM_SHA256_HEX + 1];

	if (!r->n)
		return 0;
	k = bsearch(oid, r->oid, r->n, sizeof(*r->oid), oid_cmp);
	if (!k)
		return 0;
	r->seen[k - r->oid] = 1;
	return 1;
}

static void records_drop(struct records *r, const char *oid)
{
	if (r->d)
		unlinkat(r->dfd, oid, 0);
}

/*
 * Drop records whose blob the scans did not see and that is neither in
 * partial/ nor in objects/ now.  partial/ is looked at first: a blob being
 * published moves from there to objects/, so one of the two sees it.
 */
static void records_sweep(struct records *r, const struct hfm_store *s, int pfd)
{
	int64_t now = (int64_t)time(NULL);
	struct stat st;

	for (size_t i = 0; i < r->n; i++) {
		if (r->seen[i])
			continue;
		if ((pfd >= 0 && !fstatat(pfd, r->oid[i], &st, AT_SYMLINK_NOFOLLOW)) ||
		    hfm_store_object_exists(s, r->oid[i]))
			continue;
		if (!fstatat(r->dfd, r->oid[i], &st, AT_SYMLINK_NOFOLLOW) &&
		    now - (int64_t)st.st_mtim.tv_sec >= FRESH_NOMAP_S)
			unlinkat(r->dfd, r->oid[i], 0);
	}
}

static void records_dispose(struct records *r)
{
	if (r->d)
		closedir(r->d);
	free(r->oid);
	free(r->seen);
}

/*
 * A cache-written object: one link, and the xattr or a record.  1 when it
 * is, 0 for another regular file (imported), -1 for anything else.
 */
static int is_marked(int dirfd, const char *name, struct stat *st, int recorded)
{
	char v[4];
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	int marked = -1;

	if (fd < 0)
		return -1;
	if (!fstat(fd, st) && S_ISREG(st->st_mode))
		marked = st->st_nlink == 1 &&
			 (recorded || fgetxattr(fd, HFM_EVICT_XATTR, v, sizeof(v)) > 0);
	close(fd);
	return marked;
}

static void scan_objects(struct cands *c, const struct hfm_store *s, struct records *r)
{
	DIR *d = open_dir(s->objects_fd, ".", NULL);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 2 || !hfm_is_hex(de->d_name, 2))
			continue;
		int sfd;
		DIR *sd = open_dir(s->objects_fd, de->d_name, &sfd);
		struct dirent *oe;
		if (!sd)
			continue;
		while ((oe = readdir(sd))) {
			struct stat st;
			char name[HFM_SHA256_HEX + 4];
			int marked;
			if (!hfm_store_oid_valid(oe->d_name) ||
			    (marked = is_marked(sfd, oe->d_name, &st, records_saw(r, oe->d_name))) < 0)
				continue;
			if (!marked) {
				c->use.imported_objects++;
				c->use.imported_bytes += (uint64_t)st.st_blocks * 512;
				continue;
			}
			snprintf(name, sizeof(name), "%.2s/%.64s", de->d_name, oe->d_name);
			cand_add(c, name, 0, &st, 0);
		}
		closedir(sd);
	}
	closedir(d);
}

static void scan_partial(struct cands *c, int pfd, struct records *r)
{
	DIR *d = open_dir(pfd, ".", NULL);
	struct dirent *de;
	int64_t now = (int64_t)time(NULL) * 1000000000;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st, ms;
		char mapn[HFM_SHA256_HEX + 8];
		if (!hfm_store_oid_valid(de->d_name) ||
		    fstatat(pfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		records_saw(r, de->d_name);
		snprintf(mapn, sizeof(mapn), "%.64s.map", de->d_name);
		if (fstatat(pfd, mapn, &ms, AT_SYMLINK_NOFOLLOW)) {
			if (now - ts_ns(&st.st_mtim) < (int64_t)FRESH_NOMAP_S * 1000000000)
				continue;
			ms.st_blocks = 0;
		}
		cand_add(c, de->d_name, 1, &st, (uint64_t)ms.st_blocks * 512);
	}
	closedir(d);
}

static enum hfm_clean_strategy sort_strategy;

static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	int64_t x, y;

	switch (sort_strategy) {
	case HFM_CLEAN_LARGE_FIRST:
		if (a->bytes != b->bytes)
			return a->bytes > b->bytes ? -1 : 1;
		x = a->made_ns, y = b->made_ns;
		break;
	case HFM_CLEAN_FIFO:
		x = a->made_ns, y = b->made_ns;
		break;
	default:
		x = a->used_ns, y = b->used_ns;
		break;
	}
	return x < y ? -1 : x > y ? 1 : strcmp(a->name, b->name);
}

/* 1 for partial data younger than FRESH_NOMAP_S (being created), or gone. */
static int fresh_nomap(int pfd, const char *name)
{
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return 1;
	return (int64_t)time(NULL) - (int64_t)st.st_mtim.tv_sec < FRESH_NOMAP_S;
}

/* The store's gauges (metrics.h): a pass is the one place that measures it. */
static void publish(const struct hfm_store_usage *u)
{
	hfm_metrics_set(HFM_M_STORE_BYTES + HFM_MO_CACHE, (int64_t)u->cache_bytes);
	hfm_metrics_set(HFM_M_STORE_BYTES + HFM_MO_IMPORTED, (int64_t)u->imported_bytes);
	hfm_metrics_set(HFM_M_STORE_OBJECTS + HFM_MO_CACHE, (int64_t)u->cache_objects);
	hfm_metrics_set(HFM_M_STORE_OBJECTS + HFM_MO_IMPORTED, (int64_t)u->imported_objects);
	hfm_metrics_set(HFM_M_STORE_PARTIAL, (int64_t)u->partial_blobs);
	hfm_metrics_set(HFM_M_STORE_PARTIAL_BYTES, (int64_t)u->partial_bytes);
	hfm_metrics_set(HFM_M_STORE_SCANNED, (int64_t)time(NULL));
}

/* Remove one candidate (and its record); 1 when it went. */
static int remove_cand(const struct hfm_store *s, int pfd, const struct cand *k,
		       struct records *r)
{
	char mapn[HFM_SHA256_HEX + 8];
	int dfd, gone;

	if (!k->partial) {
		/* a leased object is being served, here or by another node: kept */
		gone = hfm_store_object_remove_unleased(s, k->name + 3) == 0;
		if (gone)
			records_drop(r, k->name + 3);
		return gone;
	}
	snprintf(mapn, sizeof(mapn), "%s.map", k->name);
	/* the blob cache of whichever process fills it holds its data's lock */
	dfd = openat(pfd, k->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return 0;                        /* published or removed since the scan */
	if (flock(dfd, LOCK_EX | LOCK_NB)) {
		close(dfd);
		return 0;
	}
	/* no map now: published since the scan, or being made */
	if (faccessat(pfd, mapn, F_OK, 0) && fresh_nomap(pfd, k->name)) {
		close(dfd);
		return 0;
	}
	/* the map first: data without a map reads as empty */
	unlinkat(pfd, mapn, 0);
	gone = unlinkat(pfd, k->name, 0) == 0;
	close(dfd);                              /* drops the lock */
	if (gone)
		records_drop(r, k->name);
	return gone;
}

/*
 * The store's evict lock, taken without waiting: an fd holding it, or -1
 * when another process (a node sharing the store) holds it or it cannot be
 * had.  Where locks do not work across nodes (NFS mounted nolock) every
 * node may evict at once: each still leaves leased and locked blobs alone.
 */
static int evict_lock(const struct hfm_store *s, int *busy)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	*busy = 0;
	if (hfm_store_mkdirs(s, "meta"))
		return -1;
	fd = openat(s->root_fd, EVICT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return fd;
	*busy = errno == EAGAIN || errno == EACCES;
	close(fd);
	return -1;
}

int hfm_evict_pass(struct hfm_evict_stats *out, const struct hfm_evict_opts *o)
{
	static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;
	struct cands c = { 0 };
	struct records r;
	unsigned pct = o->low_pct && o->low_pct <= 100 ? o->low_pct : 90;
	uint64_t low;
	int pfd, lfd, busy;

	memset(out, 0, sizeof(*out));
	if ((lfd = evict_lock(o->store, &busy)) < 0 && busy) {
		out->skipped = 1;
		hfm_log(o->log, o->log_cls, HFM_LOG_DEBUG,
			"evict: another process of the store is evicting; this round is skipped");
		return 0;
	}
	low = o->limit / 100 * pct + o->limit % 100 * pct / 100;
	pfd = openat(o->store->root_fd, "partial", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	records_load(&r, o->store);
	scan_objects(&c, o->store, &r);
	if (pfd >= 0)
		scan_partial(&c, pfd, &r);
	out->used_before = out->used_after = c.total;
	if (o->limit && c.total > o->limit) {
		pthread_mutex_lock(&sort_lock);
		sort_strategy = o->strategy;
		qsort(c.v, c.n, sizeof(*c.v), cand_cmp);
		pthread_mutex_unlock(&sort_lock);
		for (size_t i = 0; i < c.n && out->used_after > low; i++) {
			if (!remove_cand(o->store, pfd, &c.v[i], &r)) {
				out->in_use++;
				continue;
			}
			cand_gone(&c, &c.v[i]);
			out->used_after -= c.v[i].bytes;
			out->removed++;
		}
		hfm_log(o->log, o->log_cls, HFM_LOG_INFO,
			"evict: %llu files, %llu -> %llu bytes (limit %llu), %llu in use kept",
			(unsigned long long)out->removed, (unsigned long long)out->used_before,
			(unsigned long long)out->used_after, (unsigned long long)o->limit,
			(unsigned long long)out->in_use);
	}
	out->usage = c.use;
	publish(&c.use);
	records_sweep(&r, o->store, pfd);
	records_dispose(&r);
	if (pfd >= 0)
		close(pfd);
	if (lfd >= 0)
		close(lfd);                      /* drops the evict lock */
	free(c.v);
	return 0;
}

/* ---- the thread ------------------------------------------------------------ */

struct hfm_evictor {
	struct hfm_evict_opts o;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;             /* on CLOCK_MONOTONIC */
	int stop;                        /* under lock */
	atomic_int refs;
	atomic_int stopped;              /* kicks and growth are ignored */
	atomic_int kick_due;             /* a pass is due: further kicks coalesce */
	atomic_uint_fast64_t grown, used, passes, kicks;
};

static void *evictor_main(void *arg)
{
	struct hfm_evictor *e = arg;
	uint64_t gap = (uint64_t)(e->o.min_gap_ms ? e->o.min_gap_ms : 1000) * 1000000;
	uint64_t every = (uint64_t)(e->o.interval_s ? e->o.interval_s : 60) * 1000000000;
	struct hfm_evict_stats st;

	pthread_mutex_lock(&e->lock);
	while (!e->stop) {
		uint64_t began = hfm_mono_ns(), until;

		/* growth and kicks from now on call for the next pass */
		atomic_store(&e->kick_due, 0);
		atomic_store(&e->grown, 0);
		pthread_mutex_unlock(&e->lock);
		if (hfm_evict_pass(&st, &e->o) == 0)
			atomic_store(&e->used, st.used_after);
		atomic_fetch_add(&e->passes, 1);
		pthread_mutex_lock(&e->lock);
		until = hfm_mono_ns() + every;
		while (!e->stop) {
			uint64_t t = until;
			if (atomic_load(&e->kick_due) && began + gap < t)
				t = began + gap;
			if (hfm_mono_ns() >= t)
				break;
			hfm_cond_wait_mono(&e->cond, &e->lock, t);
		}
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* 1 when files on the store's filesystem take user xattrs (or it cannot tell). */
static int xattrs_work(const struct hfm_store *s, int *err)
{
	char name[96];
	int fd, ok;

	if (hfm_store_scratch(&fd, name, s))
		return 1;
	ok = fsetxattr(fd, HFM_EVICT_XATTR, "1", 1, 0) == 0;
	*err = errno;
	close(fd);
	if (name[0])
		unlinkat(s->tmp_fd, name, 0);
	return ok;
}

int hfm_evictor_start(struct hfm_evictor **out, const struct hfm_evict_opts *o)
{
	struct hfm_evictor *e = hfm_calloc(1, sizeof(*e));
	int err = 0;

	e->o = *o;
	atomic_init(&e->refs, 1);
	pthread_mutex_init(&e->lock, NULL);
	hfm_cond_init_mono(&e->cond);
	/* a warning only so that it shows at the daemon's default level: it
	 * works; and only when something is evicted (else passes only measure) */
	if (o->limit && !xattrs_work(o->store, &err))
		hfm_log(o->log, o->log_cls, HFM_LOG_WARN,
			"evict: %s takes no user xattrs (%s): the blobs the cache writes are "
			"recorded under %s/ instead", o->store->root, strerror(err), RECORD_DIR);
	if (pthread_create(&e->thread, NULL, evictor_main, e)) {
		hfm_evictor_unref(e);
		return hfm_error_set(HFM_ERROR, "cannot start the evictor thread");
	}
	*out = e;
	return 0;
}

void hfm_evictor_kick(struct hfm_evictor *e)
{
	if (!e || atomic_load(&e->stopped) || atomic_exchange(&e->kick_due, 1))
		return;
	atomic_fetch_add(&e->kicks, 1);
	/* under the lock, so the thread cannot miss it between its check and its wait */
	pthread_mutex_lock(&e->lock);
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

void hfm_evictor_grew(void *evictor, uint64_t bytes)
{
	struct hfm_evictor *e = evictor;
	uint64_t limit, share, g;

	if (!e || !(limit = e->o.limit))
		return;
	share = limit / 64 ? limit / 64 : 1;
	g = atomic_fetch_add(&e->grown, bytes) + bytes;
	if ((bytes && g >= share) || atomic_load(&e->used) + g > limit)
		hfm_evictor_kick(e);
}

void hfm_evictor_stats(struct hfm_evictor_stats *out, struct hfm_evictor *e)
{
	out->passes = atomic_load(&e->passes);
	out->kicks = atomic_load(&e->kicks);
	out->used = atomic_load(&e->used);
	out->grown = atomic_load(&e->grown);
}

void *hfm_evictor_ref(struct hfm_evictor *e)
{
	if (e)
		atomic_fetch_add(&e->refs, 1);
	return e;
}

void hfm_evictor_unref(void *evictor)
{
	struct hfm_evictor *e = evictor;

	if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
}

void hfm_evictor_stop(struct hfm_evictor *e)
{
	if (!e)
		return;
	atomic_store(&e->stopped, 1);
	pthread_mutex_lock(&e->lock);
	e->stop = 1;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	hfm_evictor_unref(e);
}
