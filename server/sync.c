/*
 * sync.c - fetch what a manifest declares, through the online cache (sync.h).
 *
 * The run is a client of the cache source, like a request is: every op is
 * called with a waiter and re-run when woken (the cache's ops are
 * idempotent), so a stop request reaches a thread that waits at once, and
 * what ends up under meta/ and objects/ is what the cache itself stores.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/gitfetch.h"
#include "hfm/progress.h"
#include "hfm/rules.h"
#include "hfm/source.h"
#include "hfm/store.h"
#include "hfm/sync.h"

#define READ_BUF (1u << 20)
#define OBJ_BUCKETS 65536u
#define DEFAULT_JOBS 4
#define STALE_WHY "upstream unavailable: the store's commit, not confirmed upstream"

/* ---- the manifest -------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void hfm_sync_manifest_free(struct hfm_sync_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		strv_free(m->repos[i].revisions, m->repos[i].n_revisions);
		strv_free(m->repos[i].include, m->repos[i].n_include);
		strv_free(m->repos[i].exclude, m->repos[i].n_exclude);
	}
	free(m->repos);
	free(m->path);
	free(m);
}

/*
 * The manifest's patterns as a rule list (rules.h: Python's fnmatch, the
 * last match wins): the includes (or "*"), then the excludes.
 */
static struct hfm_rules *compile_filter(const struct hfm_sync_want *w)
{
	size_t n = (w->n_include ? w->n_include : 1) + w->n_exclude, k = 0;
	struct hfm_rule *rules = hfm_calloc(n, sizeof(*rules));
	struct hfm_rules *out = NULL;

	if (!w->n_include)
		rules[k++] = (struct hfm_rule){ .repo = hfm_strdup("*"), .allow = 1 };
	for (size_t i = 0; i < w->n_include + w->n_exclude; i++, k++) {
		int inc = i < w->n_include;
		const char *p = inc ? w->include[i] : w->exclude[i - w->n_include];
		size_t l = strlen(p);
		/* huggingface_hub: a pattern ending in "/" is the folder's content */
		rules[k].repo = l && p[l - 1] == '/' ? hfm_asprintf("%s*", p) : hfm_strdup(p);
		rules[k].allow = inc;
	}
	if (hfm_rules_compile(&out, rules, n, NULL))
		out = NULL;
	for (size_t i = 0; i < n; i++)
		free(rules[i].repo);
	free(rules);
	return out;
}

int hfm_sync_wants(const struct hfm_sync_want *w, const char *path)
{
	struct hfm_rules *r = compile_filter(w);
	int yes = hfm_rules_allow(r, path);

	hfm_rules_free(r);
	return yes;
}

/* ---- the run's state --------------------------------------------------------------- */

/* O_SKIPPED: only repos whose files are skipped want it (so far). */
enum obj_state { O_PRESENT, O_TODO, O_RUNNING, O_DONE, O_FAILED, O_SKIPPED };

struct repo;
struct rev;

/* One blob to have in objects/, however many revisions and repos list it. */
struct obj {
	struct obj *next;                /* hash chain */
	char oid[HFM_SHA256_HEX + 1];
	uint64_t size;
	enum obj_state state;            /* under s->lock once fetching started */
	char *error;                     /* O_FAILED */
	struct rev *rev;                 /* the first revision that lists it: where from */
	const struct hfm_entry *e;       /* its entry there */
	struct repo *owner;              /* the repo that fetches it */
	struct repo *last_repo;          /* planning: the last repo that counted it */
};

struct rev {
	struct repo *repo;
	const char *name;                /* the manifest's string */
	char commit[HFM_SHA1_HEX + 1];
	char *error;                     /* not resolved, or not listed */
	int repo_missing;                /* upstream said RepoNotFound for it */
	int stale;                       /* the store's commit: the upstream could not answer */
	struct hfm_list *list;           /* the recursive listing (holds the snapshot) */
	size_t nfiles;                   /* wanted files */
	uint64_t bytes;
};

struct repo {
	const struct hfm_sync_want *want;
	struct rev *revs;
	char *error;                     /* the repo itself failed */
	char *skipped;                   /* why its files are not fetched (rules) */
	struct obj **objs;               /* distinct objects it wants */
	size_t nobjs, capobjs;
	/* git = true: its history into mirrors/ (hfm_sync_git) */
	int git_done;                    /* fetched or failed */
	char *git_error;
	struct hfm_gitfetch_result git;
};

struct waitpt {
	struct hfm_sync *s;
	struct hfm_waiter *w;
	int fired;
};

struct worker {
	struct hfm_sync *s;
	pthread_t thread;
	struct waitpt wp;
	char *buf;
	atomic_uint_fast64_t pos;        /* bytes of the current object read so far */
	struct obj *cur;                 /* under s->lock */
};

struct hfm_sync {
	const struct hfm_sync_manifest *m;
	struct hfm_sync_opts o;
	struct repo *repos;
	struct obj *buckets[OBJ_BUCKETS];
	struct obj **todo;               /* objects to fetch, in plan order */
	size_t ntodo, captodo, next;     /* next: the next to hand out (under lock) */
	uint64_t todo_bytes;
	int dry_run, planned, fetched;
	atomic_int stop;
	pthread_mutex_t lock;            /* object states, the queue, the wake-ups */
	pthread_cond_t cond;             /* a waiter fired, a worker finished, stop */
	uint64_t files_done, bytes_done;
	unsigned running;
	struct worker *workers;
	unsigned nworkers;
	char current[HFM_PATH_MAX];
};

static void say(struct hfm_sync *s, const char *fmt, ...) HFM_PRINTF(2, 3);
static void say(struct hfm_sync *s, const char *fmt, ...)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);
	va_list ap;

	if (!s->o.say)
		return;
	va_start(ap, fmt);
	hfm_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	s->o.say(s->o.say_cls, hfm_buf_cstr(&b));
	hfm_buf_dispose(&b);
}

/* "why" of the last failure: the source's message, else the code's. */
static char *why(int rc)
{
	const char *m = hfm_error_last();

	return hfm_strdup(m && *m ? m : hfm_strerror(rc));
}

/* ---- waiting for the cache --------------------------------------------------------- */

static void on_wake(void *cls)
{
	struct waitpt *p = cls;

	pthread_mutex_lock(&p->s->lock);
	p->fired = 1;
	pthread_cond_broadcast(&p->s->cond);
	pthread_mutex_unlock(&p->s->lock);
}

static struct hfm_waiter *arm(struct waitpt *p)
{
	p->fired = 0;
	p->w = hfm_waiter_new(on_wake, p);
	return p->w;
}

static void disarm(struct waitpt *p)
{
	hfm_waiter_cancel(p->w);             /* the callback is not running after this */
	hfm_waiter_unref(p->w);
	p->w = NULL;
}

/* Wait until the armed waiter fires (0) or the run is stopped (HFM_ERROR). */
static int await(struct waitpt *p)
{
	struct hfm_sync *s = p->s;
	int fired;

	pthread_mutex_lock(&s->lock);
	while (!p->fired && !atomic_load(&s->stop))
		pthread_cond_wait(&s->cond, &s->lock);
	fired = p->fired;
	pthread_mutex_unlock(&s->lock);
	disarm(p);
	return fired ? 0 : hfm_error_set(HFM_ERROR, "interrupted");
}

/* Run a source op until it stops asking to wait (the server's re-run, in a loop). */
typedef int (*op_fn)(void *arg, struct hfm_ctx *ctx);

static int run_op(struct waitpt *p, op_fn fn, void *arg)
{
	struct hfm_sync *s = p->s;
	struct hfm_ctx ctx = { .authorization = s->o.authorization, .arrived_ns = hfm_mono_ns() };
	int rc;

	for (;;) {
		if (atomic_load(&s->stop))
			return hfm_error_set(HFM_ERROR, "interrupted");
		hfm_error_clear();           /* a bare code must not bring an old message */
		ctx.waiter = arm(p);
		rc = fn(arg, &ctx);
		if (rc != HFM_EAGAIN) {
			disarm(p);
			return rc;
		}
		if ((rc = await(p)))
			return rc;
	}
}

struct op {
	struct hfm_repo *repo;
	const char *rev;
	const char *commit;
	struct hfm_resolved *resolved;
	unsigned flags;
	struct hfm_buf *buf;
	struct hfm_list **list;
	const char *const *paths;
	size_t npaths;
	struct hfm_refs **refs;
	const struct hfm_entry *e;
	struct hfm_body *body;
};

static int op_resolve(void *a, struct hfm_ctx *ctx)
{
	struct op *o = a;

	return o->repo->src->ops->resolve(o->resolved, o->repo, o->rev, ctx);
}

static int op_info(void *a, struct hfm_ctx *ctx)
{
	struct op *o = a;

	hfm_buf_reset(o->buf);
	return o->repo->src->ops->info(o->buf, o->repo, o->resolved, o->flags, ctx);
}

static int op_list(void *a, struct hfm_ctx *ctx)
{
	struct op *o = a;

	return o->repo->src->ops->list(o->list, o->repo, o->commit, "", o->flags, ctx);
}

static int op_stat(void *a, struct hfm_ctx *ctx)
{
	struct op *o = a;

	return o->repo->src->ops->stat(o->list, o->repo, o->commit, o->paths, o->npaths, o->flags,
				       ctx);
}

static int op_refs(void *a, struct hfm_ctx *ctx)
{
	struct op *o = a;

	return o->repo->src->ops->refs(o->refs, o->repo, ctx);
}

static int op_open(void *a, struct hfm_ctx *ctx)
{
	struct op *o = a;

	return o->repo->src->ops->open(o->body, o->repo, o->commit, o->e, 0, ctx);
}

/* ---- planning ---------------------------------------------------------------------- */

static struct obj *obj_get(struct hfm_sync *s, const char *oid, uint64_t size, int *fresh)
{
	uint32_t h = 2166136261u;
	struct obj *o;

	for (const char *p = oid; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h %= OBJ_BUCKETS;
	for (o = s->buckets[h]; o; o = o->next)
		if (!strcmp(o->oid, oid)) {
			*fresh = 0;
			return o;
		}
	o = hfm_calloc(1, sizeof(*o));
	snprintf(o->oid, sizeof(o->oid), "%s", oid);
	o->size = size;
	o->next = s->buckets[h];
	s->buckets[h] = o;
	*fresh = 1;
	return o;
}

static void repo_add_obj(struct repo *r, struct obj *o)
{
	if (o->last_repo == r)
		return;
	o->last_repo = r;
	if (r->nobjs == r->capobjs) {
		r->capobjs = r->capobjs ? r->capobjs * 2 : 64;
		r->objs = hfm_realloc(r->objs, r->capobjs * sizeof(*r->objs));
	}
	r->objs[r->nobjs++] = o;
}

static void todo_push(struct hfm_sync *s, struct obj *o)
{
	if (s->ntodo == s->captodo) {
		s->captodo = s->captodo ? s->captodo * 2 : 256;
		s->todo = hfm_realloc(s->todo, s->captodo * sizeof(*s->todo));
	}
	s->todo[s->ntodo++] = o;
}

/*
 * The object a wanted file needs (its content: the LFS oid for LFS files).
 * `skip`: the repo's files are not to be fetched; another repo may still
 * want the same object, and then fetches it.
 */
static void plan_file(struct hfm_sync *s, struct repo *r, struct rev *v, const struct hfm_entry *e,
		      int skip)
{
	const char *oid = e->is_lfs ? e->lfs_oid : e->oid;
	struct obj *o;
	int fresh;

	v->nfiles++;
	v->bytes += e->size;
	o = obj_get(s, oid, e->size, &fresh);
	if (fresh || (o->state == O_SKIPPED && !skip)) {
		o->rev = v;
		o->e = e;
		o->owner = r;
		/* empty files are answered from nothing: there is no object to store */
		if (e->size == 0 || hfm_store_object_exists(s->o.store, oid)) {
			o->state = O_PRESENT;
		} else if (skip) {
			o->state = O_SKIPPED;
		} else {
			o->state = O_TODO;
			todo_push(s, o);
			s->todo_bytes += o->size;
		}
	}
	repo_add_obj(r, o);
}

static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

/*
 * The expanded listing (lastCommit) of every directory that holds a wanted
 * file: what pathsInfo(expand) and tree?expand answer offline.  One stat
 * per directory, so a re-run after a wait never redoes the others.
 */
static void plan_expand(struct hfm_sync *s, struct waitpt *p, struct hfm_repo *repo,
			struct rev *v, const struct hfm_entry **wanted, size_t n)
{
	for (size_t i = 0; i < n && !atomic_load(&s->stop); i++) {
		size_t dl = dir_len(wanted[i]->path), k;
		/* each directory once */
		for (k = 0; k < i; k++)
			if (dir_len(wanted[k]->path) == dl && !memcmp(wanted[k]->path, wanted[i]->path, dl))
				break;
		if (k < i)
			continue;
		struct hfm_list *l = NULL;
		const char *path = wanted[i]->path;
		struct op o = { .repo = repo, .commit = v->commit, .paths = &path, .npaths = 1,
				.flags = HFM_LIST_EXPAND, .list = &l };
		if (run_op(p, op_stat, &o) == 0)
			hfm_list_free(l);
	}
}

static void plan_rev(struct hfm_sync *s, struct waitpt *p, struct repo *r, struct hfm_repo *repo,
		     struct rev *v, struct hfm_rules *filter, int skip)
{
	struct hfm_resolved rc;
	struct hfm_buf info = HFM_BUF_INIT(64u << 20);
	struct op o = { .repo = repo, .rev = v->name, .resolved = &rc };
	const struct hfm_entry **wanted = NULL;
	size_t nw = 0;
	uint64_t todo_bytes = 0, todo0 = s->ntodo;
	int e;

	if ((e = run_op(p, op_resolve, &o))) {
		v->error = why(e);
		v->repo_missing = e == HFM_ENOREPO;
		return;
	}
	memcpy(v->commit, rc.commit, sizeof(v->commit));
	/* planned all the same: the run leaves the store as consistent as it was */
	v->stale = rc.unconfirmed;
	/* what the offline server answers info with: plain and ?blobs=true */
	if (!s->dry_run && !skip) {
		for (unsigned flags = 0; flags <= HFM_INFO_BLOBS; flags += HFM_INFO_BLOBS) {
			struct op io = { .repo = repo, .resolved = &rc, .flags = flags, .buf = &info };
			if ((e = run_op(p, op_info, &io))) {
				v->error = why(e);
				goto cleanup;
			}
		}
	}
	struct op lo = { .repo = repo, .commit = v->commit, .flags = HFM_LIST_RECURSIVE,
			 .list = &v->list };
	if ((e = run_op(p, op_list, &lo))) {
		v->error = why(e);
		goto cleanup;
	}
	wanted = hfm_calloc(v->list->n + 1, sizeof(*wanted));
	for (size_t i = 0; i < v->list->n; i++) {
		const struct hfm_entry *en = v->list->items[i];
		if (en->is_dir || !hfm_rules_allow(filter, en->path))
			continue;
		wanted[nw++] = en;
		plan_file(s, r, v, en, skip);
	}
	for (size_t i = todo0; i < s->ntodo; i++)
		todo_bytes += s->todo[i]->size;
	if (!s->dry_run && !skip)
		plan_expand(s, p, repo, v, wanted, nw);
	{
		char b[24], t[24];
		hfm_human_bytes(b, sizeof(b), v->bytes);
		hfm_human_bytes(t, sizeof(t), todo_bytes);
		say(s, "%s%s@%s: commit %s%s, %zu files (%s)%s%zu to fetch (%s)",
		    hfm_repo_type_prefix(r->want->id.type), r->want->id.name, v->name, v->commit,
		    v->stale ? " (" STALE_WHY ")" : "", v->nfiles, b, skip ? ", skipped; " : ", ",
		    (size_t)(s->ntodo - todo0), t);
	}
cleanup:
	free(wanted);
	hfm_buf_dispose(&info);
}

static void plan_repo(struct hfm_sync *s, struct waitpt *p, struct repo *r)
{
	const struct hfm_sync_want *w = r->want;
	struct hfm_source *cache = s->o.cache;
	struct hfm_repo *repo = NULL;
	struct hfm_rules *filter = NULL;
	int skip, e, any = 0;

	r->revs = hfm_calloc(w->n_revisions, sizeof(*r->revs));
	for (size_t i = 0; i < w->n_revisions; i++) {
		r->revs[i].repo = r;
		r->revs[i].name = w->revisions[i];
	}
	if (s->o.proxy_rules && !hfm_rules_allow(s->o.proxy_rules, w->id.name)) {
		r->skipped = hfm_strdup("the proxy rules ([[accessibility.proxy]]) deny it");
		say(s, "%s%s: skipped: %s", hfm_repo_type_prefix(w->id.type), w->id.name, r->skipped);
		return;
	}
	skip = s->o.cache_rules && !hfm_rules_allow(s->o.cache_rules, w->id.name);
	if (skip)
		r->skipped = hfm_strdup("the cache rules ([[accessibility.cache]]) deny it");
	if (!(filter = compile_filter(w))) {
		r->error = hfm_strdup("its include/exclude patterns do not compile");
		return;
	}
	{
		struct hfm_ctx ctx = { 0 };
		if ((e = cache->ops->repo_open(&repo, cache, &w->id, &ctx))) {
			r->error = why(e);
			goto cleanup;
		}
	}
	for (size_t i = 0; i < w->n_revisions && !atomic_load(&s->stop); i++) {
		plan_rev(s, p, r, repo, &r->revs[i], filter, skip);
		any |= !r->revs[i].error;
	}
	/*
	 * RepoNotFound for every revision: the repo (a private one without a
	 * token looks so too).  With another revision found, it only says that
	 * revision is missing.
	 */
	if (!any && w->n_revisions && r->revs[0].repo_missing)
		r->error = hfm_asprintf("not found upstream: %s%s", r->revs[0].error,
					s->o.authorization ? "" : " (a private repo needs a token: "
					"HF_TOKEN or --token-file)");
	if (any && !s->dry_run && !skip && !atomic_load(&s->stop)) {
		/* refs (list_repo_refs) and HEAD (info without a revision), as offline answers them */
		struct hfm_refs *refs = NULL;
		struct hfm_resolved rc;
		struct op o = { .repo = repo, .refs = &refs, .rev = "HEAD", .resolved = &rc };
		if (run_op(p, op_refs, &o) == 0)
			hfm_refs_free(refs);
		run_op(p, op_resolve, &o);
	}
cleanup:
	if (repo)
		cache->ops->repo_close(repo);
	hfm_rules_free(filter);
}

int hfm_sync_plan(struct hfm_sync *s, int dry_run)
{
	struct waitpt p = { .s = s };

	s->dry_run = dry_run;
	for (size_t i = 0; i < s->m->n && !atomic_load(&s->stop); i++)
		plan_repo(s, &p, &s->repos[i]);
	s->planned = 1;
	if (atomic_load(&s->stop))
		return hfm_error_set(HFM_ERROR, "interrupted");
	return 0;
}

/* ---- fetching ---------------------------------------------------------------------- */

/* Read the whole body through the cache: the blob cache fetches and verifies it. */
static int read_all(struct worker *wk, struct hfm_body *b)
{
	uint64_t pos = 0, size = b->size;

	while (pos < size) {
		ssize_t n;

		if (atomic_load(&wk->s->stop))
			return hfm_error_set(HFM_ERROR, "interrupted");
		hfm_error_clear();
		n = hfm_stream_read(b->stream, pos, size, wk->buf, READ_BUF, arm(&wk->wp));
		if (n == HFM_EAGAIN) {
			if (await(&wk->wp))
				return HFM_ERROR;
			continue;
		}
		disarm(&wk->wp);
		if (n < 0)
			return (int)n;
		pos += (uint64_t)n;
		atomic_store(&wk->pos, pos);
	}
	return 0;
}

/*
 * Whether oid reached the store, waiting for it a while: the answer for a
 * small blob ends once its bytes are verified, and the cache's worker
 * publishes it a moment later (blobcache.h, hfm_blob_in_memory), behind
 * whatever else it syncs.
 */
static int stored(struct hfm_sync *s, const char *oid)
{
	unsigned ms = 1, waited = 0;

	while (!hfm_store_object_exists(s->o.store, oid)) {
		if (waited >= 30000 || atomic_load(&s->stop))
			return 0;
		usleep(ms * 1000);
		waited += ms;
		ms = ms < 64 ? ms * 2 : 100;
	}
	return 1;
}

static int fetch_obj(struct worker *wk, struct obj *ob)
{
	struct hfm_sync *s = wk->s;
	struct hfm_source *cache = s->o.cache;
	struct hfm_repo *repo = NULL;
	struct hfm_body body;
	struct hfm_ctx ctx = { 0 };
	int rc;

	memset(&body, 0, sizeof(body));
	body.fd = -1;
	if ((rc = cache->ops->repo_open(&repo, cache, &ob->owner->want->id, &ctx)))
		return rc;
	struct op o = { .repo = repo, .commit = ob->rev->commit, .e = ob->e, .body = &body };
	if ((rc = run_op(&wk->wp, op_open, &o)))
		goto cleanup;
	if (body.kind == HFM_BODY_STREAM && (rc = read_all(wk, &body)))
		goto cleanup;
	if (body.size && !stored(s, ob->oid))
		rc = hfm_error_set(HFM_EIO, "%s was read but is not in the store", ob->oid);
cleanup:
	hfm_body_dispose(&body);
	cache->ops->repo_close(repo);
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct hfm_sync *s = wk->s;

	for (;;) {
		struct obj *ob = NULL;
		int rc;

		pthread_mutex_lock(&s->lock);
		if (!atomic_load(&s->stop) && s->next < s->ntodo) {
			ob = s->todo[s->next++];
			ob->state = O_RUNNING;
			wk->cur = ob;
			s->running++;
		}
		pthread_mutex_unlock(&s->lock);
		if (!ob)
			break;
		atomic_store(&wk->pos, 0);
		rc = fetch_obj(wk, ob);
		pthread_mutex_lock(&s->lock);
		wk->cur = NULL;
		s->running--;
		if (rc && atomic_load(&s->stop)) {
			ob->state = O_TODO;          /* interrupted: not a failure of the file */
		} else {
			if (rc) {
				ob->state = O_FAILED;
				ob->error = why(rc);
			} else {
				ob->state = O_DONE;
			}
			s->files_done++;
			s->bytes_done += ob->size;
		}
		atomic_store(&wk->pos, 0);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

int hfm_sync_fetch(struct hfm_sync *s, void (*tick)(void *cls), void *cls, unsigned tick_ms)
{
	unsigned n = s->o.jobs ? s->o.jobs : DEFAULT_JOBS;

	if (n > s->ntodo)
		n = s->ntodo ? (unsigned)s->ntodo : 0;
	s->workers = hfm_calloc(n + 1, sizeof(*s->workers));
	for (unsigned i = 0; i < n; i++) {
		struct worker *wk = &s->workers[i];
		wk->s = s;
		wk->wp.s = s;
		wk->buf = hfm_malloc(READ_BUF);
		if (pthread_create(&wk->thread, NULL, worker_main, wk)) {
			free(wk->buf);
			break;
		}
		s->nworkers++;
	}
	if (!s->nworkers && s->ntodo)
		return hfm_error_set(HFM_ERROR, "cannot start fetch threads");
	pthread_mutex_lock(&s->lock);
	while (s->files_done < s->ntodo && !(atomic_load(&s->stop) && !s->running)) {
		uint64_t deadline = hfm_mono_ns() + (uint64_t)(tick_ms ? tick_ms : 100) * 1000000ull;
		hfm_cond_wait_mono(&s->cond, &s->lock, deadline);
		if (tick) {
			pthread_mutex_unlock(&s->lock);
			tick(cls);
			pthread_mutex_lock(&s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nworkers; i++) {
		pthread_join(s->workers[i].thread, NULL);
		free(s->workers[i].buf);
	}
	s->fetched = 1;
	if (tick)
		tick(cls);
	return atomic_load(&s->stop) ? hfm_error_set(HFM_ERROR, "interrupted") : 0;
}

/* Does repo r want its git history fetched (and is it fit for it)? */
static int wants_git(const struct repo *r)
{
	return r->want->git && !r->error && !r->skipped;
}

struct git_wait {
	struct hfm_sync *s;
	const struct hfm_repo_id *id;
};

static void git_waiting(void *cls)
{
	struct git_wait *w = cls;

	say(w->s, "%s%s: git: waiting for an import of its mirror to finish",
	    hfm_repo_type_prefix(w->id->type), w->id->name);
}

int hfm_sync_git(struct hfm_sync *s)
{
	for (size_t i = 0; i < s->m->n && !atomic_load(&s->stop); i++) {
		struct repo *r = &s->repos[i];
		const struct hfm_repo_id *id = &r->want->id;
		struct hfm_gitfetch_result res;
		struct git_wait gw = { s, id };
		struct hfm_gitfetch_opts go = {
			.upstream_url = s->o.upstream_url,
			.authorization = s->o.authorization,
			.stop = &s->stop,
			.on_wait = git_waiting,
			.cls = &gw,
		};
		int rc;

		if (!wants_git(r))
			continue;
		if (!s->o.upstream_url) {
			rc = hfm_error_set(HFM_EINVAL, "no upstream to fetch git history from");
		} else if (s->o.restricted && s->o.restricted(s->o.cache, id)) {
			/* the git source has no gating: its mirror would be everyone's */
			rc = hfm_error_set(HFM_EINVAL, "git = true is refused for a gated or private "
					   "repo: a git mirror is served to everyone (its files are "
					   "synced as usual)");
		} else {
			say(s, "%s%s: git: fetching its history into mirrors/",
			    hfm_repo_type_prefix(id->type), id->name);
			rc = hfm_gitfetch_mirror(&res, s->o.store, id, &go);
		}
		pthread_mutex_lock(&s->lock);
		if (rc) {
			r->git_error = why(rc);
		} else {
			r->git = res;
		}
		r->git_done = 1;
		pthread_mutex_unlock(&s->lock);
		if (!rc)
			say(s, "%s%s: git: %zu refs, %u objects received", hfm_repo_type_prefix(id->type),
			    id->name, res.refs, res.received_objects);
	}
	return atomic_load(&s->stop) ? hfm_error_set(HFM_ERROR, "interrupted") : 0;
}

void hfm_sync_stop(struct hfm_sync *s)
{
	atomic_store(&s->stop, 1);
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int hfm_sync_stopped(struct hfm_sync *s)
{
	return atomic_load(&s->stop);
}

void hfm_sync_totals(struct hfm_sync *s, struct hfm_sync_totals *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	out->files = s->ntodo;
	out->bytes = s->todo_bytes;
	out->files_done = s->files_done;
	out->bytes_done = s->bytes_done;
	out->running = s->running;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *wk = &s->workers[i];
		if (wk->cur) {
			out->bytes_done += atomic_load(&wk->pos);
			if (!out->current) {
				snprintf(s->current, sizeof(s->current), "%s", wk->cur->e->path);
				out->current = s->current;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the run ----------------------------------------------------------------------- */

int hfm_sync_new(struct hfm_sync **out, const struct hfm_sync_manifest *m,
		 const struct hfm_sync_opts *o)
{
	struct hfm_sync *s;

	if (!o->cache || !o->store)
		return hfm_error_set(HFM_EINVAL, "sync needs the cache source and its store");
	s = hfm_calloc(1, sizeof(*s));
	s->m = m;
	s->o = *o;
	s->repos = hfm_calloc(m->n + 1, sizeof(*s->repos));
	for (size_t i = 0; i < m->n; i++)
		s->repos[i].want = &m->repos[i];
	pthread_mutex_init(&s->lock, NULL);
	hfm_cond_init_mono(&s->cond);
	*out = s;
	return 0;
}

void hfm_sync_free(struct hfm_sync *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->m->n; i++) {
		struct repo *r = &s->repos[i];
		for (size_t k = 0; r->revs && k < r->want->n_revisions; k++) {
			free(r->revs[k].error);
			if (r->revs[k].list)
				hfm_list_free(r->revs[k].list);
		}
		free(r->revs);
		free(r->objs);
		free(r->error);
		free(r->skipped);
		free(r->git_error);
		hfm_gitfetch_result_dispose(&r->git);
	}
	for (size_t i = 0; i < OBJ_BUCKETS; i++) {
		while (s->buckets[i]) {
			struct obj *o = s->buckets[i];
			s->buckets[i] = o->next;
			free(o->error);
			free(o);
		}
	}
	free(s->todo);
	free(s->repos);
	free(s->workers);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

size_t hfm_sync_nrepos(const struct hfm_sync *s)
{
	return s->m->n;
}

/* ---- reports ----------------------------------------------------------------------- */

/* What became of one repo's objects.  Under s->lock. */
struct count {
	uint64_t files, bytes;
};
struct tally {
	struct count skipped;            /* the rules deny the repo */
	struct count fetched;            /* by this repo (dry run: to fetch) */
	struct count present;            /* there before, or fetched for another repo */
	struct count failed;
	struct count pending;            /* not fetched: the run stopped */
	size_t failed_revs;
};

static void tally(struct tally *t, const struct hfm_sync *s, const struct repo *r)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < r->nobjs; i++) {
		const struct obj *o = r->objs[i];
		/* fetched (or to fetch) by this repo, or by another one: present here */
		struct count *mine = o->owner == r ? &t->fetched : &t->present, *c;

		switch (o->state) {
		case O_DONE:
			c = mine;
			break;
		case O_FAILED:
			c = &t->failed;
			break;
		case O_TODO:
		case O_RUNNING:
			c = s->dry_run ? mine : &t->pending;
			break;
		default:
			c = &t->present;
			break;
		}
		if (r->skipped)
			c = &t->skipped;
		c->files++;
		c->bytes += o->size;
	}
	for (size_t k = 0; r->revs && k < r->want->n_revisions; k++)
		t->failed_revs += r->revs[k].error || (r->revs[k].stale && !s->o.allow_stale);
}

static int repo_failed(const struct repo *r, const struct tally *t)
{
	return r->error || t->failed.files || t->failed_revs || t->pending.files || r->git_error;
}

int hfm_sync_repo_finished(struct hfm_sync *s, size_t i)
{
	const struct repo *r = i < s->m->n ? &s->repos[i] : NULL;
	int done = 1;

	if (!s->planned || i >= s->m->n)
		return 0;
	if (s->dry_run)
		return 1;
	if (wants_git(r) && !r->git_done)
		return 0;
	if (s->fetched)
		return 1;
	pthread_mutex_lock(&s->lock);
	for (size_t k = 0; k < r->nobjs && done; k++)
		done = r->objs[k]->state != O_TODO && r->objs[k]->state != O_RUNNING;
	pthread_mutex_unlock(&s->lock);
	return done;
}

int hfm_sync_failed(struct hfm_sync *s)
{
	int failed = atomic_load(&s->stop);
	struct tally t;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->m->n && !failed; i++) {
		tally(&t, s, &s->repos[i]);
		failed = repo_failed(&s->repos[i], &t);
	}
	pthread_mutex_unlock(&s->lock);
	return failed;
}

static void json_count(struct hfm_buf *b, const char *key, const struct count *c)
{
	hfm_buf_printf(b, ",\"%s\":{\"files\":%llu,\"bytes\":%llu", key,
		       (unsigned long long)c->files, (unsigned long long)c->bytes);
}

void hfm_sync_report_json(struct hfm_buf *b, struct hfm_sync *s, size_t i)
{
	const struct repo *r = &s->repos[i];
	struct tally t;

	pthread_mutex_lock(&s->lock);
	tally(&t, s, r);
	hfm_buf_puts(b, "{\"repo\":");
	hfm_buf_json_str(b, r->want->id.name);
	hfm_buf_printf(b, ",\"type\":\"%s\",\"status\":\"%s\"", hfm_repo_type_name(r->want->id.type),
		       repo_failed(r, &t) ? (t.pending.files && !r->error ? "interrupted" : "failed") :
		       r->skipped ? "skipped" : "ok");
	if (s->dry_run)
		hfm_buf_puts(b, ",\"dry_run\":true");
	if (r->error) {
		hfm_buf_puts(b, ",\"error\":");
		hfm_buf_json_str(b, r->error);
	}
	hfm_buf_puts(b, ",\"revisions\":[");
	for (size_t k = 0; r->revs && k < r->want->n_revisions; k++) {
		const struct rev *v = &r->revs[k];
		hfm_buf_puts(b, k ? ",{\"revision\":" : "{\"revision\":");
		hfm_buf_json_str(b, v->name);
		if (v->commit[0])
			hfm_buf_printf(b, ",\"commit\":\"%s\"", v->commit);
		if (v->stale)
			hfm_buf_puts(b, ",\"stale\":true");
		if (v->error) {
			hfm_buf_puts(b, ",\"error\":");
			hfm_buf_json_str(b, v->error);
		} else if (v->list) {
			hfm_buf_printf(b, ",\"files\":%zu,\"bytes\":%llu", v->nfiles,
				       (unsigned long long)v->bytes);
		}
		hfm_buf_putc(b, '}');
	}
	hfm_buf_putc(b, ']');
	json_count(b, s->dry_run ? "to_fetch" : "fetched", &t.fetched);
	if (s->dry_run) {
		hfm_buf_puts(b, ",\"paths\":[");
		int first = 1;
		for (size_t k = 0; k < r->nobjs; k++) {
			const struct obj *o = r->objs[k];
			if (o->owner != r || o->state != O_TODO)
				continue;
			hfm_buf_puts(b, first ? "" : ",");
			hfm_buf_json_str(b, o->e->path);
			first = 0;
		}
		hfm_buf_putc(b, ']');
	}
	hfm_buf_putc(b, '}');
	json_count(b, "present", &t.present);
	hfm_buf_putc(b, '}');
	json_count(b, "failed", &t.failed);
	hfm_buf_puts(b, ",\"errors\":[");
	int first = 1;
	for (size_t k = 0; k < r->nobjs; k++) {
		const struct obj *o = r->objs[k];
		if (o->state != O_FAILED)
			continue;
		hfm_buf_puts(b, first ? "{\"path\":" : ",{\"path\":");
		hfm_buf_json_str(b, o->e->path);
		hfm_buf_printf(b, ",\"oid\":\"%s\",\"error\":", o->oid);
		hfm_buf_json_str(b, o->error ? o->error : "");
		hfm_buf_putc(b, '}');
		first = 0;
	}
	hfm_buf_puts(b, "]}");
	json_count(b, "skipped", &t.skipped);
	if (r->skipped) {
		hfm_buf_puts(b, ",\"why\":");
		hfm_buf_json_str(b, r->skipped);
	}
	hfm_buf_putc(b, '}');
	if (t.pending.files) {
		json_count(b, "not_fetched", &t.pending);
		hfm_buf_putc(b, '}');
	}
	if (r->want->git && !s->dry_run && r->git_done) {
		hfm_buf_puts(b, ",\"git\":{");
		if (r->git_error) {
			hfm_buf_puts(b, "\"error\":");
			hfm_buf_json_str(b, r->git_error);
		} else {
			hfm_buf_puts(b, "\"mirror\":");
			hfm_buf_json_str(b, r->git.path);
			hfm_buf_printf(b, ",\"refs\":%zu,\"objects\":%u,\"bytes\":%llu", r->git.refs,
				       r->git.received_objects,
				       (unsigned long long)r->git.received_bytes);
		}
		hfm_buf_putc(b, '}');
	}
	hfm_buf_putc(b, '}');
	pthread_mutex_unlock(&s->lock);
}

void hfm_sync_report_stale(struct hfm_buf *out, struct hfm_sync *s, const char *prefix)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->m->n; i++) {
		const struct repo *r = &s->repos[i];
		for (size_t k = 0; r->revs && k < r->want->n_revisions; k++)
			if (r->revs[k].stale)
				hfm_buf_printf(out, "%s%s%s@%s: the upstream could not answer; %s is "
					       "the store's commit, not confirmed upstream\n", prefix,
					       hfm_repo_type_prefix(r->want->id.type), r->want->id.name,
					       r->revs[k].name, r->revs[k].commit);
	}
	pthread_mutex_unlock(&s->lock);
}

/* "3 files, 12.0 MiB" */
static void count_text(struct hfm_buf *b, const struct count *c)
{
	char h[24];

	hfm_human_bytes(h, sizeof(h), c->bytes);
	hfm_buf_printf(b, "%llu file%s, %s", (unsigned long long)c->files, c->files == 1 ? "" : "s",
		       h);
}

void hfm_sync_report_text(struct hfm_buf *b, struct hfm_sync *s)
{
	struct tally t;
	struct count fetched = { 0 }, present = { 0 };
	uint64_t failed = 0, skipped = 0, pending = 0;
	size_t failed_repos = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->m->n; i++) {
		const struct repo *r = &s->repos[i];

		tally(&t, s, r);
		hfm_buf_printf(b, "%s%s (%s)%s\n", hfm_repo_type_prefix(r->want->id.type),
			       r->want->id.name, hfm_repo_type_name(r->want->id.type),
			       repo_failed(r, &t) ? ": FAILED" : r->skipped ? ": skipped" : "");
		if (r->error)
			hfm_buf_printf(b, "  error      %s\n", r->error);
		if (r->skipped)
			hfm_buf_printf(b, "  skipped    %s\n", r->skipped);
		for (size_t k = 0; r->revs && k < r->want->n_revisions; k++) {
			const struct rev *v = &r->revs[k];
			hfm_buf_printf(b, "  %-10s ", v->name);
			if (v->error) {
				hfm_buf_printf(b, "failed: %s\n", v->error);
				continue;
			}
			if (!v->list) {
				hfm_buf_puts(b, "not done\n");
				continue;
			}
			hfm_buf_printf(b, "%s  ", v->commit);
			count_text(b, &(struct count){ v->nfiles, v->bytes });
			hfm_buf_puts(b, v->stale ? "; " STALE_WHY "\n" : "\n");
		}
		if (t.skipped.files) {
			hfm_buf_puts(b, "  skipped    ");
			count_text(b, &t.skipped);
			hfm_buf_putc(b, '\n');
		}
		hfm_buf_puts(b, s->dry_run ? "  to fetch   " : "  fetched    ");
		count_text(b, &t.fetched);
		hfm_buf_puts(b, s->dry_run && t.fetched.files ? ":\n" : "\n");
		for (size_t k = 0; s->dry_run && k < r->nobjs; k++) {
			const struct obj *o = r->objs[k];
			char h[24];
			if (o->owner != r || o->state != O_TODO)
				continue;
			hfm_human_bytes(h, sizeof(h), o->size);
			hfm_buf_printf(b, "    %-10s %s\n", h, o->e->path);
		}
		hfm_buf_puts(b, "  present    ");
		count_text(b, &t.present);
		hfm_buf_putc(b, '\n');
		if (t.failed.files) {
			hfm_buf_puts(b, "  failed     ");
			count_text(b, &t.failed);
			hfm_buf_puts(b, ":\n");
			for (size_t k = 0; k < r->nobjs; k++)
				if (r->objs[k]->state == O_FAILED)
					hfm_buf_printf(b, "    %s: %s\n", r->objs[k]->e->path,
						       r->objs[k]->error ? r->objs[k]->error : "");
		}
		if (t.pending.files) {
			hfm_buf_puts(b, "  not fetched ");
			count_text(b, &t.pending);
			hfm_buf_puts(b, " (interrupted)\n");
		}
		if (r->want->git && !s->dry_run && r->git_done) {
			if (r->git_error) {
				hfm_buf_printf(b, "  git        failed: %s\n", r->git_error);
			} else {
				char h[24];
				hfm_human_bytes(h, sizeof(h), r->git.received_bytes);
				hfm_buf_printf(b, "  git        %zu refs, %u objects (%s) received: %s\n",
					       r->git.refs, r->git.received_objects, h, r->git.path);
			}
		}
		fetched.files += t.fetched.files;
		fetched.bytes += t.fetched.bytes;
		present.files += t.present.files;
		present.bytes += t.present.bytes;
		failed += t.failed.files;
		pending += t.pending.files;
		skipped += t.skipped.files;
		failed_repos += repo_failed(r, &t);
	}
	hfm_buf_printf(b, "total: %s ", s->dry_run ? "to fetch" : "fetched");
	count_text(b, &fetched);
	hfm_buf_puts(b, "; present ");
	count_text(b, &present);
	hfm_buf_printf(b, "; %llu failed, %llu skipped", (unsigned long long)failed,
		       (unsigned long long)skipped);
	if (pending)
		hfm_buf_printf(b, ", %llu not fetched (interrupted)", (unsigned long long)pending);
	if (failed_repos)
		hfm_buf_printf(b, "; %zu of %zu repos failed", failed_repos, s->m->n);
	hfm_buf_putc(b, '\n');
	pthread_mutex_unlock(&s->lock);
}
