/*
 * keyset.h - a set of fixed-length binary keys (git oids, sha256 digests),
 * numbered in insertion order.
 *
 * The keys are hashes already, so their first bytes index an open-addressed
 * table directly.  The set owns its memory; keys are copied in.  Numbers
 * are stable, so callers keep per-key data in their own arrays indexed by
 * them.
 */
#ifndef HFM_IMP_KEYSET_H
#define HFM_IMP_KEYSET_H

#include <stddef.h>
#include <stdint.h>

struct hfm_imp_keyset {
	size_t keylen;        /* >= 8 */
	unsigned char *keys;  /* n * keylen bytes, in insertion order */
	size_t n;
	size_t keys_cap;      /* in keys */
	uint32_t *slots;      /* 0 = empty, else index + 1 */
	size_t nslots;        /* power of two */
};

void hfm_imp_keyset_init(struct hfm_imp_keyset *s, size_t keylen);
void hfm_imp_keyset_dispose(struct hfm_imp_keyset *s);

/* The number of `key`, adding it if absent; *added (may be NULL) says which. */
size_t hfm_imp_keyset_put(struct hfm_imp_keyset *s, const void *key, int *added);
/* The number of `key`, or -1. */
long hfm_imp_keyset_find(const struct hfm_imp_keyset *s, const void *key);

#endif
