/*
 * hasher.h - compute file hashes off the request path.
 *
 * Hashing a 10 GB file takes seconds, so it never happens on a server thread:
 * a request that needs the id of an unhashed large file queues a job, arms
 * its waiter and gets HFM_EAGAIN; it is woken when that one file is done.
 * Small files (<= HFM_HASH_INLINE_MAX) are hashed inline: that costs less
 * than the round trip through a queue.
 *
 * Two kinds of worker keep the promise that a request waits only for its own
 * file: "urgent" workers take only jobs some request waits for; one
 * "background" worker hashes everything else (prefetch) at low priority.  A
 * queued background job that a request starts waiting for is promoted.
 *
 * Results go to the hash index (hashindex.h), so they survive restarts.
 */
#ifndef HFM_HASHER_H
#define HFM_HASHER_H

#include <sys/stat.h>
#include "hashindex.h"
#include "wait.h"

#define HFM_HASH_INLINE_MAX (1u << 20)

struct hfm_hasher;

/* `urgent_threads` >= 1; `background` 0 or 1.  The index is borrowed. */
struct hfm_hasher *hfm_hasher_new(struct hfm_hashindex *idx, int urgent_threads,
				  int background);
/* Stops the workers; queued jobs are dropped and their waiters woken. */
void hfm_hasher_free(struct hfm_hasher *h);

/*
 * The hashes of the file at absolute `path` whose (followed) stat is `st`.
 *  0           *out is filled (known, or hashed now: small file or w == NULL)
 *  HFM_EAGAIN  a job is queued or running; w is armed and will be woken
 *  HFM_EIO     the file cannot be read, or is no longer the file `st` saw
 *              (a failure is remembered for a few seconds so that woken
 *              requests do not requeue it in a loop)
 * `inline_budget` (may be NULL) caps the bytes one request hashes inline
 * across several calls: a small file is hashed inline only while the budget
 * lasts, so listing a large unhashed repo queues work instead of holding a
 * server thread.
 */
int hfm_hasher_get(struct hfm_hasher *h, const char *path, const struct stat *st,
		   struct hfm_hash_rec *out, struct hfm_waiter *w, uint64_t *inline_budget);

/* Queue a background job unless the hashes are known or queued. */
void hfm_hasher_prefetch(struct hfm_hasher *h, const char *path, const struct stat *st);

#endif
