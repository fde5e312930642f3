/* memlru.c - see memlru.h */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "hfm/memlru.h"

#define BUCKETS_MIN 1024

struct hfm_memlru {
	pthread_mutex_t lock;            /* everything below */
	struct hfm_memlru_item **buckets;
	size_t nbuckets;                 /* a power of two */
	struct hfm_memlru_item *head, *tail;  /* most recently used first */
	uint64_t bytes, max_bytes;
	size_t items, item_max;
};

/* What an item costs against max_bytes: small items are mostly overhead. */
static uint64_t item_cost(size_t size)
{
	return (uint64_t)size + sizeof(struct hfm_memlru_item) + 32;
}

/* Keys are object ids (uniform hashes already): their first bytes will do. */
static size_t bucket_of(const struct hfm_memlru *c, const unsigned char *key)
{
	size_t h;

	memcpy(&h, key, sizeof(h));
	return h & (c->nbuckets - 1);
}

struct hfm_memlru *hfm_memlru_new(uint64_t max_bytes, size_t item_max)
{
	struct hfm_memlru *c = hfm_calloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	c->nbuckets = BUCKETS_MIN;
	c->buckets = hfm_calloc(c->nbuckets, sizeof(*c->buckets));
	c->max_bytes = max_bytes;
	c->item_max = item_max;
	return c;
}

void hfm_memlru_unref(void *p)
{
	struct hfm_memlru_item *it = p;

	if (it && atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) == 1)
		free(it);
}

void hfm_memlru_free(struct hfm_memlru *c)
{
	struct hfm_memlru_item *it, *next;

	if (!c)
		return;
	for (it = c->head; it; it = next) {
		next = it->next;
		hfm_memlru_unref(it);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct hfm_memlru_item *find(struct hfm_memlru *c, const unsigned char *key)
{
	struct hfm_memlru_item *it;

	for (it = c->buckets[bucket_of(c, key)]; it; it = it->hnext)
		if (!memcmp(it->key, key, HFM_MEMLRU_KEY))
			return it;
	return NULL;
}

static void lru_unlink(struct hfm_memlru *c, struct hfm_memlru_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		c->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		c->tail = it->prev;
	it->prev = it->next = NULL;
}

static void lru_push_front(struct hfm_memlru *c, struct hfm_memlru_item *it)
{
	it->prev = NULL;
	it->next = c->head;
	if (c->head)
		c->head->prev = it;
	else
		c->tail = it;
	c->head = it;
}

/* Take `it` out of the table; the caller drops the cache's reference. */
static void remove_item(struct hfm_memlru *c, struct hfm_memlru_item *it)
{
	struct hfm_memlru_item **pp = &c->buckets[bucket_of(c, it->key)];

	while (*pp != it)
		pp = &(*pp)->hnext;
	*pp = it->hnext;
	lru_unlink(c, it);
	it->cached = 0;
	c->bytes -= item_cost(it->size);
	c->items--;
}

/* Keep chains short as the item count grows (tiny items, big budget). */
static void maybe_grow(struct hfm_memlru *c)
{
	struct hfm_memlru_item **old = c->buckets, *it, *next;
	size_t i, n = c->nbuckets;

	if (c->items <= 2 * n)
		return;
	c->nbuckets = 2 * n;
	c->buckets = hfm_calloc(c->nbuckets, sizeof(*c->buckets));
	for (i = 0; i < n; i++) {
		for (it = old[i]; it; it = next) {
			size_t b = bucket_of(c, it->key);

			next = it->hnext;
			it->hnext = c->buckets[b];
			c->buckets[b] = it;
		}
	}
	free(old);
}

struct hfm_memlru_item *hfm_memlru_get(struct hfm_memlru *c, const unsigned char *key)
{
	struct hfm_memlru_item *it;

	pthread_mutex_lock(&c->lock);
	if ((it = find(c, key))) {
		atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
		if (c->head != it) {
			lru_unlink(c, it);
			lru_push_front(c, it);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return it;
}

struct hfm_memlru_item *hfm_memlru_put(struct hfm_memlru *c, const unsigned char *key,
				       const void *data, size_t size)
{
	struct hfm_memlru_item *it = hfm_malloc(sizeof(*it) + (size ? size : 1)), *have;
	struct hfm_memlru_item *drop = NULL, *victim;
	uint64_t cost = item_cost(size);

	memset(it, 0, sizeof(*it));
	memcpy((char *)(it + 1), data, size);
	it->data = (const char *)(it + 1);
	it->size = size;
	memcpy(it->key, key, HFM_MEMLRU_KEY);
	atomic_init(&it->refs, 1);
	if (size > c->item_max || cost > c->max_bytes)
		return it;
	pthread_mutex_lock(&c->lock);
	if ((have = find(c, key))) {
		/* another thread inflated the same blob meanwhile: share theirs */
		atomic_fetch_add_explicit(&have->refs, 1, memory_order_relaxed);
		pthread_mutex_unlock(&c->lock);
		free(it);
		return have;
	}
	/* evicted items are chained through hnext, freed after unlocking */
	while (c->bytes + cost > c->max_bytes && (victim = c->tail)) {
		remove_item(c, victim);
		victim->hnext = drop;
		drop = victim;
	}
	atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
	it->cached = 1;
	it->hnext = c->buckets[bucket_of(c, key)];
	c->buckets[bucket_of(c, key)] = it;
	lru_push_front(c, it);
	c->bytes += cost;
	c->items++;
	maybe_grow(c);
	pthread_mutex_unlock(&c->lock);
	while (drop) {
		victim = drop;
		drop = drop->hnext;
		hfm_memlru_unref(victim);
	}
	return it;
}

void hfm_memlru_usage(struct hfm_memlru *c, uint64_t *bytes, size_t *items)
{
	pthread_mutex_lock(&c->lock);
	*bytes = c->bytes;
	*items = c->items;
	pthread_mutex_unlock(&c->lock);
}
