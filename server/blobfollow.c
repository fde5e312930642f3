/* blobfollow.c - follow a partial blob another process fills (see blobfollow.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/blobfollow.h"
#include "hfm/hash.h"

/* The map's layout, as blobcache.c writes it (blobcache.h): a 128-byte
 * header ("HFMBMAP1", u32 block shift at 8, u64 size at 16, the oid at 24),
 * then one bit per block, least significant bit first, set once durable. */
#define MAP_MAGIC "HFMBMAP1"
#define MAP_HDR 128

#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 500

/* A filler's exclusive try that only probes stand in the way of is tried
 * again after 100 us, doubling up to 3.2 ms: 13 ms at most in all (under
 * its blob cache's lock); a probe holds the lock for two calls. */
#define PROBE_WAITS 8
#define PROBE_WAIT_US 100u

struct timer {
	struct hfm_waiter *w;
	uint64_t due_ns;
};

struct hfm_followers {
	pthread_mutex_t lock;
	pthread_cond_t cond;             /* on CLOCK_MONOTONIC */
	struct timer *v;
	size_t n, cap;
	pthread_t thread;
	int started, stop;
};

struct hfm_follow {
	struct hfm_followers *fs;
	const struct hfm_store *store;
	char oid[HFM_SHA256_HEX + 1];
	uint64_t size;
	int fd, map_fd;
	unsigned shift;
	uint64_t durable_end;            /* bytes from 0 known durable (a prefix) */
	unsigned backoff_ms;
	int published;
};

/* ---- the poller ------------------------------------------------------------ */

static void *poller_main(void *arg)
{
	struct hfm_followers *fs = arg;

	pthread_mutex_lock(&fs->lock);
	while (!fs->stop) {
		uint64_t now = hfm_mono_ns(), next = now + 1000000000ull;
		struct hfm_waiter *due[64];
		size_t ndue = 0;

		for (size_t i = 0; i < fs->n;) {
			if (fs->v[i].due_ns <= now && ndue < HFM_ARRAY_SIZE(due)) {
				due[ndue++] = fs->v[i].w;
				fs->v[i] = fs->v[--fs->n];
				continue;
			}
			if (fs->v[i].due_ns < next)
				next = fs->v[i].due_ns;
			i++;
		}
		if (ndue) {
			pthread_mutex_unlock(&fs->lock);
			for (size_t i = 0; i < ndue; i++) {
				hfm_waiter_wake(due[i]);
				hfm_waiter_unref(due[i]);
			}
			pthread_mutex_lock(&fs->lock);
			continue;
		}
		hfm_cond_wait_mono(&fs->cond, &fs->lock, next);
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

int hfm_followers_new(struct hfm_followers **out)
{
	struct hfm_followers *fs = hfm_calloc(1, sizeof(*fs));

	pthread_mutex_init(&fs->lock, NULL);
	hfm_cond_init_mono(&fs->cond);
	*out = fs;
	return 0;
}

void hfm_followers_free(struct hfm_followers *fs)
{
	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->stop = 1;
	pthread_cond_signal(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	if (fs->started)
		pthread_join(fs->thread, NULL);
	/* the requests still waiting run again (and find the server stopping) */
	for (size_t i = 0; i < fs->n; i++) {
		hfm_waiter_wake(fs->v[i].w);
		hfm_waiter_unref(fs->v[i].w);
	}
	free(fs->v);
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

/* Fire w in `ms`.  0, or HFM_EIO when the thread cannot start. */
static int poll_later(struct hfm_followers *fs, struct hfm_waiter *w, unsigned ms)
{
	int rc = 0;

	pthread_mutex_lock(&fs->lock);
	if (!fs->started && !fs->stop) {
		if (pthread_create(&fs->thread, NULL, poller_main, fs))
			rc = hfm_error_set(HFM_EIO, "cannot start the blob follower thread");
		else
			fs->started = 1;
	}
	if (!rc && fs->stop)
		rc = hfm_error_set(HFM_EIO, "the server is stopping");
	if (!rc) {
		if (fs->n == fs->cap) {
			fs->cap = fs->cap ? fs->cap * 2 : 16;
			fs->v = hfm_realloc(fs->v, fs->cap * sizeof(*fs->v));
		}
		fs->v[fs->n++] = (struct timer){ hfm_waiter_ref(w), hfm_mono_ns() + ms * 1000000ull };
		pthread_cond_signal(&fs->cond);
	}
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

/* ---- one follower ---------------------------------------------------------- */

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/*
 * 1 when someone holds the data's lock exclusively (the filler, or the
 * evictor removing it); 0 when it is free.  flock has no test without
 * taking: the probe shares the lock for an instant, which a filler's
 * exclusive try then fails on (hfm_follow_lock_fill waits that out).
 */
static int filler_holds(int fd)
{
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		return errno == EWOULDBLOCK;
	flock(fd, LOCK_UN);
	return 0;
}

static void (*probe_wait_hook)(unsigned attempt);

void hfm_follow_set_probe_wait(void (*wait)(unsigned attempt))
{
	probe_wait_hook = wait;
}

int hfm_follow_lock_fill(int fd)
{
	for (unsigned attempt = 0;; attempt++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK || attempt == PROBE_WAITS)
			return HFM_EIO;
		/* exclusive: a filler or the evictor; shared only: followers probing */
		if (flock(fd, LOCK_SH | LOCK_NB) < 0)
			return HFM_EIO;
		flock(fd, LOCK_UN);
		if (probe_wait_hook)
			probe_wait_hook(attempt);
		else
			usleep(PROBE_WAIT_US << HFM_MIN(attempt, 5u));
	}
}

void hfm_follow_free(struct hfm_follow *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->map_fd >= 0)
		close(f->map_fd);
	free(f);
}

/*
 * Open and check the map, if it is there yet: 0 (f->map_fd set, or still
 * -1 when the filler has not named it yet), or an error.
 */
static int open_map(struct hfm_follow *f)
{
	unsigned char hdr[MAP_HDR];
	char name[HFM_SHA256_HEX + 16];
	int fd;

	snprintf(name, sizeof(name), "partial/%s.map", f->oid);
	if ((fd = openat(f->store->root_fd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : hfm_error_set(HFM_EIO, "%s: %s", name, strerror(errno));
	/* named by rename once its header is written (blobcache.c) */
	if (pread(fd, hdr, MAP_HDR, 0) != MAP_HDR || memcmp(hdr, MAP_MAGIC, 8)) {
		close(fd);
		return hfm_error_set(HFM_EIO, "%s: not a block map", name);
	}
	f->shift = (unsigned)get_le(hdr + 8, 4);
	if (f->shift < 12 || f->shift > 30 || get_le(hdr + 16, 8) != f->size ||
	    strncmp((const char *)hdr + 24, f->oid, strlen(f->oid))) {
		close(fd);
		return hfm_error_set(HFM_EINVAL, "%s is for another blob or size", name);
	}
	f->map_fd = fd;
	return 0;
}

int hfm_follow_open(struct hfm_follow **out, struct hfm_followers *fs,
		    const struct hfm_store *store, const char *oid, uint64_t size)
{
	struct hfm_follow *f = hfm_calloc(1, sizeof(*f));
	char name[HFM_SHA256_HEX + 16];
	int rc;

	f->fs = fs;
	f->store = store;
	f->size = size;
	f->fd = f->map_fd = -1;
	f->backoff_ms = BACKOFF_MIN_MS;
	snprintf(f->oid, sizeof(f->oid), "%s", oid);
	snprintf(name, sizeof(name), "partial/%s", oid);
	f->fd = openat(store->root_fd, name, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || !filler_holds(f->fd)) {
		rc = HFM_FOLLOW_TAKEOVER;
		goto fail;
	}
	/* no map yet: the filler has just locked the data (hfm_follow_ensure waits) */
	if ((rc = open_map(f)))
		goto fail;
	*out = f;
	return 0;
fail:
	hfm_follow_free(f);
	return rc;
}

/* Switch to the published object (leased, and the verified inode). */
static int follow_published(struct hfm_follow *f)
{
	uint64_t osize;
	int ofd;

	if (hfm_store_object_open(&ofd, &osize, f->store, f->oid) != 0)
		return 0;
	if (osize != f->size) {
		close(ofd);
		return hfm_error_set(HFM_EIO, "object %s has the wrong size", f->oid);
	}
	close(f->fd);
	f->fd = ofd;
	f->published = 1;
	f->durable_end = f->size;
	return 1;
}

/* Extend durable_end over the blocks the map now marks, in order. */
static int read_map(struct hfm_follow *f)
{
	uint64_t bs = 1ull << f->shift, nblocks = (f->size + bs - 1) >> f->shift;
	uint64_t blk = f->durable_end >> f->shift;
	unsigned char bits[4096];

	while (blk < nblocks) {
		uint64_t byte = blk >> 3;
		size_t want = (size_t)HFM_MIN((uint64_t)sizeof(bits), ((nblocks + 7) >> 3) - byte);
		ssize_t n = pread(f->map_fd, bits, want, (off_t)(MAP_HDR + byte));
		if (n <= 0)
			return n < 0 ? hfm_error_set(HFM_EIO, "partial/%s.map: %s", f->oid,
						     strerror(errno)) : 0;
		for (size_t i = (size_t)(blk & 7); byte * 8 + i < nblocks && i < (size_t)n * 8; i++) {
			if (!((bits[i >> 3] >> (i & 7)) & 1))
				return 0;
			blk = byte * 8 + i + 1;
			f->durable_end = HFM_MIN(blk << f->shift, f->size);
		}
		if ((size_t)n < want)
			return 0;
	}
	return 0;
}

int hfm_follow_ensure(uint64_t *avail, struct hfm_follow *f, uint64_t off, struct hfm_waiter *w)
{
	int rc;

	for (;;) {
		if (off < f->durable_end) {
			*avail = f->durable_end - off;
			return 0;
		}
		/* the object first: a published blob's map is deleted, its lock dropped */
		if ((rc = follow_published(f)) < 0)
			return rc;
		if (rc)
			continue;
		struct stat st;
		if (f->map_fd < 0) {
			if ((rc = open_map(f)))
				return rc;
			/* the data renamed away or removed while we waited for its map */
			if (f->map_fd < 0 && fstat(f->fd, &st) == 0 && st.st_nlink == 0)
				return HFM_FOLLOW_TAKEOVER;
		}
		uint64_t before = f->durable_end;
		if (f->map_fd >= 0 && (rc = read_map(f)))
			return rc;
		if (f->durable_end > before) {
			f->backoff_ms = BACKOFF_MIN_MS;
			continue;
		}
		if (f->map_fd >= 0 && fstat(f->map_fd, &st) == 0 && st.st_nlink == 0) {
			/* published since the check above, or the fill ended */
			if ((rc = follow_published(f)) != 0)
				return rc < 0 ? rc : (*avail = f->size - off, 0);
			return hfm_error_set(HFM_EUPSTREAM, "the fill of blob %s on another node "
					     "ended without it", f->oid);
		}
		if (!filler_holds(f->fd))
			return HFM_FOLLOW_TAKEOVER;
		unsigned ms = f->backoff_ms;
		f->backoff_ms = HFM_MIN(f->backoff_ms * 2, BACKOFF_MAX_MS);
		if (!w) {
			usleep(ms * 1000);
			continue;
		}
		if ((rc = poll_later(f->fs, w, ms)))
			return rc;
		return HFM_EAGAIN;
	}
}

int hfm_follow_published(const struct hfm_follow *f)
{
	return f->published;
}

int hfm_follow_fd(const struct hfm_follow *f)
{
	return f->fd;
}
