/*
 * memlru.h - a bounded in-memory LRU of small immutable byte strings keyed
 * by a 20-byte id (a git object id), shared by reference count.
 *
 * The git source answers small files from memory; inflating the same hot
 * blob from a pack on every request costs zlib time for nothing, since a
 * git blob id names its content forever.  So recently served blobs are kept
 * here, keyed by their id: a hit is a hash lookup and a reference count.
 *
 * Bounds: only items of at most `item_max` bytes are kept, and the items
 * kept take at most `max_bytes` (each counted with its bookkeeping).  The
 * least recently used items go first.  An evicted item that a caller still
 * holds stays valid until that caller drops it, so memory beyond max_bytes
 * is only what in-flight responses hold.
 *
 * Ownership: hfm_memlru_get() and hfm_memlru_put() return an item with one
 * reference for the caller, who drops it with hfm_memlru_unref() (which has
 * the signature of hfm_body's mem_free, so a body can hold it).  `data` and
 * `size` never change while a reference is held.
 *
 * Threading: every function may be called from any thread; one mutex guards
 * the table, and copies and frees happen outside it.
 */
#ifndef HFM_MEMLRU_H
#define HFM_MEMLRU_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HFM_MEMLRU_KEY 20

struct hfm_memlru;

struct hfm_memlru_item {
	const char *data;                /* size bytes, immutable */
	size_t size;
	/* private below */
	atomic_int refs;
	int cached;                      /* in the table (under the cache lock) */
	unsigned char key[HFM_MEMLRU_KEY];
	struct hfm_memlru_item *hnext, *prev, *next;
};

/* A cache that keeps items of at most item_max bytes, max_bytes in all. */
struct hfm_memlru *hfm_memlru_new(uint64_t max_bytes, size_t item_max);
/* Drops the cache's references; items still held by callers stay valid. */
void hfm_memlru_free(struct hfm_memlru *c);

/* The item for `key` (a new reference, now most recently used), or NULL. */
struct hfm_memlru_item *hfm_memlru_get(struct hfm_memlru *c, const unsigned char *key);

/*
 * An item holding a copy of data[0..size) under `key`, returned with a
 * reference.  Kept in the cache when it fits the bounds; otherwise a
 * private item that lives as long as its reference.  If another thread put
 * the same key first, that item is returned (same content: same id).
 */
struct hfm_memlru_item *hfm_memlru_put(struct hfm_memlru *c, const unsigned char *key,
				       const void *data, size_t size);

/* Drop a reference (void * so it can be an hfm_body mem_free). */
void hfm_memlru_unref(void *item);

/* Bytes and items kept now (for tests and stats). */
void hfm_memlru_usage(struct hfm_memlru *c, uint64_t *bytes, size_t *items);

#endif
