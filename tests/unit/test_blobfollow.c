/*
 * Following a partial blob another process fills: nothing to follow
 * without a locked map (take it over); the durable prefix the map marks,
 * growing as bits are set, and a waiter woken after the backoff while it
 * does not; the filler gone (lock free) is a takeover; the blob published
 * reads whole from the object; a map gone without an object ends it.  The
 * "other process" is another open file description of the data, whose
 * flock conflicts as another process's would.  And the race between a
 * follower's probe and a filler starting: the filler waits the probe out
 * (the probe's shared lock is held across the filler's first try, and let
 * go from the filler's wait).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/blobcache.h"
#include "hfm/blobfollow.h"
#include "hfm/wait.h"
#include "tap.h"

#define BS 4096u
#define NB 10u

static char root[256];
static const char *oid = "3333333333333333333333333333333333333333333333333333333333333333";

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void path_of(char *out, const char *suffix)
{
	snprintf(out, 512, "%s/partial/%s%s", root, oid, suffix);
}

static int data_fd = -1;

/* The data and a map with no bits, as blobcache.c lays them out; the map's
 * fd (data_fd: the data's, whose flock is the filler's). */
static int make_partial(uint64_t size)
{
	char p[512];
	unsigned char hdr[128 + 2] = { 0 };
	int fd;

	path_of(p, "");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *buf = malloc(size);
	memset(buf, 'z', size);
	if (write(fd, buf, size) != (ssize_t)size)
		abort();
	free(buf);
	if (data_fd >= 0)
		close(data_fd);
	data_fd = fd;
	memcpy(hdr, "HFMBMAP1", 8);
	put_le(hdr + 8, 12, 4);
	put_le(hdr + 16, size, 8);
	memcpy(hdr + 24, oid, 64);
	path_of(p, ".map");
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
		abort();
	return fd;
}

static void set_bits(int map_fd, unsigned first, unsigned n)
{
	unsigned char b[2];

	if (pread(map_fd, b, 2, 128) != 2)
		abort();
	for (unsigned i = first; i < first + n; i++)
		b[i >> 3] |= (unsigned char)(1u << (i & 7));
	if (pwrite(map_fd, b, 2, 128) != 2)
		abort();
}

/* The probe a filler meets: a follower's shared lock, let go when the filler waits. */
static int probe_fd = -1;
static int probe_waits;
static void let_probe_go(unsigned attempt)
{
	(void)attempt;
	probe_waits++;
	flock(probe_fd, LOCK_UN);
}

static int no_fetch(void *cls, struct hfm_blob_fetch *f, const struct hfm_blob_origin *origin)
{
	(void)cls, (void)f, (void)origin;
	return HFM_EIO;
}

static atomic_int woken;
static void on_wake(void *cls)
{
	(void)cls;
	atomic_fetch_add(&woken, 1);
}

int main(void)
{
	struct hfm_store *store;
	struct hfm_followers *fs;
	struct hfm_follow *f;
	uint64_t avail, size = NB * BS - 100;
	char p[512], obj[512];

	snprintf(root, sizeof(root), "%s/hfm-follow.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root) || hfm_store_open(&store, root, 1) || hfm_followers_new(&fs))
		return 1;

	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), HFM_FOLLOW_TAKEOVER,
		   "no partial blob: take it over");
	int map = make_partial(size);
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), HFM_FOLLOW_TAKEOVER,
		   "data nobody locks: take it over");
	TAP_OK(flock(data_fd, LOCK_EX | LOCK_NB) == 0, "the filler locks its data");
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size + 1), HFM_EINVAL,
		   "a map of another size is refused");
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), 0, "a locked map is followed");

	struct hfm_waiter *w = hfm_waiter_new(on_wake, NULL);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 0, w), HFM_EAGAIN, "no durable block: wait");
	for (int i = 0; i < 200 && !atomic_load(&woken); i++)
		usleep(5000);
	TAP_IS_INT(atomic_load(&woken), 1, "the waiter fires after the backoff");
	hfm_waiter_unref(w);

	set_bits(map, 0, 2);
	set_bits(map, 3, 1);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 0, NULL), 0, "durable blocks read");
	TAP_OK(avail == 2 * BS, "only the durable prefix (%llu)", (unsigned long long)avail);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, BS + 5, NULL), 0, "inside it");
	TAP_OK(avail == BS - 5, "up to its end (%llu)", (unsigned long long)avail);
	set_bits(map, 2, 1);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 2 * BS, NULL), 0, "a block made durable later");
	TAP_OK(avail == 2 * BS, "joins the prefix with the one after it (%llu)",
	       (unsigned long long)avail);
	TAP_OK(!hfm_follow_published(f), "not published");

	/* the filler goes away (killed): its lock goes with it */
	flock(data_fd, LOCK_UN);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 4 * BS, NULL), HFM_FOLLOW_TAKEOVER,
		   "the filler gone: take it over");
	hfm_follow_free(f);

	/* published: the data renamed into objects/, then the map removed */
	flock(data_fd, LOCK_EX | LOCK_NB);
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), 0, "followed again");
	snprintf(obj, sizeof(obj), "%s/objects/33", root);
	mkdir(obj, 0755);
	snprintf(obj, sizeof(obj), "%s/objects/33/%s", root, oid);
	path_of(p, "");
	TAP_OK(rename(p, obj) == 0, "published");
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 4 * BS, NULL), 0, "a published blob reads");
	TAP_OK(avail == size - 4 * BS && hfm_follow_published(f), "whole, from the object");
	hfm_follow_free(f);
	path_of(p, ".map");
	unlink(p);
	close(map);
	unlink(obj);

	/* the map removed with no object (a failed verification): the end */
	map = make_partial(size);
	flock(data_fd, LOCK_EX | LOCK_NB);
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), 0, "a new fill followed");
	path_of(p, ".map");
	unlink(p);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 0, NULL), HFM_EUPSTREAM,
		   "its map gone without an object: the follow ends");
	hfm_follow_free(f);
	close(map);

	/* the filler has locked its data and not named the map yet: wait for it */
	map = make_partial(size);
	close(map);
	path_of(p, ".map");
	unlink(p);
	flock(data_fd, LOCK_EX | LOCK_NB);
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), 0,
		   "locked data without a map yet is followed");
	atomic_store(&woken, 0);
	w = hfm_waiter_new(on_wake, NULL);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 0, w), HFM_EAGAIN, "no map yet: wait");
	for (int i = 0; i < 200 && !atomic_load(&woken); i++)
		usleep(5000);
	TAP_IS_INT(atomic_load(&woken), 1, "the waiter fires after the backoff");
	hfm_waiter_unref(w);
	map = make_partial(size);        /* the same data file, truncated in place */
	flock(data_fd, LOCK_EX | LOCK_NB);
	set_bits(map, 0, 1);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 0, NULL), 0, "the map named: its blocks read");
	TAP_OK(avail == BS, "its durable block (%llu)", (unsigned long long)avail);
	hfm_follow_free(f);
	close(map);
	path_of(p, ".map");
	unlink(p);
	TAP_IS_INT(hfm_follow_open(&f, fs, store, oid, size), 0, "followed again, no map");
	flock(data_fd, LOCK_UN);
	TAP_IS_INT(hfm_follow_ensure(&avail, f, 0, NULL), HFM_FOLLOW_TAKEOVER,
		   "the filler gone before naming its map: take it over");
	hfm_follow_free(f);

	/* a filler starts while a follower probes the lock (filler_holds) */
	struct hfm_blobcache_opts bo = { .block_size = BS, .memory_max = -1, .fetch = no_fetch };
	struct hfm_blobcache *bc;
	struct hfm_blob *b;
	map = make_partial(size);
	close(map);
	TAP_OK(hfm_blobcache_new(&bc, store, &bo) == 0, "a blob cache");
	probe_fd = data_fd;
	TAP_OK(flock(probe_fd, LOCK_SH | LOCK_NB) == 0, "a follower's probe holds the lock shared");
	hfm_follow_set_probe_wait(let_probe_go);
	int opened = hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(opened, 0, "a filler that meets the probe waits it out and fills");
	TAP_IS_INT(probe_waits, 1, "... after one wait");
	int followed = hfm_follow_open(&f, fs, store, oid, size);
	TAP_IS_INT(followed, 0, "the next probe sees it filled");
	if (followed == 0)
		hfm_follow_free(f);
	path_of(p, "");
	int other = open(p, O_RDWR);     /* another filler's try, as its lock_data */
	TAP_IS_INT(hfm_follow_lock_fill(other), HFM_EIO,
		   "a second filler is turned away by the first");
	TAP_IS_INT(probe_waits, 1, "... at once (an exclusive holder is not waited for)");
	close(other);
	if (opened == 0)
		hfm_blob_release(b);
	hfm_blobcache_free(bc);
	hfm_follow_set_probe_wait(NULL);

	hfm_followers_free(fs);
	hfm_store_free(store);
	snprintf(p, sizeof(p), "rm -rf '%s'", root);
	if (system(p))
		return 1;
	return tap_done();
}
