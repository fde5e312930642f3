/* keyset.c - open addressing over keys that are already uniform hashes. */
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "keyset.h"

void hfm_imp_keyset_init(struct hfm_imp_keyset *s, size_t keylen)
{
	memset(s, 0, sizeof(*s));
	s->keylen = keylen;
}

void hfm_imp_keyset_dispose(struct hfm_imp_keyset *s)
{
	free(s->keys);
	free(s->slots);
	hfm_imp_keyset_init(s, s->keylen);
}

static size_t slot_of(const struct hfm_imp_keyset *s, const void *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & (s->nslots - 1);
}

static long lookup(const struct hfm_imp_keyset *s, const void *key, size_t *slot)
{
	size_t i;

	if (!s->nslots)
		return -1;
	for (i = slot_of(s, key); s->slots[i]; i = (i + 1) & (s->nslots - 1)) {
		size_t k = s->slots[i] - 1;

		if (!memcmp(s->keys + k * s->keylen, key, s->keylen))
			return (long)k;
	}
	*slot = i;
	return -1;
}

static void grow(struct hfm_imp_keyset *s)
{
	size_t i;

	free(s->slots);
	s->nslots = s->nslots ? s->nslots * 2 : 1024;
	s->slots = hfm_calloc(s->nslots, sizeof(*s->slots));
	for (i = 0; i < s->n; i++) {
		size_t j = slot_of(s, s->keys + i * s->keylen);

		while (s->slots[j])
			j = (j + 1) & (s->nslots - 1);
		s->slots[j] = (uint32_t)(i + 1);
	}
}

long hfm_imp_keyset_find(const struct hfm_imp_keyset *s, const void *key)
{
	size_t slot;

	return lookup(s, key, &slot);
}

size_t hfm_imp_keyset_put(struct hfm_imp_keyset *s, const void *key, int *added)
{
	size_t slot = 0;
	long k = lookup(s, key, &slot);

	if (added)
		*added = k < 0;
	if (k >= 0)
		return (size_t)k;
	if (s->n == UINT32_MAX - 1)
		abort();   /* four billion objects: not a Hub repo */
	/* keep the load under one half */
	if ((s->n + 1) * 2 > s->nslots) {
		grow(s);
		lookup(s, key, &slot);
	}
	if (s->n == s->keys_cap) {
		s->keys_cap = s->keys_cap ? s->keys_cap * 2 : 256;
		s->keys = hfm_realloc(s->keys, s->keys_cap * s->keylen);
	}
	memcpy(s->keys + s->n * s->keylen, key, s->keylen);
	s->slots[slot] = (uint32_t)(s->n + 1);
	return s->n++;
}
