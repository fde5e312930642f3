/* gitwalk.c - what an upload-pack answer sends (see gitwalk.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/gitwalk.h"
#include "hfm/hash.h"

#define READY_PAIRS_MAX 4096                  /* have/want reachability checks per answer */
#define WALK_SLOP 5                           /* as git's limit_list: clock skew */
#define REPO_SHALLOW_MAX 1000000              /* lines of a repository's shallow file */

/* ---- a set of object ids, each with flags ---------------------------------- */

static size_t oid_hash(const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h;
}

static void oidset_dispose(struct hfm_oidset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* The flags of `id`, added (flags 0) when `add`; NULL when absent and not added. */
static uint8_t *oidset_get(struct hfm_oidset *s, const git_oid *id, int add)
{
	size_t i, mask;

	if (add && (s->n + 1) * 2 > s->cap) {
		struct hfm_oidset big = { 0 };

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

static uint8_t oidset_flags(struct hfm_oidset *s, const git_oid *id)
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

/* ---- the repository ------------------------------------------------------------ */

int hfm_gitwalk_error(const char *what)
{
	const git_error *e = git_error_last();

	return hfm_error_set(HFM_EIO, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
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
static int classify_wants(struct hfm_gitwalk *w)
{
	size_t i;

	for (i = 0; i < w->q->wants.n; i++) {
		git_object *o = NULL, *t;
		git_oid id;
		char hex[HFM_SHA1_HEX + 1];

		hfm_gitwalk_oid(&id, &w->q->wants.v[i]);
		if (git_object_lookup(&o, w->g, &id, GIT_OBJECT_ANY) < 0) {
			hex_of(hex, &w->q->wants.v[i]);
			return hfm_error_set(HFM_ENOENT, "upload-pack: not our ref %s", hex);
		}
		while (git_object_type(o) == GIT_OBJECT_TAG) {
			push_git(&w->want_tags, git_object_id(o));
			if (git_tag_target(&t, (git_tag *)o) < 0) {
				git_object_free(o);
				return hfm_gitwalk_error("tag");
			}
			git_object_free(o);
			o = t;
		}
		if (git_object_type(o) == GIT_OBJECT_COMMIT)
			push_git(&w->want_commits, git_object_id(o));
		else
			push_git(&w->want_other, git_object_id(o));
		git_object_free(o);
	}
	return 0;
}

/* The haves we have (common), and of those the commits (tags peeled). */
static void classify_haves(struct hfm_gitwalk *w)
{
	size_t i;

	for (i = 0; i < w->q->haves.n; i++) {
		git_object *o = NULL;
		git_oid id;

		hfm_gitwalk_oid(&id, &w->q->haves.v[i]);
		if (!git_odb_exists(w->odb, &id))
			continue;
		hfm_oidv_push(&w->common, &w->q->haves.v[i]);
		if (git_object_lookup(&o, w->g, &id, GIT_OBJECT_ANY) == 0) {
			git_object *c = NULL;

			if (git_object_peel(&c, o, GIT_OBJECT_COMMIT) == 0) {
				push_git(&w->have_commits, git_object_id(c));
				git_object_free(c);
			}
			git_object_free(o);
		}
	}
	for (i = 0; i < w->q->shallows.n; i++) {
		git_commit *c = NULL;
		git_oid id;

		hfm_gitwalk_oid(&id, &w->q->shallows.v[i]);
		if (git_commit_lookup(&c, w->g, &id) == 0) {
			hfm_oidv_push(&w->shallows, &w->q->shallows.v[i]);
			*oidset_get(&w->commits, &id, 1) |= C_CUT | C_CLIENT;
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
int hfm_gitwalk_ready(struct hfm_gitwalk *w)
{
	size_t i, j, pairs = 0;

	if (w->ready_known && w->ready_common == w->have_commits.n)
		return w->ready;
	w->ready_known = 1;
	w->ready_common = w->have_commits.n;
	w->ready = 0;
	if (!w->have_commits.n || !w->want_commits.n)
		return 0;
	for (i = 0; i < w->want_commits.n; i++) {
		git_oid want;
		int found = 0;

		hfm_gitwalk_oid(&want, &w->want_commits.v[i]);
		for (j = 0; j < w->have_commits.n && !found; j++) {
			git_oid h;

			hfm_gitwalk_oid(&h, &w->have_commits.v[j]);
			if (git_oid_equal(&want, &h))
				found = 1;
			else if (++pairs > READY_PAIRS_MAX)
				return 0;
			else
				found = git_graph_descendant_of(w->g, &want, &h) == 1;
		}
		if (!found)
			return 0;
	}
	w->ready = 1;
	return 1;
}

/* ---- the shallow boundary ---------------------------------------------------------- */

/* The parents of commit `id`: none for a shallow root of this repository. */
static int parents_of(struct hfm_oidv *out, struct hfm_gitwalk *w, const git_oid *id)
{
	git_commit *c = NULL;
	unsigned i, n;

	out->n = 0;
	if (oidset_flags(&w->rshallow, id))
		return 0;                    /* a root of a shallow repository */
	if (git_commit_lookup(&c, w->g, id) < 0)
		return hfm_gitwalk_error("commit");
	n = git_commit_parentcount(c);
	for (i = 0; i < n; i++) {
		const git_oid *p = git_commit_parent_id(c, i);

		if (p)
			push_git(out, p);
	}
	git_commit_free(c);
	return 0;
}

static int64_t commit_time(struct hfm_gitwalk *w, const git_oid *id)
{
	git_commit *c = NULL;
	int64_t t = 0;

	if (git_commit_lookup(&c, w->g, id) == 0)
		t = (int64_t)git_commit_time(c);
	git_commit_free(c);
	return t;
}

/* What the breadth-first walk from the wanted commits takes in. */
struct bfs_rule {
	int depth;          /* deepen: commits this far (the wants are 1) are a boundary; 0: no limit */
	int64_t since;      /* deepen-since: commits older than this are left out; 0: none */
	int find_client;    /* deepen-relative: find the nearest client shallow commit, mark nothing */
};

/* Whether commit `id` joins the walk: we have it and it is recent enough. */
static int bfs_keep(struct hfm_gitwalk *w, const struct bfs_rule *r, const git_oid *id)
{
	return git_odb_exists(w->odb, id) && (!r->since || commit_time(w, id) >= r->since);
}

static void bfs_push(struct hfm_oidv *queue, int **d, size_t *capd, const struct hfm_git_oid *id,
		     int depth)
{
	hfm_oidv_push(queue, id);
	if (queue->n > *capd) {
		*capd = queue->cap;
		*d = hfm_realloc(*d, *capd * sizeof(**d));
	}
	(*d)[queue->n - 1] = depth;
}

/*
 * Breadth first from the wanted commits through the commits `r` keeps; a
 * commit's depth is its shortest distance.  A commit with a parent left out
 * (or none, at r->depth: git's get_shallow_commits does the same) is a
 * boundary, the others are within.  With r->find_client, *found is instead
 * the depth of the nearest client shallow commit (0: none), and nothing is
 * marked.
 */
static int bfs(struct hfm_gitwalk *w, const struct bfs_rule *r, int *found)
{
	struct hfm_oidset seen = { 0 };
	struct hfm_oidv queue = { 0 }, parents = { 0 };
	int *d = NULL;
	size_t head = 0, i, capd = 0;
	int rc = 0, cut;

	for (i = 0; i < w->want_commits.n; i++) {
		git_oid id;
		uint8_t *f;

		hfm_gitwalk_oid(&id, &w->want_commits.v[i]);
		if (!bfs_keep(w, r, &id) || *(f = oidset_get(&seen, &id, 1)))
			continue;
		*f = 1;
		bfs_push(&queue, &d, &capd, &w->want_commits.v[i], 1);
	}
	if (r->since && !queue.n)
		rc = hfm_error_set(HFM_EINVAL, "no commits selected for shallow requests");
	while (head < queue.n && !rc) {
		git_oid id;
		int cd = d[head];

		hfm_gitwalk_oid(&id, &queue.v[head++]);
		if (atomic_load(w->cancelled)) {
			rc = HFM_ERROR;
			break;
		}
		if (r->find_client && (oidset_flags(&w->commits, &id) & C_CLIENT)) {
			*found = cd;
			break;
		}
		if (r->depth && cd >= r->depth) {
			*oidset_get(&w->commits, &id, 1) |= C_BOUNDARY | C_CUT;
			continue;
		}
		if ((rc = parents_of(&parents, w, &id)))
			break;
		/* a root of this shallow repository, or a parent left out: a boundary */
		cut = oidset_flags(&w->rshallow, &id) != 0;
		for (i = 0; i < parents.n; i++) {
			git_oid p;
			uint8_t *f;

			hfm_gitwalk_oid(&p, &parents.v[i]);
			if (!bfs_keep(w, r, &p)) {
				cut = 1;
				continue;
			}
			f = oidset_get(&seen, &p, 1);
			if (*f)
				continue;
			*f = 1;
			bfs_push(&queue, &d, &capd, &parents.v[i], cd + 1);
		}
		if (!r->find_client)
			*oidset_get(&w->commits, &id, 1) |= cut ? (C_BOUNDARY | C_CUT) : C_NOTSHALLOW;
	}
	oidset_dispose(&seen);
	hfm_oidv_dispose(&queue);
	hfm_oidv_dispose(&parents);
	free(d);
	return rc;
}

/*
 * The shallow/unshallow lines for this request into `out`, and the walk's
 * cuts: the new boundary and the client's shallow commits have no parents
 * for the walk (as git registers both as shallow); the parents of a client
 * shallow commit the new depth reaches past are wanted.
 */
int hfm_gitwalk_shallow(struct hfm_gitwalk *w, struct hfm_buf *out)
{
	struct hfm_oidv parents = { 0 };
	size_t i, k;
	int rc = 0, depth = w->q->depth;

	if (depth && w->q->deepen_relative && w->shallows.n) {
		struct bfs_rule find = { .find_client = 1 };
		int cur = 0;

		if ((rc = bfs(w, &find, &cur)))
			return rc;
		if (!cur)
			return 0;
		depth += cur;
	}
	if (depth || w->q->deepen_since) {
		/* not both: the request parser refuses deepen with deepen-since */
		struct bfs_rule rule = { .depth = depth, .since = w->q->deepen_since };

		if ((rc = bfs(w, &rule, NULL)))
			return rc;
	}
	for (i = 0; !depth && !w->q->deepen_since && i < w->repo_shallow.n; i++) {
		char hex[HFM_SHA1_HEX + 1];

		hex_of(hex, &w->repo_shallow.v[i]);
		hfm_pkt_printf(out, "shallow %s\n", hex);
	}
	for (i = 0; i < w->commits.cap; i++) {
		struct hfm_oidslot *o = &w->commits.v[i];
		char hex[HFM_SHA1_HEX + 1];

		if (!o->used || (o->flags & (C_BOUNDARY | C_CLIENT | C_NOTSHALLOW)) != C_BOUNDARY)
			continue;
		git_oid_tostr(hex, sizeof(hex), &o->id);
		hfm_pkt_printf(out, "shallow %s\n", hex);
	}
	for (i = 0; i < w->shallows.n && !rc; i++) {
		git_oid id;
		char hex[HFM_SHA1_HEX + 1];

		hfm_gitwalk_oid(&id, &w->shallows.v[i]);
		if (!(oidset_flags(&w->commits, &id) & C_NOTSHALLOW))
			continue;
		hex_of(hex, &w->shallows.v[i]);
		hfm_pkt_printf(out, "unshallow %s\n", hex);
		/* the client has it and its tree; its parents are what it lacks */
		push_git(&w->edges, &id);
		if ((rc = parents_of(&parents, w, &id)))
			break;
		for (k = 0; k < parents.n; k++)
			hfm_oidv_push(&w->starts, &parents.v[k]);
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

static void enqueue(struct hfm_gitwalk *w, struct cqueue *q, const git_oid *id)
{
	uint8_t *f = oidset_get(&w->commits, id, 1);

	if (*f & (C_QUEUED | C_DONE))
		return;
	*f |= C_QUEUED;
	if (!(*f & C_UNINT))
		q->interesting++;
	cq_push(q, id, commit_time(w, id));
}

/*
 * Mark `id` as the client's, and what it reaches through commits already
 * walked (their parents were queued as interesting before this was known).
 */
static int mark_unint(struct hfm_gitwalk *w, struct cqueue *q, const git_oid *start)
{
	struct hfm_oidv stack = { 0 }, parents = { 0 };
	int rc = 0;

	push_git(&stack, start);
	while (stack.n && !rc) {
		git_oid id;
		uint8_t *f;
		size_t i;

		hfm_gitwalk_oid(&id, &stack.v[--stack.n]);
		f = oidset_get(&w->commits, &id, 1);
		if (*f & C_UNINT)
			continue;
		*f |= C_UNINT;
		if ((*f & C_QUEUED) && !(*f & C_DONE))
			q->interesting--;
		if (!(*f & C_DONE) || (*f & C_CUT))
			continue;
		if ((rc = parents_of(&parents, w, &id)))
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
static int walk(struct hfm_gitwalk *w)
{
	struct cqueue q = { 0 };
	struct hfm_oidv parents = { 0 }, order = { 0 };
	size_t i;
	int rc = 0, slop = WALK_SLOP;

	for (i = 0; i < w->have_commits.n && !rc; i++) {
		git_oid id;

		hfm_gitwalk_oid(&id, &w->have_commits.v[i]);
		*oidset_get(&w->commits, &id, 1) |= C_UNINT;
		enqueue(w, &q, &id);
	}
	for (i = 0; i < w->want_commits.n + w->starts.n; i++) {
		git_oid id;

		hfm_gitwalk_oid(&id, i < w->want_commits.n ? &w->want_commits.v[i]
						   : &w->starts.v[i - w->want_commits.n]);
		enqueue(w, &q, &id);
	}
	while (q.n && !rc) {
		struct qitem it;
		uint8_t *f, flags;

		if (atomic_load(w->cancelled)) {
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
		f = oidset_get(&w->commits, &it.id, 1);
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
		if ((rc = parents_of(&parents, w, &it.id)))
			break;
		for (i = 0; i < parents.n && !rc; i++) {
			git_oid p;

			hfm_gitwalk_oid(&p, &parents.v[i]);
			if (!git_odb_exists(w->odb, &p))
				continue;    /* history this repository does not have */
			if (flags & C_UNINT)
				rc = mark_unint(w, &q, &p);
			enqueue(w, &q, &p);
		}
	}
	/* the result, and its edges: the client's commits it has as parents */
	for (i = 0; i < order.n && !rc; i++) {
		git_oid id;
		size_t k;

		hfm_gitwalk_oid(&id, &order.v[i]);
		if (oidset_flags(&w->commits, &id) & C_UNINT)
			continue;
		hfm_oidv_push(&w->result, &order.v[i]);
		if ((oidset_flags(&w->commits, &id) & C_CUT) || !w->have_commits.n)
			continue;
		if ((rc = parents_of(&parents, w, &id)))
			break;
		for (k = 0; k < parents.n; k++) {
			git_oid p;
			uint8_t *pf;

			hfm_gitwalk_oid(&p, &parents.v[k]);
			pf = oidset_get(&w->commits, &p, 0);
			if (pf && (*pf & C_UNINT) && !(*pf & C_RESULT)) {
				*pf |= C_RESULT;    /* listed as an edge once */
				hfm_oidv_push(&w->edges, &parents.v[k]);
			}
		}
	}
	for (i = 0; i < w->have_commits.n; i++)
		hfm_oidv_push(&w->edges, &w->have_commits.v[i]);
	free(q.v);
	hfm_oidv_dispose(&parents);
	hfm_oidv_dispose(&order);
	return rc;
}

/* ---- objects --------------------------------------------------------------------- */

/* What a tree walk does with each object: the client's, or to be sent. */
enum tree_do { T_MARK, T_ADD };

/*
 * T_MARK: mark id the client's.  T_ADD: add id to what is sent, under
 * `name` (the path's last component; struct hfm_gitobj).  1 when that was
 * done before, or the client has it: nothing below it to do.
 */
static int visit(struct hfm_gitwalk *w, const git_oid *id, const char *name, enum tree_do how)
{
	uint8_t *f = oidset_get(&w->objs, id, 1);
	struct hfm_gitobj *o;
	size_t n;

	if (how == T_MARK) {
		if (*f & O_UNINT)
			return 1;
		*f |= O_UNINT;
		return 0;
	}
	if (*f & (O_UNINT | O_ADDED))
		return 1;
	*f |= O_ADDED;
	if (w->nobjects == w->nobj_cap) {
		w->nobj_cap = w->nobj_cap ? w->nobj_cap * 2 : 1024;
		w->objects = hfm_realloc(w->objects, w->nobj_cap * sizeof(*w->objects));
	}
	o = &w->objects[w->nobjects++];
	git_oid_cpy(&o->id, id);
	n = name ? strlen(name) : 0;
	snprintf(o->name, sizeof(o->name), "%s", n > 16 ? name + n - 16 : name ? name : "");
	return 0;
}

static int add(struct hfm_gitwalk *w, const git_oid *id, const char *name)
{
	visit(w, id, name, T_ADD);
	return 0;
}

/*
 * Tree `id` and its trees and blobs (submodules are not ours): all the
 * client's (T_MARK, a tree its commits hold), or what of it the client
 * lacks, to be sent (T_ADD).
 */
static int walk_tree(struct hfm_gitwalk *w, const git_oid *id, const char *name, enum tree_do how)
{
	git_tree *t = NULL;
	size_t i, n;
	int rc = 0;

	if (visit(w, id, name, how))
		return 0;
	if (git_tree_lookup(&t, w->g, id) < 0)
		return hfm_gitwalk_error("tree");
	n = git_tree_entrycount(t);
	for (i = 0; i < n && !rc; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			rc = walk_tree(w, git_tree_entry_id(e), git_tree_entry_name(e), how);
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
			visit(w, git_tree_entry_id(e), git_tree_entry_name(e), how);
	}
	git_tree_free(t);
	if (!rc && atomic_load(w->cancelled))
		rc = HFM_ERROR;
	return rc;
}

static int add_object(struct hfm_gitwalk *w, const git_oid *id)
{
	git_object *o = NULL;
	int rc;

	if (git_object_lookup(&o, w->g, id, GIT_OBJECT_ANY) < 0)
		return hfm_gitwalk_error("object");
	if (git_object_type(o) == GIT_OBJECT_TREE)
		rc = walk_tree(w, id, NULL, T_ADD);
	else
		rc = add(w, id, NULL);
	git_object_free(o);
	return rc;
}

struct tag_walk {
	struct hfm_gitwalk *w;
	int rc;
};

/* include-tag: an annotated tag whose commit is being sent goes along. */
static int tag_cb(const char *name, git_oid *id, void *payload)
{
	struct tag_walk *tw = payload;
	struct hfm_gitwalk *w = tw->w;
	git_object *o = NULL, *t = NULL;
	struct hfm_oidv chain = { 0 };
	size_t i;

	(void)name;
	if (git_object_lookup(&o, w->g, id, GIT_OBJECT_ANY) < 0) {
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
	    (oidset_flags(&w->commits, git_object_id(o)) & (C_RESULT | C_UNINT)) == C_RESULT) {
		for (i = 0; i < chain.n && !tw->rc; i++) {
			git_oid tid;

			hfm_gitwalk_oid(&tid, &chain.v[i]);
			tw->rc = add(w, &tid, NULL);
		}
	}
	git_object_free(o);
	hfm_oidv_dispose(&chain);
	git_error_clear();
	return tw->rc ? -1 : 0;
}

/*
 * The repository's one pack file, when it holds exactly the objects of
 * this answer: nothing else is stored (no loose object, no alternates), so
 * the distinct objects found are all of it.  Then the pack, whose
 * checksum covers its whole content, can be sent as it is -- what a clone
 * of a mirror made with `git clone --mirror` is, unless the clone leaves
 * out some refs (the pull requests).  NULL otherwise.
 */
char *hfm_gitwalk_whole_pack(struct hfm_gitwalk *w)
{
	char *objdir = hfm_asprintf("%sobjects", git_repository_commondir(w->g));
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
	     (size_t)hdr[8 + 255 * 4 + 2] << 8 | hdr[8 + 255 * 4 + 3]) != w->nobjects) {
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

int hfm_gitwalk_repo_shallow(struct hfm_oidv *out, git_repository *g)
{
	char *path = hfm_asprintf("%sshallow", git_repository_path(g));
	FILE *f = fopen(path, "re");
	char line[128];
	size_t n = 0;
	int rc = 0;

	if (!f) {
		rc = errno == ENOENT ? 0 : hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
		free(path);
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		struct hfm_git_oid id;

		if (++n > REPO_SHALLOW_MAX) {
			rc = hfm_error_set(HFM_ETOOBIG, "%s: too many shallow commits", path);
			break;
		}
		if (hfm_git_oid_parse(&id, line, HFM_SHA1_HEX) == 0)
			hfm_oidv_push(out, &id);
	}
	fclose(f);
	free(path);
	return rc;
}

int hfm_gitwalk_classify(struct hfm_gitwalk *w)
{
	size_t i;
	int rc;

	if ((rc = hfm_gitwalk_repo_shallow(&w->repo_shallow, w->g)))
		return rc;
	for (i = 0; i < w->repo_shallow.n; i++) {
		git_oid id;

		hfm_gitwalk_oid(&id, &w->repo_shallow.v[i]);
		*oidset_get(&w->rshallow, &id, 1) = 1;
		/* the walk goes no further, as from any cut */
		*oidset_get(&w->commits, &id, 1) |= C_CUT;
	}
	if ((rc = classify_wants(w)))
		return rc;
	classify_haves(w);
	return 0;
}

int hfm_gitwalk_objects(struct hfm_gitwalk *w)
{
	size_t i;
	int rc;

	if ((rc = walk(w)))
		return rc;
	for (i = 0; i < w->edges.n && !rc; i++) {
		git_commit *c = NULL;
		git_oid id;

		hfm_gitwalk_oid(&id, &w->edges.v[i]);
		if (git_commit_lookup(&c, w->g, &id) < 0)
			return hfm_gitwalk_error("commit");
		rc = walk_tree(w, git_commit_tree_id(c), NULL, T_MARK);
		git_commit_free(c);
	}
	for (i = 0; i < w->result.n && !rc; i++) {
		git_commit *c = NULL;
		git_oid id;

		hfm_gitwalk_oid(&id, &w->result.v[i]);
		if ((rc = add(w, &id, NULL)))
			break;
		if (git_commit_lookup(&c, w->g, &id) < 0)
			return hfm_gitwalk_error("commit");
		rc = walk_tree(w, git_commit_tree_id(c), NULL, T_ADD);
		git_commit_free(c);
	}
	for (i = 0; i < w->want_tags.n && !rc; i++) {
		git_oid id;

		hfm_gitwalk_oid(&id, &w->want_tags.v[i]);
		rc = add(w, &id, NULL);
	}
	for (i = 0; i < w->want_other.n && !rc; i++) {
		git_oid id;

		hfm_gitwalk_oid(&id, &w->want_other.v[i]);
		rc = add_object(w, &id);
	}
	if (!rc && w->q->include_tag) {
		struct tag_walk tw = { w, 0 };

		git_tag_foreach(w->g, tag_cb, &tw);
		rc = tw.rc;
	}
	return rc;
}

void hfm_gitwalk_init(struct hfm_gitwalk *w, git_repository *g, git_odb *odb,
		      const struct hfm_upload_req *q, const atomic_int *cancelled)
{
	memset(w, 0, sizeof(*w));
	w->g = g;
	w->odb = odb;
	w->q = q;
	w->cancelled = cancelled;
}

void hfm_gitwalk_dispose(struct hfm_gitwalk *w)
{
	hfm_oidv_dispose(&w->want_commits);
	hfm_oidv_dispose(&w->want_tags);
	hfm_oidv_dispose(&w->want_other);
	hfm_oidv_dispose(&w->common);
	hfm_oidv_dispose(&w->have_commits);
	hfm_oidv_dispose(&w->shallows);
	hfm_oidv_dispose(&w->repo_shallow);
	oidset_dispose(&w->rshallow);
	hfm_oidv_dispose(&w->edges);
	hfm_oidv_dispose(&w->result);
	hfm_oidv_dispose(&w->starts);
	oidset_dispose(&w->commits);
	oidset_dispose(&w->objs);
	free(w->objects);
	w->objects = NULL;
	w->nobjects = w->nobj_cap = 0;
}
