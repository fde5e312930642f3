/* lfsset.c - the LFS objects of one import and their candidate files. */
#include <stdlib.h>
#include <string.h>

#include "lfsset.h"

void hfm_imp_lfsset_init(struct hfm_imp_lfsset *set)
{
	memset(set, 0, sizeof(*set));
	hfm_imp_keyset_init(&set->index, 32);
}

void hfm_imp_lfsset_dispose(struct hfm_imp_lfsset *set)
{
	size_t i, j;

	for (i = 0; i < set->n; i++) {
		for (j = 0; j < set->v[i].ncands; j++)
			free(set->v[i].cands[j].path);
		free(set->v[i].cands);
		free(set->v[i].where);
	}
	free(set->v);
	hfm_imp_keyset_dispose(&set->index);
	hfm_imp_lfsset_init(set);
}

struct hfm_imp_lfs *hfm_imp_lfsset_find(struct hfm_imp_lfsset *set, const char *oid)
{
	unsigned char raw[32];
	long k;

	if (!hfm_is_hex(oid, HFM_SHA256_HEX) || hfm_unhex(raw, oid, 32))
		return NULL;
	k = hfm_imp_keyset_find(&set->index, raw);
	return k < 0 ? NULL : &set->v[k];
}

int hfm_imp_lfsset_add(struct hfm_imp_lfs **out, struct hfm_imp_lfsset *set, const char *oid,
		       uint64_t size, const char *where)
{
	unsigned char raw[32];
	struct hfm_imp_lfs *e;
	size_t k;
	int added;

	if (!hfm_is_hex(oid, HFM_SHA256_HEX) || hfm_unhex(raw, oid, 32))
		return hfm_error_set(HFM_EINVAL, "invalid LFS oid %s", oid);
	k = hfm_imp_keyset_put(&set->index, raw, &added);
	if (!added) {
		e = &set->v[k];
		if (e->size != size)
			return hfm_error_set(HFM_ECORRUPT,
					     "LFS object %s has size %llu at %s but %llu at %s",
					     oid, (unsigned long long)size, where,
					     (unsigned long long)e->size, e->where);
		*out = e;
		return 0;
	}
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 64;
		set->v = hfm_realloc(set->v, set->cap * sizeof(*set->v));
	}
	e = &set->v[set->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->oid, oid, sizeof(e->oid));
	e->size = size;
	e->where = hfm_strdup(where);
	*out = e;
	return 0;
}

void hfm_imp_lfs_add_cand(struct hfm_imp_lfs *e, const char *path, enum hfm_imp_cand_kind kind,
			  const struct hfm_hash_key *hashed)
{
	size_t i;

	for (i = 0; i < e->ncands; i++)
		if (!strcmp(e->cands[i].path, path))
			return;
	e->cands = hfm_realloc(e->cands, (e->ncands + 1) * sizeof(*e->cands));
	memset(&e->cands[e->ncands], 0, sizeof(*e->cands));
	e->cands[e->ncands].path = hfm_strdup(path);
	e->cands[e->ncands].kind = kind;
	if (hashed) {
		e->cands[e->ncands].hashed = 1;
		e->cands[e->ncands].key = *hashed;
	}
	e->ncands++;
}
