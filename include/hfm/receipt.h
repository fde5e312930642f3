/*
 * receipt.h - what a store holds, written inside the air gap
 * (`hfmirror receipt`) so that the outside's next `hfmirror export --since`
 * carries only what is new.  A receipt carries no file content.
 *
 *   hfmirror-receipt 1
 *   id <32 hex>
 *   created <YYYY-MM-DDTHH:MM:SS.mmmZ>
 *   source <text>                      the store it describes, informational
 *   repo <type> <name> cache|git
 *     rev <rev> <commit>               cache: revision -> commit; git: ref -> commit
 *     meta <relpath>                   cache: a commit-keyed metadata file held
 *   objects sha1 <n> <bytes>           then <bytes> of the set, then a newline
 *   objects sha256 <n> <bytes>         likewise
 *   end <sha256 of everything before this line>
 *
 * The object sets are exact: every id is kept, so an export can never leave
 * out an object the store lacks (a lossy filter's false "present" would).
 * They are Elias-Fano coded: the n sorted ids split into b = floor(log2 n)
 * high bits, written as a unary bit vector of n + 2^b bits, and the rest
 * written as they are.  That is within a few bits per id of the minimum any
 * exact set needs (log2 of the number of such sets): about 30.3 bytes per
 * sha256 and 18.3 per sha1 id at 100 000 objects.
 *
 * A receipt is owned by its creator and freed with hfm_receipt_free().
 */
#ifndef HFM_RECEIPT_H
#define HFM_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "bundle.h"

#define HFM_RECEIPT_MAX ((size_t)1 << 31)

struct hfm_receipt_repo {
	struct hfm_repo_id id;
	enum hfm_bundle_kind kind;
	struct hfm_bundle_rev *revs;
	size_t nrevs;
	char **meta;                     /* sorted after hfm_receipt_seal() */
	size_t nmeta;
};

struct hfm_receipt {
	char id[HFM_BUNDLE_ID_HEX + 1];
	char created[HFM_ISO_DATE_LEN + 1];
	char *source;
	struct hfm_receipt_repo *repos;
	size_t nrepos;
	unsigned char *ids20, *ids32;    /* binary ids, sorted and unique once sealed */
	size_t n20, n32, cap20, cap32;
};

struct hfm_receipt *hfm_receipt_new(const char *source);
void hfm_receipt_free(struct hfm_receipt *r);

struct hfm_receipt_repo *hfm_receipt_add_repo(struct hfm_receipt *r, const struct hfm_repo_id *id,
					      enum hfm_bundle_kind kind);
void hfm_receipt_add_rev(struct hfm_receipt_repo *rr, const char *name, const char *commit);
void hfm_receipt_add_meta(struct hfm_receipt_repo *rr, const char *relpath);
/* An object id (40 or 64 lowercase hex); others are ignored. */
void hfm_receipt_add_object(struct hfm_receipt *r, const char *oid);
/* Sort and deduplicate what was added; call before the lookups and format. */
void hfm_receipt_seal(struct hfm_receipt *r);

int hfm_receipt_has_object(const struct hfm_receipt *r, const char *oid);
const struct hfm_receipt_repo *hfm_receipt_find(const struct hfm_receipt *r,
						const struct hfm_repo_id *id,
						enum hfm_bundle_kind kind);
int hfm_receipt_has_meta(const struct hfm_receipt_repo *rr, const char *relpath);

int hfm_receipt_format(struct hfm_buf *out, const struct hfm_receipt *r);
/*
 * Parse a receipt: a pure function of its bytes.  0 with *out (sealed), or
 * HFM_EINVAL with "receipt:LINE: why" in `err` (a damaged receipt is refused
 * whole: its checksum covers every byte).
 */
int hfm_receipt_parse(struct hfm_receipt **out, const void *data, size_t n, struct hfm_buf *err);

/*
 * The exact set of n sorted, unique `len`-byte keys (len 1..64), Elias-Fano
 * coded; decode checks that the keys come out sorted and unique and that
 * every byte was used.  0, or HFM_EINVAL for a damaged set.
 */
int hfm_idset_encode(struct hfm_buf *out, const unsigned char *keys, size_t n, size_t len);
int hfm_idset_decode(unsigned char **keys, size_t n, size_t len, const unsigned char *data,
		     size_t size);

#endif
