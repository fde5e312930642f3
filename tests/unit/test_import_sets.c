/*
 * The importer's sets: keyset.h (binary keys numbered in insertion order)
 * and lfsset.h (the LFS objects of one import and their candidate files).
 */
#include <stdio.h>
#include <string.h>

#include "hfm/hash.h"
#include "keyset.h"
#include "lfsset.h"
#include "tap.h"

#define MANY 5000

/* A 32-byte key that depends only on i. */
static void key_of(unsigned char out[32], unsigned i)
{
	char hex[HFM_SHA256_HEX + 1];

	hfm_sha256_hex(hex, &i, sizeof(i));
	hfm_unhex(out, hex, 32);
}

static void test_keyset(void)
{
	struct hfm_imp_keyset s;
	unsigned char k[32], a[20], b[20];
	unsigned i, wrong_number = 0, wrong_find = 0;
	int added = -1;

	hfm_imp_keyset_init(&s, 32);
	key_of(k, 0);
	TAP_IS_INT(hfm_imp_keyset_find(&s, k), -1, "an empty set finds nothing");
	TAP_IS_INT(hfm_imp_keyset_put(&s, k, &added), 0, "the first key is number 0");
	TAP_IS_INT(added, 1, "and was added");
	TAP_IS_INT(hfm_imp_keyset_put(&s, k, &added), 0, "putting it again gives its number");
	TAP_IS_INT(added, 0, "and adds nothing");
	TAP_IS_INT(hfm_imp_keyset_put(&s, k, NULL), 0, "`added` may be NULL");

	/* past several table growths: numbers stay those of insertion order */
	for (i = 1; i < MANY; i++) {
		key_of(k, i);
		wrong_number += hfm_imp_keyset_put(&s, k, &added) != i || !added;
	}
	TAP_IS_INT(wrong_number, 0, "%d keys numbered in insertion order", MANY);
	TAP_IS_INT(s.n, MANY, "the set holds them all");
	for (i = 0; i < MANY; i++) {
		key_of(k, i);
		wrong_find += hfm_imp_keyset_find(&s, k) != (long)i;
	}
	TAP_IS_INT(wrong_find, 0, "every key is found with its number after the growths");
	key_of(k, MANY);
	TAP_IS_INT(hfm_imp_keyset_find(&s, k), -1, "a key never put is not found");
	TAP_OK(s.nslots >= 2 * s.n, "the table stays at most half full (%zu slots)", s.nslots);
	hfm_imp_keyset_dispose(&s);
	TAP_OK(s.n == 0 && s.keylen == 32, "dispose empties the set and keeps its key length");

	/* keys alike in the bytes that pick the slot: told apart by the rest */
	hfm_imp_keyset_init(&s, sizeof(a));
	memset(a, 7, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[19] = 8;
	TAP_IS_INT(hfm_imp_keyset_put(&s, a, NULL), 0, "a git oid sized key");
	TAP_IS_INT(hfm_imp_keyset_put(&s, b, &added), 1, "one that shares its slot is another key");
	TAP_IS_INT(added, 1, "and was added");
	TAP_IS_INT(hfm_imp_keyset_find(&s, b), 1, "found past the collision");
	TAP_IS_INT(hfm_imp_keyset_find(&s, a), 0, "the first still found");
	hfm_imp_keyset_dispose(&s);
}

static const char *const OID1 =
	"1111111111111111111111111111111111111111111111111111111111111111";
static const char *const OID2 =
	"2222222222222222222222222222222222222222222222222222222222222222";

static void test_lfsset(void)
{
	struct hfm_imp_lfsset set;
	struct hfm_imp_lfs *e = NULL, *again = NULL;
	struct hfm_hash_key key;
	char where[32];

	hfm_imp_lfsset_init(&set);
	TAP_IS_INT(hfm_imp_lfsset_add(&e, &set, "1234", 1, "main:a"), HFM_EINVAL, "a short oid");
	TAP_IS_INT(hfm_imp_lfsset_add(&e, &set,
				      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
				      1, "main:a"), HFM_EINVAL, "an uppercase oid");
	TAP_IS_INT(set.n, 0, "neither was listed");

	snprintf(where, sizeof(where), "refs/heads/main:w.bin");
	TAP_IS_INT(hfm_imp_lfsset_add(&e, &set, OID1, 100, where), 0, "a new object");
	memset(where, 'x', sizeof(where) - 1);
	TAP_IS_STR(e->oid, OID1, "its oid");
	TAP_IS_INT(e->size, 100, "its size");
	TAP_IS_STR(e->where, "refs/heads/main:w.bin", "where it was seen, copied");
	TAP_IS_INT(e->state, HFM_IMP_LFS_PENDING, "pending until step 2");
	TAP_IS_INT(hfm_imp_lfsset_add(&again, &set, OID1, 100, "refs/heads/dev:w.bin"), 0,
		   "the same object seen again");
	TAP_OK(again == &set.v[0] && set.n == 1, "is the same entry");
	TAP_IS_STR(again->where, "refs/heads/main:w.bin", "which keeps where it was first seen");
	TAP_IS_INT(hfm_imp_lfsset_add(&e, &set, OID1, 99, "refs/pr/1:w.bin"), HFM_ECORRUPT,
		   "two pointers that disagree on the size");
	TAP_OK(strstr(hfm_error_last(), "refs/pr/1:w.bin") &&
	       strstr(hfm_error_last(), "refs/heads/main:w.bin"),
	       "the message names both places (%s)", hfm_error_last());
	TAP_IS_INT(hfm_imp_lfsset_add(&e, &set, OID2, 5, "main:b"), 0, "a second object");

	TAP_OK(hfm_imp_lfsset_find(&set, OID2) == &set.v[1], "find: the second");
	TAP_OK(hfm_imp_lfsset_find(&set, OID1) == &set.v[0], "find: the first");
	TAP_OK(hfm_imp_lfsset_find(&set, "3333333333333333333333333333333333333333333333333333333333333333")
	       == NULL, "find: an unknown oid");
	TAP_OK(hfm_imp_lfsset_find(&set, "nothex") == NULL, "find: not an oid");

	e = &set.v[0];
	hfm_imp_lfs_add_cand(e, "/c/.git/lfs/objects/11/11/x", HFM_IMP_CAND_LFS, NULL);
	memset(&key, 0, sizeof(key));
	key.size = 100;
	key.ino = 42;
	hfm_imp_lfs_add_cand(e, "/c/w.bin", HFM_IMP_CAND_WORKTREE, &key);
	hfm_imp_lfs_add_cand(e, "/c/.git/lfs/objects/11/11/x", HFM_IMP_CAND_CACHE, NULL);
	TAP_IS_INT(e->ncands, 2, "a path is a candidate once");
	TAP_IS_STR(e->cands[0].path, "/c/.git/lfs/objects/11/11/x", "candidates in order added");
	TAP_IS_INT(e->cands[0].kind, HFM_IMP_CAND_LFS, "the first one's kind stays");
	TAP_IS_INT(e->cands[0].hashed, 0, "not hashed by this run");
	TAP_IS_INT(e->cands[1].kind, HFM_IMP_CAND_WORKTREE, "the second's kind");
	TAP_OK(e->cands[1].hashed && e->cands[1].key.ino == 42 && e->cands[1].key.size == 100,
	       "a hashed candidate keeps the key of the file that was hashed");
	hfm_imp_lfsset_dispose(&set);
	TAP_OK(set.n == 0 && set.v == NULL, "dispose empties the set");
	TAP_IS_INT(hfm_imp_lfsset_add(&e, &set, OID2, 5, "main:b"), 0, "and it can be used again");
	hfm_imp_lfsset_dispose(&set);
}

int main(void)
{
	test_keyset();
	test_lfsset();
	return tap_done();
}
