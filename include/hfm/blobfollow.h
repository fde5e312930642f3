/*
 * blobfollow.h - read a partial blob that another process fills.
 *
 * Nodes of a shared store (docs/scale-out.md) fill each blob once: the
 * process that fills partial/<oid> holds the flock on its data file
 * (blobcache.h), and another process that needs the same blob cannot open
 * it in its own blob cache.  The lock is on the data, which exists first:
 * locked data with no map yet is a fill being set up, and is followed
 * (its map waited for) rather than taken over.  It follows the fill instead: it reads the map
 * the filler keeps on disk and serves the blocks the map marks durable
 * (fdatasync'ed before their bit was set, so they are on disk for every
 * process), in order, as they become so.  Marked blocks are treated as
 * stored before any request: a follower never serves them to a range; the
 * stream answering a whole file hashes what it hands out itself and holds
 * the last byte until the digest matches the oid (stream.c).
 *
 * Waiting: the map is polled, never busily: a follower that finds no new
 * block arms its request's waiter on the process's followers set, whose one
 * thread fires it after a backoff (10 ms, doubling while nothing changes, at
 * most 500 ms; back to 10 ms on progress).  inotify would wake sooner on a
 * local filesystem, but says nothing about writes by another NFS client,
 * CephFS or Lustre client: the poll works on all of them, at the cost of up
 * to the backoff in latency per step (the filler makes blocks durable every
 * 8 MiB or 1 s anyway).
 *
 * Who holds the lock how: the filler (and the evictor, to remove a partial
 * blob) exclusively; a follower asks "does anyone?" by taking it shared and
 * dropping it at once, as flock cannot test a lock without taking it.  A
 * filler whose exclusive try meets only such probes tries again
 * (hfm_follow_lock_fill) rather than taking itself for a follower: two
 * followers and no filler would hand the blob back and forth.
 *
 * End of the fill: once objects/<oid> exists the whole blob is readable (the
 * data file was renamed into place: the follower's fd reads the object).
 * When the data's flock is free while the blob is not published, the filler
 * is gone (killed, or it released the blob): hfm_follow_ensure() answers
 * HFM_FOLLOW_TAKEOVER and the caller opens the blob in its own blob cache,
 * which takes the lock and resumes from the durable blocks (another
 * follower that loses that race keeps following the winner).  A map that
 * disappears without an object (the fill failed verification, or was
 * evicted) ends the follow with HFM_EUPSTREAM: the client retries.
 *
 * Threading: a follower is used by one stream at a time; the set's
 * functions from any thread.
 */
#ifndef HFM_BLOBFOLLOW_H
#define HFM_BLOBFOLLOW_H

#include <stdint.h>

#include "store.h"
#include "wait.h"

struct hfm_followers;
struct hfm_follow;

/* The process's poller (one thread, started at the first wait). */
int hfm_followers_new(struct hfm_followers **out);
/* Fires every waiter still waiting and joins the thread.  NULL is fine. */
void hfm_followers_free(struct hfm_followers *fs);

/*
 * The filler's lock on the data file fd of partial/<oid> (blobcache.c),
 * taken without waiting for another filler: 0, or HFM_EIO (no message)
 * when another process holds it exclusively or the filesystem cannot lock.
 * A follower's probe in the way is waited out (13 ms at most).
 */
int hfm_follow_lock_fill(int fd);
/* Tests: called instead of sleeping while a probe is in the way (NULL: sleep). */
void hfm_follow_set_probe_wait(void (*wait)(unsigned attempt));

/*
 * Follow partial/<oid> of `size` bytes in `store` (borrowed, like fs).
 *  0                    *out follows it
 *  HFM_FOLLOW_TAKEOVER  nobody fills it (no map, or its lock is free): open
 *                       it in the blob cache instead
 *  HFM_EINVAL           the map names another size or oid
 *  HFM_EIO              it cannot be read
 */
#define HFM_FOLLOW_TAKEOVER 1
int hfm_follow_open(struct hfm_follow **out, struct hfm_followers *fs,
		    const struct hfm_store *store, const char *oid, uint64_t size);
void hfm_follow_free(struct hfm_follow *f);

/*
 * Bytes readable from `off` (< size) right now:
 *  0                    *avail >= 1 bytes at off are durable (or published)
 *  HFM_EAGAIN           none yet; w is armed and fires after the backoff
 *                       (w == NULL: the call sleeps and polls instead)
 *  HFM_FOLLOW_TAKEOVER  the filler is gone and the blob is not published
 *  HFM_EUPSTREAM        the fill ended without a blob (client retries)
 *  HFM_EIO              read errors
 */
int hfm_follow_ensure(uint64_t *avail, struct hfm_follow *f, uint64_t off, struct hfm_waiter *w);
/* 1 once objects/<oid> was seen: every byte is readable, and verified. */
int hfm_follow_published(const struct hfm_follow *f);
/* The data's fd (borrowed): the same inode before and after publication. */
int hfm_follow_fd(const struct hfm_follow *f);

#endif
