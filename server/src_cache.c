/* src_cache.c - the online cache source (see src_cache.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "hfm/blobcache.h"
#include "hfm/blobfetch.h"
#include "hfm/evict.h"
#include "hfm/metrics.h"
#include "hfm/fsutil.h"
#include "hfm/hash.h"
#include "hfm/ident.h"
#include "hfm/src_cache.h"
#include "hfm/blobfollow.h"
#include "hfm/stream.h"
#include "hfm/ttlmap.h"
#include "hfm/upstream.h"

#define PAGE_MAX (64u << 20)            /* one upstream JSON answer */
#define TOTAL_MAX (512u << 20)          /* a whole paged tree */
#define GET_KEEP_NS (2ull * 1000000000ull)  /* a finished GET answers re-runs this long */
#define SNAP_CACHE 16
#define GRANTS 1024                     /* remembered token checks */
#define DENY_KEEP_S 10                  /* a refusal is asked again this soon */

/* How the upstream marks a repo. */
enum restriction { R_UNKNOWN = -1, R_OPEN = 0, R_GATED, R_PRIVATE };

/* One upstream API GET (or a chain of pages), shared by every request that
 * needs the same answer while it runs and shortly after. */
struct api_get {
	struct api_get *next;
	struct cachesrc *cs;
	char *key;
	char *auth;
	int paged;
	int done, rc;
	long status;
	char errcode[32];
	char *next_url;                  /* Link rel=next of the current page */
	struct hfm_buf page;             /* the current page */
	struct hfm_buf body;             /* paged: the items of all pages, as one array */
	size_t nitems_pages;
	uint64_t done_ns;
	struct hfm_waitq waiters;
};

struct cache_snap {
	struct hfm_snapshot base;
	char *key;                       /* "<type>/<name>@<sha>" */
	cJSON *json;                     /* owns the path strings */
};

/*
 * What a commit's info.json says (info_fields), kept by "<dir>@<sha>": a
 * snapshot download resolves the same commit for every file it fetches,
 * and a commit's info, once stored, is not asked for again (as its tree,
 * snaps).  Reading and parsing it (~100 KB for 1000 files, a malloc per
 * JSON node) was most of the server's CPU per small file.
 */
struct info_memo {
	char key[HFM_REPO_NAME_MAX + 32 + HFM_SHA1_HEX + 2];
	struct hfm_resolved res;
	enum restriction rs;
};

struct cachesrc {
	struct hfm_source base;
	char *up_url;
	struct hfm_store *store;
	int offline;
	unsigned ttl;
	int allow_gated_offline;
	struct hfm_grants *user_grants;  /* borrowed; NULL = none */
	unsigned grant_ttl;
	const struct hfm_rules *rules;
	hfm_log_fn log;
	void *log_cls;
	struct hfm_upstream *up;
	struct hfm_blobfetch *bf;
	struct hfm_blobcache *bc;
	struct hfm_stream_cache streams; /* what blob streams get */
	struct hfm_evictor *evictor;     /* with a limit or measure_store; its passes measure the store */
	uint64_t size_limit;             /* what the evictor keeps to; 0 = none */
	struct hfm_metrics_probe probe;  /* the blob cache's and upstream's state */
	struct hfm_followers *followers; /* blobs other nodes of the store fill */
	pthread_mutex_t lock;
	pthread_cond_t cond;             /* a GET finished (blocking callers) */
	struct api_get *gets;            /* in flight, or finished within GET_KEEP_NS */
	struct cache_snap *snaps[SNAP_CACHE];
	unsigned snap_next;
	struct info_memo infos[SNAP_CACHE];
	unsigned info_next;
	/*
	 * The upstream's answers to "may the holder of this token read this
	 * repo" (0, HFM_EGATED or HFM_ENOREPO), by grant_key().
	 */
	struct hfm_ttlmap *grants;
	/* The upstream's whoami name for a token, by the token's sha256. */
	struct hfm_ttlmap *whoamis;
};

struct cache_repo {
	struct hfm_repo base;
	struct cachesrc *cs;
	int cache_ok;                    /* cache rules allow storing */
	enum restriction restricted;     /* set by resolve; R_UNKNOWN before */
	int granted;                     /* this request's token was accepted */
	char dir[HFM_REPO_NAME_MAX + 32];   /* "meta/<type>/<name>" */
};

static const struct hfm_source_ops cache_ops;

/* ---- small helpers ------------------------------------------------------- */

static int64_t parse_iso_ms(const char *s)
{
	struct tm tm;
	int ms = 0;
	const char *p;

	if (!s)
		return 0;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits++ < 3)
				ms = ms * 10 + (*p - '0');
		while (digits++ < 3)
			ms *= 10;
	}
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static void strip_xet(cJSON *j)
{
	cJSON *it, *next;

	if (!j)
		return;
	for (it = j->child; it; it = next) {
		next = it->next;
		if (cJSON_IsObject(j) && it->string &&
		    (!strcmp(it->string, "xetHash") || !strcmp(it->string, "xetEnabled"))) {
			cJSON_Delete(cJSON_DetachItemViaPointer(j, it));
			continue;
		}
		strip_xet(it);
	}
}

/*
 * Read <store>/<rel> into out; *mtime_ms (may be NULL) gets its mtime.
 * Another node may rename a new version over it meanwhile: the open file
 * stays the old version on a local filesystem, while NFS may answer ESTALE
 * for a handle replaced under it; the read is then tried again by name.
 */
static int meta_read(struct hfm_buf *out, struct cachesrc *cs, const char *rel, int64_t *mtime_ms)
{
	struct stat st;
	size_t at = out->len;
	ssize_t n = -1;
	int fd = -1;

	for (int tries = 0; tries < 3 && n < 0; tries++) {
		if ((fd = openat(cs->store->root_fd, rel, O_RDONLY | O_CLOEXEC)) < 0) {
			if (errno == ESTALE)
				continue;
			return HFM_ENOENT;
		}
		if (fstat(fd, &st) || (uint64_t)st.st_size > TOTAL_MAX) {
			if (errno == ESTALE) {
				close(fd);
				continue;
			}
			close(fd);
			return hfm_error_set(HFM_EIO, "cannot read %s", rel);
		}
		char *p = hfm_buf_reserve(out, (size_t)st.st_size);
		n = p ? pread(fd, p, (size_t)st.st_size, 0) : -1;
		close(fd);
		if (n < 0 && (!p || errno != ESTALE))
			break;
	}
	if (n != st.st_size)
		return hfm_error_set(HFM_EIO, "cannot read %s", rel);
	out->len = at + (size_t)n;
	out->ptr[out->len] = '\0';
	if (mtime_ms)
		*mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	return 0;
}

/*
 * Write <store>/<rel> atomically: staged under tmp/ (which the store sweeps
 * of a crash's leftovers) by a name no other process of any node uses, then
 * renamed over the old version.  Several nodes may write the same answer at
 * once; the last rename wins and each is whole.
 */
static int meta_write(struct cachesrc *cs, const char *rel, const char *data, size_t n)
{
	char dir[HFM_PATH_MAX], tmp[96];
	const char *slash = strrchr(rel, '/');
	int fd, rc = 0;

	if (cs->store->read_only)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
	if (hfm_store_mkdirs(cs->store, dir))
		return hfm_error_set(HFM_EIO, "mkdir %s: %s", dir, strerror(errno));
	hfm_store_tmp_name(tmp, "meta");
	fd = openat(cs->store->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return hfm_error_set(HFM_EIO, "create %s/tmp/%s: %s", cs->store->root, tmp,
				     strerror(errno));
	if (hfm_write_all(fd, data, n) || fdatasync(fd))
		rc = hfm_error_set(HFM_EIO, "write %s/tmp/%s: %s", cs->store->root, tmp, strerror(errno));
	close(fd);
	if (!rc && renameat(cs->store->tmp_fd, tmp, cs->store->root_fd, rel))
		rc = hfm_error_set(HFM_EIO, "rename %s: %s", rel, strerror(errno));
	if (rc)
		unlinkat(cs->store->tmp_fd, tmp, 0);
	return rc;
}

/* "<url>/api/<type>/<name>" */
static void api_url(struct hfm_buf *b, struct cache_repo *r)
{
	hfm_buf_printf(b, "%s/api/%s/%s", r->cs->up_url, hfm_repo_type_plural(r->base.id.type),
		       r->base.id.name);
}

/*
 * The upstream cannot be asked now: offline, or held down after it could not
 * be reached (upstream.h).  Either way what is not stored is answered as
 * offline answers it, at once.
 */
static int cannot_ask(struct cachesrc *cs)
{
	return cs->offline || hfm_up_unreachable(cs->up);
}

/* The end of "X is not in this mirror...": why nothing more can be had. */
static const char *not_here(const struct cachesrc *cs)
{
	return cs->offline ? " (offline)" : " and the upstream is unreachable";
}

/* ---- upstream API GETs ----------------------------------------------------- */

static void api_get_free(struct api_get *g)
{
	hfm_waitq_fire(hfm_waitq_take(&g->waiters));
	hfm_buf_dispose(&g->page);
	hfm_buf_dispose(&g->body);
	free(g->next_url);
	free(g->key);
	free(g->auth);
	free(g);
}

static int api_get_headers(void *cls, const struct hfm_up_response *r)
{
	struct api_get *g = cls;
	const char *code = hfm_up_header(r, "X-Error-Code");
	const char *link = hfm_up_header(r, "Link");

	g->status = r->status;
	snprintf(g->errcode, sizeof(g->errcode), "%s", code ? code : "");
	free(g->next_url);
	g->next_url = NULL;
	/* Link: <url>; rel="next" (possibly among other links) */
	while (link && *link) {
		const char *lt = strchr(link, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		if (!gt)
			break;
		const char *end = strchr(gt, ',');
		size_t seglen = end ? (size_t)(end - gt) : strlen(gt);
		if (memmem(gt, seglen, "rel=\"next\"", 10) || memmem(gt, seglen, "rel=next", 8)) {
			g->next_url = hfm_strndup(lt + 1, (size_t)(gt - lt - 1));
			break;
		}
		link = end ? end + 1 : NULL;
	}
	return HFM_UP_CONTINUE;
}

static int api_get_data(void *cls, const void *data, size_t n)
{
	struct api_get *g = cls;

	return hfm_buf_put(&g->page, data, n) ? HFM_ETOOBIG : HFM_UP_CONTINUE;
}

static int api_get_start(struct api_get *g, const char *url);

/* Append the page's array items to g->body; 0 or HFM_EUPSTREAM. */
static int api_get_merge_page(struct api_get *g)
{
	const char *p = hfm_buf_cstr(&g->page), *e = p + g->page.len;

	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
		e--;
	if (e - p < 2 || *p != '[' || e[-1] != ']')
		return hfm_error_set(HFM_EUPSTREAM, "upstream tree page is not a JSON array");
	p++;
	e--;
	while (p < e && (*p == ' ' || *p == '\n'))
		p++;
	if (e > p) {
		if (g->nitems_pages++)
			hfm_buf_putc(&g->body, ',');
		hfm_buf_put(&g->body, p, (size_t)(e - p));
	}
	hfm_buf_reset(&g->page);
	return g->body.err;
}

static void api_get_finish(struct api_get *g, int rc)
{
	struct cachesrc *cs = g->cs;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&cs->lock);
	g->done = 1;
	g->rc = rc;
	g->done_ns = hfm_mono_ns();
	wake = hfm_waitq_take(&g->waiters);
	pthread_cond_broadcast(&cs->cond);
	pthread_mutex_unlock(&cs->lock);
	hfm_waitq_fire(wake);
}

static void api_get_done(void *cls, int result)
{
	struct api_get *g = cls;

	if (!result && g->paged && g->status == 200) {
		result = api_get_merge_page(g);
		if (!result && g->next_url) {
			char *url = g->next_url;
			g->next_url = NULL;
			result = api_get_start(g, url);
			free(url);
			if (!result)
				return;      /* the next page continues the GET */
		}
		if (!result) {
			hfm_buf_putc(&g->body, ']');
			struct hfm_buf t = g->page;
			g->page = g->body;
			g->body = t;
			result = g->page.err;
		}
	}
	api_get_finish(g, result);
}

static int api_get_start(struct api_get *g, const char *url)
{
	struct hfm_up_request req = {
		.method = HFM_UP_GET,
		.kind = HFM_UPK_API,
		.url = url,
		.authorization = g->auth,
		.follow_redirects = 1,
		.max_attempts = 3,
		.on_headers = api_get_headers,
		.on_data = api_get_data,
		.on_done = api_get_done,
		.cls = g,
	};
	hfm_buf_reset(&g->page);
	return hfm_up_start(NULL, g->cs->up, &req);
}

struct answer {
	int rc;                          /* transport result */
	long status;
	char errcode[32];
	struct hfm_buf body;
};

/*
 * Ask upstream for `url` (all pages when `paged`), or join the request
 * already doing it.  0 with *a filled (any status), HFM_EAGAIN (waiter
 * armed), HFM_EOFFLINE, or a transport error in a->rc with 0 returned.
 */
static int ask(struct answer *a, struct cachesrc *cs, const char *url, int paged,
	       struct hfm_ctx *ctx)
{
	char authhash[HFM_SHA1_HEX + 1] = "";
	struct api_get *g, **pp;
	uint64_t now = hfm_mono_ns();
	char *key;
	int rc = 0;

	if (cannot_ask(cs))
		return hfm_error_set(HFM_EOFFLINE, "the upstream is %s",
				     cs->offline ? "not asked (offline)" : "unreachable");
	if (ctx->authorization)
		hfm_sha1_hex(authhash, ctx->authorization, strlen(ctx->authorization));
	key = hfm_asprintf("%s %s", authhash, url);
	pthread_mutex_lock(&cs->lock);
	for (pp = &cs->gets; (g = *pp);) {
		if (g->done && now - g->done_ns > GET_KEEP_NS) {
			*pp = g->next;           /* stale: later requests ask again */
			api_get_free(g);
			continue;
		}
		if (!strcmp(g->key, key))
			break;
		pp = &g->next;
	}
	if (!g) {
		g = hfm_calloc(1, sizeof(*g));
		g->cs = cs;
		g->key = key;
		key = NULL;
		g->auth = ctx->authorization ? hfm_strdup(ctx->authorization) : NULL;
		g->paged = paged;
		hfm_buf_init(&g->page, PAGE_MAX);
		hfm_buf_init(&g->body, TOTAL_MAX);
		if (paged)
			hfm_buf_putc(&g->body, '[');
		g->next = cs->gets;
		cs->gets = g;
		pthread_mutex_unlock(&cs->lock);
		rc = api_get_start(g, url);
		if (rc)
			api_get_finish(g, rc);
		pthread_mutex_lock(&cs->lock);
	}
	free(key);
	while (!g->done) {
		if (ctx->waiter) {
			hfm_waitq_add(&g->waiters, ctx->waiter);
			pthread_mutex_unlock(&cs->lock);
			return HFM_EAGAIN;
		}
		pthread_cond_wait(&cs->cond, &cs->lock);
	}
	a->rc = g->rc;
	a->status = g->status;
	memcpy(a->errcode, g->errcode, sizeof(a->errcode));
	hfm_buf_init(&a->body, TOTAL_MAX);
	hfm_buf_put(&a->body, hfm_buf_cstr(&g->page), g->page.len);
	pthread_mutex_unlock(&cs->lock);
	/* this very transfer found the upstream unreachable: as offline, too */
	if (a->rc && hfm_up_unreachable(cs->up)) {
		hfm_buf_dispose(&a->body);
		return hfm_error_set(HFM_EOFFLINE, "the upstream is unreachable");
	}
	return 0;
}

/* An upstream answer that is not 200 as our error code. */
static int answer_error(const struct answer *a, const char *what)
{
	if (a->rc == HFM_EOFFLINE || a->rc == HFM_ETIMEOUT)
		return hfm_error_set(HFM_ETIMEOUT, "upstream unreachable: %s", what);
	if (a->rc)
		return hfm_error_set(HFM_EUPSTREAM, "upstream failed: %s", what);
	if (!strcmp(a->errcode, "RepoNotFound"))
		return hfm_error_set(HFM_ENOREPO, "Repository not found");
	if (!strcmp(a->errcode, "RevisionNotFound"))
		return hfm_error_set(HFM_ENOREV, "Invalid rev id");
	if (!strcmp(a->errcode, "EntryNotFound"))
		return hfm_error_set(HFM_ENOENT, "Entry not found");
	if (!strcmp(a->errcode, "GatedRepo"))
		return hfm_error_set(HFM_EGATED, "Access to this gated repo is restricted");
	if (a->status == 401 || a->status == 403 || a->status == 404)
		return hfm_error_set(HFM_ENOREPO, "Repository not found");
	if (a->status >= 500)
		return hfm_error_set(HFM_EUPSTREAM, "upstream answered %ld: %s", a->status, what);
	return hfm_error_set(HFM_EUPSTREAM, "upstream answered %ld: %s", a->status, what);
}

/* Transport failure or 5xx: the soft-offline case. */
static int answer_soft(const struct answer *a)
{
	return a->rc || a->status >= 500 || a->status == 429;
}

/* Parse and de-Xet an upstream JSON answer into out (printed again). */
static int clean_json(struct hfm_buf *out, cJSON **keep, const struct hfm_buf *in)
{
	cJSON *j = cJSON_ParseWithLength(hfm_buf_cstr(in), in->len);
	if (!j)
		return hfm_error_set(HFM_EUPSTREAM, "upstream sent JSON that does not parse");
	strip_xet(j);
	char *s = cJSON_PrintUnformatted(j);
	hfm_buf_puts(out, s);
	free(s);
	if (keep)
		*keep = j;
	else
		cJSON_Delete(j);
	return out->err;
}

/*
 * The cached answer at <dir>/<rel>, fetched from `url` on a miss (or when
 * older than ttl_s, if ttl_s > 0; upstream trouble then keeps the old one).
 */
static int meta_get(struct hfm_buf *out, struct cache_repo *r, const char *rel, const char *url,
		    int paged, unsigned ttl_s, struct hfm_ctx *ctx)
{
	struct cachesrc *cs = r->cs;
	char path[HFM_PATH_MAX];
	struct answer a = { 0 };
	int64_t mtime = 0;
	int rc, have;

	snprintf(path, sizeof(path), "%s/%s", r->dir, rel);
	have = meta_read(out, cs, path, &mtime) == 0;
	if (have && (!ttl_s || cannot_ask(cs) || hfm_now_ms() - mtime < (int64_t)ttl_s * 1000))
		return 0;
	rc = ask(&a, cs, url, paged, ctx);
	if (rc == HFM_EAGAIN)
		return rc;
	if (rc == HFM_EOFFLINE) {
		if (have)
			return 0;
		return hfm_error_set(HFM_EOFFLINE, "%s is not in this mirror%s", r->base.id.name,
				     not_here(cs));
	}
	if (a.rc == 0 && a.status == 200) {
		hfm_buf_reset(out);
		rc = clean_json(out, NULL, &a.body);
		if (!rc && r->cache_ok && meta_write(cs, path, out->ptr, out->len))
			hfm_log(cs->log, cs->log_cls, HFM_LOG_ERROR, "cache: %s", hfm_error_last());
	} else if (have && answer_soft(&a)) {
		rc = 0;                       /* soft offline: the old answer */
	} else {
		hfm_buf_reset(out);
		rc = answer_error(&a, url);
	}
	hfm_buf_dispose(&a.body);
	return rc;
}

/* ---- gated and private repos ------------------------------------------------- */

/*
 * The mark <dir>/access ("gated" or "private") follows the newest info the
 * upstream gave for any revision of the repo; a commit's info keeps the
 * marks it had when fetched.  A repo is restricted if either says so.
 */
static enum restriction mark_read_at(struct cachesrc *cs, const char *dir)
{
	struct hfm_buf b = HFM_BUF_INIT(64);
	char rel[HFM_PATH_MAX];
	enum restriction rs = R_OPEN;

	snprintf(rel, sizeof(rel), "%s/access", dir);
	if (meta_read(&b, cs, rel, NULL) == 0)
		rs = !strncmp(hfm_buf_cstr(&b), "private", 7) ? R_PRIVATE :
		     !strncmp(hfm_buf_cstr(&b), "gated", 5) ? R_GATED : R_OPEN;
	hfm_buf_dispose(&b);
	return rs;
}

static enum restriction mark_read(struct cache_repo *r)
{
	return mark_read_at(r->cs, r->dir);
}

int hfm_cachesrc_restricted(struct hfm_source *src, const struct hfm_repo_id *id)
{
	char dir[HFM_PATH_MAX];

	snprintf(dir, sizeof(dir), "meta/%s/%s", hfm_repo_type_plural(id->type), id->name);
	return mark_read_at((struct cachesrc *)src, dir) != R_OPEN;
}

static void grant_key(char *key, size_t cap, const struct cache_repo *r, const struct hfm_ctx *ctx)
{
	const char *a = ctx->authorization ? ctx->authorization : "";
	char h[HFM_SHA1_HEX + 1];

	hfm_sha1_hex(h, a, strlen(a));
	snprintf(key, cap, "%s %s/%s", h, hfm_repo_type_plural(r->base.id.type), r->base.id.name);
}

static void grant_put(struct cachesrc *cs, const char *key, int rc, unsigned ttl_s)
{
	hfm_ttlmap_put(cs->grants, key, rc, NULL, (uint64_t)ttl_s * 1000000000ull);
}

/*
 * This request's info came fresh from upstream with its own token: keep the
 * repo's mark current, and for a private repo the 200 itself shows the
 * token is accepted.
 */
static void fresh_info(struct cache_repo *r, struct hfm_ctx *ctx)
{
	struct cachesrc *cs = r->cs;
	static const char *const names[] = { "", "gated\n", "private\n" };
	char rel[HFM_PATH_MAX], key[HFM_TTLMAP_KEY_MAX + 1];

	if (r->restricted == R_PRIVATE) {
		grant_key(key, sizeof(key), r, ctx);
		grant_put(cs, key, 0, cs->grant_ttl);
		r->granted = 1;
	}
	if (mark_read(r) == r->restricted || !r->cache_ok)
		return;
	snprintf(rel, sizeof(rel), "%s/access", r->dir);
	if (r->restricted == R_OPEN)
		unlinkat(cs->store->root_fd, rel, 0);
	else if (meta_write(cs, rel, names[r->restricted], strlen(names[r->restricted])))
		hfm_log(cs->log, cs->log_cls, HFM_LOG_ERROR, "cache: %s", hfm_error_last());
}

/*
 * The upstream let this local user's Hub token read a restricted repo:
 * keep the fact (not the token) for when no upstream can be asked.
 */
static void keep_grant(const struct cache_repo *r, const struct hfm_ctx *ctx)
{
	struct cachesrc *cs = r->cs;
	struct hfm_buf err = HFM_BUF_INIT(4096);

	if (!ctx->who || !cs->user_grants || hfm_grants_has(cs->user_grants, ctx->who->name,
							    &r->base.id))
		goto cleanup;
	if (hfm_grants_record(cs->user_grants, ctx->who->name, &r->base.id, "upstream", &err))
		hfm_log(cs->log, cs->log_cls, HFM_LOG_ERROR, "cache: grant of %s to %s: %s",
			r->base.id.name, ctx->who->name, err.len ? hfm_buf_cstr(&err) : hfm_error_last());
	else
		hfm_log(cs->log, cs->log_cls, HFM_LOG_INFO, "cache: %s may read %s (upstream said so)",
			ctx->who->name, r->base.id.name);
cleanup:
	hfm_buf_dispose(&err);
}

static int refuse(const struct cache_repo *r, int rc)
{
	if (rc == HFM_EGATED)
		return hfm_error_set(rc, "Access to gated repo %s is restricted: you must be "
				     "authenticated with a token that has access", r->base.id.name);
	return hfm_error_set(HFM_ENOREPO, "Repository not found: %s", r->base.id.name);
}

/*
 * The source's access op: may this request read r?  Open repos: yes.  Gated
 * and private ones: what upstream's auth-check said for this token within
 * access-check-ttl (a refusal within DENY_KEEP_S).  Offline or with the
 * upstream unreachable, only when the operator allows it.
 */
static int cache_access(struct hfm_repo *base, struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	struct cachesrc *cs = r->cs;
	const char *what;
	char key[HFM_TTLMAP_KEY_MAX + 1];
	struct answer a = { 0 };
	struct hfm_buf url = HFM_BUF_INIT(8192);
	int rc;

	if (r->restricted == R_UNKNOWN)
		r->restricted = mark_read(r);
	if (r->restricted == R_OPEN || r->granted)
		return 0;
	if (ctx->who && cs->user_grants &&
	    hfm_grants_has(cs->user_grants, ctx->who->name, &base->id))
		return r->granted = 1, 0;
	what = r->restricted == R_PRIVATE ? "private" : "gated";
	if (cs->offline) {
		if (cs->allow_gated_offline)
			return r->granted = 1, 0;
		return hfm_error_set(r->restricted == R_PRIVATE ? HFM_ENOREPO : HFM_EGATED,
				     "%s is %s and this mirror is offline: it cannot check the "
				     "token (allow-gated-offline is off)", base->id.name, what);
	}
	grant_key(key, sizeof(key), r, ctx);
	if (hfm_ttlmap_get(cs->grants, key, &rc, NULL, 0)) {
		if (rc)
			return refuse(r, rc);
		return r->granted = 1, 0;
	}
	api_url(&url, r);
	hfm_buf_puts(&url, "/auth-check");
	rc = ask(&a, cs, hfm_buf_cstr(&url), 0, ctx);
	if (rc == HFM_EOFFLINE) {
		/* unreachable: the soft case below, whose answer is a 5xx */
		a.rc = HFM_ETIMEOUT;
		hfm_buf_init(&a.body, 64);
		rc = 0;
	}
	if (rc)
		goto out;                    /* HFM_EAGAIN */
	if (a.rc == 0 && a.status == 200) {
		grant_put(cs, key, 0, cs->grant_ttl);
		r->granted = 1;
		keep_grant(r, ctx);
	} else if (!answer_soft(&a)) {
		rc = !strcmp(a.errcode, "GatedRepo") ||
		     (r->restricted == R_GATED && (a.status == 401 || a.status == 403)) ?
		     HFM_EGATED : HFM_ENOREPO;
		if (a.status == 404 && !a.errcode[0])
			hfm_log(cs->log, cs->log_cls, HFM_LOG_WARN,
				"cache: upstream has no auth-check for %s; %s repo refused",
				base->id.name, what);
		grant_put(cs, key, rc, DENY_KEEP_S);
		rc = refuse(r, rc);
	} else if (cs->allow_gated_offline) {
		r->granted = 1;              /* upstream unreachable: as offline */
	} else {
		rc = answer_error(&a, base->id.name);
		hfm_error_set(rc, "%s is %s and the upstream cannot check the token now: %s",
			      base->id.name, what, hfm_error_last());
	}
out:
	hfm_buf_dispose(&a.body);
	hfm_buf_dispose(&url);
	return rc;
}

/* ---- whose token ------------------------------------------------------------------ */

static int cache_whoami(struct hfm_buf *name, struct hfm_source *src, struct hfm_ctx *ctx)
{
	struct cachesrc *cs = (struct cachesrc *)src;
	char key[HFM_SHA256_HEX + 1], why[HFM_TTLMAP_WHY_MAX + 1];
	struct answer a = { 0 };
	char *url = NULL;
	int rc;

	if (!ctx->authorization)
		return hfm_error_set(HFM_EAUTH, "no token");
	hfm_sha256_hex(key, ctx->authorization, strlen(ctx->authorization));
	if (hfm_ttlmap_get(cs->whoamis, key, &rc, why, sizeof(why))) {
		if (!rc)
			hfm_buf_puts(name, why);
		return rc ? hfm_error_set(rc, "the upstream refused the token") : 0;
	}
	url = hfm_asprintf("%s/api/whoami-v2", cs->up_url);
	if ((rc = ask(&a, cs, url, 0, ctx)))
		goto cleanup;                /* HFM_EAGAIN, HFM_EOFFLINE */
	if (a.rc || a.status >= 500 || a.status == 429) {
		rc = answer_error(&a, "whoami-v2");
		goto cleanup;
	}
	if (a.status != 200) {
		hfm_ttlmap_put(cs->whoamis, key, HFM_EAUTH, NULL, DENY_KEEP_S * 1000000000ull);
		rc = hfm_error_set(HFM_EAUTH, "the upstream refused the token (%ld)", a.status);
		goto cleanup;
	}
	cJSON *j = cJSON_ParseWithLength(hfm_buf_cstr(&a.body), a.body.len);
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
	if (cJSON_IsString(n) && strlen(n->valuestring) <= HFM_TTLMAP_WHY_MAX) {
		hfm_buf_puts(name, n->valuestring);
		hfm_ttlmap_put(cs->whoamis, key, 0, n->valuestring,
			       (uint64_t)cs->grant_ttl * 1000000000ull);
	} else {
		rc = hfm_error_set(HFM_EUPSTREAM, "upstream whoami-v2 has no name");
	}
	cJSON_Delete(j);
cleanup:
	hfm_buf_dispose(&a.body);
	free(url);
	return rc;
}

/* ---- repos and revisions ----------------------------------------------------- */

static int cache_repo_open(struct hfm_repo **out, struct hfm_source *src,
			   const struct hfm_repo_id *id, struct hfm_ctx *ctx)
{
	struct cachesrc *cs = (struct cachesrc *)src;
	struct cache_repo *r = hfm_calloc(1, sizeof(*r));

	(void)ctx;
	r->base.src = src;
	r->base.id = *id;
	r->cs = cs;
	/* a read-only store relays what it lacks, as for a repo the rules keep out */
	r->cache_ok = !cs->store->read_only && (!cs->rules || hfm_rules_allow(cs->rules, id->name));
	r->restricted = R_UNKNOWN;
	snprintf(r->dir, sizeof(r->dir), "meta/%s/%s", hfm_repo_type_plural(id->type), id->name);
	*out = &r->base;
	return 0;
}

static void cache_repo_close(struct hfm_repo *base)
{
	free(base);
}

/* sha, lastModified, createdAt and the gated/private marks of an info JSON. */
static int info_fields(struct hfm_resolved *out, enum restriction *rs, const struct hfm_buf *info)
{
	cJSON *j = cJSON_ParseWithLength(hfm_buf_cstr(info), info->len);
	cJSON *sha = j ? cJSON_GetObjectItemCaseSensitive(j, "sha") : NULL;
	int rc = 0;

	if (!cJSON_IsString(sha) || strlen(sha->valuestring) != HFM_SHA1_HEX ||
	    !hfm_is_hex(sha->valuestring, HFM_SHA1_HEX)) {
		rc = hfm_error_set(HFM_EUPSTREAM, "upstream info has no commit sha");
	} else {
		memset(out, 0, sizeof(*out));
		memcpy(out->commit, sha->valuestring, HFM_SHA1_HEX + 1);
		cJSON *lm = cJSON_GetObjectItemCaseSensitive(j, "lastModified");
		cJSON *ca = cJSON_GetObjectItemCaseSensitive(j, "createdAt");
		out->date_ms = cJSON_IsString(lm) ? parse_iso_ms(lm->valuestring) : 0;
		out->created_ms = cJSON_IsString(ca) ? parse_iso_ms(ca->valuestring) : 0;
		/* "gated": false | "auto" | "manual"; "private": bool */
		cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "gated");
		*rs = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "private")) ? R_PRIVATE :
		      cJSON_IsTrue(g) || (cJSON_IsString(g) && strcmp(g->valuestring, "false")) ? R_GATED :
		      R_OPEN;
	}
	cJSON_Delete(j);
	return rc;
}

static int is_sha(const char *s)
{
	return strlen(s) == HFM_SHA1_HEX && hfm_is_hex(s, HFM_SHA1_HEX);
}

static void info_memo_put(struct cache_repo *r, const struct hfm_resolved *res)
{
	struct cachesrc *cs = r->cs;
	struct info_memo *m;

	pthread_mutex_lock(&cs->lock);
	m = &cs->infos[cs->info_next++ % SNAP_CACHE];
	snprintf(m->key, sizeof(m->key), "%s@%s", r->dir, res->commit);
	m->res = *res;
	m->rs = r->restricted;
	pthread_mutex_unlock(&cs->lock);
}

/*
 * The info of commit `sha` (a known one: from the memo, else
 * <dir>/commits/<sha>/info.json, fetched from upstream on a miss); sets
 * r->restricted.  `info` is scratch.
 */
static int commit_info(struct hfm_resolved *out, struct cache_repo *r, const char *sha,
		       struct hfm_buf *info, struct hfm_ctx *ctx)
{
	struct cachesrc *cs = r->cs;
	struct hfm_buf url = HFM_BUF_INIT(8192);
	char key[sizeof(cs->infos[0].key)], irel[80];
	int rc;

	snprintf(key, sizeof(key), "%s@%s", r->dir, sha);
	pthread_mutex_lock(&cs->lock);
	for (unsigned i = 0; i < SNAP_CACHE; i++)
		if (!strcmp(cs->infos[i].key, key)) {
			*out = cs->infos[i].res;
			r->restricted = cs->infos[i].rs;
			pthread_mutex_unlock(&cs->lock);
			return 0;
		}
	pthread_mutex_unlock(&cs->lock);
	api_url(&url, r);
	hfm_buf_puts(&url, "/revision/");
	hfm_buf_puts(&url, sha);
	snprintf(irel, sizeof(irel), "commits/%s/info.json", sha);
	rc = meta_get(info, r, irel, hfm_buf_cstr(&url), 0, 0, ctx);
	if (!rc && !(rc = info_fields(out, &r->restricted, info)) && !strcmp(out->commit, sha))
		info_memo_put(r, out);
	hfm_buf_dispose(&url);
	return rc;
}

/* The commit `rev` names, from the cache or upstream; sets r->restricted. */
static int resolve_rev(struct hfm_resolved *out, struct hfm_repo *base, const char *rev,
		       struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	struct cachesrc *cs = r->cs;
	struct hfm_buf info = HFM_BUF_INIT(PAGE_MAX), url = HFM_BUF_INIT(8192);
	struct hfm_buf map = HFM_BUF_INIT(4096), rel = HFM_BUF_INIT(HFM_PATH_MAX);
	struct answer a = { 0 };
	int64_t mtime = 0;
	int rc, have_map, unconfirmed = 0;

	api_url(&url, r);
	hfm_buf_puts(&url, "/revision/");
	hfm_buf_urlenc(&url, rev, 0);
	if (is_sha(rev)) {
		rc = commit_info(out, r, rev, &info, ctx);
		if (rc == HFM_EOFFLINE)
			rc = hfm_error_set(HFM_ENOREV, "Revision %s of %s is not in this mirror%s",
					   rev, base->id.name, not_here(cs));
		goto cleanup;
	}

	hfm_buf_printf(&rel, "%s/revs/", r->dir);
	hfm_buf_urlenc(&rel, rev, 0);
	have_map = meta_read(&map, cs, hfm_buf_cstr(&rel), &mtime) == 0 && is_sha(hfm_buf_cstr(&map));
	if (have_map && hfm_now_ms() - mtime < (int64_t)cs->ttl * 1000)
		goto from_map;
	if (have_map && cannot_ask(cs)) {
		unconfirmed = 1;
		goto from_map;
	}
	rc = ask(&a, cs, hfm_buf_cstr(&url), 0, ctx);
	if (rc == HFM_EAGAIN)
		goto cleanup;
	if (rc == HFM_EOFFLINE) {
		unconfirmed = 1;
		if (have_map)
			goto from_map;
		struct stat st;
		if (fstatat(cs->store->root_fd, r->dir, &st, 0) == 0)
			rc = hfm_error_set(HFM_ENOREV, "Revision %s of %s is not in this mirror%s",
					   rev, base->id.name, not_here(cs));
		else
			rc = hfm_error_set(HFM_ENOREPO, "%s is not in this mirror%s",
					   base->id.name, not_here(cs));
		goto cleanup;
	}
	if (a.rc == 0 && a.status == 200) {
		char irel[HFM_PATH_MAX];
		if ((rc = clean_json(&info, NULL, &a.body)) ||
		    (rc = info_fields(out, &r->restricted, &info)))
			goto cleanup;
		fresh_info(r, ctx);
		if (r->cache_ok) {
			snprintf(irel, sizeof(irel), "%s/commits/%s/info.json", r->dir, out->commit);
			if (meta_write(cs, irel, info.ptr, info.len) ||
			    meta_write(cs, hfm_buf_cstr(&rel), out->commit, HFM_SHA1_HEX))
				hfm_log(cs->log, cs->log_cls, HFM_LOG_ERROR, "cache: %s", hfm_error_last());
			info_memo_put(r, out);   /* what the file says now (gated, private) */
		}
		goto cleanup;
	}
	if (have_map && answer_soft(&a)) {
		hfm_log(cs->log, cs->log_cls, HFM_LOG_WARN,
			"cache: upstream unavailable, %s@%s from the cache", base->id.name, rev);
		unconfirmed = 1;
		goto from_map;
	}
	rc = answer_error(&a, base->id.name);
	goto cleanup;

from_map:
	rc = commit_info(out, r, hfm_buf_cstr(&map), &info, ctx);
	if (rc == HFM_EOFFLINE)
		rc = HFM_ENOREV;
cleanup:
	if (!rc)
		out->unconfirmed = unconfirmed;
	hfm_buf_dispose(&a.body);
	hfm_buf_dispose(&info);
	hfm_buf_dispose(&url);
	hfm_buf_dispose(&map);
	hfm_buf_dispose(&rel);
	return rc;
}

static int cache_resolve(struct hfm_resolved *out, struct hfm_repo *base, const char *rev,
			 struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	int rc = resolve_rev(out, base, rev, ctx);

	if (rc)
		return rc;
	/* the repo's newest mark wins over an old commit's info */
	enum restriction m = mark_read(r);
	if (m > r->restricted)
		r->restricted = m;
	/* a private repo's very metadata needs the token; a gated one's files only */
	return r->restricted == R_PRIVATE ? cache_access(base, ctx) : 0;
}

static int cache_info(struct hfm_buf *out, struct hfm_repo *base, const struct hfm_resolved *rc,
		      unsigned flags, struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	struct hfm_buf url = HFM_BUF_INIT(8192);
	char rel[80];
	int blobs = flags & HFM_INFO_BLOBS;
	int ret;

	api_url(&url, r);
	hfm_buf_printf(&url, "/revision/%s%s", rc->commit, blobs ? "?blobs=true" : "");
	snprintf(rel, sizeof(rel), "commits/%s/%s.json", rc->commit, blobs ? "info-blobs" : "info");
	ret = meta_get(out, r, rel, hfm_buf_cstr(&url), 0, 0, ctx);
	if (ret == HFM_EOFFLINE)
		ret = hfm_error_set(HFM_EOFFLINE, "%s is not in this mirror%s", base->id.name,
				    not_here(r->cs));
	hfm_buf_dispose(&url);
	return ret;
}

/* ---- snapshots -------------------------------------------------------------- */

static void snap_release(struct hfm_snapshot *base)
{
	struct cache_snap *s = (struct cache_snap *)base;

	cJSON_Delete(s->json);
	free(s->base.entries);
	free(s->key);
	free(s);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct hfm_entry *)a)->path, ((const struct hfm_entry *)b)->path);
}

static void copy_hex(char *dst, size_t cap, const cJSON *v)
{
	if (cJSON_IsString(v) && strlen(v->valuestring) < cap && hfm_is_hex(v->valuestring, strlen(v->valuestring)))
		memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
}

static int snap_build(struct cache_snap **out, const char *key, const char *commit,
		      const struct hfm_buf *tree)
{
	cJSON *j = cJSON_ParseWithLength(hfm_buf_cstr(tree), tree->len), *it;
	struct cache_snap *s;
	size_t n = 0;

	if (!cJSON_IsArray(j)) {
		cJSON_Delete(j);
		return hfm_error_set(HFM_EUPSTREAM, "upstream tree is not a JSON array");
	}
	s = hfm_calloc(1, sizeof(*s));
	s->json = j;
	s->key = hfm_strdup(key);
	s->base.entries = hfm_calloc((size_t)cJSON_GetArraySize(j) + 1, sizeof(struct hfm_entry));
	cJSON_ArrayForEach(it, j) {
		cJSON *path = cJSON_GetObjectItemCaseSensitive(it, "path");
		cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
		cJSON *size = cJSON_GetObjectItemCaseSensitive(it, "size");
		cJSON *lfs = cJSON_GetObjectItemCaseSensitive(it, "lfs");
		struct hfm_entry *e = &s->base.entries[n];
		if (!cJSON_IsString(path) || !hfm_path_valid(path->valuestring) || !*path->valuestring)
			continue;
		e->path = path->valuestring;
		e->is_dir = cJSON_IsString(type) && !strcmp(type->valuestring, "directory");
		e->size = cJSON_IsNumber(size) && size->valuedouble > 0 ? (uint64_t)size->valuedouble : 0;
		copy_hex(e->oid, sizeof(e->oid), cJSON_GetObjectItemCaseSensitive(it, "oid"));
		if (cJSON_IsObject(lfs)) {
			cJSON *lsz = cJSON_GetObjectItemCaseSensitive(lfs, "size");
			cJSON *psz = cJSON_GetObjectItemCaseSensitive(lfs, "pointerSize");
			copy_hex(e->lfs_oid, sizeof(e->lfs_oid), cJSON_GetObjectItemCaseSensitive(lfs, "oid"));
			e->is_lfs = strlen(e->lfs_oid) == HFM_SHA256_HEX;
			if (cJSON_IsNumber(lsz) && lsz->valuedouble > 0)
				e->size = (uint64_t)lsz->valuedouble;
			e->pointer_size = cJSON_IsNumber(psz) ? (uint32_t)psz->valuedouble : 0;
		}
		if (e->is_dir)
			e->size = 0;
		atomic_store(&e->has_ids, 1);
		n++;
	}
	s->base.n = n;
	qsort(s->base.entries, n, sizeof(struct hfm_entry), entry_cmp);
	atomic_store(&s->base.refs, 1);
	snprintf(s->base.commit, sizeof(s->base.commit), "%s", commit);
	s->base.release = snap_release;
	*out = s;
	return 0;
}

static int snapshot_get(struct hfm_snapshot **out, struct cache_repo *r, const char *commit,
			struct hfm_ctx *ctx)
{
	struct cachesrc *cs = r->cs;
	struct hfm_buf key = HFM_BUF_INIT(1024), url = HFM_BUF_INIT(8192);
	struct hfm_buf tree = HFM_BUF_INIT(TOTAL_MAX);
	struct cache_snap *s = NULL;
	char rel[80];
	int rc = 0;

	if (!is_sha(commit))
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", commit);
	hfm_buf_printf(&key, "%s@%s", r->dir, commit);
	pthread_mutex_lock(&cs->lock);
	for (unsigned i = 0; i < SNAP_CACHE; i++)
		if (cs->snaps[i] && !strcmp(cs->snaps[i]->key, key.ptr)) {
			*out = hfm_snapshot_ref(&cs->snaps[i]->base);
			pthread_mutex_unlock(&cs->lock);
			goto cleanup;
		}
	pthread_mutex_unlock(&cs->lock);

	api_url(&url, r);
	hfm_buf_printf(&url, "/tree/%s?recursive=true&expand=false", commit);
	snprintf(rel, sizeof(rel), "commits/%s/tree.json", commit);
	if ((rc = meta_get(&tree, r, rel, hfm_buf_cstr(&url), 1, 0, ctx)))
		goto cleanup;
	if ((rc = snap_build(&s, key.ptr, commit, &tree)))
		goto cleanup;
	pthread_mutex_lock(&cs->lock);
	unsigned slot = cs->snap_next++ % SNAP_CACHE;
	if (cs->snaps[slot])
		hfm_snapshot_unref(&cs->snaps[slot]->base);
	cs->snaps[slot] = s;
	*out = hfm_snapshot_ref(&s->base);
	pthread_mutex_unlock(&cs->lock);
cleanup:
	hfm_buf_dispose(&key);
	hfm_buf_dispose(&url);
	hfm_buf_dispose(&tree);
	return rc;
}

/* ---- lastCommit (HFM_LIST_EXPAND) ------------------------------------------ */

/*
 * A list whose items carry last_commit: copies of the snapshot's entries
 * (their path strings stay owned by the snapshot the list holds) and the
 * last commits, both owned by the list.
 */
struct xlist {
	struct hfm_entry *ents;
	struct hfm_last_commit *lcs;
	size_t nlcs;
};

static void xlist_release(struct hfm_list *l)
{
	struct xlist *x = l->priv;

	for (size_t i = 0; i < x->nlcs; i++)
		free(x->lcs[i].title);
	free(x->lcs);
	free(x->ents);
	free(x);
}

/* Length of the directory part of `path` ("a/b/c" -> 3, "c" -> 0). */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

/*
 * The expanded listing of one directory at `commit`: upstream's
 * `tree/{sha}/{dir}?expand=true`, all pages, kept under
 * commits/<sha>/expand/<sha1 of dir>.json like every answer keyed by a commit.
 */
static int expand_get(struct hfm_buf *out, struct cache_repo *r, const char *commit,
		      const char *dir, size_t dl, struct hfm_ctx *ctx)
{
	struct hfm_buf url = HFM_BUF_INIT(16384);
	char dh[HFM_SHA1_HEX + 1], rel[160];
	int rc;

	hfm_sha1_hex(dh, dir, dl);
	snprintf(rel, sizeof(rel), "commits/%s/expand/%s.json", commit, dh);
	api_url(&url, r);
	hfm_buf_printf(&url, "/tree/%s", commit);
	if (dl) {
		char *d = hfm_strndup(dir, dl);
		hfm_buf_putc(&url, '/');
		hfm_buf_urlenc(&url, d, 1);
		free(d);
	}
	hfm_buf_puts(&url, "?expand=true");
	rc = meta_get(out, r, rel, hfm_buf_cstr(&url), 1, 0, ctx);
	hfm_buf_dispose(&url);
	return rc;
}

/*
 * Replace *lp by a list whose entries have last_commit, from the expanded
 * listing of each directory the entries are in.  A directory whose listing
 * is not to be had (offline and never fetched, upstream trouble) leaves its
 * entries' last_commit NULL; the listing itself is still answered.
 */
static int expand_list(struct hfm_list **lp, struct cache_repo *r, const char *commit,
		       struct hfm_ctx *ctx)
{
	struct cachesrc *cs = r->cs;
	struct hfm_list *in = *lp, *l;
	struct xlist *x = hfm_calloc(1, sizeof(*x));
	size_t i, k;
	int rc = 0;

	l = hfm_list_new(in->snap, in->n);
	l->priv = x;
	l->release = xlist_release;
	x->ents = hfm_calloc(in->n + 1, sizeof(*x->ents));
	x->lcs = hfm_calloc(in->n + 1, sizeof(*x->lcs));   /* at most one per entry */
	for (i = 0; i < in->n; i++) {
		x->ents[i] = *in->items[i];
		x->ents[i].last_commit = NULL;
		hfm_list_push(l, &x->ents[i]);
	}
	for (i = 0; i < l->n; i++) {
		const char *p = x->ents[i].path;
		size_t dl = dir_len(p);
		struct hfm_buf b = HFM_BUF_INIT(TOTAL_MAX);
		cJSON *j, *it;

		/* each directory once: skip when an earlier entry shares it */
		for (k = 0; k < i; k++)
			if (dir_len(x->ents[k].path) == dl && !memcmp(x->ents[k].path, p, dl))
				break;
		if (k < i)
			continue;
		rc = expand_get(&b, r, commit, p, dl, ctx);
		if (rc == HFM_EAGAIN) {
			hfm_buf_dispose(&b);
			hfm_list_free(l);
			return rc;
		}
		if (rc) {
			if (rc != HFM_EOFFLINE)
				hfm_log(cs->log, cs->log_cls, HFM_LOG_WARN,
					"cache: no lastCommit for %s@%s/%.*s: %s", r->base.id.name,
					commit, (int)dl, p, hfm_error_last());
			hfm_buf_dispose(&b);
			rc = 0;
			continue;
		}
		j = cJSON_ParseWithLength(hfm_buf_cstr(&b), b.len);
		hfm_buf_dispose(&b);
		cJSON_ArrayForEach(it, j) {
			cJSON *path = cJSON_GetObjectItemCaseSensitive(it, "path");
			cJSON *lc = cJSON_GetObjectItemCaseSensitive(it, "lastCommit");
			cJSON *id = cJSON_GetObjectItemCaseSensitive(lc, "id");
			cJSON *title = cJSON_GetObjectItemCaseSensitive(lc, "title");
			cJSON *date = cJSON_GetObjectItemCaseSensitive(lc, "date");
			if (!cJSON_IsString(path) || !cJSON_IsString(id) || !is_sha(id->valuestring))
				continue;
			for (k = i; k < l->n; k++) {
				struct hfm_entry *e = &x->ents[k];
				if (e->last_commit || strcmp(e->path, path->valuestring))
					continue;
				struct hfm_last_commit *c = &x->lcs[x->nlcs++];
				memcpy(c->id, id->valuestring, HFM_SHA1_HEX + 1);
				c->title = hfm_strdup(cJSON_IsString(title) ? title->valuestring : "");
				c->date_ms = cJSON_IsString(date) ? parse_iso_ms(date->valuestring) : 0;
				e->last_commit = c;
			}
		}
		cJSON_Delete(j);
	}
	hfm_list_free(in);
	*lp = l;
	return 0;
}

static int cache_list(struct hfm_list **out, struct hfm_repo *base, const char *commit,
		      const char *path, unsigned flags, struct hfm_ctx *ctx)
{
	struct hfm_snapshot *s = NULL;
	int rc = snapshot_get(&s, (struct cache_repo *)base, commit, ctx);

	if (rc)
		return rc;
	rc = hfm_snapshot_list(out, s, path, flags & HFM_LIST_RECURSIVE);
	hfm_snapshot_unref(s);
	if (!rc && (flags & HFM_LIST_EXPAND) &&
	    (rc = expand_list(out, (struct cache_repo *)base, commit, ctx))) {
		hfm_list_free(*out);
		*out = NULL;
	}
	return rc;
}

static int cache_stat(struct hfm_list **out, struct hfm_repo *base, const char *commit,
		      const char *const *paths, size_t n, unsigned flags, struct hfm_ctx *ctx)
{
	struct hfm_snapshot *s = NULL;
	int rc = snapshot_get(&s, (struct cache_repo *)base, commit, ctx);

	if (rc)
		return rc;
	rc = hfm_snapshot_stat(out, s, paths, n);
	hfm_snapshot_unref(s);
	if (!rc && (flags & HFM_LIST_EXPAND) &&
	    (rc = expand_list(out, (struct cache_repo *)base, commit, ctx))) {
		hfm_list_free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- refs and commits ----------------------------------------------------------- */

static int cache_refs(struct hfm_refs **out, struct hfm_repo *base, struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	struct hfm_buf b = HFM_BUF_INIT(PAGE_MAX), url = HFM_BUF_INIT(8192);
	static const char *const kinds[4] = { "branches", "tags", "converts", "pullRequests" };
	cJSON *j = NULL;
	int rc;

	api_url(&url, r);
	hfm_buf_puts(&url, "/refs?include_prs=1");
	rc = meta_get(&b, r, "refs.json", hfm_buf_cstr(&url), 0, r->cs->ttl ? r->cs->ttl : 1, ctx);
	if (rc == HFM_EOFFLINE)
		rc = hfm_error_set(HFM_ENOREPO, "%s is not in this mirror%s", base->id.name,
				   not_here(r->cs));
	if (rc)
		goto cleanup;
	j = cJSON_ParseWithLength(b.ptr, b.len);
	if (!cJSON_IsObject(j)) {
		rc = hfm_error_set(HFM_EUPSTREAM, "upstream refs do not parse");
		goto cleanup;
	}
	*out = hfm_refs_new();
	for (int k = 0; k < 4; k++) {
		cJSON *it, *arr = cJSON_GetObjectItemCaseSensitive(j, kinds[k]);
		cJSON_ArrayForEach(it, arr) {
			cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
			cJSON *ref = cJSON_GetObjectItemCaseSensitive(it, "ref");
			cJSON *tgt = cJSON_GetObjectItemCaseSensitive(it, "targetCommit");
			if (cJSON_IsString(name) && cJSON_IsString(ref) && cJSON_IsString(tgt) &&
			    is_sha(tgt->valuestring))
				hfm_refs_add(*out, k, name->valuestring, ref->valuestring,
					     tgt->valuestring);
		}
	}
cleanup:
	cJSON_Delete(j);
	hfm_buf_dispose(&b);
	hfm_buf_dispose(&url);
	return rc;
}

static int cache_commits(struct hfm_commits **out, struct hfm_repo *base, const char *commit,
			 size_t skip, size_t limit, struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	struct hfm_buf b = HFM_BUF_INIT(PAGE_MAX), url = HFM_BUF_INIT(8192);
	size_t want = skip + limit;
	cJSON *j = NULL, *it;
	char rel[96];
	int rc;

	if (!is_sha(commit))
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", commit);
	if (want > 1000)
		want = 1000;
	api_url(&url, r);
	hfm_buf_printf(&url, "/commits/%s?limit=%zu", commit, want + 1);
	snprintf(rel, sizeof(rel), "commits/%s/log-%zu.json", commit, want + 1);
	rc = meta_get(&b, r, rel, hfm_buf_cstr(&url), 0, 0, ctx);
	if (rc == HFM_EOFFLINE)
		rc = hfm_error_set(HFM_ENOREV, "Commits of %s are not in this mirror%s",
				   base->id.name, not_here(r->cs));
	if (rc)
		goto cleanup;
	j = cJSON_ParseWithLength(b.ptr, b.len);
	if (!cJSON_IsArray(j)) {
		rc = hfm_error_set(HFM_EUPSTREAM, "upstream commits do not parse");
		goto cleanup;
	}
	*out = hfm_calloc(1, sizeof(**out));
	(*out)->v = hfm_calloc(limit + 1, sizeof(struct hfm_commit));
	size_t i = 0;
	cJSON_ArrayForEach(it, j) {
		if (i++ < skip)
			continue;
		if ((*out)->n == limit) {
			(*out)->more = 1;
			break;
		}
		cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
		cJSON *title = cJSON_GetObjectItemCaseSensitive(it, "title");
		cJSON *msg = cJSON_GetObjectItemCaseSensitive(it, "message");
		cJSON *date = cJSON_GetObjectItemCaseSensitive(it, "date");
		cJSON *authors = cJSON_GetObjectItemCaseSensitive(it, "authors");
		cJSON *user = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(authors, 0), "user");
		struct hfm_commit *c = &(*out)->v[(*out)->n];
		if (!cJSON_IsString(id) || !is_sha(id->valuestring))
			continue;
		memcpy(c->id, id->valuestring, HFM_SHA1_HEX + 1);
		c->title = hfm_strdup(cJSON_IsString(title) ? title->valuestring : "");
		c->message = hfm_strdup(cJSON_IsString(msg) ? msg->valuestring : "");
		c->date_ms = cJSON_IsString(date) ? parse_iso_ms(date->valuestring) : 0;
		c->author = cJSON_IsString(user) ? hfm_strdup(user->valuestring) : NULL;
		(*out)->n++;
	}
cleanup:
	cJSON_Delete(j);
	hfm_buf_dispose(&b);
	hfm_buf_dispose(&url);
	return rc;
}

/* ---- files ------------------------------------------------------------------- */

static void mem_free_buf(void *cls)
{
	free(cls);
}

static int cache_open(struct hfm_body *out, struct hfm_repo *base, const char *commit,
		      const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx)
{
	struct cache_repo *r = (struct cache_repo *)base;
	struct cachesrc *cs = r->cs;
	int raw = (flags & HFM_OPEN_RAW) != 0;
	const char *oid = e->is_lfs && !raw ? e->lfs_oid : e->oid;
	struct hfm_buf url = HFM_BUF_INIT(16384);
	uint64_t size;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->source_kind = "cache";
	if ((rc = cache_access(base, ctx)))
		return rc;
	if (e->is_dir)
		return hfm_error_set(HFM_ENOENT, "%s is a directory", e->path);
	if (e->is_lfs && raw) {
		/* the pointer is made from the ids: nothing to fetch */
		struct hfm_buf p = HFM_BUF_INIT(1024);
		hfm_lfs_pointer(&p, e->lfs_oid, e->size);
		out->kind = HFM_BODY_MEM;
		out->size = p.len;
		out->mem = p.ptr ? p.ptr : "";
		out->mem_cls = p.ptr;
		out->mem_free = p.ptr ? mem_free_buf : NULL;
		return 0;
	}
	if (e->size == 0) {
		out->kind = HFM_BODY_MEM;
		out->mem = "";
		return 0;
	}
	if (hfm_store_object_open(&fd, &size, cs->store, oid) == 0) {
		if (size != e->size) {
			close(fd);
			return hfm_error_set(HFM_EIO, "object %s has the wrong size", oid);
		}
		out->kind = HFM_BODY_FD;
		out->fd = fd;
		out->size = size;
		out->cache = HFM_MCACHE_HIT;
		return 0;
	}
	if (cannot_ask(cs))
		return hfm_error_set(HFM_EUNAVAIL, "%s is not in this mirror%s", e->path, not_here(cs));
	hfm_buf_printf(&url, "%s/%s%s/resolve/%s/", cs->up_url, hfm_repo_type_prefix(base->id.type),
		       base->id.name, commit);
	hfm_buf_urlenc(&url, e->path, 1);
	struct hfm_stream_origin o = {
		.url = hfm_buf_cstr(&url),
		.authorization = ctx->authorization,
		.oid = oid,
		.size = e->size,
		.arrived_ns = ctx->arrived_ns,
	};
	out->kind = HFM_BODY_STREAM;
	out->size = e->size;
	out->cache = r->cache_ok ? HFM_MCACHE_MISS : HFM_MCACHE_RELAY;
	if (r->cache_ok)
		rc = hfm_stream_blob_new(&out->stream, &cs->streams, &o);
	else
		rc = hfm_stream_relay_new(&out->stream, cs->up, &o);
	hfm_buf_dispose(&url);
	return rc;
}

/* ---- the source ------------------------------------------------------------------ */

static int cache_ready(struct hfm_source *src)
{
	struct cachesrc *cs = (struct cachesrc *)src;
	int rc;

	if ((rc = hfm_store_check(cs->store)))
		return rc;
	if (!cs->offline && hfm_up_unreachable(cs->up))
		return hfm_error_set(HFM_EUNAVAIL, "the upstream %s is unreachable", cs->up_url);
	return 0;
}

static void cache_free(struct hfm_source *src)
{
	struct cachesrc *cs = (struct cachesrc *)src;

	hfm_metrics_probe_remove(&cs->probe);     /* harmless when never added */
	hfm_evictor_stop(cs->evictor);
	/* No fill may start a transfer while the upstream stops. */
	if (cs->bc)
		hfm_blobcache_stop_fills(cs->bc);
	/* The upstream first: its free ends every transfer (their on_done runs). */
	if (cs->up)
		hfm_up_free(cs->up);
	if (cs->bc)
		hfm_blobcache_free(cs->bc);
	hfm_followers_free(cs->followers);
	if (cs->bf)
		hfm_blobfetch_free(cs->bf);
	while (cs->gets) {
		struct api_get *g = cs->gets;
		cs->gets = g->next;
		api_get_free(g);
	}
	for (unsigned i = 0; i < SNAP_CACHE; i++)
		if (cs->snaps[i])
			hfm_snapshot_unref(&cs->snaps[i]->base);
	pthread_mutex_destroy(&cs->lock);
	pthread_cond_destroy(&cs->cond);
	hfm_ttlmap_free(cs->grants);
	hfm_ttlmap_free(cs->whoamis);
	free(cs->up_url);
	free(cs->base.label);
	free(cs);
}

/* ---- listing ------------------------------------------------------------------- */

/* Does meta/<type>/<rel> hold a repo's metadata (a revision map or a commit's info)? */
static int meta_is_repo(int dfd, const char *rel)
{
	char p[HFM_PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/revs", rel);
	if (fstatat(dfd, p, &st, 0) == 0 && S_ISDIR(st.st_mode))
		return 1;
	snprintf(p, sizeof(p), "%s/commits", rel);
	return fstatat(dfd, p, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The repos of type t the cache holds metadata for: meta/<type>/<name> and
 * meta/<type>/<org>/<name>.  What a caller may read of them is the catalog's
 * and resolve's to decide (a private repo still needs its token).
 */
static void cache_list_repos(struct hfm_source *src, enum hfm_repo_type t,
			     void (*cb)(void *cls, const char *name), void *cls)
{
	struct cachesrc *cs = (struct cachesrc *)src;
	char top[64];
	snprintf(top, sizeof(top), "meta/%s", hfm_repo_type_plural(t));
	int fd = openat(cs->store->root_fd, top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct hfm_repo_id id;
		if (hfm_repo_id_set(&id, t, NULL, de->d_name))
			continue;
		if (meta_is_repo(fd, de->d_name)) {
			cb(cls, id.name);
			continue;
		}
		int fd2 = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d2 = fd2 >= 0 ? fdopendir(fd2) : NULL;
		struct dirent *de2;
		if (!d2 && fd2 >= 0)
			close(fd2);
		while (d2 && (de2 = readdir(d2)))
			if (!hfm_repo_id_set(&id, t, de->d_name, de2->d_name) &&
			    meta_is_repo(fd2, de2->d_name))
				cb(cls, id.name);
		if (d2)
			closedir(d2);
	}
	closedir(d);
}

static void cache_status(struct hfm_source *src, struct hfm_source_status *out)
{
	struct cachesrc *cs = (struct cachesrc *)src;
	struct hfm_blobcache_stats bs;
	struct hfm_up_stats us;

	memset(out, 0, sizeof(*out));
	out->upstream = cs->up_url;
	out->state = hfm_up_is_offline(cs->up) ? HFM_UP_OFFLINE :
		     hfm_up_unreachable(cs->up) ? HFM_UP_UNREACHABLE : HFM_UP_REACHABLE;
	out->store = cs->store->root;
	hfm_blobcache_stats(&bs, cs->bc);
	out->fills = bs.fetches;
	out->fill_failures = bs.fetch_failures;
	out->verified = bs.verified;
	out->bytes_written = bs.bytes_written;
	out->open_blobs = bs.open_blobs;
	hfm_up_stats(&us, cs->up);
	out->upstream_requests = us.started;
	out->upstream_bytes = us.bytes;
	out->upstream_unreachable = us.unreachable;
}

static const struct hfm_source_ops cache_ops = {
	.kind = "cache",
	.repo_open = cache_repo_open,
	.repo_close = cache_repo_close,
	.resolve = cache_resolve,
	.list = cache_list,
	.stat = cache_stat,
	.info = cache_info,
	.refs = cache_refs,
	.commits = cache_commits,
	.open = cache_open,
	.opens_foreign = 1,
	.access = cache_access,
	.whoami = cache_whoami,
	.list_repos = cache_list_repos,
	.status = cache_status,
	.ready = cache_ready,
	.free = cache_free,
};

/* What the blob cache and the upstream keep, for /metrics. */
static void cache_probe(void *cls)
{
	struct cachesrc *cs = cls;
	struct hfm_blobcache_stats st;

	hfm_blobcache_stats(&st, cs->bc);
	hfm_metrics_set(HFM_M_CACHE_FETCH_FAILURES, (int64_t)st.fetch_failures);
	hfm_metrics_set(HFM_M_CACHE_WRITTEN_BYTES, (int64_t)st.bytes_written);
	hfm_metrics_set(HFM_M_CACHE_VERIFIED, (int64_t)st.verified);
	hfm_metrics_set(HFM_M_CACHE_CORRUPT, (int64_t)st.corrupt);
	hfm_metrics_set(HFM_M_CACHE_LIMIT_BYTES, (int64_t)cs->size_limit);
	hfm_metrics_set(HFM_M_UP_OFFLINE, hfm_up_is_offline(cs->up));
	hfm_metrics_set(HFM_M_UP_REACHABLE, !hfm_up_unreachable(cs->up));
}

int hfm_cachesrc_new(struct hfm_source **out, const struct hfm_cachesrc_opts *o)
{
	struct cachesrc *cs;
	int rc;

	if (!o->store || !o->upstream_url || strncmp(o->upstream_url, "http", 4))
		return hfm_error_set(HFM_EINVAL, "the online cache needs a store and an upstream URL");
	cs = hfm_calloc(1, sizeof(*cs));
	cs->base.ops = &cache_ops;
	cs->up_url = hfm_strdup(o->upstream_url);
	size_t l = strlen(cs->up_url);
	while (l && cs->up_url[l - 1] == '/')
		cs->up_url[--l] = '\0';
	cs->base.label = hfm_asprintf("%s -> %s%s", cs->up_url, o->store->root,
				      o->offline ? " (offline)" : o->store->read_only ? " (read-only store)" : "");
	cs->store = o->store;
	cs->offline = o->offline;
	cs->ttl = o->metadata_ttl;
	cs->allow_gated_offline = o->allow_gated_offline;
	cs->user_grants = o->grants;
	cs->grant_ttl = o->access_check_ttl ? o->access_check_ttl : 300;
	cs->grants = hfm_ttlmap_new(GRANTS);
	cs->whoamis = hfm_ttlmap_new(GRANTS);
	cs->rules = o->cache_rules;
	cs->log = o->log;
	cs->log_cls = o->log_cls;
	pthread_mutex_init(&cs->lock, NULL);
	pthread_cond_init(&cs->cond, NULL);

	struct hfm_up_opts uo = {
		.ca_file = o->ca_file,
		.offline = o->offline,
		.low_speed_time = o->upstream_timeout,
		.connect_timeout_ms = o->upstream_timeout ? (o->upstream_timeout < 3 ? 1000 :
				      o->upstream_timeout > 30 ? 10000 : o->upstream_timeout * 1000 / 3) : 0,
		.hold_down_ms = o->upstream_hold_down * 1000,
		.log = o->log,
		.log_cls = o->log_cls,
	};
	if ((rc = hfm_up_new(&cs->up, &uo)))
		goto fail;
	struct hfm_blobfetch_opts fo = { .log = o->log, .log_cls = o->log_cls };
	if ((rc = hfm_blobfetch_new(&cs->bf, cs->up, &fo)))
		goto fail;
	/* Without a limit (or offline, where nothing grows) its passes only
	 * measure the store for /metrics; a read-only store is never evicted
	 * from, nor measured (the evict lock is a file in it). */
	cs->size_limit = o->offline || o->store->read_only ? 0 : o->size_limit;
	if (cs->size_limit || (o->measure_store && !o->store->read_only)) {
		struct hfm_evict_opts eo = {
			.store = o->store,
			.limit = cs->size_limit,
			.strategy = o->clean_strategy,
			.interval_s = o->evict_interval_s,
			.log = o->log,
			.log_cls = o->log_cls,
		};
		if ((rc = hfm_evictor_start(&cs->evictor, &eo)))
			goto fail;
	}
	/* the blob cache kicks the evictor as it fills partial/ and publishes;
	 * its reference outlives hfm_evictor_stop() in cache_free() */
	struct hfm_blobcache_opts bo = {
		.block_size = o->block_size,
		.sync_bytes = o->durable_blocks ? (o->block_size ? o->block_size : 1) : 0,
		.fetch = hfm_blobfetch_start,
		.fetch_cls = cs->bf,
		.grew = hfm_evictor_grew,        /* NULL-safe: no evictor, no kicks */
		.grew_release = hfm_evictor_unref,
		.grew_cls = hfm_evictor_ref(cs->evictor),
		.log = o->log,
		.log_cls = o->log_cls,
	};
	/* a read-only store has no blob cache: what is not published is relayed */
	if (!o->store->read_only && (rc = hfm_blobcache_new(&cs->bc, o->store, &bo)))
		goto fail;
	if (!o->store->read_only && (rc = hfm_followers_new(&cs->followers)))
		goto fail;
	cs->streams = (struct hfm_stream_cache){
		.bc = cs->bc,
		.up = cs->up,
		.range_fill_max = o->range_fill_max,
		.strict = o->strict_ranges,
		.followers = cs->followers,
		.store = o->store,
	};
	cs->probe = (struct hfm_metrics_probe){ .read = cache_probe, .cls = cs };
	hfm_metrics_probe_add(&cs->probe);
	*out = &cs->base;
	return 0;
fail:
	cache_free(&cs->base);
	return rc;
}
