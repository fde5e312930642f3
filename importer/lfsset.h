/*
 * lfsset.h - the LFS objects one import must bring into the store, and
 * where their content may be found.
 *
 * A source adds every LFS pointer its refs reach (once per oid) with the
 * place it was first seen, and the files that may hold the content
 * ("candidates"): git-lfs's own store, a Hugging Face cache blob, a
 * checked-out file, a file of a plain directory.  lfsimport.c then tries the
 * candidates in the order they were added until one verifies.
 *
 * The set owns every string in it.
 */
#ifndef HFM_IMP_LFSSET_H
#define HFM_IMP_LFSSET_H

#include <stdint.h>
#include "hfm/hash.h"
#include "hfm/hashindex.h"
#include "keyset.h"

enum hfm_imp_cand_kind {
	HFM_IMP_CAND_LFS,        /* <gitdir>/lfs/objects/xx/yy/<oid>: a mismatch is corruption */
	HFM_IMP_CAND_CACHE,      /* a Hugging Face cache blob: likewise */
	HFM_IMP_CAND_WORKTREE,   /* a checked-out file: may simply have been edited */
	HFM_IMP_CAND_PLAIN,      /* a file of a plain directory, hashed by us */
};

struct hfm_imp_cand {
	char *path;                  /* absolute */
	enum hfm_imp_cand_kind kind;
	/*
	 * Set when this run hashed the file to the oid: if the file opened for
	 * the import is still that one (same key), it need not be read again.
	 */
	int hashed;
	struct hfm_hash_key key;
};

enum hfm_imp_lfs_state {
	HFM_IMP_LFS_PENDING = 0,
	HFM_IMP_LFS_PRESENT,         /* in the store before this run */
	HFM_IMP_LFS_LINKED,
	HFM_IMP_LFS_COPIED,
	HFM_IMP_LFS_MISSING,         /* no candidate held it (or none verified) */
};

struct hfm_imp_lfs {
	char oid[HFM_SHA256_HEX + 1];
	uint64_t size;
	char *where;                 /* "ref:path" where first seen, for messages */
	struct hfm_imp_cand *cands;
	size_t ncands;
	enum hfm_imp_lfs_state state;
};

struct hfm_imp_lfsset {
	struct hfm_imp_keyset index;  /* raw sha256 -> position in v */
	struct hfm_imp_lfs *v;
	size_t n, cap;
};

void hfm_imp_lfsset_init(struct hfm_imp_lfsset *set);
void hfm_imp_lfsset_dispose(struct hfm_imp_lfsset *set);

/*
 * The entry for `oid` (64 lowercase hex), added with `size` and `where`
 * (copied) if new.  *out stays valid until the next add.  HFM_EINVAL for a
 * bad oid; HFM_ECORRUPT with a message when the oid is known with another
 * size (two pointers disagree: one of them is damaged).
 */
int hfm_imp_lfsset_add(struct hfm_imp_lfs **out, struct hfm_imp_lfsset *set, const char *oid,
		       uint64_t size, const char *where);
/* The entry for `oid`, or NULL. */
struct hfm_imp_lfs *hfm_imp_lfsset_find(struct hfm_imp_lfsset *set, const char *oid);

/*
 * Add a candidate file (path copied); a path already listed is not added
 * twice.  `hashed` (may be NULL) is the key of the file this run hashed.
 */
void hfm_imp_lfs_add_cand(struct hfm_imp_lfs *e, const char *path, enum hfm_imp_cand_kind kind,
			  const struct hfm_hash_key *hashed);

#endif
