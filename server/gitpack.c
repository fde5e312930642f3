/* gitpack.c - upload-pack answers as streams (see gitpack.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "hfm/gitpack.h"
#include "hfm/hash.h"

#define RING_SIZE (1u << 20)
#define BAND_BIG (HFM_PKT_PAYLOAD_MAX - 1)   /* side-band-64k and v2: 65515 */
#define BAND_SMALL 999                        /* side-band */
#define READY_PAIRS_MAX 4096                  /* have/want reachability checks per answer */
#define WALK_SLOP 5                           /* as git's limit_list: clock skew */
#define DEFAULT_STREAMS 64
#define OBJECT_CACHE (32 << 20)               /* libgit2's parsed objects, process-wide */

/* ---- a set of object ids, each with flags ---------------------------------- */

struct oidslot {
	git_oid id;
	uint8_t used, flags;
};

struct oidset {
	struct oidslot *v;
	size_t cap, n;                        /* cap: a power of two, or 0 */
};

static size_t oid_hash(const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h;
}

static void oidset_dispose(struct oidset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* The flags of `id`, added (flags 0) when `add`; NULL when absent and not added. */
static uint8_t *oidset_get(struct oidset *s, const git_oid *id, int add)
{
	size_t i, mask;

	if (add && (s->n + 1) * 2 > s->cap) {
		struct oidset big = { 0 };

		big.cap = s->cap ? s->cap * 2 : 1024;
		big.v = hfm_calloc(big.cap, sizeof(*big.v));
		for (i = 0; i < s->cap; i++) {
			if (s->v[i].used) {
				uint8_t *f = oidset_get(&big, &s->v[i].id, 1);
				*f = s->v[i].flags;
			}
		}
		free(s->v);
		*s = big;
	}
	if (!s->cap)
		return NULL;
	mask = s->cap - 1;
	for (i = oid_hash(id) & mask; s->v[i].used; i = (i + 1) & mask)
		if (git_oid_equal(&s->v[i].id, id))
			return &s->v[i].flags;
	if (!add)
		return NULL;
	s->v[i].used = 1;
	git_oid_cpy(&s->v[i].id, id);
	s->v[i].flags = 0;
	s->n++;
	return &s->v[i].flags;
}

static uint8_t oidset_flags(struct oidset *s, const git_oid *id)
{
	uint8_t *f = oidset_get(s, id, 0);

	return f ? *f : 0;
}

/* commit flags */
#define C_QUEUED 0x01      /* in the walk's queue */
#define C_DONE 0x02        /* popped: its parents were queued */
#define C_UNINT 0x04       /* the client has it */
#define C_CUT 0x08         /* treated as having no parents (shallow) */
#define C_RESULT 0x10      /* popped as interesting */
#define C_BOUNDARY 0x20    /* a new shallow commit */
#define C_NOTSHALLOW 0x40  /* within the requested depth */
#define C_CLIENT 0x80      /* a client shallow commit */
/* object flags */
#define O_UNINT 0x01
#define O_ADDED 0x02

/* ---- the pool ---------------------------------------------------------------- */

struct gp_stream;

/* An object to send, and the name libgit2 groups delta candidates by. */
struct pobj {
	git_oid id;
	char name[24];                        /* libgit2 hashes the last 16 characters */
};

struct hfm_gitpack_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;                  /* a turn freed, a worker ended */
	unsigned max_streams, max_busy, threads;
	unsigned nstreams, busy, running;
	struct gp_stream *live;               /* streams whose worker runs */
	pthread_t *zombies;                   /* ended workers to join */
	size_t nzombies;
	uint64_t started, objects, whole;
};

/* ---- a stream ----------------------------------------------------------------- */

struct gp_stream {
	struct hfm_stream base;
	struct hfm_gitpack_pool *pool;
	struct gp_stream *prev, *next;        /* pool->live, under pool->lock */
	char *path;
	struct hfm_upload_req q;

	pthread_mutex_t lock;                 /* everything down to refs */
	pthread_cond_t space, data;
	struct hfm_ring ring;
	struct hfm_waitq readers;
	int started, finished, failed, refs;
	atomic_int cancelled;

	/* the worker's own */
	git_repository *g;
	git_odb *odb;
	struct hfm_buf out;                   /* pkt-lines to emit */
	char *band;                           /* pack bytes to frame */
	size_t band_len, band_max;
	int progress, pack_started;
	struct oidset commits, objs;
	struct hfm_oidv want_commits, want_tags, want_other, common, have_commits;
	struct hfm_oidv shallows, edges, result, starts;
	struct pobj *objects;                 /* what the pack holds, in the order found */
	size_t nobj_cap;
	int ready_known, ready;
	size_t ready_common;
	unsigned nobjects;
	int64_t last_pct;
};

static void stream_unref(struct gp_stream *s);

/* ---- the ring: worker side ------------------------------------------------------ */

/* Wake readers and blocking reads.  Under s->lock; fire the list after unlocking. */
static struct hfm_waitq_node *wake_readers(struct gp_stream *s)
{
	pthread_cond_broadcast(&s->data);
	return hfm_waitq_take(&s->readers);
}

/* Copy n bytes into the ring, waiting for room.  HFM_ERROR once cancelled. */
static int emit(struct gp_stream *s, const char *p, size_t n)
{
	while (n) {
		struct hfm_waitq_node *wake;
		size_t k;

		pthread_mutex_lock(&s->lock);
		while (s->ring.len == s->ring.cap && !atomic_load(&s->cancelled))
			pthread_cond_wait(&s->space, &s->lock);
		if (atomic_load(&s->cancelled)) {
			pthread_mutex_unlock(&s->lock);
			return HFM_ERROR;
		}
		k = hfm_ring_put(&s->ring, p, n);
		wake = wake_readers(s);
		pthread_mutex_unlock(&s->lock);
		hfm_waitq_fire(wake);
		p += k;
		n -= k;
	}
	return 0;
}

/* Emit the staged pkt-lines. */
static int emit_out(struct gp_stream *s)
{
	int rc;

	if (s->out.err)
		return hfm_error_set(s->out.err, "response too large");
	rc = emit(s, s->out.ptr ? s->out.ptr : "", s->out.len);
	hfm_buf_reset(&s->out);
	return rc;
}

static int sideband(const struct gp_stream *s)
{
	return s->q.version == 2 || s->q.sideband;
}

/* A message on side-band 2 (progress), when the client wants them. */
static int say(struct gp_stream *s, const char *fmt, ...) HFM_PRINTF(2, 3);
static int say(struct gp_stream *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!s->progress)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hfm_pkt_band(&s->out, 2, msg, strlen(msg), s->band_max);
	return emit_out(s);
}

/* An error the client shows: an ERR line before the pack, side-band 3 in it. */
static void fail_msg(struct gp_stream *s, const char *msg)
{
	hfm_buf_reset(&s->out);
	if (s->pack_started && sideband(s)) {
		char *m = hfm_asprintf("error: %s\n", msg);

		hfm_pkt_band(&s->out, 3, m, strlen(m), s->band_max);
		free(m);
	} else if (!s->pack_started) {
		hfm_pkt_printf(&s->out, "ERR %s\n", msg);
	}
	emit_out(s);
}

/* Frame the staged pack bytes on side-band 1 (or as they are, without). */
static int band_flush(struct gp_stream *s)
{
	int rc;

	if (!s->band_len)
		return 0;
	if (sideband(s)) {
		hfm_pkt_band(&s->out, 1, s->band, s->band_len, s->band_max);
		s->band_len = 0;
		return emit_out(s);
	}
	rc = emit(s, s->band, s->band_len);
	s->band_len = 0;
	return rc;
}

static int pack_cb(void *buf, size_t size, void *payload)
{
	struct gp_stream *s = payload;
	const char *p = buf;

	s->pack_started = 1;
	while (size) {
		size_t k = HFM_MIN(size, s->band_max - s->band_len);

		memcpy(s->band + s->band_len, p, k);
		s->band_len += k;
		p += k;
		size -= k;
		if (s->band_len == s->band_max && band_flush(s))
			return -1;
	}
	return atomic_load(&s->cancelled) ? -1 : 0;
}

static int progress_cb(int stage, uint32_t current, uint32_t total, void *payload)
{
	struct gp_stream *s = payload;

	if (atomic_load(&s->cancelled))
		return -1;
	if (stage != GIT_PACKBUILDER_DELTAFICATION || !total)
		return 0;
	int64_t pct = (int64_t)current * 100 / total;
	if (pct == s->last_pct && current != total)
		return 0;
	s->last_pct = pct;
	if (say(s, "Compressing objects: %3d%% (%u/%u)%s", (int)pct, current, total,
		current == total ? ", done.\n" : "\r"))
		return -1;
	return 0;
}

/* ---- the repository ------------------------------------------------------------ */

static int git_err(const char *what)
{
	const git_error *e = git_error_last();

	return hfm_error_set(HFM_EIO, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

static void to_git(git_oid *out, const struct hfm_git_oid *id)
{
	git_oid_fromraw(out, id->id);
}

static void push_git(struct hfm_oidv *v, const git_oid *id)
{
	struct hfm_git_oid raw;

	memcpy(raw.id, id->id, 20);
	hfm_oidv_push(v, &raw);
}

static void hex_of(char out[HFM_SHA1_HEX + 1], const struct hfm_git_oid *id)
{
	hfm_hex(out, id->id, 20);
	out[HFM_SHA1_HEX] = '\0';
}

/*
 * Sort the wants: commits to walk from, annotated tags to send with their
 * targets, and trees or blobs wanted on their own.  Unknown: "not our ref".
 */
static int classify_wants(struct gp_stream *s)
{
	size_t i;

	for (i = 0; i < s->q.wants.n; i++) {
		git_object *o = NULL, *t;
		git_oid id;
		char hex[HFM_SHA1_HEX + 1];

		to_git(&id, &s->q.wants.v[i]);
		if (git_object_lookup(&o, s->g, &id, GIT_OBJECT_ANY) < 0) {
			hex_of(hex, &s->q.wants.v[i]);
			return hfm_error_set(HFM_ENOENT, "upload-pack: not our ref %s", hex);
		}
		while (git_object_type(o) == GIT_OBJECT_TAG) {
			push_git(&s->want_tags, git_object_id(o));
			if (git_tag_target(&t, (git_tag *)o) < 0) {
				git_object_free(o);
				return git_err("tag");
			}
			git_object_free(o);
			o = t;
		}
		if (git_object_type(o) == GIT_OBJECT_COMMIT)
			push_git(&s->want_commits, git_object_id(o));
		else
			push_git(&s->want_other, git_object_id(o));
		git_object_free(o);
	}
	return 0;
}

/* The haves we have (common), and of those the commits (tags peeled). */
static void classify_haves(struct gp_stream *s)
{
	size_t i;

	for (i = 0; i < s->q.haves.n; i++) {
		git_object *o = NULL;
		git_oid id;

		to_git(&id, &s->q.haves.v[i]);
		if (!git_odb_exists(s->odb, &id))
			continue;
		hfm_oidv_push(&s->common, &s->q.haves.v[i]);
		if (git_object_lookup(&o, s->g, &id, GIT_OBJECT_ANY) == 0) {
			git_object *c = NULL;

			if (git_object_peel(&c, o, GIT_OBJECT_COMMIT) == 0) {
				push_git(&s->have_commits, git_object_id(c));
				git_object_free(c);
			}
			git_object_free(o);
		}
	}
	for (i = 0; i < s->q.shallows.n; i++) {
		git_commit *c = NULL;
		git_oid id;

		to_git(&id, &s->q.shallows.v[i]);
		if (git_commit_lookup(&c, s->g, &id) == 0) {
			hfm_oidv_push(&s->shallows, &s->q.shallows.v[i]);
			*oidset_get(&s->commits, &id, 1) |= C_CUT | C_CLIENT;
			git_commit_free(c);
		}
	}
	git_error_clear();
}

/*
 * git's ok_to_give_up: every wanted commit descends from a common commit,
 * so the pack can be made now.  Bounded: past READY_PAIRS_MAX checks the
 * answer is "not yet" and the client goes on until it says done.
 */
static int ready(struct gp_stream *s)
{
	size_t i, j, pairs = 0;

	if (s->ready_known && s->ready_common == s->have_commits.n)
		return s->ready;
	s->ready_known = 1;
	s->ready_common = s->have_commits.n;
	s->ready = 0;
	if (!s->have_commits.n || !s->want_commits.n)
		return 0;
	for (i = 0; i < s->want_commits.n; i++) {
		git_oid w;
		int found = 0;

		to_git(&w, &s->want_commits.v[i]);
		for (j = 0; j < s->have_commits.n && !found; j++) {
			git_oid h;

			to_git(&h, &s->have_commits.v[j]);
			if (git_oid_equal(&w, &h))
				found = 1;
			else if (++pairs > READY_PAIRS_MAX)
				return 0;
			else
				found = git_graph_descendant_of(s->g, &w, &h) == 1;
		}
		if (!found)
			return 0;
	}
	s->ready = 1;
	return 1;
}

/* ---- the shallow boundary ---------------------------------------------------------- */

/* The parents of commit `id`; 0 parents for a cut commit, or one whose parents are missing. */
static int parents_of(struct hfm_oidv *out, struct gp_stream *s, const git_oid *id)
{
	git_commit *c = NULL;
	unsigned i, n;

	out->n = 0;
	if (git_commit_lookup(&c, s->g, id) < 0)
		return git_err("commit");
	n = git_commit_parentcount(c);
	for (i = 0; i < n; i++) {
		const git_oid *p = git_commit_parent_id(c, i);

		if (p)
			push_git(out, p);
	}
	git_commit_free(c);
	return 0;
}

static int64_t commit_time(struct gp_stream *s, const git_oid *id)
{
	git_commit *c = NULL;
	int64_t t = 0;

	if (git_commit_lookup(&c, s->g, id) == 0)
		t = (int64_t)git_commit_time(c);
	git_commit_free(c);
	return t;
}

/*
 * Breadth first from the wanted commits: the depth of each commit (the
 * wants are 1) is its shortest distance.  With `stop_at_client`, returns in
 * *found the depth of the nearest client shallow commit (0: none) and marks
 * nothing; otherwise commits at `depth` become the boundary and those above
 * it are within the depth.
 */
static int bfs_depth(struct gp_stream *s, int depth, int stop_at_client, int *found)
{
	struct oidset seen = { 0 };
	struct hfm_oidv queue = { 0 }, parents = { 0 };
	int *d = NULL;
	size_t head = 0, i, capd = 0;
	int rc = 0;

	for (i = 0; i < s->want_commits.n; i++) {
		git_oid id;
		uint8_t *f;

		to_git(&id, &s->want_commits.v[i]);
		f = oidset_get(&seen, &id, 1);
		if (*f)
			continue;
		*f = 1;
		hfm_oidv_push(&queue, &s->want_commits.v[i]);
		if (queue.n > capd) {
			capd = queue.cap;
			d = hfm_realloc(d, capd * sizeof(*d));
		}
		d[queue.n - 1] = 1;
	}
	while (head < queue.n && !rc) {
		git_oid id;
		int cd = d[head];

		to_git(&id, &queue.v[head++]);
		if (atomic_load(&s->cancelled)) {
			rc = HFM_ERROR;
			break;
		}
		if (stop_at_client) {
			if (oidset_flags(&s->commits, &id) & C_CLIENT) {
				*found = cd;
				break;
			}
		} else if (cd >= depth) {
			*oidset_get(&s->commits, &id, 1) |= C_BOUNDARY | C_CUT;
			continue;
		} else {
			*oidset_get(&s->commits, &id, 1) |= C_NOTSHALLOW;
		}
		if ((rc = parents_of(&parents, s, &id)))
			break;
		for (i = 0; i < parents.n; i++) {
			git_oid p;
			uint8_t *f;

			to_git(&p, &parents.v[i]);
			if (!git_odb_exists(s->odb, &p)) {
				/* a parent this repository lacks: the commit is a boundary */
				if (!stop_at_client)
					*oidset_get(&s->commits, &id, 1) |= C_BOUNDARY | C_CUT;
				continue;
			}
			f = oidset_get(&seen, &p, 1);
			if (*f)
				continue;
			*f = 1;
			hfm_oidv_push(&queue, &parents.v[i]);
			if (queue.n > capd) {
				capd = queue.cap;
				d = hfm_realloc(d, capd * sizeof(*d));
			}
			d[queue.n - 1] = cd + 1;
		}
	}
	oidset_dispose(&seen);
	hfm_oidv_dispose(&queue);
	hfm_oidv_dispose(&parents);
	free(d);
	return rc;
}

/* deepen-since: the commits reachable from the wants through commits no older than T. */
static int bfs_since(struct gp_stream *s, int64_t since)
{
	struct oidset in = { 0 };
	struct hfm_oidv queue = { 0 }, parents = { 0 };
	size_t head = 0, i;
	int rc = 0;

	for (i = 0; i < s->want_commits.n; i++) {
		git_oid id;

		to_git(&id, &s->want_commits.v[i]);
		if (commit_time(s, &id) >= since && !*oidset_get(&in, &id, 1)) {
			*oidset_get(&in, &id, 1) = 1;
			hfm_oidv_push(&queue, &s->want_commits.v[i]);
		}
	}
	if (!queue.n)
		rc = hfm_error_set(HFM_EINVAL, "no commits selected for shallow requests");
	while (head < queue.n && !rc) {
		git_oid id;
		int cut = 0;

		to_git(&id, &queue.v[head++]);
		if ((rc = parents_of(&parents, s, &id)))
			break;
		for (i = 0; i < parents.n; i++) {
			git_oid p;
			uint8_t *f;

			to_git(&p, &parents.v[i]);
			if (!git_odb_exists(s->odb, &p) || commit_time(s, &p) < since) {
				cut = 1;
				continue;
			}
			f = oidset_get(&in, &p, 1);
			if (!*f) {
				*f = 1;
				hfm_oidv_push(&queue, &parents.v[i]);
			}
		}
		*oidset_get(&s->commits, &id, 1) |= cut ? (C_BOUNDARY | C_CUT) : C_NOTSHALLOW;
	}
	oidset_dispose(&in);
	hfm_oidv_dispose(&queue);
	hfm_oidv_dispose(&parents);
	return rc;
}

/*
 * The shallow/unshallow lines for this request into s->out, and the walk's
 * cuts: the new boundary and the client's shallow commits have no parents
 * for the walk (as git registers both as shallow); the parents of a client
 * shallow commit the new depth reaches past are wanted.
 */
static int shallow_lines(struct gp_stream *s)
{
	struct hfm_oidv parents = { 0 };
	size_t i, k;
	int rc = 0, depth = s->q.depth;

	if (depth && s->q.deepen_relative && s->shallows.n) {
		int cur = 0;

		if ((rc = bfs_depth(s, 0, 1, &cur)))
			return rc;
		if (!cur)
			return 0;
		depth += cur;
	}
	if (depth)
		rc = bfs_depth(s, depth, 0, NULL);
	else if (s->q.deepen_since)
		rc = bfs_since(s, s->q.deepen_since);
	if (rc)
		return rc;
	for (i = 0; i < s->commits.cap; i++) {
		struct oidslot *o = &s->commits.v[i];
		char hex[HFM_SHA1_HEX + 1];

		if (!o->used || (o->flags & (C_BOUNDARY | C_CLIENT | C_NOTSHALLOW)) != C_BOUNDARY)
			continue;
		git_oid_tostr(hex, sizeof(hex), &o->id);
		hfm_pkt_printf(&s->out, "shallow %s\n", hex);
	}
	for (i = 0; i < s->shallows.n && !rc; i++) {
		git_oid id;
		char hex[HFM_SHA1_HEX + 1];

		to_git(&id, &s->shallows.v[i]);
		if (!(oidset_flags(&s->commits, &id) & C_NOTSHALLOW))
			continue;
		hex_of(hex, &s->shallows.v[i]);
		hfm_pkt_printf(&s->out, "unshallow %s\n", hex);
		/* the client has it and its tree; its parents are what it lacks */
		push_git(&s->edges, &id);
		if ((rc = parents_of(&parents, s, &id)))
			break;
		for (k = 0; k < parents.n; k++)
			hfm_oidv_push(&s->starts, &parents.v[k]);
	}
	hfm_oidv_dispose(&parents);
	return rc;
}

/* ---- the walk ------------------------------------------------------------------------- */

struct qitem {
	git_oid id;
	int64_t time;
};

struct cqueue {
	struct qitem *v;
	size_t n, cap;
	size_t interesting;                   /* queued items without C_UNINT */
};

static void cq_push(struct cqueue *q, const git_oid *id, int64_t t)
{
	size_t i;

	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->v = hfm_realloc(q->v, q->cap * sizeof(*q->v));
	}
	i = q->n++;
	while (i && q->v[(i - 1) / 2].time < t) {
		q->v[i] = q->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	git_oid_cpy(&q->v[i].id, id);
	q->v[i].time = t;
}

static struct qitem cq_pop(struct cqueue *q)
{
	struct qitem top = q->v[0], last = q->v[--q->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->v[c + 1].time > q->v[c].time)
			c++;
		if (q->v[c].time <= last.time)
			break;
		q->v[i] = q->v[c];
		i = c;
	}
	if (q->n)
		q->v[i] = last;
	return top;
}

static void enqueue(struct gp_stream *s, struct cqueue *q, const git_oid *id)
{
	uint8_t *f = oidset_get(&s->commits, id, 1);

	if (*f & (C_QUEUED | C_DONE))
		return;
	*f |= C_QUEUED;
	if (!(*f & C_UNINT))
		q->interesting++;
	cq_push(q, id, commit_time(s, id));
}

/*
 * Mark `id` as the client's, and what it reaches through commits already
 * walked (their parents were queued as interesting before this was known).
 */
static int mark_unint(struct gp_stream *s, struct cqueue *q, const git_oid *start)
{
	struct hfm_oidv stack = { 0 }, parents = { 0 };
	int rc = 0;

	push_git(&stack, start);
	while (stack.n && !rc) {
		git_oid id;
		uint8_t *f;
		size_t i;

		to_git(&id, &stack.v[--stack.n]);
		f = oidset_get(&s->commits, &id, 1);
		if (*f & C_UNINT)
			continue;
		*f |= C_UNINT;
		if ((*f & C_QUEUED) && !(*f & C_DONE))
			q->interesting--;
		if (!(*f & C_DONE) || (*f & C_CUT))
			continue;
		if ((rc = parents_of(&parents, s, &id)))
			break;
		for (i = 0; i < parents.n; i++)
			hfm_oidv_push(&stack, &parents.v[i]);
	}
	hfm_oidv_dispose(&stack);
	hfm_oidv_dispose(&parents);
	return rc;
}

/*
 * The commits to send, newest first: reachable from the wants (and the
 * unshallowed commits' parents), not from the haves, never through a cut.
 * Like git's limit_list, the walk ends once only the client's commits are
 * queued (a few more steps for clock skew), so a fetch of one new commit
 * does not read the whole history.
 */
static int walk(struct gp_stream *s)
{
	struct cqueue q = { 0 };
	struct hfm_oidv parents = { 0 }, order = { 0 };
	size_t i;
	int rc = 0, slop = WALK_SLOP;

	for (i = 0; i < s->have_commits.n && !rc; i++) {
		git_oid id;

		to_git(&id, &s->have_commits.v[i]);
		*oidset_get(&s->commits, &id, 1) |= C_UNINT;
		enqueue(s, &q, &id);
	}
	for (i = 0; i < s->want_commits.n + s->starts.n; i++) {
		git_oid id;

		to_git(&id, i < s->want_commits.n ? &s->want_commits.v[i]
						   : &s->starts.v[i - s->want_commits.n]);
		enqueue(s, &q, &id);
	}
	while (q.n && !rc) {
		struct qitem it;
		uint8_t *f, flags;

		if (atomic_load(&s->cancelled)) {
			rc = HFM_ERROR;
			break;
		}
		if (!q.interesting) {
			if (--slop == 0)
				break;
		} else {
			slop = WALK_SLOP;
		}
		it = cq_pop(&q);
		f = oidset_get(&s->commits, &it.id, 1);
		if (!(*f & C_UNINT))
			q.interesting--;
		*f = (uint8_t)((*f & ~C_QUEUED) | C_DONE);
		if (!(*f & C_UNINT)) {
			*f |= C_RESULT;
			push_git(&order, &it.id);
		}
		flags = *f;              /* f dangles once the set grows below */
		if (flags & C_CUT)
			continue;
		if ((rc = parents_of(&parents, s, &it.id)))
			break;
		for (i = 0; i < parents.n && !rc; i++) {
			git_oid p;

			to_git(&p, &parents.v[i]);
			if (!git_odb_exists(s->odb, &p))
				continue;    /* history this repository does not have */
			if (flags & C_UNINT)
				rc = mark_unint(s, &q, &p);
			enqueue(s, &q, &p);
		}
	}
	/* the result, and its edges: the client's commits it has as parents */
	for (i = 0; i < order.n && !rc; i++) {
		git_oid id;
		size_t k;

		to_git(&id, &order.v[i]);
		if (oidset_flags(&s->commits, &id) & C_UNINT)
			continue;
		hfm_oidv_push(&s->result, &order.v[i]);
		if ((oidset_flags(&s->commits, &id) & C_CUT) || !s->have_commits.n)
			continue;
		if ((rc = parents_of(&parents, s, &id)))
			break;
		for (k = 0; k < parents.n; k++) {
			git_oid p;
			uint8_t *pf;

			to_git(&p, &parents.v[k]);
			pf = oidset_get(&s->commits, &p, 0);
			if (pf && (*pf & C_UNINT) && !(*pf & C_RESULT)) {
				*pf |= C_RESULT;    /* listed as an edge once */
				hfm_oidv_push(&s->edges, &parents.v[k]);
			}
		}
	}
	for (i = 0; i < s->have_commits.n; i++)
		hfm_oidv_push(&s->edges, &s->have_commits.v[i]);
	free(q.v);
	hfm_oidv_dispose(&parents);
	hfm_oidv_dispose(&order);
	return rc;
}

/* ---- objects --------------------------------------------------------------------- */

/* Everything in tree `id` is the client's. */
static int mark_tree(struct gp_stream *s, const git_oid *id)
{
	uint8_t *f = oidset_get(&s->objs, id, 1);
	git_tree *t = NULL;
	size_t i, n;
	int rc = 0;

	if (*f & O_UNINT)
		return 0;
	*f |= O_UNINT;
	if (git_tree_lookup(&t, s->g, id) < 0)
		return git_err("tree");
	n = git_tree_entrycount(t);
	for (i = 0; i < n && !rc; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			rc = mark_tree(s, git_tree_entry_id(e));
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
			*oidset_get(&s->objs, git_tree_entry_id(e), 1) |= O_UNINT;
	}
	git_tree_free(t);
	return rc;
}

static int add(struct gp_stream *s, const git_oid *id, const char *name)
{
	uint8_t *f = oidset_get(&s->objs, id, 1);
	struct pobj *o;
	size_t n;

	if (*f & (O_UNINT | O_ADDED))
		return 0;
	*f |= O_ADDED;
	if (s->nobjects == s->nobj_cap) {
		s->nobj_cap = s->nobj_cap ? s->nobj_cap * 2 : 1024;
		s->objects = hfm_realloc(s->objects, s->nobj_cap * sizeof(*s->objects));
	}
	o = &s->objects[s->nobjects++];
	git_oid_cpy(&o->id, id);
	n = name ? strlen(name) : 0;
	snprintf(o->name, sizeof(o->name), "%s", n > 16 ? name + n - 16 : name ? name : "");
	return 0;
}

/* Tree `id` and what it holds that the client lacks (submodules are not ours). */
static int add_tree(struct gp_stream *s, const git_oid *id, const char *name)
{
	uint8_t *f = oidset_get(&s->objs, id, 1);
	git_tree *t = NULL;
	size_t i, n;
	int rc;

	if (*f & (O_UNINT | O_ADDED))
		return 0;
	if ((rc = add(s, id, name)))
		return rc;
	if (git_tree_lookup(&t, s->g, id) < 0)
		return git_err("tree");
	n = git_tree_entrycount(t);
	for (i = 0; i < n && !rc; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			rc = add_tree(s, git_tree_entry_id(e), git_tree_entry_name(e));
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
			rc = add(s, git_tree_entry_id(e), git_tree_entry_name(e));
	}
	git_tree_free(t);
	if (!rc && atomic_load(&s->cancelled))
		rc = HFM_ERROR;
	return rc;
}

static int add_object(struct gp_stream *s, const git_oid *id)
{
	git_object *o = NULL;
	int rc;

	if (git_object_lookup(&o, s->g, id, GIT_OBJECT_ANY) < 0)
		return git_err("object");
	if (git_object_type(o) == GIT_OBJECT_TREE)
		rc = add_tree(s, id, NULL);
	else
		rc = add(s, id, NULL);
	git_object_free(o);
	return rc;
}

struct tag_walk {
	struct gp_stream *s;
	int rc;
};

/* include-tag: an annotated tag whose commit is being sent goes along. */
static int tag_cb(const char *name, git_oid *id, void *payload)
{
	struct tag_walk *w = payload;
	struct gp_stream *s = w->s;
	git_object *o = NULL, *t = NULL;
	struct hfm_oidv chain = { 0 };
	size_t i;

	(void)name;
	if (git_object_lookup(&o, s->g, id, GIT_OBJECT_ANY) < 0) {
		git_error_clear();
		return 0;
	}
	while (git_object_type(o) == GIT_OBJECT_TAG && chain.n < 16) {
		push_git(&chain, git_object_id(o));
		if (git_tag_target(&t, (git_tag *)o) < 0)
			break;
		git_object_free(o);
		o = t;
		t = NULL;
	}
	if (chain.n && git_object_type(o) == GIT_OBJECT_COMMIT &&
	    (oidset_flags(&s->commits, git_object_id(o)) & (C_RESULT | C_UNINT)) == C_RESULT) {
		for (i = 0; i < chain.n && !w->rc; i++) {
			git_oid tid;

			to_git(&tid, &chain.v[i]);
			w->rc = add(s, &tid, NULL);
		}
	}
	git_object_free(o);
	hfm_oidv_dispose(&chain);
	git_error_clear();
	return w->rc ? -1 : 0;
}

/*
 * The repository's one pack file, when it holds exactly the `n` objects of
 * this answer: nothing else is stored (no loose object, no alternates), so
 * the n distinct objects found are all of it.  Then the pack, whose
 * checksum covers its whole content, can be sent as it is -- what a clone
 * of a mirror made with `git clone --mirror` is, unless the clone leaves
 * out some refs (the pull requests).  NULL otherwise.
 */
static char *whole_pack(struct gp_stream *s, size_t n)
{
	char *objdir = hfm_asprintf("%sobjects", git_repository_commondir(s->g));
	char *dir = NULL, *pack = NULL, *path;
	struct dirent *de;
	unsigned char hdr[8 + 256 * 4];
	DIR *d = NULL;
	int fd, packs = 0;

	path = hfm_asprintf("%s/info/alternates", objdir);
	if (access(path, F_OK) == 0)
		goto out;
	if (!(d = opendir(objdir)))
		goto out;
	while ((de = readdir(d))) {
		DIR *sub;
		struct dirent *e;

		if (strlen(de->d_name) != 2 || !hfm_is_hex(de->d_name, 2))
			continue;
		free(dir);
		dir = hfm_asprintf("%s/%s", objdir, de->d_name);
		if (!(sub = opendir(dir)))
			goto out;
		while ((e = readdir(sub)) && e->d_name[0] == '.')
			;
		closedir(sub);
		if (e)
			goto out;            /* a loose object */
	}
	closedir(d);
	free(dir);
	dir = hfm_asprintf("%s/pack", objdir);
	if (!(d = opendir(dir)))
		goto out;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l > 9 && !strcmp(de->d_name + l - 9, ".promisor"))
			packs = 2;           /* a partial clone lacks objects */
		if (l <= 5 || strcmp(de->d_name + l - 5, ".pack"))
			continue;
		if (packs++)
			continue;
		free(pack);
		pack = hfm_asprintf("%s/%.*s", dir, (int)(l - 5), de->d_name);
	}
	if (packs != 1)
		goto fail;
	free(path);
	path = hfm_asprintf("%s.idx", pack);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, "\377tOc\0\0\0\2", 8) ||
	    ((size_t)hdr[8 + 255 * 4] << 24 | (size_t)hdr[8 + 255 * 4 + 1] << 16 |
	     (size_t)hdr[8 + 255 * 4 + 2] << 8 | hdr[8 + 255 * 4 + 3]) != n) {
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	free(path);
	path = hfm_asprintf("%s.pack", pack);
	free(pack);
	pack = NULL;
	goto out_path;
fail:
	free(pack);
	pack = NULL;
out:
	free(path);
	path = NULL;
out_path:
	if (d)
		closedir(d);
	free(dir);
	free(objdir);
	return path;
}

/* Send pack file `path` as it is. */
static int send_file(struct gp_stream *s, const char *path)
{
	char *buf = hfm_malloc(RING_SIZE / 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t k;

	if (fd < 0) {
		free(buf);
		return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	}
	while (!rc && (k = read(fd, buf, RING_SIZE / 2)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
		else if (pack_cb(buf, (size_t)k, s))
			rc = HFM_ERROR;
	}
	close(fd);
	free(buf);
	return rc ? rc : band_flush(s);
}

static int packbuild(struct gp_stream *s)
{
	git_packbuilder *pb = NULL;
	size_t i;
	int rc = 0;

	if (git_packbuilder_new(&pb, s->g) < 0)
		return git_err("pack");
	git_packbuilder_set_threads(pb, s->pool->threads);
	git_packbuilder_set_callbacks(pb, progress_cb, s);
	for (i = 0; i < s->nobjects && !rc; i++) {
		if (git_packbuilder_insert(pb, &s->objects[i].id,
					   s->objects[i].name[0] ? s->objects[i].name : NULL) < 0)
			rc = git_err("pack");
		else if (atomic_load(&s->cancelled))
			rc = HFM_ERROR;
	}
	if (!rc && git_packbuilder_foreach(pb, pack_cb, s) < 0)
		rc = atomic_load(&s->cancelled) ? HFM_ERROR : git_err("pack");
	if (!rc)
		rc = band_flush(s);
	git_packbuilder_free(pb);
	return rc;
}

static int build_pack(struct gp_stream *s)
{
	char *whole = NULL;
	size_t i;
	int rc;

	if ((rc = walk(s)))
		return rc;
	for (i = 0; i < s->edges.n && !rc; i++) {
		git_commit *c = NULL;
		git_oid id;

		to_git(&id, &s->edges.v[i]);
		if (git_commit_lookup(&c, s->g, &id) < 0) {
			rc = git_err("commit");
			break;
		}
		rc = mark_tree(s, git_commit_tree_id(c));
		git_commit_free(c);
	}
	for (i = 0; i < s->result.n && !rc; i++) {
		git_commit *c = NULL;
		git_oid id;

		to_git(&id, &s->result.v[i]);
		if ((rc = add(s, &id, NULL)))
			break;
		if (git_commit_lookup(&c, s->g, &id) < 0) {
			rc = git_err("commit");
			break;
		}
		rc = add_tree(s, git_commit_tree_id(c), NULL);
		git_commit_free(c);
	}
	for (i = 0; i < s->want_tags.n && !rc; i++) {
		git_oid id;

		to_git(&id, &s->want_tags.v[i]);
		rc = add(s, &id, NULL);
	}
	for (i = 0; i < s->want_other.n && !rc; i++) {
		git_oid id;

		to_git(&id, &s->want_other.v[i]);
		rc = add_object(s, &id);
	}
	if (!rc && s->q.include_tag) {
		struct tag_walk w = { s, 0 };

		git_tag_foreach(s->g, tag_cb, &w);
		rc = w.rc;
	}
	if (!rc)
		rc = say(s, "Enumerating objects: %u, done.\n", s->nobjects);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->pool->lock);
	s->pool->objects += s->nobjects;
	pthread_mutex_unlock(&s->pool->lock);
	/* the offsets of a pack's deltas need ofs-delta; no client leaves it out */
	if (s->q.ofs_delta && !s->q.haves.n && !s->shallows.n &&
	    !s->q.depth && !s->q.deepen_since)
		whole = whole_pack(s, s->nobjects);
	if (whole) {
		pthread_mutex_lock(&s->pool->lock);
		s->pool->whole++;
		pthread_mutex_unlock(&s->pool->lock);
		rc = send_file(s, whole);
		free(whole);
		return rc;
	}
	return packbuild(s);
}

/* ---- the answers --------------------------------------------------------------- */

/* After the preamble: the pack, framed, and the final flush. */
static int send_pack(struct gp_stream *s)
{
	int rc;

	if ((rc = emit_out(s)) || (rc = build_pack(s)))
		return rc;
	if (sideband(s)) {
		hfm_pkt_flush(&s->out);
		rc = emit_out(s);
	}
	return rc;
}

/*
 * v0/v1 stateless (every request repeats the wants): the shallow section,
 * then ACK/NAK for this round's haves as upload-pack does, and the pack
 * once the client said done (or, with no-done, once we said ready).
 */
static int answer_v0(struct gp_stream *s)
{
	char last[HFM_SHA1_HEX + 1] = "";
	int rc, got_common = 0, got_other = 0, sent_ready = 0, acked = 0;
	size_t i;

	if (s->q.depth || s->q.deepen_since) {
		if ((rc = shallow_lines(s)))
			return rc;
		hfm_pkt_flush(&s->out);
	}
	if (!s->q.wants.n || !s->q.negotiating)
		return emit_out(s);      /* e.g. the first round of a shallow fetch: the list only */
	for (i = 0; i < s->q.haves.n; i++) {
		git_oid id;
		char hex[HFM_SHA1_HEX + 1];

		to_git(&id, &s->q.haves.v[i]);
		hex_of(hex, &s->q.haves.v[i]);
		if (git_odb_exists(s->odb, &id)) {
			got_common = 1;
			memcpy(last, hex, sizeof(last));
			if (s->q.multi_ack == 2)
				hfm_pkt_printf(&s->out, "ACK %s common\n", hex);
			else if (s->q.multi_ack == 1)
				hfm_pkt_printf(&s->out, "ACK %s continue\n", hex);
			else if (!acked++)
				hfm_pkt_printf(&s->out, "ACK %s\n", hex);
		} else {
			got_other = 1;
			if (s->q.multi_ack && ready(s)) {
				sent_ready = s->q.multi_ack == 2;
				hfm_pkt_printf(&s->out, "ACK %s %s\n", hex,
					       sent_ready ? "ready" : "continue");
			}
		}
	}
	if (!s->q.done) {
		if (s->q.multi_ack == 2 && got_common && !got_other && ready(s)) {
			sent_ready = 1;
			hfm_pkt_printf(&s->out, "ACK %s ready\n", last);
		}
		if (!s->common.n || s->q.multi_ack)
			hfm_pkt_printf(&s->out, "NAK\n");
		if (!(s->q.no_done && sent_ready))
			return emit_out(s);
		hfm_pkt_printf(&s->out, "ACK %s\n", last);
	} else if (s->common.n) {
		if (s->q.multi_ack)
			hfm_pkt_printf(&s->out, "ACK %s\n", last);
	} else {
		hfm_pkt_printf(&s->out, "NAK\n");
	}
	return send_pack(s);
}

/* v2 fetch: acknowledgments while negotiating; shallow-info and the packfile once ready. */
static int answer_fetch(struct gp_stream *s)
{
	size_t i;
	int rc;

	if (!s->q.wants.n && !s->q.wait_for_done) {
		hfm_pkt_flush(&s->out);
		return emit_out(s);
	}
	if (s->q.haves.n && !s->q.done) {
		hfm_pkt_printf(&s->out, "acknowledgments\n");
		if (!s->common.n)
			hfm_pkt_printf(&s->out, "NAK\n");
		for (i = 0; i < s->common.n; i++) {
			char hex[HFM_SHA1_HEX + 1];

			hex_of(hex, &s->common.v[i]);
			hfm_pkt_printf(&s->out, "ACK %s\n", hex);
		}
		if (s->q.wait_for_done || !ready(s)) {
			hfm_pkt_flush(&s->out);
			return emit_out(s);
		}
		hfm_pkt_printf(&s->out, "ready\n");
		hfm_pkt_delim(&s->out);
	}
	if (s->q.depth || s->q.deepen_since || s->q.shallows.n) {
		hfm_pkt_printf(&s->out, "shallow-info\n");
		if ((rc = shallow_lines(s)))
			return rc;
		hfm_pkt_delim(&s->out);
	}
	hfm_pkt_printf(&s->out, "packfile\n");
	return send_pack(s);
}

static int answer(struct gp_stream *s)
{
	int rc;

	if (git_repository_open_ext(&s->g, s->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_repository_odb(&s->odb, s->g) < 0)
		return git_err("cannot open the repository");
	if ((rc = classify_wants(s)))
		return rc;
	classify_haves(s);
	if (s->q.version == 2)
		return answer_fetch(s);
	return answer_v0(s);
}

/* ---- the worker ------------------------------------------------------------------ */

/* Wait for one of the pool's busy turns; HFM_ERROR when cancelled meanwhile. */
static int take_turn(struct gp_stream *s)
{
	struct hfm_gitpack_pool *p = s->pool;

	pthread_mutex_lock(&p->lock);
	while (p->busy >= p->max_busy && !atomic_load(&s->cancelled))
		pthread_cond_wait(&p->cond, &p->lock);
	if (atomic_load(&s->cancelled)) {
		pthread_mutex_unlock(&p->lock);
		return HFM_ERROR;
	}
	p->busy++;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void give_turn(struct hfm_gitpack_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->busy--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	struct gp_stream *s = arg;
	struct hfm_gitpack_pool *p = s->pool;
	struct hfm_waitq_node *wake;
	int rc;

	if ((rc = take_turn(s)) == 0) {
		rc = answer(s);
		if (rc && rc != HFM_ERROR && !atomic_load(&s->cancelled))
			fail_msg(s, hfm_error_last());
		give_turn(p);
	}
	git_odb_free(s->odb);
	git_repository_free(s->g);
	s->odb = NULL;
	s->g = NULL;
	git_error_clear();
	oidset_dispose(&s->commits);
	oidset_dispose(&s->objs);
#ifdef __GLIBC__
	/* a pack's hundreds of MiB go back to the system, not to malloc's arenas */
	malloc_trim(0);
#endif

	pthread_mutex_lock(&s->lock);
	s->finished = 1;
	/* an error after bytes went out must cut the response short */
	s->failed = rc && s->pack_started ? HFM_EIO : 0;
	if (rc == HFM_ERROR)
		s->failed = HFM_EIO;
	wake = wake_readers(s);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);

	pthread_mutex_lock(&p->lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		p->live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	p->running--;
	p->zombies = hfm_realloc(p->zombies, (p->nzombies + 1) * sizeof(*p->zombies));
	p->zombies[p->nzombies++] = pthread_self();
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	stream_unref(s);
	return NULL;
}

/* Join workers that ended.  Under p->lock. */
static void reap(struct hfm_gitpack_pool *p)
{
	while (p->nzombies)
		pthread_join(p->zombies[--p->nzombies], NULL);
}

/* ---- the stream ops ---------------------------------------------------------------- */

static void stream_free_now(struct gp_stream *s)
{
	struct hfm_gitpack_pool *p = s->pool;

	hfm_upload_req_dispose(&s->q);
	hfm_oidv_dispose(&s->want_commits);
	hfm_oidv_dispose(&s->want_tags);
	hfm_oidv_dispose(&s->want_other);
	hfm_oidv_dispose(&s->common);
	hfm_oidv_dispose(&s->have_commits);
	hfm_oidv_dispose(&s->shallows);
	hfm_oidv_dispose(&s->edges);
	hfm_oidv_dispose(&s->result);
	hfm_oidv_dispose(&s->starts);
	oidset_dispose(&s->commits);
	oidset_dispose(&s->objs);
	free(s->objects);
	hfm_buf_dispose(&s->out);
	hfm_waitq_fire(hfm_waitq_take(&s->readers));
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->space);
	pthread_cond_destroy(&s->data);
	free(s->band);
	hfm_ring_dispose(&s->ring);
	free(s->path);
	free(s);
	pthread_mutex_lock(&p->lock);
	p->nstreams--;
	pthread_mutex_unlock(&p->lock);
}

static void stream_unref(struct gp_stream *s)
{
	int last;

	pthread_mutex_lock(&s->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		stream_free_now(s);
}

/*
 * Start the worker (the caller set s->started and took the worker's
 * reference under s->lock, and holds no lock now).
 */
static int start_worker(struct gp_stream *s)
{
	struct hfm_gitpack_pool *p = s->pool;
	pthread_t th;
	int err;

	pthread_mutex_lock(&p->lock);
	reap(p);
	s->next = p->live;
	s->prev = NULL;
	if (p->live)
		p->live->prev = s;
	p->live = s;
	p->running++;
	p->started++;
	err = pthread_create(&th, NULL, worker, s);
	if (err) {
		p->live = s->next;
		if (s->next)
			s->next->prev = NULL;
		p->running--;
	}
	pthread_mutex_unlock(&p->lock);
	if (!err)
		return 0;
	pthread_mutex_lock(&s->lock);
	s->refs--;
	s->finished = 1;
	s->failed = HFM_EIO;
	pthread_mutex_unlock(&s->lock);
	return hfm_error_set(HFM_EIO, "cannot start a pack worker");
}

static ssize_t gp_read(struct hfm_stream *base, uint64_t pos, uint64_t end, char *buf,
		       size_t max, struct hfm_waiter *w)
{
	struct gp_stream *s = (struct gp_stream *)base;
	ssize_t rc;

	(void)pos;
	(void)end;
	pthread_mutex_lock(&s->lock);
	if (!s->started) {
		s->started = 1;
		s->refs++;               /* the worker's */
		pthread_mutex_unlock(&s->lock);
		if (start_worker(s))
			return HFM_EIO;
		pthread_mutex_lock(&s->lock);
	}
	for (;;) {
		if (s->ring.len) {
			rc = (ssize_t)hfm_ring_get(&s->ring, buf, max);
			pthread_cond_signal(&s->space);
			break;
		}
		if (s->finished) {
			rc = s->failed;
			break;
		}
		if (w) {
			hfm_waitq_add(&s->readers, w);
			rc = HFM_EAGAIN;
			break;
		}
		pthread_cond_wait(&s->data, &s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void gp_free(struct hfm_stream *base)
{
	struct gp_stream *s = (struct gp_stream *)base;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&s->lock);
	atomic_store(&s->cancelled, 1);
	pthread_cond_broadcast(&s->space);
	wake = hfm_waitq_take(&s->readers);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	/* a worker waiting for its turn must see the cancel too */
	pthread_mutex_lock(&s->pool->lock);
	pthread_cond_broadcast(&s->pool->cond);
	pthread_mutex_unlock(&s->pool->lock);
	stream_unref(s);
}

static const struct hfm_stream_ops gp_ops = {
	.read = gp_read,
	.prime = NULL,
	.free = gp_free,
};

static void copy_oids(struct hfm_oidv *dst, const struct hfm_oidv *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->n)
		return;
	dst->v = hfm_malloc(src->n * sizeof(*dst->v));
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = dst->cap = src->n;
}

int hfm_gitpack_start(struct hfm_stream **out, struct hfm_gitpack_pool *p, const char *git_path,
		      const struct hfm_upload_req *q)
{
	struct gp_stream *s;

	pthread_mutex_lock(&p->lock);
	reap(p);
	if (p->nstreams >= p->max_streams) {
		pthread_mutex_unlock(&p->lock);
		return hfm_error_set(HFM_EUNAVAIL, "too many git fetches at once; try again");
	}
	p->nstreams++;
	pthread_mutex_unlock(&p->lock);

	s = hfm_calloc(1, sizeof(*s));
	s->base.ops = &gp_ops;
	s->pool = p;
	s->path = hfm_strdup(git_path);
	s->q = *q;
	copy_oids(&s->q.wants, &q->wants);
	copy_oids(&s->q.haves, &q->haves);
	copy_oids(&s->q.shallows, &q->shallows);
	s->q.prefixes = NULL;
	s->q.nprefixes = 0;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->space, NULL);
	pthread_cond_init(&s->data, NULL);
	hfm_ring_init(&s->ring, RING_SIZE);
	s->refs = 1;
	atomic_init(&s->cancelled, 0);
	hfm_buf_init(&s->out, 16u << 20);
	s->band_max = s->q.version == 2 || s->q.sideband == 2 ? BAND_BIG : BAND_SMALL;
	if (!sideband(s))
		s->band_max = BAND_BIG;
	s->band = hfm_malloc(s->band_max);
	s->progress = sideband(s) && !s->q.no_progress;
	s->last_pct = -1;
	*out = &s->base;
	return 0;
}

/* ---- the pool ------------------------------------------------------------------- */

int hfm_gitpack_pool_new(struct hfm_gitpack_pool **out, unsigned max_streams, unsigned max_busy)
{
	struct hfm_gitpack_pool *p = hfm_calloc(1, sizeof(*p));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (ncpu < 1)
		ncpu = 1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->max_streams = max_streams ? max_streams : DEFAULT_STREAMS;
	p->max_busy = max_busy ? max_busy : (unsigned)ncpu;
	p->threads = (unsigned)ncpu;
	/*
	 * libgit2 keeps parsed trees and commits in a cache of 256 MiB by
	 * default, process-wide; a clone walks every tree of the history and
	 * would fill it (bench/git: 289 MiB peak for 5000 commits, 196 at 32).
	 */
	git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)OBJECT_CACHE);
	*out = p;
	return 0;
}

void hfm_gitpack_pool_free(struct hfm_gitpack_pool *p)
{
	struct gp_stream *s;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (s = p->live; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		atomic_store(&s->cancelled, 1);
		pthread_cond_broadcast(&s->space);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_cond_broadcast(&p->cond);
	while (p->running)
		pthread_cond_wait(&p->cond, &p->lock);
	reap(p);
	pthread_mutex_unlock(&p->lock);
	free(p->zombies);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

void hfm_gitpack_stats(struct hfm_gitpack_stats *out, struct hfm_gitpack_pool *p)
{
	pthread_mutex_lock(&p->lock);
	out->started = p->started;
	out->objects = p->objects;
	out->running = p->running;
	out->whole = p->whole;
	pthread_mutex_unlock(&p->lock);
}
