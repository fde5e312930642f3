/*
 * repolist.h - the repo listing that /api/{models,datasets,spaces} and the
 * web UI both answer: the catalog's repos (every source, the cache's
 * included, without those the caller may not see), each described from its
 * default branch (commit, dates, tags, optionally size and files), then
 * filtered, sorted and cut into a page that a cursor continues.
 *
 * The query is parsed from the request's arguments by a pure function
 * (hfm_rl_query_parse, unit-tested); bad values are HFM_EINVAL with a
 * message, answered 400 in the Hub's error shape.
 *
 * Describing a repo asks its source as any request does (resolve, list, a
 * README read), so hfm_rl_run() may return HFM_EAGAIN with ctx->waiter
 * armed: the request runs again and finds that work done.  A repo whose
 * source says the caller may not read it (a private repo of the cache
 * without the token) is left out, as the Hub leaves out others' private
 * repos; so is one whose default branch cannot be resolved for another
 * reason than RevisionNotFound (an upstream that cannot confirm a token).
 */
#ifndef HFM_REPOLIST_H
#define HFM_REPOLIST_H

#include "catalog.h"

enum hfm_rl_sort {
	HFM_RL_ID,                       /* sort=id: byte order of the name */
	HFM_RL_MODIFIED,                 /* sort=lastModified: the default branch's commit date */
	HFM_RL_CREATED,                  /* sort=createdAt */
	HFM_RL_UNRANKED,                 /* downloads, likes, trendingScore: all 0 here, so by id */
};

#define HFM_RL_FILTERS 16
#define HFM_RL_PAGE_MAX 1000             /* the most one page holds (the Hub's) */

/* What to describe beyond commit, dates and tags. */
#define HFM_RL_SIZE  0x1u                /* the files' total size */
#define HFM_RL_FILES 0x2u                /* the file names (siblings) */

struct hfm_rl_query {
	const char *search;              /* case-insensitive substring of the id; NULL = any */
	const char *author;              /* the id's owner, any case; NULL = any */
	const char *filters[HFM_RL_FILTERS]; /* each must be one of the repo's tags */
	size_t nfilters;
	enum hfm_rl_sort sort;
	int descending;
	size_t limit;                    /* page size, 1..HFM_RL_PAGE_MAX */
	int has_cursor;                  /* continue after (cur_key, cur_name) */
	int64_t cur_key;
	char cur_name[HFM_REPO_NAME_MAX + 1];
	unsigned want;                   /* HFM_RL_SIZE | HFM_RL_FILES */
	unsigned sources;                /* catalog source bits (hfm_listed); 0 = all */
};

/* The n-th (from 0) value of argument `name`, or NULL. */
typedef const char *(*hfm_rl_arg_fn)(void *cls, const char *name, size_t n);

/*
 * Fill q from the Hub's arguments: search, author, filter (repeated or
 * comma-separated), pipeline_tag (one more filter), sort, direction (-1 or
 * 1), limit, cursor, full.  The strings point into what `arg` returned.
 * 0, or HFM_EINVAL with a message naming the argument.
 */
int hfm_rl_query_parse(struct hfm_rl_query *q, hfm_rl_arg_fn arg, void *cls);

struct hfm_rl_item {
	char *name;
	enum hfm_repo_type type;
	unsigned sources;                /* which sources list it (hfm_listed) */
	const char *kind;                /* the answering source's kind, or NULL (unresolved) */
	char commit[HFM_SHA1_HEX + 1];   /* "" when the default branch did not resolve */
	int64_t modified_ms, created_ms; /* 0: unknown */
	int gated;
	char **tags;
	size_t ntags;
	uint64_t size;                   /* HFM_RL_SIZE */
	char **files;                    /* HFM_RL_FILES */
	size_t nfiles;
};

struct hfm_rl_page {
	struct hfm_rl_item *v;
	size_t n;
	size_t total;                    /* items that matched, on every page */
	int more;                        /* another page follows */
};

/* One page of repos of type t; hfm_rl_page_dispose() in every case. */
int hfm_rl_run(struct hfm_rl_page *out, const struct hfm_catalog *c, enum hfm_repo_type t,
	       const struct hfm_rl_query *q, struct hfm_ctx *ctx);
void hfm_rl_page_dispose(struct hfm_rl_page *p);

/* The cursor that continues after `last` (base64url, for the Link's cursor=). */
void hfm_rl_cursor(struct hfm_buf *out, const struct hfm_rl_query *q,
		   const struct hfm_rl_item *last);

/*
 * The tags of a model card (README.md) front matter, as the Hub derives
 * them: `tags:` items, `license: x` as "license:x", `language:` items,
 * library_name and pipeline_tag values.  cb gets each (not NUL-terminated
 * beyond n).  Pure.
 */
void hfm_rl_card_tags(const char *text, size_t len,
		      void (*cb)(void *cls, const char *tag, size_t n), void *cls);

#endif
