/*
 * grants.h - which local users may read which gated repos, for when no
 * upstream can be asked (offline, air-gapped).
 *
 * One file per store, <store>/meta/grants.jsonl (so that a bundle made of
 * the store's meta/ carries it across the air gap), JSON lines (jsonl.h):
 *
 *   {"user":"alice","repo":"models/meta-llama/Llama-3-8B","via":"admin","time":"2026-12-04T16:00:00.000Z"}
 *
 * `repo` is "<models|datasets|spaces>/<name>"; `via` says where the fact
 * came from: "admin" (`hfmirror grant`) or "upstream" (the user's Hub token
 * passed the upstream's auth-check for that repo while online; the token
 * itself is never kept).  The cache source consults the grants for a gated
 * or private repo before it would refuse it (src_cache.h).
 *
 * Readers reread the file on the first check after it changed (one stat()
 * per check of a restricted repo).  Writers take the file's lock and
 * replace it whole (jsonl.h).  Threading: any thread.
 */
#ifndef HFM_GRANTS_H
#define HFM_GRANTS_H

#include "buf.h"
#include "log.h"
#include "path.h"

#define HFM_GRANTS_FILE "meta/grants.jsonl"   /* below the store's root */

/* "models/org/name" for id, in key[cap]. */
void hfm_grants_key(char *key, size_t cap, const struct hfm_repo_id *id);

/*
 * Parse a repo as people write it -- "org/name", "datasets/org/name",
 * "spaces/org/name", "models/org/name" -- into *id.  HFM_EINVAL otherwise.
 */
int hfm_grants_parse_repo(struct hfm_repo_id *id, const char *s);

struct hfm_grants;

/* Watch `path` (it may not exist yet: no grants). */
struct hfm_grants *hfm_grants_new(const char *path, hfm_log_fn log, void *log_cls);
void hfm_grants_free(struct hfm_grants *g);

/* 1 if `user` has a grant for `id`. */
int hfm_grants_has(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id);

/*
 * Add (add = 1; a grant already there is kept as it is) or remove (add =
 * 0; HFM_ENOENT when there was none) the grant of `id` to `user` in the
 * file at `path`, under its lock.  `via`: "admin" or "upstream".  Errors
 * as "FILE:LINE: key: why" lines in err.
 */
int hfm_grants_edit(const char *path, const char *user, const struct hfm_repo_id *id,
		    const char *via, int add, struct hfm_buf *err);

/* hfm_grants_edit(add) on g's file, for the server (a grant the upstream confirmed). */
int hfm_grants_record(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id,
		      const char *via, struct hfm_buf *err);

/* Every grant in the file, one "USER REPO VIA TIME" line each, into out. */
int hfm_grants_list(struct hfm_buf *out, const char *path, struct hfm_buf *err);

#endif
