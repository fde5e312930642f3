/*
 * grants.h - which local users may read which gated repos, for when no
 * upstream can be asked (offline, air-gapped).
 *
 * One file per store, <store>/meta/grants.jsonl, JSON lines (jsonl.h):
 *
 *   {"user":"alice","repo":"models/meta-llama/Llama-3-8B","via":"admin","time":"2026-12-04T16:00:00.000Z"}
 *   {"user":"bob","repo":"models/meta-llama/Llama-3-8B","via":"admin","time":"…","revoked":true}
 *
 * `repo` is "<models|datasets|spaces>/<name>"; `via` says where the fact
 * came from: "admin" (`hfmirror grant`) or "upstream" (the user's Hub token
 * passed the upstream's auth-check for that repo while online; the token
 * itself is never kept).  `time` is when the record was written (UTC, the
 * writer's clock).  A revoke keeps the record with "revoked":true (a
 * tombstone): grants cross air gaps in bundles (bundle.h) and are merged
 * there, record by record, the later `time` winning (a revoke on a tie), so
 * that an old bundle imported again, or bundles imported out of order,
 * never bring a revoked grant back.  Tombstones are never listed and never
 * grant anything.  The cache source consults the grants for a gated or
 * private repo before it would refuse it (src_cache.h).
 *
 * This module is in the store library (hfmirror-import merges bundles'
 * grants), without cJSON: the record is read by its own small parser
 * (hfm_grants_parse_record, a pure function of its bytes).
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
#define HFM_GRANTS_KEY_MAX (HFM_REPO_NAME_MAX + 16)

/* "models/org/name" for id, in key[cap]. */
void hfm_grants_key(char *key, size_t cap, const struct hfm_repo_id *id);

/*
 * Parse a repo as people write it -- "org/name", "datasets/org/name",
 * "spaces/org/name", "models/org/name" -- into *id.  HFM_EINVAL otherwise.
 */
int hfm_grants_parse_repo(struct hfm_repo_id *id, const char *s);

/* ---- records ------------------------------------------------------------------ */

/* One record of the file; every string owned by the record (or its list). */
struct hfm_grant {
	char *user;                      /* a local user name (hfm_user_name_ok) */
	char *repo;                      /* "models/org/name" */
	char *via;                       /* "admin", "upstream": a name, as users' */
	char *time;                      /* HFM_ISO_DATE_LEN chars, or "" (unknown: oldest) */
	int revoked;                     /* a tombstone */
};

struct hfm_grant_list {
	struct hfm_grant *v;
	size_t n;
};

void hfm_grant_list_dispose(struct hfm_grant_list *l);
/* Append a copy of the record (time NULL: ""). */
void hfm_grant_list_add(struct hfm_grant_list *l, const char *user, const char *repo,
			const char *via, const char *time, int revoked);

/*
 * Parse one line of the file (n bytes, no newline): a JSON object with the
 * string members user, repo (with its type), via (default "admin"), time
 * (optional), and the optional boolean revoked; nothing else.  0 with *out
 * (free its strings with hfm_grant_list_dispose of a list, or
 * hfm_grant_dispose), or HFM_EINVAL with "PATH:LINE: key: why\n" in err.
 */
int hfm_grants_parse_record(struct hfm_grant *out, const char *s, size_t n, const char *path,
			    unsigned line, struct hfm_buf *err);
void hfm_grant_dispose(struct hfm_grant *g);
/* The record's line, with its newline. */
void hfm_grants_format_record(struct hfm_buf *out, const struct hfm_grant *g);

/* Every record of the file at `path`, tombstones included (no file: none); of
 * two records of one user and repo (a hand edit), the later, as a merge keeps. */
int hfm_grants_read(struct hfm_grant_list *out, const char *path, struct hfm_buf *err);

/*
 * Merge records (from a bundle) into the file at `path`, under its lock,
 * each against the record of the same user and repo: the later time wins,
 * a revoke wins a tie; the file is rewritten only when something changed.
 * Counts what happened in *out (may be NULL).  Errors as in hfm_grants_edit.
 */
struct hfm_grants_merged {
	size_t granted;                  /* a user may now read a repo they could not */
	size_t revoked;                  /* ... may no longer read one they could */
	size_t changed;                  /* records replaced without changing access */
	size_t unchanged;                /* the file had it, or a later record */
};
int hfm_grants_merge(struct hfm_grants_merged *out, const char *path,
		     const struct hfm_grant_list *in, struct hfm_buf *err);

/* ---- editing and the server's view ------------------------------------------------ */

struct hfm_grants;

/* Watch `path` (it may not exist yet: no grants). */
struct hfm_grants *hfm_grants_new(const char *path, hfm_log_fn log, void *log_cls);
void hfm_grants_free(struct hfm_grants *g);

/* 1 if `user` has a grant for `id`. */
int hfm_grants_has(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id);

/*
 * Add (add = 1; a grant already there is kept as it is) or remove (add =
 * 0; HFM_ENOENT when there was none: the grant becomes a tombstone) the
 * grant of `id` to `user` in the file at `path`, under its lock.  `via`:
 * "admin" or "upstream".  Errors as "FILE:LINE: key: why" lines in err.
 */
int hfm_grants_edit(const char *path, const char *user, const struct hfm_repo_id *id,
		    const char *via, int add, struct hfm_buf *err);

/* hfm_grants_edit(add) on g's file, for the server (a grant the upstream confirmed). */
int hfm_grants_record(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id,
		      const char *via, struct hfm_buf *err);

/* Every grant in the file (not the tombstones), one "USER REPO VIA TIME" line each, into out. */
int hfm_grants_list(struct hfm_buf *out, const char *path, struct hfm_buf *err);

#endif
