/*
 * The small-blob LRU: hits, the byte bound and LRU order, items too large
 * to keep, items that outlive their eviction while held (run under ASan to
 * mean anything), and threads putting and getting the same keys.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hfm/memlru.h"
#include "tap.h"

static void key_of(unsigned char *key, unsigned n)
{
	memset(key, 0, HFM_MEMLRU_KEY);
	memcpy(key, &n, sizeof(n));
	key[HFM_MEMLRU_KEY - 1] = (unsigned char)n;
}

static struct hfm_memlru *shared;
static atomic_int thread_fail;

static void *worker(void *arg)
{
	unsigned char key[HFM_MEMLRU_KEY];
	char want[64];
	unsigned i, seed = (unsigned)(uintptr_t)arg;

	for (i = 0; i < 20000; i++) {
		unsigned n = (i * 7 + seed) % 3000;
		struct hfm_memlru_item *it;

		key_of(key, n);
		snprintf(want, sizeof(want), "blob %u", n);
		if (!(it = hfm_memlru_get(shared, key)))
			it = hfm_memlru_put(shared, key, want, strlen(want));
		if (it->size != strlen(want) || memcmp(it->data, want, it->size))
			atomic_fetch_add(&thread_fail, 1);
		hfm_memlru_unref(it);
	}
	return NULL;
}

int main(void)
{
	unsigned char key[HFM_MEMLRU_KEY];
	struct hfm_memlru *c = hfm_memlru_new(64 * 1024, 4096);
	struct hfm_memlru_item *it, *held, *big;
	char data[4096];
	pthread_t th[4];
	uint64_t bytes;
	size_t items;
	unsigned i;

	key_of(key, 1);
	TAP_OK(hfm_memlru_get(c, key) == NULL, "empty cache misses");
	it = hfm_memlru_put(c, key, "hello", 5);
	TAP_OK(it && it->size == 5 && !memcmp(it->data, "hello", 5), "put returns the bytes");
	hfm_memlru_unref(it);
	it = hfm_memlru_get(c, key);
	TAP_OK(it && it->size == 5 && !memcmp(it->data, "hello", 5), "get hits after put");
	held = it;                       /* kept across the evictions below */

	memset(data, 'x', sizeof(data));
	key_of(key, 3);
	big = hfm_memlru_put(c, key, data, 0);
	TAP_OK(big && big->size == 0, "an empty blob is fine");
	hfm_memlru_unref(big);

	/* over item_max: served, not kept */
	{
		static char huge[5000];

		key_of(key, 4);
		big = hfm_memlru_put(c, key, huge, sizeof(huge));
		TAP_OK(big && big->size == sizeof(huge), "a blob over item_max is returned");
		hfm_memlru_unref(big);
		TAP_OK(hfm_memlru_get(c, key) == NULL, "but not kept");
	}

	/* fill far past 64 KiB: the total stays bounded, old keys go first */
	for (i = 100; i < 200; i++) {
		key_of(key, i);
		hfm_memlru_unref(hfm_memlru_put(c, key, data, 1000));
		if (i % 10 == 0) {
			/* keep 100 hot: it must survive */
			key_of(key, 100);
			it = hfm_memlru_get(c, key);
			hfm_memlru_unref(it);
		}
	}
	hfm_memlru_usage(c, &bytes, &items);
	TAP_OK(bytes <= 64 * 1024, "bytes kept within the bound (%llu)", (unsigned long long)bytes);
	TAP_OK(items > 10 && items < 100, "some items kept (%zu)", items);
	key_of(key, 101);
	TAP_OK(hfm_memlru_get(c, key) == NULL, "the least recently used went first");
	key_of(key, 100);
	it = hfm_memlru_get(c, key);
	TAP_OK(it != NULL, "a recently used one stayed");
	hfm_memlru_unref(it);
	key_of(key, 199);
	it = hfm_memlru_get(c, key);
	TAP_OK(it != NULL, "the newest stayed");
	hfm_memlru_unref(it);
	key_of(key, 1);
	TAP_OK(hfm_memlru_get(c, key) == NULL, "the first item was evicted");
	TAP_OK(held->size == 5 && !memcmp(held->data, "hello", 5),
	       "an evicted item held by a caller is still valid");
	hfm_memlru_unref(held);
	hfm_memlru_free(c);

	/* many threads, more keys than buckets start with: bucket growth too */
	shared = hfm_memlru_new(1 << 20, 4096);
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	TAP_IS_INT(atomic_load(&thread_fail), 0, "4 threads get/put the same keys");
	hfm_memlru_usage(shared, &bytes, &items);
	TAP_IS_INT((long long)items, 3000, "one item per key");
	hfm_memlru_free(shared);
	return tap_done();
}
