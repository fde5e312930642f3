/*
 * ttlmap.h - remembered answers that expire: a fixed number of slots, each a
 * string key with a result code and a message, valid until its deadline.
 *
 * For short negative and positive caches where asking again is the fallback
 * (a failed upstream fetch, a token the upstream accepted): when every slot
 * is live, a put replaces slots in turn, so an answer may be forgotten early
 * but never kept past its deadline.
 *
 * Ownership: the map owns its slots; keys and messages are copied (keys
 * longer than HFM_TTLMAP_KEY_MAX and messages longer than
 * HFM_TTLMAP_WHY_MAX are cut).  Threading: every call may run on any thread.
 */
#ifndef HFM_TTLMAP_H
#define HFM_TTLMAP_H

#include <stddef.h>
#include <stdint.h>

#define HFM_TTLMAP_KEY_MAX 320
#define HFM_TTLMAP_WHY_MAX 200

struct hfm_ttlmap;

struct hfm_ttlmap *hfm_ttlmap_new(unsigned slots);
void hfm_ttlmap_free(struct hfm_ttlmap *m);

/* Remember (rc, why) for `key` for ttl_ns from now; why may be NULL. */
void hfm_ttlmap_put(struct hfm_ttlmap *m, const char *key, int rc, const char *why,
		    uint64_t ttl_ns);

/*
 * 1 with *rc set (and the message copied into why[cap], if why) when `key`
 * has an answer that has not expired; 0 otherwise.
 */
int hfm_ttlmap_get(struct hfm_ttlmap *m, const char *key, int *rc, char *why, size_t cap);

#endif
