/* src_git.c - git mirrors as a read-only Hub (see src_git.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "hfm/fsutil.h"
#include "hfm/memlru.h"
#include "hfm/src_git.h"

#define POOL_MAX 4                      /* libgit2 handles per repo */
#define SNAP_CACHE 4                    /* snapshots kept per repo */
#define MAX_ENTRIES 1000000             /* files + dirs in one commit */
#define LFS_POINTER_MAX 1024            /* git-lfs spec: pointers are smaller */
#define DEFAULT_MEM_MAX (8ull << 20)
#define DEFAULT_LASTCOMMIT_MAX 10000
#define CREATED_WALK_MAX 100000         /* first-parent steps to the root */
#define BLOB_MAX (4ull << 30)           /* non-LFS blobs we inflate at all */
#define BIG_CACHE 8                     /* inflated large blobs kept on disk */
#define BIG_CACHE_BYTES (4ull << 30)
#define SMALL_CACHE_BYTES (32ull << 20) /* recently served small blobs, all repos */
#define SMALL_CACHE_ITEM (1u << 20)     /* largest blob kept there */
#define REPO_BUCKETS 256                /* name -> repo hash table */
#define REV_CACHE 16                    /* resolved revisions kept per repo */
#define REV_NAME_MAX 128                /* longer revisions are not cached */
/*
 * How stale a cached answer may get.  A repo found on disk is re-checked
 * (is it still there, is it the same directory?) at most this often, and a
 * cached rev -> commit resolution is redone at most this often, so a push
 * into a served mirror, or a deleted repo, is seen within this delay (see
 * docs/git-mirrors.md).  Between checks a request touches no file.
 */
#define RECHECK_NS (1000ull * 1000 * 1000)

/*
 * A plain snapshot owns its paths (arena).  An expanded one is a copy of a
 * plain snapshot's entries with last_commit filled in; it borrows the paths
 * and so holds a reference to the plain one.
 */
struct gs_snap {
	struct hfm_snapshot base;
	char *arena;
	struct gs_snap *plain;
	struct hfm_last_commit *lcs;
	size_t nlcs;
};

struct gs_slot {
	char commit[HFM_SHA1_HEX + 1];   /* "" = free */
	struct gs_snap *snap;            /* references held by the slot */
	struct gs_snap *expanded;
	int building, expanding;         /* a thread is making snap / expanded */
	uint64_t used;
};

/*
 * A resolved revision.  Branch-like names are redone after RECHECK_NS; a
 * full commit id is final once found (it names the same commit forever).
 */
struct gs_rev {
	char rev[REV_NAME_MAX];          /* "" = free */
	struct hfm_resolved res;
	int final;
	uint64_t checked_ns;             /* when libgit2 last answered it */
	uint64_t used;
};

struct gs_repo {
	struct hfm_repo base;
	struct gitsrc *gs;
	char *path;                      /* what libgit2 opens */
	char *git_dir;                   /* <gitdir>: same inode = same repo */
	char *head_file;                 /* <gitdir>/HEAD: the repo is still there */
	char *lfs_dir;                   /* <commondir>/lfs/objects */
	dev_t dir_dev;
	ino_t dir_ino;
	int bare;
	int gone;                        /* under gs->lock */
	unsigned hash;                   /* of (type, name), for gs->table */
	struct gs_repo *hnext;           /* gs->table chain, under gs->lock */
	_Atomic uint64_t checked_ns;     /* last time it was found on disk */

	pthread_mutex_t rev_lock;        /* revs[], rev_tick */
	struct gs_rev revs[REV_CACHE];
	uint64_t rev_tick;

	pthread_mutex_t lock;            /* everything below */
	pthread_cond_t pool_cond;
	pthread_cond_t snap_cond;
	git_repository *idle[POOL_MAX];
	int nidle, nopen;
	struct gs_slot slots[SNAP_CACHE];
	uint64_t tick;
	int created_known;
	int64_t created_ms;
	struct gs_repo *next;            /* every repo ever made, under gs->lock */
};

struct big_blob {
	char oid[HFM_SHA1_HEX + 1];
	int fd;                          /* unlinked temp file, -1 = free */
	uint64_t size, used;
};

struct gitsrc {
	struct hfm_source base;
	char **dirs;
	size_t ndirs;
	const struct hfm_store *store;
	uint64_t mem_max;
	unsigned lastcommit_max;
	pthread_rwlock_t lock;           /* repos, table */
	struct gs_repo *repos;           /* all, live or gone: freed with the source */
	struct gs_repo *table[REPO_BUCKETS];  /* the live ones by name */
	struct hfm_memlru *small;        /* small blob contents by blob id */
	pthread_mutex_t big_lock;        /* big[], big_bytes, big_tick */
	pthread_mutex_t extract_lock;    /* one large inflate at a time bounds memory */
	struct big_blob big[BIG_CACHE];
	uint64_t big_bytes, big_tick;
};

static const struct hfm_source_ops git_ops;

static int git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();

	return hfm_error_set(code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* ---- repository handles ------------------------------------------------ */

/*
 * Take a handle for this thread's exclusive use.  Callers never wait for
 * anything else while holding one (no nesting, no snapshot waits), so a full
 * pool always drains.
 */
static int handle_get(git_repository **out, struct gs_repo *r)
{
	git_repository *g;
	int rc;

	pthread_mutex_lock(&r->lock);
	while (!r->nidle && r->nopen >= POOL_MAX)
		pthread_cond_wait(&r->pool_cond, &r->lock);
	if (r->nidle) {
		*out = r->idle[--r->nidle];
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	r->nopen++;
	pthread_mutex_unlock(&r->lock);
	if (git_repository_open_ext(&g, r->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		rc = git_fail(HFM_EIO, r->path);
		pthread_mutex_lock(&r->lock);
		r->nopen--;
		pthread_cond_signal(&r->pool_cond);
		pthread_mutex_unlock(&r->lock);
		return rc;
	}
	*out = g;
	return 0;
}

static void handle_put(struct gs_repo *r, git_repository *g)
{
	pthread_mutex_lock(&r->lock);
	r->idle[r->nidle++] = g;
	pthread_cond_signal(&r->pool_cond);
	pthread_mutex_unlock(&r->lock);
}

/* ---- commits ----------------------------------------------------------- */

static int commit_lookup_hex(git_commit **out, git_repository *g, const char *hex)
{
	git_oid id;
	int err;

	if (!hfm_is_hex(hex, HFM_SHA1_HEX) || git_oid_fromstr(&id, hex) < 0)
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", hex);
	err = git_commit_lookup(out, g, &id);
	if (err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC ||
	    (err < 0 && git_error_last() && git_error_last()->klass == GIT_ERROR_INVALID))
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", hex);
	if (err < 0)
		return git_fail(HFM_EIO, hex);
	return 0;
}

/* The first parent, or NULL at a root (or where a shallow clone stops). */
static git_commit *first_parent(const git_commit *c)
{
	git_commit *p = NULL;

	if (git_commit_parentcount(c) == 0 || git_commit_parent(&p, c, 0) < 0)
		return NULL;
	return p;
}

static int64_t commit_ms(const git_commit *c)
{
	return (int64_t)git_commit_time(c) * 1000;
}

/* The Hub's title: the first line of the message. */
static char *commit_title(const git_commit *c)
{
	const char *m = git_commit_message(c);
	size_t n;

	if (!m)
		return hfm_strdup("");
	n = strcspn(m, "\n");
	while (n && (m[n - 1] == '\r' || m[n - 1] == ' ' || m[n - 1] == '\t'))
		n--;
	return hfm_strndup(m, n);
}

/* The Hub's message: what follows the title, without surrounding blank lines. */
static char *commit_body(const git_commit *c)
{
	const char *m = git_commit_message(c), *nl;
	size_t n;

	if (!m || !(nl = strchr(m, '\n')))
		return hfm_strdup("");
	while (*nl == '\n' || *nl == '\r')
		nl++;
	n = strlen(nl);
	while (n && (nl[n - 1] == '\n' || nl[n - 1] == '\r' || nl[n - 1] == ' '))
		n--;
	return hfm_strndup(nl, n);
}

/* ---- revisions --------------------------------------------------------- */

/* The commit `name` (a full ref name) peels to; HFM_ENOREV if none. */
static int ref_commit(git_oid *out, git_repository *g, const char *name)
{
	git_reference *ref = NULL;
	git_object *obj = NULL;
	int valid = 0, rc = HFM_ENOREV;

	if (git_reference_name_is_valid(&valid, name) < 0 || !valid)
		return HFM_ENOREV;
	if (git_reference_lookup(&ref, g, name) < 0)
		goto cleanup;
	if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0)
		goto cleanup;
	git_oid_cpy(out, git_object_id(obj));
	rc = 0;
cleanup:
	git_object_free(obj);
	git_reference_free(ref);
	return rc;
}

/* The default branch: HEAD, else main, else master. */
static int head_commit(git_oid *out, git_repository *g)
{
	if (ref_commit(out, g, "HEAD") == 0 || ref_commit(out, g, "refs/heads/main") == 0 ||
	    ref_commit(out, g, "refs/heads/master") == 0)
		return 0;
	return HFM_ENOREV;
}

/* A branch, also as refs/remotes/origin/<branch> in a non-bare clone. */
static int branch_commit(git_oid *out, struct gs_repo *r, git_repository *g, const char *branch)
{
	char *name = hfm_asprintf("refs/heads/%s", branch);
	int rc = ref_commit(out, g, name);

	free(name);
	if (rc && !r->bare) {
		name = hfm_asprintf("refs/remotes/origin/%s", branch);
		rc = strcmp(branch, "HEAD") ? ref_commit(out, g, name) : HFM_ENOREV;
		free(name);
	}
	return rc;
}

static int resolve_rev(git_oid *out, struct gs_repo *r, git_repository *g, const char *rev)
{
	git_commit *c = NULL;
	char *name;
	int rc;

	if (hfm_is_hex(rev, HFM_SHA1_HEX)) {
		if ((rc = commit_lookup_hex(&c, g, rev))) {
			/*
			 * A Hub commit id that hfmirror-import kept for a snapshot of an
			 * HF cache folder (its commits get new ids): the snapshot.
			 */
			name = hfm_asprintf("refs/hfmirror/hub/%s", rev);
			int nrc = ref_commit(out, g, name);
			free(name);
			return nrc ? rc : 0;
		}
		git_oid_cpy(out, git_commit_id(c));
		git_commit_free(c);
		return 0;
	}
	if (!strcmp(rev, "HEAD"))
		rc = head_commit(out, g);
	else if (!strncmp(rev, "refs/heads/", 11))
		rc = branch_commit(out, r, g, rev + 11);
	else if (!strncmp(rev, "refs/", 5))
		rc = ref_commit(out, g, rev);
	else if ((rc = branch_commit(out, r, g, rev))) {
		name = hfm_asprintf("refs/tags/%s", rev);
		rc = ref_commit(out, g, name);
		free(name);
	}
	if (rc)
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", rev);
	return 0;
}

/*
 * createdAt: the date of the root commit of the default branch, found once per
 * repo by walking first parents (0 past CREATED_WALK_MAX steps).
 */
static int64_t repo_created(struct gs_repo *r, git_repository *g, const git_oid *fallback)
{
	git_commit *c = NULL, *p;
	git_oid start;
	int64_t ms = 0;
	unsigned steps;

	pthread_mutex_lock(&r->lock);
	if (r->created_known) {
		ms = r->created_ms;
		pthread_mutex_unlock(&r->lock);
		return ms;
	}
	pthread_mutex_unlock(&r->lock);
	if (head_commit(&start, g))
		git_oid_cpy(&start, fallback);
	if (git_commit_lookup(&c, g, &start) < 0)
		return 0;
	for (steps = 0; steps < CREATED_WALK_MAX; steps++) {
		if (!(p = first_parent(c))) {
			ms = commit_ms(c);
			break;
		}
		git_commit_free(c);
		c = p;
	}
	git_commit_free(c);
	pthread_mutex_lock(&r->lock);
	r->created_known = 1;
	r->created_ms = ms;
	pthread_mutex_unlock(&r->lock);
	return ms;
}

/* ---- snapshots --------------------------------------------------------- */

static void snap_release(struct hfm_snapshot *base)
{
	struct gs_snap *s = (struct gs_snap *)base;
	size_t i;

	for (i = 0; i < s->nlcs; i++)
		free(s->lcs[i].title);
	free(s->lcs);
	free(s->base.entries);
	free(s->arena);
	if (s->plain)
		hfm_snapshot_unref(&s->plain->base);
	free(s);
}

static struct gs_snap *snap_alloc(const char *commit, int64_t date_ms, int64_t created_ms,
				  size_t n)
{
	struct gs_snap *s = hfm_calloc(1, sizeof(*s));

	atomic_init(&s->base.refs, 1);
	s->base.release = snap_release;
	memcpy(s->base.commit, commit, HFM_SHA1_HEX);
	s->base.date_ms = date_ms;
	s->base.created_ms = created_ms;
	s->base.n = n;
	s->base.entries = hfm_calloc(n ? n : 1, sizeof(struct hfm_entry));
	return s;
}

struct walk_item {
	char *path;
	uint64_t size;
	uint32_t pointer_size;
	uint8_t is_dir, is_lfs;
	char oid[HFM_SHA1_HEX + 1];
	char lfs_oid[HFM_SHA256_HEX + 1];
};

struct tree_walk {
	git_odb *odb;
	struct walk_item *v;
	size_t n, cap;
	int rc;
};

/* Size of a blob and, for a small one, whether it is an LFS pointer. */
static int blob_info(struct tree_walk *w, struct walk_item *it, const git_oid *id)
{
	git_odb_object *o;
	git_object_t type;
	size_t len;
	uint64_t size;

	if (git_odb_read_header(&len, &type, w->odb, id) < 0)
		return w->rc = git_fail(HFM_EIO, it->path);
	it->size = len;
	if (len > LFS_POINTER_MAX)
		return 0;
	if (git_odb_read(&o, w->odb, id) < 0)
		return w->rc = git_fail(HFM_EIO, it->path);
	if (hfm_lfs_pointer_parse(it->lfs_oid, &size, git_odb_object_data(o),
				  git_odb_object_size(o)) == 0) {
		it->is_lfs = 1;
		it->pointer_size = (uint32_t)len;
		it->size = size;
	}
	git_odb_object_free(o);
	return 0;
}

static int walk_cb(const char *root, const git_tree_entry *te, void *payload)
{
	struct tree_walk *w = payload;
	git_filemode_t mode = git_tree_entry_filemode(te);
	char *path = hfm_asprintf("%s%s", root, git_tree_entry_name(te));
	struct walk_item *it;

	/* submodules and unservable names: skip, with their subtrees */
	if (mode == GIT_FILEMODE_COMMIT || !hfm_path_valid(path)) {
		free(path);
		return 1;
	}
	if (w->n == MAX_ENTRIES) {
		free(path);
		w->rc = hfm_error_set(HFM_ETOOBIG, "more than %d files and directories in one commit",
				      MAX_ENTRIES);
		return -1;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->v = hfm_realloc(w->v, w->cap * sizeof(*w->v));
	}
	it = &w->v[w->n++];
	memset(it, 0, sizeof(*it));
	it->path = path;
	git_oid_tostr(it->oid, sizeof(it->oid), git_tree_entry_id(te));
	if (mode == GIT_FILEMODE_TREE) {
		it->is_dir = 1;
		return 0;
	}
	return blob_info(w, it, git_tree_entry_id(te)) ? -1 : 0;
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct walk_item *)a)->path, ((const struct walk_item *)b)->path);
}

/* Sort the walked items into a snapshot (byte order of the full path). */
static struct gs_snap *snap_assemble(struct tree_walk *w, const char *commit, int64_t date_ms,
				     int64_t created_ms)
{
	struct gs_snap *s = snap_alloc(commit, date_ms, created_ms, w->n);
	size_t i, len = 0;
	char *arena;

	if (w->n)
		qsort(w->v, w->n, sizeof(*w->v), cmp_item);
	for (i = 0; i < w->n; i++)
		len += strlen(w->v[i].path) + 1;
	arena = s->arena = hfm_malloc(len ? len : 1);
	for (i = 0; i < w->n; i++) {
		struct hfm_entry *e = &s->base.entries[i];
		const struct walk_item *it = &w->v[i];
		size_t pl = strlen(it->path) + 1;

		memcpy(arena, it->path, pl);
		e->path = arena;
		arena += pl;
		e->size = it->size;
		e->pointer_size = it->pointer_size;
		e->is_dir = it->is_dir;
		e->is_lfs = it->is_lfs;
		memcpy(e->oid, it->oid, sizeof(e->oid));
		memcpy(e->lfs_oid, it->lfs_oid, sizeof(e->lfs_oid));
		atomic_store_explicit(&e->has_ids, 1, memory_order_relaxed);
	}
	return s;
}

static int snap_build(struct gs_snap **out, struct gs_repo *r, const char *commit)
{
	struct tree_walk w;
	git_repository *g;
	git_commit *c = NULL;
	git_tree *t = NULL;
	int64_t created;
	size_t i;
	int rc;

	memset(&w, 0, sizeof(w));
	if ((rc = handle_get(&g, r)))
		return rc;
	if ((rc = commit_lookup_hex(&c, g, commit)))
		goto cleanup;
	if (git_commit_tree(&t, c) < 0 || git_repository_odb(&w.odb, g) < 0) {
		rc = git_fail(HFM_EIO, commit);
		goto cleanup;
	}
	if (git_tree_walk(t, GIT_TREEWALK_PRE, walk_cb, &w) < 0) {
		rc = w.rc ? w.rc : git_fail(HFM_EIO, commit);
		goto cleanup;
	}
	created = repo_created(r, g, git_commit_id(c));
	*out = snap_assemble(&w, commit, commit_ms(c), created);
cleanup:
	for (i = 0; i < w.n; i++)
		free(w.v[i].path);
	free(w.v);
	git_odb_free(w.odb);
	git_tree_free(t);
	git_commit_free(c);
	handle_put(r, g);
	return rc;
}

/* ---- lastCommit -------------------------------------------------------- */

struct lc_walk {
	const struct hfm_snapshot *s;
	git_repository *g;
	int32_t *lc;                     /* per entry: index into lcs, -1 = unsettled */
	size_t *below;                   /* per dir entry: unsettled entries under it */
	size_t left;                     /* unsettled entries */
	struct hfm_last_commit *lcs;
	size_t nlcs, caplcs;
	const git_commit *cur;           /* the commit being compared to its parent */
	int32_t cur_idx;                 /* its index in lcs, -1 until it settles one */
	char path[HFM_PATH_MAX + 2];
};

static void lc_settle(struct lc_walk *w, size_t i)
{
	char anc[HFM_PATH_MAX + 1];
	char *slash;

	if (w->cur_idx < 0) {
		struct hfm_last_commit *l;

		if (w->nlcs == w->caplcs) {
			w->caplcs = w->caplcs ? w->caplcs * 2 : 16;
			w->lcs = hfm_realloc(w->lcs, w->caplcs * sizeof(*w->lcs));
		}
		l = &w->lcs[w->nlcs];
		git_oid_tostr(l->id, sizeof(l->id), git_commit_id(w->cur));
		l->date_ms = commit_ms(w->cur);
		l->title = commit_title(w->cur);
		w->cur_idx = (int32_t)w->nlcs++;
	}
	w->lc[i] = w->cur_idx;
	w->left--;
	snprintf(anc, sizeof(anc), "%s", w->s->entries[i].path);
	while ((slash = strrchr(anc, '/'))) {
		ssize_t at;

		*slash = '\0';
		if ((at = hfm_snapshot_find(w->s, anc)) >= 0)
			w->below[at]--;
	}
}

/*
 * Settle every unsettled entry under w->path[0..plen) that differs between
 * tree `t` (of w->cur) and `pt` (of its first parent; NULL at a root).
 * Identical subtrees, and subtrees with nothing unsettled, are not entered.
 */
static int lc_compare(struct lc_walk *w, const git_tree *t, const git_tree *pt, size_t plen)
{
	size_t i, n = git_tree_entrycount(t);
	int rc = 0;

	for (i = 0; i < n && w->left && !rc; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i), *pe;
		const char *name = git_tree_entry_name(e);
		size_t nl = strlen(name);
		git_tree *sub = NULL, *psub = NULL;
		ssize_t at;

		pe = pt ? git_tree_entry_byname(pt, name) : NULL;
		if (pe && git_tree_entry_filemode(pe) == git_tree_entry_filemode(e) &&
		    git_oid_equal(git_tree_entry_id(pe), git_tree_entry_id(e)))
			continue;
		if (plen + nl > HFM_PATH_MAX)
			continue;
		memcpy(w->path + plen, name, nl);
		w->path[plen + nl] = '\0';
		if ((at = hfm_snapshot_find(w->s, w->path)) < 0)
			continue;
		if (w->lc[at] < 0)
			lc_settle(w, (size_t)at);
		if (!w->s->entries[at].is_dir || !w->below[at] ||
		    git_tree_entry_type(e) != GIT_OBJECT_TREE)
			continue;
		if (git_tree_lookup(&sub, w->g, git_tree_entry_id(e)) < 0 ||
		    (pe && git_tree_entry_type(pe) == GIT_OBJECT_TREE &&
		     git_tree_lookup(&psub, w->g, git_tree_entry_id(pe)) < 0)) {
			rc = git_fail(HFM_EIO, w->path);
		} else {
			w->path[plen + nl] = '/';
			rc = lc_compare(w, sub, psub, plen + nl + 1);
		}
		git_tree_free(sub);
		git_tree_free(psub);
	}
	return rc;
}

/* Walk first parents from the snapshot's commit until everything settles. */
static int lc_walk_history(struct lc_walk *w, unsigned max)
{
	git_commit *c = NULL, *p = NULL;
	git_tree *t = NULL, *pt = NULL;
	unsigned steps = 0;
	size_t i;
	int rc;

	if ((rc = commit_lookup_hex(&c, w->g, w->s->commit)))
		return rc;
	for (;;) {
		w->cur = c;
		w->cur_idx = -1;
		p = first_parent(c);
		if (git_commit_tree(&t, c) < 0 || (p && git_commit_tree(&pt, p) < 0)) {
			rc = git_fail(HFM_EIO, w->s->commit);
			git_tree_free(t);
			break;
		}
		if (!pt || !git_oid_equal(git_tree_id(t), git_tree_id(pt)))
			rc = lc_compare(w, t, pt, 0);
		git_tree_free(t);
		git_tree_free(pt);
		t = pt = NULL;
		if (rc || !w->left || !p || ++steps >= max)
			break;
		git_commit_free(c);
		c = p;
		p = NULL;
	}
	/* past the bound: "changed at or before the oldest commit examined" */
	if (!rc && w->left) {
		w->cur = c;
		w->cur_idx = -1;
		for (i = 0; i < w->s->n; i++)
			if (w->lc[i] < 0)
				lc_settle(w, i);
	}
	git_commit_free(p);
	git_commit_free(c);
	return rc;
}

static int snap_expand(struct gs_snap **out, struct gs_repo *r, struct gs_snap *plain)
{
	const struct hfm_snapshot *s = &plain->base;
	struct lc_walk *w = hfm_calloc(1, sizeof(*w));
	struct gs_snap *x;
	size_t i, from, to;
	int rc;

	w->s = s;
	w->left = s->n;
	w->lc = hfm_malloc((s->n ? s->n : 1) * sizeof(*w->lc));
	w->below = hfm_calloc(s->n ? s->n : 1, sizeof(*w->below));
	for (i = 0; i < s->n; i++) {
		w->lc[i] = -1;
		if (s->entries[i].is_dir) {
			hfm_snapshot_under(s, s->entries[i].path, &from, &to);
			w->below[i] = to - from;
		}
	}
	if ((rc = handle_get(&w->g, r)) == 0) {
		rc = lc_walk_history(w, r->gs->lastcommit_max);
		handle_put(r, w->g);
	}
	if (rc) {
		for (i = 0; i < w->nlcs; i++)
			free(w->lcs[i].title);
		free(w->lcs);
	} else {
		x = snap_alloc(s->commit, s->date_ms, s->created_ms, s->n);
		for (i = 0; i < s->n; i++) {
			struct hfm_entry *e = &x->base.entries[i];

			memcpy(e, &s->entries[i], sizeof(*e));
			e->last_commit = &w->lcs[w->lc[i]];
		}
		x->lcs = w->lcs;
		x->nlcs = w->nlcs;
		x->plain = (struct gs_snap *)hfm_snapshot_ref(&plain->base);
		*out = x;
	}
	free(w->lc);
	free(w->below);
	free(w);
	return rc;
}

/* ---- the per-repo snapshot cache --------------------------------------- */

static struct gs_slot *slot_find(struct gs_repo *r, const char *commit)
{
	int i;

	for (i = 0; i < SNAP_CACHE; i++)
		if (!strcmp(r->slots[i].commit, commit))
			return &r->slots[i];
	return NULL;
}

/* A free slot, else the least recently used idle one, else NULL. */
static struct gs_slot *slot_victim(struct gs_repo *r)
{
	struct gs_slot *v = NULL;
	int i;

	for (i = 0; i < SNAP_CACHE; i++) {
		struct gs_slot *s = &r->slots[i];

		if (!s->commit[0])
			return s;
		if (!s->building && !s->expanding && (!v || s->used < v->used))
			v = s;
	}
	return v;
}

static int commit_check(struct gs_repo *r, const char *commit)
{
	git_repository *g;
	git_commit *c = NULL;
	int rc;

	if ((rc = handle_get(&g, r)))
		return rc;
	rc = commit_lookup_hex(&c, g, commit);
	git_commit_free(c);
	handle_put(r, g);
	return rc;
}

/*
 * The snapshot of `commit` (40 hex), built on first use; with `expand`, its
 * lastCommit-filled twin.  One thread builds, the others wait for it.  A
 * commit is checked to exist before it may evict a cached snapshot, so
 * requests for made-up commits cannot flush the cache.
 */
static int snap_get(struct gs_snap **out, struct gs_repo *r, const char *commit, int expand)
{
	struct gs_snap *old[2], *made = NULL, *plain;
	struct gs_slot *slot;
	int rc, checked = 0;

	if (!hfm_is_hex(commit, HFM_SHA1_HEX))
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", commit);
	pthread_mutex_lock(&r->lock);
again:
	slot = slot_find(r, commit);
	if (slot && slot->building) {
		pthread_cond_wait(&r->snap_cond, &r->lock);
		goto again;
	}
	if (!slot && !checked) {
		pthread_mutex_unlock(&r->lock);
		if ((rc = commit_check(r, commit)))
			return rc;
		checked = 1;
		pthread_mutex_lock(&r->lock);
		goto again;
	}
	if (!slot) {
		if (!(slot = slot_victim(r))) {
			pthread_cond_wait(&r->snap_cond, &r->lock);
			goto again;
		}
		old[0] = slot->snap;
		old[1] = slot->expanded;
		memcpy(slot->commit, commit, sizeof(slot->commit));
		slot->snap = slot->expanded = NULL;
		slot->building = 1;
		pthread_mutex_unlock(&r->lock);
		if (old[0])
			hfm_snapshot_unref(&old[0]->base);
		if (old[1])
			hfm_snapshot_unref(&old[1]->base);
		rc = snap_build(&made, r, commit);
		pthread_mutex_lock(&r->lock);
		slot->building = 0;
		pthread_cond_broadcast(&r->snap_cond);
		if (rc) {
			slot->commit[0] = '\0';
			pthread_mutex_unlock(&r->lock);
			return rc;
		}
		slot->snap = made;
	}
	slot->used = ++r->tick;
	if (!expand || slot->expanded) {
		*out = (struct gs_snap *)hfm_snapshot_ref(expand ? &slot->expanded->base
								 : &slot->snap->base);
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	if (slot->expanding) {
		/* the slot cannot be reused before expanding ends; recheck anyway */
		pthread_cond_wait(&r->snap_cond, &r->lock);
		goto again;
	}
	slot->expanding = 1;
	plain = (struct gs_snap *)hfm_snapshot_ref(&slot->snap->base);
	pthread_mutex_unlock(&r->lock);
	rc = snap_expand(&made, r, plain);
	pthread_mutex_lock(&r->lock);
	slot->expanding = 0;
	pthread_cond_broadcast(&r->snap_cond);
	if (rc == 0) {
		slot->expanded = made;
		*out = (struct gs_snap *)hfm_snapshot_ref(&made->base);
	}
	pthread_mutex_unlock(&r->lock);
	hfm_snapshot_unref(&plain->base);
	return rc;
}

/* ---- finding repos ----------------------------------------------------- */

/* Cheap test before asking libgit2: a .git inside, or HEAD + objects/. */
static int looks_like_repo(const char *path)
{
	struct stat st;
	char *p = hfm_asprintf("%s/.git", path);
	int yes = stat(p, &st) == 0;

	free(p);
	if (yes)
		return 1;
	p = hfm_asprintf("%s/HEAD", path);
	yes = stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	if (!yes)
		return 0;
	p = hfm_asprintf("%s/objects", path);
	yes = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	free(p);
	return yes;
}

static int try_open(git_repository **g, char **path, char *cand)
{
	if (looks_like_repo(cand) &&
	    git_repository_open_ext(g, cand, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0) {
		*path = cand;
		return 0;
	}
	free(cand);
	return HFM_ENOREPO;
}

static int find_repo(git_repository **g, char **path, struct gitsrc *gs,
		     const struct hfm_repo_id *id)
{
	const char *plural = hfm_repo_type_plural(id->type);
	size_t i;

	for (i = 0; i < gs->ndirs; i++) {
		if (!try_open(g, path, hfm_asprintf("%s/%s/%s", gs->dirs[i], plural, id->name)) ||
		    !try_open(g, path, hfm_asprintf("%s/%s/%s.git", gs->dirs[i], plural, id->name)))
			return 0;
	}
	if (gs->store) {
		struct hfm_buf b = HFM_BUF_INIT(PATH_MAX);

		hfm_store_mirror_path(&b, gs->store, id);
		if (!b.err && !try_open(g, path, hfm_buf_detach(&b)))
			return 0;
		hfm_buf_dispose(&b);
	}
	return HFM_ENOREPO;
}

static unsigned repo_hash(const struct hfm_repo_id *id)
{
	const unsigned char *p = (const unsigned char *)id->name;
	unsigned h = 2166136261u ^ (unsigned)id->type;

	while (*p)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/*
 * Is the repo found at open time still there, and still the same one?  A
 * clone deleted and made again at the same path is a new directory (new
 * inode): its handles must not be reused.
 */
static int repo_alive(const struct gs_repo *r)
{
	struct stat st;

	return stat(r->git_dir, &st) == 0 && st.st_dev == r->dir_dev &&
	       st.st_ino == r->dir_ino && access(r->head_file, F_OK) == 0;
}

static struct gs_repo *repo_new(struct gitsrc *gs, const struct hfm_repo_id *id,
				git_repository *g, char *path)
{
	struct gs_repo *r = hfm_calloc(1, sizeof(*r));
	struct stat st;

	r->base.src = &gs->base;
	r->base.id = *id;
	r->gs = gs;
	r->path = path;
	r->git_dir = hfm_strdup(git_repository_path(g));
	r->head_file = hfm_asprintf("%sHEAD", r->git_dir);
	r->lfs_dir = hfm_asprintf("%slfs/objects", git_repository_commondir(g));
	r->bare = git_repository_is_bare(g);
	r->hash = repo_hash(id);
	if (stat(r->git_dir, &st) == 0) {
		r->dir_dev = st.st_dev;
		r->dir_ino = st.st_ino;
	}
	atomic_init(&r->checked_ns, hfm_mono_ns());
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->rev_lock, NULL);
	pthread_cond_init(&r->pool_cond, NULL);
	pthread_cond_init(&r->snap_cond, NULL);
	r->idle[r->nidle++] = g;
	r->nopen = 1;
	return r;
}

static void repo_free(struct gs_repo *r)
{
	int i;

	for (i = 0; i < SNAP_CACHE; i++) {
		if (r->slots[i].snap)
			hfm_snapshot_unref(&r->slots[i].snap->base);
		if (r->slots[i].expanded)
			hfm_snapshot_unref(&r->slots[i].expanded->base);
	}
	for (i = 0; i < r->nidle; i++)
		git_repository_free(r->idle[i]);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->rev_lock);
	pthread_cond_destroy(&r->pool_cond);
	pthread_cond_destroy(&r->snap_cond);
	free(r->path);
	free(r->git_dir);
	free(r->head_file);
	free(r->lfs_dir);
	free(r);
}

/*
 * The repo was deleted: forget it.  Threads may still be using it, so it
 * stays allocated (until the source is freed), but drops what it caches.
 */
static void repo_retire(struct gs_repo *r)
{
	struct gs_snap *drop[2 * SNAP_CACHE];
	git_repository *idle[POOL_MAX];
	struct gs_repo **pp;
	int i, nd = 0, ni;

	pthread_rwlock_wrlock(&r->gs->lock);
	if (!r->gone) {
		for (pp = &r->gs->table[r->hash % REPO_BUCKETS]; *pp != r; pp = &(*pp)->hnext)
			;
		*pp = r->hnext;
		r->gone = 1;
	}
	pthread_rwlock_unlock(&r->gs->lock);
	pthread_mutex_lock(&r->rev_lock);
	memset(r->revs, 0, sizeof(r->revs));
	pthread_mutex_unlock(&r->rev_lock);
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < SNAP_CACHE; i++) {
		struct gs_slot *s = &r->slots[i];

		if (!s->commit[0] || s->building || s->expanding)
			continue;
		if (s->snap)
			drop[nd++] = s->snap;
		if (s->expanded)
			drop[nd++] = s->expanded;
		memset(s, 0, sizeof(*s));
	}
	ni = r->nidle;
	memcpy(idle, r->idle, sizeof(idle));
	r->nopen -= r->nidle;
	r->nidle = 0;
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < nd; i++)
		hfm_snapshot_unref(&drop[i]->base);
	for (i = 0; i < ni; i++)
		git_repository_free(idle[i]);
}

/* Under gs->lock (read or write). */
static struct gs_repo *repo_find_live(struct gitsrc *gs, const struct hfm_repo_id *id,
				      unsigned hash)
{
	struct gs_repo *r;

	for (r = gs->table[hash % REPO_BUCKETS]; r; r = r->hnext)
		if (r->hash == hash && r->base.id.type == id->type &&
		    !strcmp(r->base.id.name, id->name))
			return r;
	return NULL;
}

/* ---- ops --------------------------------------------------------------- */

static int gs_repo_open(struct hfm_repo **out, struct hfm_source *src,
			const struct hfm_repo_id *id, struct hfm_ctx *ctx)
{
	struct gitsrc *gs = (struct gitsrc *)src;
	struct gs_repo *r, *other;
	git_repository *g;
	unsigned hash = repo_hash(id);
	uint64_t now = hfm_mono_ns();
	char *path;

	pthread_rwlock_rdlock(&gs->lock);
	r = repo_find_live(gs, id, hash);
	pthread_rwlock_unlock(&gs->lock);
	if (r) {
		/* a known repo costs no file access until the recheck is due */
		if (atomic_load_explicit(&r->checked_ns, memory_order_relaxed) + RECHECK_NS > now) {
			*out = &r->base;
			return 0;
		}
		if (repo_alive(r)) {
			atomic_store_explicit(&r->checked_ns, now, memory_order_relaxed);
			*out = &r->base;
			return 0;
		}
		repo_retire(r);
	}
	/* not known (or just gone): look on disk every time, so new clones show at once */
	if (find_repo(&g, &path, gs, id))
		return hfm_error_set(HFM_ENOREPO, "Repository not found");
	r = repo_new(gs, id, g, path);
	pthread_rwlock_wrlock(&gs->lock);
	if ((other = repo_find_live(gs, id, hash))) {
		/* lost a race with another thread: use theirs */
		pthread_rwlock_unlock(&gs->lock);
		repo_free(r);
		*out = &other->base;
		return 0;
	}
	r->next = gs->repos;
	gs->repos = r;
	r->hnext = gs->table[hash % REPO_BUCKETS];
	gs->table[hash % REPO_BUCKETS] = r;
	pthread_rwlock_unlock(&gs->lock);
	*out = &r->base;
	return 0;
}

static void gs_repo_close(struct hfm_repo *r)
{
	(void)r; /* repos live as long as the source */
}

/* ---- the per-repo revision cache --------------------------------------- */

/*
 * The cached answer for `rev`, if it is still fresh; else 1 with *stale set
 * to the last answer (commit "" if none), so that an unchanged ref does not
 * need its commit read again.
 */
static int rev_cached(struct hfm_resolved *out, struct hfm_resolved *stale, struct gs_repo *r,
		      const char *rev, uint64_t now)
{
	int i, miss = 1;

	stale->commit[0] = '\0';
	pthread_mutex_lock(&r->rev_lock);
	for (i = 0; i < REV_CACHE; i++) {
		struct gs_rev *e = &r->revs[i];

		if (!e->rev[0] || strcmp(e->rev, rev))
			continue;
		/* (another thread may have stored a time later than `now`) */
		if (e->final || e->checked_ns + RECHECK_NS > now) {
			*out = e->res;
			e->used = ++r->rev_tick;
			miss = 0;
		} else {
			*stale = e->res;
		}
		break;
	}
	pthread_mutex_unlock(&r->rev_lock);
	return miss;
}

/* Remember that `rev` resolved to `res` as of `checked` (taken before asking). */
static void rev_store(struct gs_repo *r, const char *rev, const struct hfm_resolved *res,
		      uint64_t checked)
{
	struct gs_rev *e = NULL;
	int i;

	if (strlen(rev) >= REV_NAME_MAX)
		return;
	pthread_mutex_lock(&r->rev_lock);
	for (i = 0; i < REV_CACHE; i++) {
		struct gs_rev *x = &r->revs[i];

		if (x->rev[0] && !strcmp(x->rev, rev)) {
			e = x;
			break;
		}
		if (!e || (e->rev[0] && (!x->rev[0] || x->used < e->used)))
			e = x;
	}
	if (e->rev[0] && strcmp(e->rev, rev) == 0 && checked < e->checked_ns && !e->final) {
		/* a newer answer got here first: keep it */
		pthread_mutex_unlock(&r->rev_lock);
		return;
	}
	snprintf(e->rev, sizeof(e->rev), "%s", rev);
	e->res = *res;
	e->final = hfm_is_hex(rev, HFM_SHA1_HEX);
	e->checked_ns = checked;
	e->used = ++r->rev_tick;
	pthread_mutex_unlock(&r->rev_lock);
}

/*
 * Refs are read by libgit2 (a stat of the loose ref and of packed-refs, and
 * the commit object for its date) at most once per RECHECK_NS per revision;
 * in between the answer comes from the cache without touching the disk.
 * Failures are not cached: a ref that appears is found on the next request.
 */
static int gs_resolve(struct hfm_resolved *out, struct hfm_repo *repo, const char *rev,
		      struct hfm_ctx *ctx)
{
	struct gs_repo *r = (struct gs_repo *)repo;
	struct hfm_resolved stale;
	uint64_t now = hfm_mono_ns();
	git_repository *g;
	git_commit *c = NULL;
	git_oid id;
	int rc;

	out->unconfirmed = 0;            /* (a mirror has no upstream to ask) */
	if (!rev_cached(out, &stale, r, rev, now))
		return 0;
	if ((rc = handle_get(&g, r)))
		return rc;
	if ((rc = resolve_rev(&id, r, g, rev)))
		goto cleanup;
	git_oid_tostr(out->commit, sizeof(out->commit), &id);
	if (!strcmp(out->commit, stale.commit)) {
		/* the ref did not move: the commit's dates are what they were */
		*out = stale;
	} else {
		if (git_commit_lookup(&c, g, &id) < 0) {
			rc = git_fail(HFM_EIO, rev);
			goto cleanup;
		}
		out->date_ms = commit_ms(c);
		out->created_ms = repo_created(r, g, &id);
	}
	rev_store(r, rev, out, now);
cleanup:
	git_commit_free(c);
	handle_put(r, g);
	return rc;
}

static int gs_list(struct hfm_list **out, struct hfm_repo *repo, const char *commit,
		   const char *path, unsigned flags, struct hfm_ctx *ctx)
{
	struct gs_snap *s;
	int rc;

	if ((rc = snap_get(&s, (struct gs_repo *)repo, commit, !!(flags & HFM_LIST_EXPAND))))
		return rc;
	rc = hfm_snapshot_list(out, &s->base, path, !!(flags & HFM_LIST_RECURSIVE));
	hfm_snapshot_unref(&s->base);
	return rc;
}

static int gs_stat(struct hfm_list **out, struct hfm_repo *repo, const char *commit,
		   const char *const *paths, size_t n, unsigned flags, struct hfm_ctx *ctx)
{
	struct gs_snap *s;
	int rc;

	if ((rc = snap_get(&s, (struct gs_repo *)repo, commit, !!(flags & HFM_LIST_EXPAND))))
		return rc;
	rc = hfm_snapshot_stat(out, &s->base, paths, n);
	hfm_snapshot_unref(&s->base);
	return rc;
}

static int cmp_ref(const void *a, const void *b)
{
	return strcmp(((const struct hfm_ref *)a)->name, ((const struct hfm_ref *)b)->name);
}

static int has_ref(const struct hfm_refs *refs, int kind, const char *name)
{
	size_t i;

	for (i = 0; i < refs->n[kind]; i++)
		if (!strcmp(refs->v[kind][i].name, name))
			return 1;
	return 0;
}

static int gs_refs(struct hfm_refs **out, struct hfm_repo *repo, struct hfm_ctx *ctx)
{
	struct gs_repo *r = (struct gs_repo *)repo;
	struct hfm_refs *refs = hfm_refs_new(), *remote = hfm_refs_new();
	git_reference_iterator *it = NULL;
	git_reference *ref;
	git_repository *g;
	size_t i;
	int rc, k;

	if ((rc = handle_get(&g, r)))
		goto cleanup;
	if (git_reference_iterator_new(&it, g) < 0) {
		rc = git_fail(HFM_EIO, "refs");
		handle_put(r, g);
		goto cleanup;
	}
	while (git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);
		char target[HFM_SHA1_HEX + 1];
		git_object *obj = NULL;
		const char *shown = NULL;
		struct hfm_refs *into = refs;
		int kind = -1;

		if (!strncmp(name, "refs/heads/", 11)) {
			kind = HFM_REFS_BRANCH;
			shown = name + 11;
		} else if (!strncmp(name, "refs/tags/", 10)) {
			kind = HFM_REFS_TAG;
			shown = name + 10;
		} else if (!strncmp(name, "refs/convert/", 13)) {
			kind = HFM_REFS_CONVERT;
			shown = name + 13;
		} else if (!strncmp(name, "refs/pr/", 8)) {
			kind = HFM_REFS_PR;
			shown = name;            /* the Hub names PRs "refs/pr/N" */
		} else if (!r->bare && !strncmp(name, "refs/remotes/origin/", 20) &&
			   strcmp(name + 20, "HEAD")) {
			kind = HFM_REFS_BRANCH;
			shown = name + 20;
			into = remote;
		}
		if (kind >= 0 && git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
			git_oid_tostr(target, sizeof(target), git_object_id(obj));
			if (into == remote) {
				char *full = hfm_asprintf("refs/heads/%s", shown);
				hfm_refs_add(into, kind, shown, full, target);
				free(full);
			} else {
				hfm_refs_add(into, kind, shown, name, target);
			}
		}
		git_object_free(obj);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	handle_put(r, g);
	/* a clone's remote-tracking branches stand in for the missing local ones */
	for (i = 0; i < remote->n[HFM_REFS_BRANCH]; i++) {
		const struct hfm_ref *b = &remote->v[HFM_REFS_BRANCH][i];

		if (!has_ref(refs, HFM_REFS_BRANCH, b->name))
			hfm_refs_add(refs, HFM_REFS_BRANCH, b->name, b->ref, b->target);
	}
	for (k = 0; k < 4; k++)
		if (refs->n[k])
			qsort(refs->v[k], refs->n[k], sizeof(struct hfm_ref), cmp_ref);
cleanup:
	hfm_refs_free(remote);
	if (rc) {
		hfm_refs_free(refs);
		return rc;
	}
	*out = refs;
	return 0;
}

static void fill_commit(struct hfm_commit *out, const git_commit *c)
{
	const git_signature *a = git_commit_author(c);

	git_oid_tostr(out->id, sizeof(out->id), git_commit_id(c));
	out->date_ms = commit_ms(c);
	out->title = commit_title(c);
	out->message = commit_body(c);
	out->author = a && a->name && a->name[0] ? hfm_strdup(a->name) : NULL;
}

/* First-parent history, as lastCommit sees it; a shallow clone ends early. */
static int gs_commits(struct hfm_commits **out, struct hfm_repo *repo, const char *commit,
		      size_t skip, size_t limit, struct hfm_ctx *ctx)
{
	struct gs_repo *r = (struct gs_repo *)repo;
	struct hfm_commits *list;
	git_repository *g;
	git_commit *c = NULL, *p;
	size_t i;
	int rc;

	if ((rc = handle_get(&g, r)))
		return rc;
	if ((rc = commit_lookup_hex(&c, g, commit))) {
		handle_put(r, g);
		return rc;
	}
	list = hfm_calloc(1, sizeof(*list));
	for (i = 0; c && i < skip; i++) {
		p = first_parent(c);
		git_commit_free(c);
		c = p;
	}
	while (c && list->n < limit) {
		if (list->n % 64 == 0)
			list->v = hfm_realloc(list->v, (list->n + 64) * sizeof(*list->v));
		fill_commit(&list->v[list->n++], c);
		p = first_parent(c);
		git_commit_free(c);
		c = p;
	}
	list->more = c != NULL;
	git_commit_free(c);
	handle_put(r, g);
	*out = list;
	return 0;
}

/* ---- bodies ------------------------------------------------------------ */

static void body_init(struct hfm_body *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->source_kind = "git";
}

static void body_fd(struct hfm_body *out, int fd, uint64_t size)
{
	out->kind = HFM_BODY_FD;
	out->fd = fd;
	out->offset = 0;
	out->size = size;
}

/* Read a blob into `*data` (malloc'd, caller frees) with one pooled handle. */
static int blob_read(char **data, size_t *len, struct gs_repo *r, const char *hex)
{
	git_repository *g;
	git_blob *b = NULL;
	git_oid id;
	int rc;

	if (git_oid_fromstr(&id, hex) < 0)
		return hfm_error_set(HFM_EINVAL, "bad blob id %s", hex);
	if ((rc = handle_get(&g, r)))
		return rc;
	if (git_blob_lookup(&b, g, &id) < 0) {
		rc = git_fail(HFM_EIO, hex);
	} else {
		*len = (size_t)git_blob_rawsize(b);
		*data = hfm_malloc(*len ? *len : 1);
		memcpy(*data, git_blob_rawcontent(b), *len);
		git_blob_free(b);
	}
	handle_put(r, g);
	return rc;
}

/*
 * A small blob as a memory body, from the cache of recently served ones
 * when it is there: the id names the content, so a hit is never stale, and
 * a hot file is not inflated again for every request.
 */
static int open_small_blob(struct hfm_body *out, struct gs_repo *r, const char *hex)
{
	struct hfm_memlru_item *it;
	git_repository *g;
	git_blob *b = NULL;
	git_oid id;
	int rc;

	if (git_oid_fromstr(&id, hex) < 0)
		return hfm_error_set(HFM_EINVAL, "bad blob id %s", hex);
	if (!(it = hfm_memlru_get(r->gs->small, id.id))) {
		if ((rc = handle_get(&g, r)))
			return rc;
		if (git_blob_lookup(&b, g, &id) < 0) {
			rc = git_fail(HFM_EIO, hex);
			handle_put(r, g);
			return rc;
		}
		it = hfm_memlru_put(r->gs->small, id.id, git_blob_rawcontent(b),
				    (size_t)git_blob_rawsize(b));
		git_blob_free(b);
		handle_put(r, g);
	}
	out->kind = HFM_BODY_MEM;
	out->mem = it->data;
	out->size = it->size;
	out->mem_free = hfm_memlru_unref;
	out->mem_cls = it;
	return 0;
}

/* A second, independent open file description of fd (its own offset). */
static int reopen_fd(int fd)
{
	char p[64];
	int nfd;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	nfd = open(p, O_RDONLY | O_CLOEXEC);
	return nfd >= 0 ? nfd : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* An unlinked temp file in the store's tmp/ or $TMPDIR. */
static int tmp_file(struct gitsrc *gs)
{
	const char *dir = getenv("TMPDIR");
	char *tmpl;
	int fd;

	if (gs->store) {
		fd = openat(gs->store->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		tmpl = hfm_asprintf("%s/tmp/hfm-git-XXXXXX", gs->store->root);
	} else {
		if (!dir || !dir[0])
			dir = "/tmp";
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		tmpl = hfm_asprintf("%s/hfm-git-XXXXXX", dir);
	}
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd >= 0)
		unlink(tmpl);
	free(tmpl);
	return fd;
}

/* An fd of the cached inflated blob `oid`, or -1.  Under big_lock. */
static int big_lookup(struct gitsrc *gs, const char *oid)
{
	int i;

	for (i = 0; i < BIG_CACHE; i++) {
		if (gs->big[i].fd >= 0 && !strcmp(gs->big[i].oid, oid)) {
			gs->big[i].used = ++gs->big_tick;
			return reopen_fd(gs->big[i].fd);
		}
	}
	return -1;
}

/* Keep `fd` in the cache if it fits; returns the caller's fd.  Under big_lock. */
static int big_insert(struct gitsrc *gs, const char *oid, int fd, uint64_t size)
{
	int i, lru, caller;

	if (size > BIG_CACHE_BYTES)
		return fd;
	for (;;) {
		lru = -1;
		for (i = 0; i < BIG_CACHE; i++) {
			if (gs->big[i].fd < 0 && gs->big_bytes + size <= BIG_CACHE_BYTES)
				goto found;
			if (gs->big[i].fd >= 0 && (lru < 0 || gs->big[i].used < gs->big[lru].used))
				lru = i;
		}
		close(gs->big[lru].fd);
		gs->big[lru].fd = -1;
		gs->big_bytes -= gs->big[lru].size;
	}
found:
	if ((caller = reopen_fd(fd)) < 0)
		return fd;
	memcpy(gs->big[i].oid, oid, sizeof(gs->big[i].oid));
	gs->big[i].fd = fd;
	gs->big[i].size = size;
	gs->big[i].used = ++gs->big_tick;
	gs->big_bytes += size;
	return caller;
}

/*
 * A blob too large for memory bodies.  libgit2 can only inflate a packed
 * object whole, so it is inflated once (one at a time, which bounds memory),
 * written to an unlinked temp file, and that file is served and cached.
 */
static int open_big_blob(struct hfm_body *out, struct gs_repo *r, const char *oid,
			 uint64_t size)
{
	struct gitsrc *gs = r->gs;
	uint64_t ssize;
	char *data = NULL;
	size_t len = (size_t)size;
	int fd, rc = 0;

	if (gs->store && hfm_store_object_open(&fd, &ssize, gs->store, oid) == 0) {
		if (ssize == size) {
			body_fd(out, fd, size);
			return 0;
		}
		close(fd);
	}
	pthread_mutex_lock(&gs->big_lock);
	fd = big_lookup(gs, oid);
	pthread_mutex_unlock(&gs->big_lock);
	if (fd >= 0) {
		body_fd(out, fd, size);
		return 0;
	}
	if (size > BLOB_MAX)
		return hfm_error_set(HFM_EUNAVAIL, "blob %s is %llu bytes, too large to serve "
				     "from git; import it into the store", oid,
				     (unsigned long long)size);
	pthread_mutex_lock(&gs->extract_lock);
	pthread_mutex_lock(&gs->big_lock);
	fd = big_lookup(gs, oid);            /* another request may have just made it */
	pthread_mutex_unlock(&gs->big_lock);
	if (fd < 0 && (rc = blob_read(&data, &len, r, oid)) == 0) {
		if ((fd = tmp_file(gs)) < 0 || hfm_write_all(fd, data, len) < 0) {
			rc = hfm_error_set(HFM_EIO, "temp file for blob %s: %s", oid,
					   strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
		} else {
			pthread_mutex_lock(&gs->big_lock);
			fd = big_insert(gs, oid, fd, len);
			pthread_mutex_unlock(&gs->big_lock);
		}
		free(data);
	}
	pthread_mutex_unlock(&gs->extract_lock);
	if (rc)
		return rc;
	body_fd(out, fd, len);
	return 0;
}

/* Open an LFS object of exactly `size` bytes at `path`; -1 if not there. */
static int open_sized(const char *path, uint64_t size, int *wrong_size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size)
		return fd;
	*wrong_size = 1;
	close(fd);
	return -1;
}

static int open_lfs(struct hfm_body *out, struct gs_repo *r, const struct hfm_entry *e)
{
	const char *oid = e->lfs_oid;
	char *path = hfm_asprintf("%s/%.2s/%.2s/%s", r->lfs_dir, oid, oid + 2, oid);
	uint64_t ssize;
	int fd, wrong = 0;

	fd = open_sized(path, e->size, &wrong);
	free(path);
	if (fd < 0 && r->gs->store && hfm_store_object_open(&fd, &ssize, r->gs->store, oid) == 0 &&
	    ssize != e->size) {
		close(fd);
		fd = -1;
		wrong = 1;
	}
	if (fd < 0)
		return hfm_error_set(HFM_EUNAVAIL, "the LFS object %s of %s is missing from this "
				     "mirror%s", oid, e->path,
				     wrong ? " (a copy of the wrong size was ignored)" : "");
	body_fd(out, fd, e->size);
	return 0;
}

static int gs_open(struct hfm_body *out, struct hfm_repo *repo, const char *commit,
		   const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx)
{
	struct gs_repo *r = (struct gs_repo *)repo;
	uint64_t size;

	body_init(out);
	if (e->is_dir)
		return hfm_error_set(HFM_ENOENT, "%s is a directory", e->path);
	if (e->is_lfs && !(flags & HFM_OPEN_RAW))
		return open_lfs(out, r, e);
	size = e->is_lfs ? e->pointer_size : e->size;
	if (size > r->gs->mem_max)
		return open_big_blob(out, r, e->oid, size);
	return open_small_blob(out, r, e->oid);
}

/* ---- list_repos -------------------------------------------------------- */

struct name_set {
	char **v;
	size_t n, cap;
};

static void name_add(struct name_set *ns, enum hfm_repo_type t, const char *org,
		     const char *dname)
{
	size_t dl = strlen(dname);
	char *name = hfm_strdup(dname);
	struct hfm_repo_id id;

	if (dl > 4 && !strcmp(name + dl - 4, ".git"))
		name[dl - 4] = '\0';
	if (hfm_repo_id_set(&id, t, org, name) == 0) {
		if (ns->n == ns->cap) {
			ns->cap = ns->cap ? ns->cap * 2 : 32;
			ns->v = hfm_realloc(ns->v, ns->cap * sizeof(*ns->v));
		}
		ns->v[ns->n++] = hfm_strdup(id.name);
	}
	free(name);
}

static int is_subdir(const char *dir, const char *name, char **out)
{
	struct stat st;

	if (name[0] == '.')
		return 0;
	*out = hfm_asprintf("%s/%s", dir, name);
	if (stat(*out, &st) == 0 && S_ISDIR(st.st_mode))
		return 1;
	free(*out);
	return 0;
}

/* `base` = <dir>/<plural>: canonical repos directly, org/name one level down. */
static void scan_type_dir(struct name_set *ns, const char *base, enum hfm_repo_type t)
{
	DIR *d = opendir(base), *d2;
	struct dirent *de, *de2;
	char *org, *rd;

	while (d && (de = readdir(d))) {
		if (!is_subdir(base, de->d_name, &org))
			continue;
		if (looks_like_repo(org)) {
			name_add(ns, t, NULL, de->d_name);
			free(org);
			continue;
		}
		d2 = opendir(org);
		while (d2 && (de2 = readdir(d2))) {
			if (!is_subdir(org, de2->d_name, &rd))
				continue;
			if (looks_like_repo(rd))
				name_add(ns, t, de->d_name, de2->d_name);
			free(rd);
		}
		if (d2)
			closedir(d2);
		free(org);
	}
	if (d)
		closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void gs_list_repos(struct hfm_source *src, enum hfm_repo_type t,
			  void (*cb)(void *cls, const char *name), void *cls)
{
	struct gitsrc *gs = (struct gitsrc *)src;
	const char *plural = hfm_repo_type_plural(t);
	struct name_set ns = { 0 };
	char *base;
	size_t i;

	for (i = 0; i < gs->ndirs; i++) {
		base = hfm_asprintf("%s/%s", gs->dirs[i], plural);
		scan_type_dir(&ns, base, t);
		free(base);
	}
	if (gs->store) {
		base = hfm_asprintf("%s/mirrors/%s", gs->store->root, plural);
		scan_type_dir(&ns, base, t);
		free(base);
	}
	if (ns.n)
		qsort(ns.v, ns.n, sizeof(*ns.v), cmp_str);
	for (i = 0; i < ns.n; i++) {
		if (!i || strcmp(ns.v[i], ns.v[i - 1]))
			cb(cls, ns.v[i]);
	}
	for (i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
}

static const char *gs_git_path(struct hfm_repo *repo)
{
	return ((struct gs_repo *)repo)->path;
}

/* ---- lifetime ---------------------------------------------------------- */

static void gs_free(struct hfm_source *src)
{
	struct gitsrc *gs = (struct gitsrc *)src;
	struct gs_repo *r, *next;
	size_t i;

	for (r = gs->repos; r; r = next) {
		next = r->next;
		repo_free(r);
	}
	for (i = 0; i < BIG_CACHE; i++)
		if (gs->big[i].fd >= 0)
			close(gs->big[i].fd);
	hfm_memlru_free(gs->small);
	for (i = 0; i < gs->ndirs; i++)
		free(gs->dirs[i]);
	free(gs->dirs);
	pthread_rwlock_destroy(&gs->lock);
	pthread_mutex_destroy(&gs->big_lock);
	pthread_mutex_destroy(&gs->extract_lock);
	free(gs->base.label);
	free(gs);
	git_libgit2_shutdown();
}

static const struct hfm_source_ops git_ops = {
	.kind = "git",
	.repo_open = gs_repo_open,
	.repo_close = gs_repo_close,
	.resolve = gs_resolve,
	.list = gs_list,
	.stat = gs_stat,
	.info = NULL,
	.refs = gs_refs,
	.commits = gs_commits,
	.open = gs_open,
	.list_repos = gs_list_repos,
	.git_path = gs_git_path,
	.free = gs_free,
};

void hfm_gitsrc_tune(struct hfm_source *src, uint64_t mem_max, unsigned lastcommit_max)
{
	struct gitsrc *gs = (struct gitsrc *)src;

	if (mem_max)
		gs->mem_max = mem_max;
	if (lastcommit_max)
		gs->lastcommit_max = lastcommit_max;
}

int hfm_gitsrc_new(struct hfm_source **out, const char *const *dirs, size_t ndirs,
		   const struct hfm_store *store)
{
	struct hfm_buf label = HFM_BUF_INIT(1 << 16);
	struct gitsrc *gs;
	char real[PATH_MAX];
	struct stat st;
	size_t i;

	if (!ndirs && !store)
		return hfm_error_set(HFM_EINVAL, "git mirrors: no directory and no store");
	gs = hfm_calloc(1, sizeof(*gs));
	gs->dirs = hfm_calloc(ndirs ? ndirs : 1, sizeof(*gs->dirs));
	for (i = 0; i < ndirs; i++) {
		const char *why = NULL;

		if (!realpath(dirs[i], real) || stat(real, &st) < 0)
			why = strerror(errno);
		else if (!S_ISDIR(st.st_mode))
			why = "not a directory";
		if (why) {
			int rc = hfm_error_set(HFM_EIO, "mirrors path %s: %s", dirs[i], why);

			hfm_buf_dispose(&label);
			while (gs->ndirs)
				free(gs->dirs[--gs->ndirs]);
			free(gs->dirs);
			free(gs);
			return rc;
		}
		gs->dirs[gs->ndirs++] = hfm_strdup(real);
		hfm_buf_printf(&label, "%s%s", i ? ", " : "", real);
	}
	if (store)
		hfm_buf_printf(&label, "%s%s/mirrors", ndirs ? ", " : "", store->root);
	gs->base.ops = &git_ops;
	gs->base.label = hfm_buf_detach(&label);
	gs->store = store;
	gs->mem_max = DEFAULT_MEM_MAX;
	gs->lastcommit_max = DEFAULT_LASTCOMMIT_MAX;
	for (i = 0; i < BIG_CACHE; i++)
		gs->big[i].fd = -1;
	pthread_rwlock_init(&gs->lock, NULL);
	gs->small = hfm_memlru_new(SMALL_CACHE_BYTES, SMALL_CACHE_ITEM);
	pthread_mutex_init(&gs->big_lock, NULL);
	pthread_mutex_init(&gs->extract_lock, NULL);
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	*out = &gs->base;
	return 0;
}
