/* src_modelbin.c - a directory tree as a read-only Hub (see src_modelbin.h). */
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

#include "hfm/fsutil.h"
#include "hfm/plainrepo.h"
#include "hfm/src_modelbin.h"

#define MAX_FILES 1000000
#define MAX_DEPTH 64
#define SNAP_RING 4
#define INLINE_HASH_BUDGET (8ull << 20)

struct mb_snap {
	struct hfm_snapshot base;
	char *arena;                      /* all paths */
	struct hfm_hash_key *keys;        /* per entry; files only */
	struct hfm_lfs_attrs *attrs;      /* the repo's .gitattributes */
	pthread_mutex_t fill_lock;
	uint64_t built_ns;
	struct hfm_last_commit last_commit;   /* the one commit touched everything */
};

struct mb_repo {
	struct hfm_repo base;
	struct modelbin *mb;
	char *rel;                        /* repo dir relative to the root */
	char *abs;                        /* absolute repo dir */
	pthread_mutex_t lock;
	pthread_cond_t scanned;
	struct mb_snap *ring[SNAP_RING];  /* [0] is current */
	int scanning;
	int stale;
	struct mb_repo *next;
};

/* Whether a top-level folder is a canonical repo, as of its last change. */
struct mb_shape {
	dev_t dev;
	ino_t ino;
	int64_t mtime_ns, ctime_ns;
	int canonical;
};
#define SHAPE_SLOTS 256

struct modelbin {
	struct hfm_source base;
	char *root;                       /* canonical */
	int root_fd;
	struct hfm_hasher *hasher;
	uint64_t rescan_ns;
	pthread_mutex_t lock;             /* repos, shapes */
	struct mb_repo *repos;
	struct mb_shape shapes[SHAPE_SLOTS];  /* by inode; a miss only costs a readdir */
};

static const struct hfm_source_ops modelbin_ops;

/* ---- where the repos are -------------------------------------------------- */

/*
 * One id per folder, so that the rules see the name every route uses: under
 * <root>/ (models), <root>/datasets/ and <root>/spaces/, a folder that holds
 * a file is a canonical repo, its sub-folders folders of that repo (never
 * repos "name/sub"); a folder that holds only folders is an org, each of
 * them a repo "org/name".  The folders above a repo must be real folders,
 * and a repo folder may be a symlink only to a place where no repo is (a
 * folder whose name starts with '.', say): a second name for another repo
 * would escape the rules that repo's name is given.
 */

/* The canonical path of an open fd into `out` (PATH_MAX bytes). */
static int fd_path(char *out, int fd)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, PATH_MAX - 1);
	if (n <= 0 || out[0] != '/')
		return -1;
	out[n] = '\0';
	return 0;
}

/*
 * 1 if top-level folder `rel` (below the root) holds a file of its own: a
 * canonical repo.  An org holds nothing but folders, so the answer costs a
 * read of the whole folder; it is kept per folder until the folder changes
 * (its mtime or ctime), not to read a folder of thousands of repos each time
 * one of them is opened or rescanned.  As git does with racy index entries,
 * an answer read within two seconds of the folder's last change is not kept:
 * a change in the same clock tick would leave the mtime as it was.
 */
static int holds_file(struct modelbin *mb, const char *rel)
{
	int fd = hfm_open_beneath(mb->root_fd, mb->root, rel, O_RDONLY | O_DIRECTORY);
	struct mb_shape *slot, now;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int yes = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return 0;
	}
	now.dev = st.st_dev;
	now.ino = st.st_ino;
	now.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	now.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	slot = &mb->shapes[(st.st_ino ^ st.st_dev) % SHAPE_SLOTS];
	pthread_mutex_lock(&mb->lock);
	if (slot->dev == now.dev && slot->ino == now.ino && slot->mtime_ns == now.mtime_ns &&
	    slot->ctime_ns == now.ctime_ns) {
		yes = slot->canonical;
		pthread_mutex_unlock(&mb->lock);
		close(fd);
		return yes;
	}
	pthread_mutex_unlock(&mb->lock);
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while (!yes && (de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		yes = de->d_type == DT_REG ||
		      (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode));
	}
	closedir(d);
	now.canonical = yes;
	if (hfm_now_ms() - now.ctime_ns / 1000000 > 2000) {
		pthread_mutex_lock(&mb->lock);
		*slot = now;
		pthread_mutex_unlock(&mb->lock);
	}
	return yes;
}

/*
 * 1 if the canonical path `real` is inside the root where no repo is: below
 * a name that cannot be a repo's (".store/..."), not in a repo and not a
 * folder that holds repos (the root, a type folder, an org).
 */
static int no_repo_at(struct modelbin *mb, const char *real)
{
	size_t n = strlen(mb->root), k = 0, nc = 0;
	char *rel, *comp[3], *save = NULL, *tok, *sub;
	enum hfm_repo_type t = HFM_MODEL;
	int none = 0;

	if (strncmp(real, mb->root, n) || real[n] != '/')
		return 0;
	rel = hfm_strdup(real + n + 1);
	for (tok = strtok_r(rel, "/", &save); tok && nc < 3; tok = strtok_r(NULL, "/", &save))
		comp[nc++] = tok;
	if (nc && !hfm_repo_type_parse(&t, comp[0]) && strcmp(comp[0], hfm_repo_type_plural(t)))
		t = HFM_MODEL;                   /* "model", "dataset": no type folder */
	k = t == HFM_MODEL ? 0 : 1;
	if (nc > k && !hfm_repo_segment_valid(comp[k], strlen(comp[k]))) {
		none = 1;                        /* ".store/..." */
	} else if (nc > k + 1) {
		sub = hfm_asprintf("%s%s", hfm_repo_type_prefix(t), comp[k]);
		/* in canonical repo comp[k], or in repo comp[k]/comp[k + 1] unless no name */
		none = !holds_file(mb, sub) && !hfm_repo_segment_valid(comp[k + 1], strlen(comp[k + 1]));
		free(sub);
	}
	free(rel);
	return none;
}

/* 0 if `id` may name a repo of this tree at all. */
static int id_possible(const struct hfm_repo_id *id)
{
	const char *slash = strchr(id->name, '/');
	size_t n = strlen(id->name), first = slash ? (size_t)(slash - id->name) : n;

	/* datasets/ and spaces/ hold no models; no route asks for a ".git" name */
	if (id->type == HFM_MODEL && ((first == 8 && !strncmp(id->name, "datasets", 8)) ||
				      (first == 6 && !strncmp(id->name, "spaces", 6))))
		return -1;
	return n > 4 && !strcmp(id->name + n - 4, ".git") ? -1 : 0;
}

/*
 * Open the folder of `id`, whose shape (canonical repo, or org/name) the
 * caller checked: the fd, with its canonical path in `real` (PATH_MAX
 * bytes), or -1 when the folders above it are not real, it is missing, or
 * it is a symlink to another repo's place.
 */
static int open_repo_dir(struct modelbin *mb, const struct hfm_repo_id *id, char *real)
{
	const char *prefix = hfm_repo_type_prefix(id->type);
	const char *slash = strchr(id->name, '/');
	char *parent, *want, *rel;
	int fd, ok;

	/* the folders above the repo are what their names say */
	parent = slash ? hfm_asprintf("%s%.*s", prefix, (int)(slash - id->name), id->name)
		       : hfm_strndup(prefix, prefix[0] ? strlen(prefix) - 1 : 0);
	want = parent[0] ? hfm_asprintf("%s/%s", mb->root, parent) : hfm_strdup(mb->root);
	fd = parent[0] ? hfm_open_beneath(mb->root_fd, mb->root, parent, O_RDONLY | O_DIRECTORY)
		       : dup(mb->root_fd);
	ok = fd >= 0 && fd_path(real, fd) == 0 && !strcmp(real, want);
	if (fd >= 0)
		close(fd);
	free(parent);
	free(want);
	if (!ok)
		return -1;
	rel = hfm_asprintf("%s%s", prefix, id->name);
	want = hfm_asprintf("%s/%s", mb->root, rel);
	fd = hfm_open_beneath(mb->root_fd, mb->root, rel, O_RDONLY | O_DIRECTORY);
	/* the repo folder itself: where it says, or a symlink to where no repo is */
	if (fd >= 0 && (fd_path(real, fd) || (strcmp(real, want) && !no_repo_at(mb, real)))) {
		close(fd);
		fd = -1;
	}
	free(rel);
	free(want);
	return fd;
}

/* open_repo_dir() for any id: -1 also when the tree's shape says it is none. */
static int locate(struct modelbin *mb, const struct hfm_repo_id *id, char *real)
{
	const char *slash = strchr(id->name, '/');
	char *top;
	int canonical;

	if (id_possible(id))
		return -1;
	top = slash ? hfm_asprintf("%s%.*s", hfm_repo_type_prefix(id->type),
				   (int)(slash - id->name), id->name)
		    : hfm_asprintf("%s%s", hfm_repo_type_prefix(id->type), id->name);
	canonical = holds_file(mb, top);
	free(top);
	if (canonical != !slash)         /* a canonical repo, or a repo of an org */
		return -1;
	return open_repo_dir(mb, id, real);
}

/* ---- snapshots --------------------------------------------------------- */

static void snap_release(struct hfm_snapshot *base)
{
	struct mb_snap *s = (struct mb_snap *)base;

	hfm_lfs_attrs_free(s->attrs);
	free(s->arena);
	free(s->keys);
	free(s->last_commit.title);
	free(s->base.entries);
	pthread_mutex_destroy(&s->fill_lock);
	free(s);
}

struct walk_file {
	char *path;
	struct stat st;
};

struct walk {
	struct modelbin *mb;
	const char *repo_abs;
	const char *repo_real;            /* the repo folder, all symlinks resolved */
	struct walk_file *files;
	size_t n, cap;
	struct { dev_t dev; ino_t ino; } stack[MAX_DEPTH + 1];
	int depth;
	int truncated;
};

static void walk_dir(struct walk *w, int dirfd, const char *rel_dir)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(dirfd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		char *rel;

		if (hfm_plainrepo_skip(rel_dir, de->d_name))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		rel = rel_dir[0] ? hfm_asprintf("%s/%s", rel_dir, de->d_name)
				 : hfm_strdup(de->d_name);
		if (!hfm_path_valid(rel)) {
			free(rel);
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			/* not even into another repo of the root: its rules may differ */
			char *full = hfm_asprintf("%s/%s", w->repo_abs, rel);
			int inside = hfm_path_within(w->repo_real, full);

			free(full);
			if (!inside || fstatat(dirfd, de->d_name, &st, 0) < 0) {
				free(rel);
				continue;
			}
		}
		if (S_ISDIR(st.st_mode)) {
			int i, loop = 0, sub;

			for (i = 0; i <= w->depth; i++)
				if (w->stack[i].dev == st.st_dev && w->stack[i].ino == st.st_ino)
					loop = 1;
			if (!loop && w->depth < MAX_DEPTH &&
			    (sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
				w->depth++;
				w->stack[w->depth].dev = st.st_dev;
				w->stack[w->depth].ino = st.st_ino;
				walk_dir(w, sub, rel);
				w->depth--;
				close(sub);
			}
			free(rel);
		} else if (S_ISREG(st.st_mode)) {
			if (w->n == MAX_FILES) {
				w->truncated = 1;
				free(rel);
				continue;
			}
			if (w->n == w->cap) {
				w->cap = w->cap ? w->cap * 2 : 256;
				w->files = hfm_realloc(w->files, w->cap * sizeof(*w->files));
			}
			w->files[w->n].path = rel;
			w->files[w->n].st = st;
			w->n++;
		} else {
			free(rel);
		}
	}
	closedir(d);
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct walk_file *)a)->path, ((const struct walk_file *)b)->path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/*
 * Build a snapshot of the repo directory: walk, sort, derive directories,
 * compute the commit id from the listing.
 */
static int build_snapshot(struct mb_snap **out, struct mb_repo *r)
{
	struct modelbin *mb = r->mb;
	struct walk w;
	struct mb_snap *s;
	struct hfm_buf listing = HFM_BUF_INIT((size_t)512 << 20);
	char **dirs = NULL;
	size_t ndirs = 0, capdirs = 0, i, j, k, arena_len = 0, nent;
	char *arena, real[PATH_MAX];
	int repo_fd, rc = 0;
	struct stat rst;

	/* the tree may have changed shape since the repo was first opened */
	repo_fd = locate(mb, &r->base.id, real);
	if (repo_fd < 0 || fstat(repo_fd, &rst) < 0) {
		if (repo_fd >= 0)
			close(repo_fd);
		return hfm_error_set(HFM_ENOREPO, "%s is no longer in %s", r->base.id.name,
				     mb->root);
	}
	memset(&w, 0, sizeof(w));
	w.mb = mb;
	w.repo_abs = r->abs;
	w.repo_real = real;
	w.stack[0].dev = rst.st_dev;
	w.stack[0].ino = rst.st_ino;
	walk_dir(&w, repo_fd, "");
	if (w.n)
		qsort(w.files, w.n, sizeof(*w.files), cmp_file);

	/* every ancestor directory of a file is an entry */
	for (i = 0; i < w.n; i++) {
		char *p = w.files[i].path, *slash;

		for (slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
			char *d = hfm_strndup(p, (size_t)(slash - p));

			/* files are sorted, so a repeat is always the last one added */
			if (ndirs && !strcmp(dirs[ndirs - 1], d)) {
				free(d);
				continue;
			}
			if (ndirs == capdirs) {
				capdirs = capdirs ? capdirs * 2 : 64;
				dirs = hfm_realloc(dirs, capdirs * sizeof(*dirs));
			}
			dirs[ndirs++] = d;
		}
	}
	if (ndirs)
		qsort(dirs, ndirs, sizeof(*dirs), cmp_str);
	for (i = 0, j = 0; i < ndirs; i++) {
		if (j && !strcmp(dirs[j - 1], dirs[i])) {
			free(dirs[i]);
			continue;
		}
		dirs[j++] = dirs[i];
	}
	ndirs = j;

	s = hfm_calloc(1, sizeof(*s));
	atomic_init(&s->base.refs, 1);
	s->base.release = snap_release;
	pthread_mutex_init(&s->fill_lock, NULL);
	s->built_ns = hfm_mono_ns();
	s->attrs = hfm_lfs_attrs_read(repo_fd);
	close(repo_fd);

	nent = w.n + ndirs;
	for (i = 0; i < w.n; i++)
		arena_len += strlen(w.files[i].path) + 1;
	for (i = 0; i < ndirs; i++)
		arena_len += strlen(dirs[i]) + 1;
	arena = s->arena = hfm_malloc(arena_len ? arena_len : 1);
	s->base.entries = hfm_calloc(nent ? nent : 1, sizeof(struct hfm_entry));
	s->keys = hfm_calloc(nent ? nent : 1, sizeof(struct hfm_hash_key));
	s->base.n = nent;

	hfm_buf_puts(&listing, "hfmirror model-bin v1\n");
	s->base.created_ms = INT64_MAX;
	/* merge files and dirs into one sorted array */
	for (i = 0, j = 0, k = 0; k < nent; k++) {
		struct hfm_entry *e = &s->base.entries[k];
		int take_file = j >= ndirs ||
				(i < w.n && strcmp(w.files[i].path, dirs[j]) < 0);
		const char *p = take_file ? w.files[i].path : dirs[j];
		size_t plen = strlen(p) + 1;

		memcpy(arena, p, plen);
		e->path = arena;
		arena += plen;
		if (take_file) {
			struct stat *st = &w.files[i].st;

			e->size = (uint64_t)st->st_size;
			e->mtime_ms = mtime_ms(st);
			hfm_hash_key_from_stat(&s->keys[k], st);
			e->priv = &s->keys[k];
			hfm_buf_printf(&listing, "%s%c%llu%c%lld\n", p, 0,
				       (unsigned long long)e->size, 0,
				       (long long)s->keys[k].mtime_ns);
			if (e->mtime_ms > s->base.date_ms)
				s->base.date_ms = e->mtime_ms;
			if (e->mtime_ms < s->base.created_ms)
				s->base.created_ms = e->mtime_ms;
			free(w.files[i].path);
			i++;
		} else {
			e->is_dir = 1;
			free(dirs[j]);
			j++;
		}
	}
	if (s->base.created_ms == INT64_MAX)
		s->base.created_ms = s->base.date_ms = mtime_ms(&rst);
	if (listing.err) {
		rc = hfm_error_set(HFM_ETOOBIG, "%s: listing too large", r->base.id.name);
	} else {
		hfm_sha1_hex(s->base.commit, listing.ptr, listing.len);
		memcpy(s->last_commit.id, s->base.commit, sizeof(s->last_commit.id));
		s->last_commit.date_ms = s->base.date_ms;
		s->last_commit.title = hfm_asprintf("Files of %s", r->base.id.name);
		for (k = 0; k < nent; k++)
			s->base.entries[k].last_commit = &s->last_commit;
		/* directory ids: stable per (commit, path); clients only need them unique */
		for (k = 0; k < nent; k++) {
			struct hfm_entry *e = &s->base.entries[k];
			char *t;

			if (!e->is_dir)
				continue;
			t = hfm_asprintf("tree %s %s", s->base.commit, e->path);
			hfm_sha1_hex(e->oid, t, strlen(t));
			free(t);
			atomic_store(&e->has_ids, 1);
		}
	}
	free(w.files);
	free(dirs);
	hfm_buf_dispose(&listing);
	if (rc) {
		snap_release(&s->base);
		return rc;
	}
	if (w.truncated)
		fprintf(stderr, "hfmirror: warning: %s has more than %d files; listing truncated\n",
			r->abs, MAX_FILES);
	*out = s;
	return 0;
}

static void prefetch_snapshot(struct mb_repo *r, struct mb_snap *s)
{
	size_t i;

	for (i = 0; i < s->base.n; i++) {
		struct hfm_entry *e = &s->base.entries[i];
		struct stat st;
		char *path;

		if (e->is_dir || atomic_load(&e->has_ids))
			continue;
		memset(&st, 0, sizeof(st));
		st.st_dev = (dev_t)s->keys[i].dev;
		st.st_ino = (ino_t)s->keys[i].ino;
		st.st_size = (off_t)s->keys[i].size;
		st.st_mtim.tv_sec = s->keys[i].mtime_ns / 1000000000ll;
		st.st_mtim.tv_nsec = s->keys[i].mtime_ns % 1000000000ll;
		path = hfm_asprintf("%s/%s", r->abs, e->path);
		hfm_hasher_prefetch(r->mb->hasher, path, &st);
		free(path);
	}
}

/*
 * The current snapshot, rescanned when stale.  One thread scans while others
 * keep using the previous snapshot; only the very first scan makes others
 * wait.
 */
static int current_snapshot(struct mb_snap **out, struct mb_repo *r)
{
	struct mb_snap *fresh = NULL, *old;
	uint64_t now = hfm_mono_ns();
	int rc = 0, i;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct mb_snap *cur = r->ring[0];
		int need = !cur || r->stale || now - cur->built_ns > r->mb->rescan_ns;

		if (!need || (r->scanning && cur)) {
			*out = (struct mb_snap *)hfm_snapshot_ref(&cur->base);
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
		if (!r->scanning)
			break;
		pthread_cond_wait(&r->scanned, &r->lock);
		now = hfm_mono_ns();
	}
	r->scanning = 1;
	r->stale = 0;
	pthread_mutex_unlock(&r->lock);

	rc = build_snapshot(&fresh, r);

	pthread_mutex_lock(&r->lock);
	r->scanning = 0;
	pthread_cond_broadcast(&r->scanned);
	if (rc) {
		pthread_mutex_unlock(&r->lock);
		return rc;
	}
	if (r->ring[0] && !strcmp(r->ring[0]->base.commit, fresh->base.commit)) {
		/* unchanged: keep the old one (its ids may be filled already) */
		r->ring[0]->built_ns = fresh->built_ns;
		snap_release(&fresh->base);
		fresh = NULL;
	} else {
		old = r->ring[SNAP_RING - 1];
		for (i = SNAP_RING - 1; i > 0; i--)
			r->ring[i] = r->ring[i - 1];
		r->ring[0] = fresh;
		if (old)
			hfm_snapshot_unref(&old->base);
	}
	*out = (struct mb_snap *)hfm_snapshot_ref(&r->ring[0]->base);
	pthread_mutex_unlock(&r->lock);
	if (fresh)
		prefetch_snapshot(r, fresh);
	return 0;
}

/* The snapshot for a commit: the current one or a recent one. */
static int snapshot_for(struct mb_snap **out, struct mb_repo *r, const char *commit)
{
	struct mb_snap *cur;
	int rc, i;

	if ((rc = current_snapshot(&cur, r)))
		return rc;
	if (!strcmp(cur->base.commit, commit)) {
		*out = cur;
		return 0;
	}
	hfm_snapshot_unref(&cur->base);
	pthread_mutex_lock(&r->lock);
	for (i = 1; i < SNAP_RING; i++) {
		if (r->ring[i] && !strcmp(r->ring[i]->base.commit, commit)) {
			*out = (struct mb_snap *)hfm_snapshot_ref(&r->ring[i]->base);
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", commit);
}

static void mark_stale(struct mb_repo *r)
{
	pthread_mutex_lock(&r->lock);
	r->stale = 1;
	pthread_mutex_unlock(&r->lock);
}

/* ---- ids --------------------------------------------------------------- */

static void set_ids(struct mb_snap *s, struct hfm_entry *e, const struct hfm_hash_rec *rec)
{
	pthread_mutex_lock(&s->fill_lock);
	if (!atomic_load_explicit(&e->has_ids, memory_order_acquire)) {
		e->is_lfs = hfm_lfs_wanted(s->attrs, e->path, e->size, rec->binary);
		if (e->is_lfs) {
			memcpy(e->lfs_oid, rec->sha256, sizeof(e->lfs_oid));
			e->pointer_size = (uint32_t)hfm_lfs_pointer_len(e->size);
			hfm_lfs_pointer_id(e->oid, rec->sha256, e->size);
		} else {
			memcpy(e->oid, rec->sha1, sizeof(e->oid));
		}
		atomic_store_explicit(&e->has_ids, 1, memory_order_release);
	}
	pthread_mutex_unlock(&s->fill_lock);
}

static void key_to_stat(struct stat *st, const struct hfm_hash_key *k)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)k->dev;
	st->st_ino = (ino_t)k->ino;
	st->st_size = (off_t)k->size;
	st->st_mtim.tv_sec = k->mtime_ns / 1000000000ll;
	st->st_mtim.tv_nsec = k->mtime_ns % 1000000000ll;
}

/*
 * Make the ids of `items` final.  Small files are hashed inline within a
 * per-request budget; the rest are queued and the request waits.
 */
static int fill_ids(struct mb_repo *r, struct mb_snap *s, const struct hfm_list *l,
		    struct hfm_ctx *ctx)
{
	uint64_t budget = INLINE_HASH_BUDGET;
	int pending = 0, rc;
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct hfm_entry *e = (struct hfm_entry *)l->items[i];
		struct hfm_hash_rec rec;
		struct stat st;
		char *path;

		if (e->is_dir || atomic_load_explicit(&e->has_ids, memory_order_acquire))
			continue;
		key_to_stat(&st, (const struct hfm_hash_key *)e->priv);
		path = hfm_asprintf("%s/%s", r->abs, e->path);
		rc = hfm_hasher_get(r->mb->hasher, path, &st, &rec, ctx ? ctx->waiter : NULL,
				    &budget);
		free(path);
		if (rc == 0) {
			set_ids(s, e, &rec);
		} else if (rc == HFM_EAGAIN) {
			pending = 1;
		} else {
			/* changed or unreadable: rescan so the next listing is right */
			mark_stale(r);
			return rc;
		}
	}
	return pending ? HFM_EAGAIN : 0;
}

/* ---- ops --------------------------------------------------------------- */

static int mb_repo_open(struct hfm_repo **out, struct hfm_source *src,
			const struct hfm_repo_id *id, struct hfm_ctx *ctx)
{
	struct modelbin *mb = (struct modelbin *)src;
	struct mb_repo *r;
	char *rel, real[PATH_MAX];
	int fd;

	(void)ctx;
	pthread_mutex_lock(&mb->lock);
	for (r = mb->repos; r; r = r->next) {
		if (r->base.id.type == id->type && !strcmp(r->base.id.name, id->name)) {
			pthread_mutex_unlock(&mb->lock);
			*out = &r->base;
			return 0;
		}
	}
	pthread_mutex_unlock(&mb->lock);

	if ((fd = locate(mb, id, real)) < 0)
		return HFM_ENOREPO;
	close(fd);
	rel = hfm_asprintf("%s%s", hfm_repo_type_prefix(id->type), id->name);

	r = hfm_calloc(1, sizeof(*r));
	r->base.src = src;
	r->base.id = *id;
	r->mb = mb;
	r->rel = rel;
	r->abs = hfm_asprintf("%s/%s", mb->root, rel);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->scanned, NULL);

	pthread_mutex_lock(&mb->lock);
	{
		struct mb_repo *other;
		for (other = mb->repos; other; other = other->next) {
			if (other->base.id.type == id->type && !strcmp(other->base.id.name, id->name)) {
				/* lost a race with another thread: use theirs */
				pthread_mutex_unlock(&mb->lock);
				free(r->rel);
				free(r->abs);
				pthread_mutex_destroy(&r->lock);
				pthread_cond_destroy(&r->scanned);
				free(r);
				*out = &other->base;
				return 0;
			}
		}
	}
	r->next = mb->repos;
	mb->repos = r;
	pthread_mutex_unlock(&mb->lock);
	*out = &r->base;
	return 0;
}

static void mb_repo_close(struct hfm_repo *r)
{
	(void)r; /* repos live as long as the source */
}

static int mb_resolve(struct hfm_resolved *out, struct hfm_repo *repo, const char *rev,
		      struct hfm_ctx *ctx)
{
	struct mb_repo *r = (struct mb_repo *)repo;
	struct mb_snap *s;
	int rc;

	(void)ctx;
	if (hfm_is_hex(rev, HFM_SHA1_HEX)) {
		rc = snapshot_for(&s, r, rev);
	} else if (!strcmp(rev, "main") || !strcmp(rev, "HEAD") ||
		   !strcmp(rev, "refs/heads/main")) {
		rc = current_snapshot(&s, r);
	} else {
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", rev);
	}
	if (rc)
		return rc;
	out->unconfirmed = 0;
	memcpy(out->commit, s->base.commit, sizeof(out->commit));
	out->date_ms = s->base.date_ms;
	out->created_ms = s->base.created_ms;
	hfm_snapshot_unref(&s->base);
	return 0;
}

/*
 * The common end of list and stat: fill ids when asked, drop the snapshot
 * reference taken by snapshot_for() (the list holds its own), hand out l.
 */
static int finish_list(struct hfm_list **out, struct mb_repo *r, struct mb_snap *s,
		       struct hfm_list *l, int rc, unsigned flags, struct hfm_ctx *ctx)
{
	if (rc == 0 && (flags & (HFM_LIST_IDS | HFM_LIST_EXPAND)))
		rc = fill_ids(r, s, l, ctx);
	hfm_snapshot_unref(&s->base);
	if (rc) {
		hfm_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

static int mb_list(struct hfm_list **out, struct hfm_repo *repo, const char *commit,
		   const char *path, unsigned flags, struct hfm_ctx *ctx)
{
	struct mb_repo *r = (struct mb_repo *)repo;
	struct mb_snap *s;
	struct hfm_list *l = NULL;
	int rc;

	if ((rc = snapshot_for(&s, r, commit)))
		return rc;
	rc = hfm_snapshot_list(&l, &s->base, path, !!(flags & HFM_LIST_RECURSIVE));
	return finish_list(out, r, s, l, rc, flags, ctx);
}

static int mb_stat(struct hfm_list **out, struct hfm_repo *repo, const char *commit,
		   const char *const *paths, size_t n, unsigned flags, struct hfm_ctx *ctx)
{
	struct mb_repo *r = (struct mb_repo *)repo;
	struct mb_snap *s;
	struct hfm_list *l = NULL;
	int rc;

	if ((rc = snapshot_for(&s, r, commit)))
		return rc;
	rc = hfm_snapshot_stat(&l, &s->base, paths, n);
	return finish_list(out, r, s, l, rc, flags, ctx);
}

static int mb_refs(struct hfm_refs **out, struct hfm_repo *repo, struct hfm_ctx *ctx)
{
	struct mb_repo *r = (struct mb_repo *)repo;
	struct mb_snap *s;
	int rc;

	(void)ctx;
	if ((rc = current_snapshot(&s, r)))
		return rc;
	*out = hfm_refs_new();
	hfm_refs_add(*out, HFM_REFS_BRANCH, "main", "refs/heads/main", s->base.commit);
	hfm_snapshot_unref(&s->base);
	return 0;
}

static int mb_commits(struct hfm_commits **out, struct hfm_repo *repo, const char *commit,
		      size_t skip, size_t limit, struct hfm_ctx *ctx)
{
	struct mb_repo *r = (struct mb_repo *)repo;
	struct hfm_commits *c;
	struct mb_snap *s;
	int rc;

	(void)ctx;
	if ((rc = snapshot_for(&s, r, commit)))
		return rc;
	c = hfm_calloc(1, sizeof(*c));
	if (skip == 0 && limit > 0) {
		c->v = hfm_calloc(1, sizeof(*c->v));
		c->n = 1;
		memcpy(c->v[0].id, s->base.commit, sizeof(c->v[0].id));
		c->v[0].date_ms = s->base.date_ms;
		c->v[0].title = hfm_asprintf("Files of %s", repo->id.name);
		c->v[0].message = hfm_asprintf("Served by hfmirror from the directory %s", r->abs);
		c->v[0].author = hfm_strdup("hfmirror");
	}
	hfm_snapshot_unref(&s->base);
	*out = c;
	return 0;
}

struct mem_body {
	struct hfm_buf buf;
};

static void mem_body_free(void *cls)
{
	struct mem_body *m = cls;

	hfm_buf_dispose(&m->buf);
	free(m);
}

static int mb_open(struct hfm_body *out, struct hfm_repo *repo, const char *commit,
		   const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx)
{
	struct mb_repo *r = (struct mb_repo *)repo;
	const struct hfm_hash_key *want = e->priv;
	struct hfm_hash_key got;
	struct stat st;
	char real[PATH_MAX];
	int fd, repo_fd, current;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->source_kind = "model-bin";
	if ((flags & HFM_OPEN_RAW) && e->is_lfs) {
		struct mem_body *m = hfm_calloc(1, sizeof(*m));

		hfm_buf_init(&m->buf, 1024);
		hfm_lfs_pointer(&m->buf, e->lfs_oid, e->size);
		out->kind = HFM_BODY_MEM;
		out->mem = m->buf.ptr;
		out->size = m->buf.len;
		out->mem_free = mem_body_free;
		out->mem_cls = m;
		return 0;
	}
	/* beneath the repo's folder: a symlink into another repo is not followed */
	repo_fd = hfm_open_beneath(r->mb->root_fd, r->mb->root, r->rel, O_RDONLY | O_DIRECTORY);
	if (repo_fd >= 0 && fd_path(real, repo_fd) == 0)
		fd = hfm_open_beneath(repo_fd, real, e->path, O_RDONLY);
	else
		fd = -1;
	if (repo_fd >= 0) {
		int err = errno;
		close(repo_fd);
		errno = err;
	}
	if (fd >= 0 && fstat(fd, &st)) {
		int err = errno;

		close(fd);
		return hfm_error_set(HFM_EIO, "cannot stat %s: %s", e->path, strerror(err));
	}
	if (fd >= 0)
		hfm_hash_key_from_stat(&got, &st);
	if (fd < 0 || memcmp(&got, want, sizeof(got))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		if (fd < 0 && err == EXDEV)
			return hfm_error_set(HFM_ENOENT, "%s resolves outside its repo", e->path);
		/*
		 * The file changed since the listing.  On the current commit,
		 * rescan and have the request run again; an older commit's file
		 * is simply gone.
		 */
		pthread_mutex_lock(&r->lock);
		current = r->ring[0] && !strcmp(r->ring[0]->base.commit, commit);
		if (current)
			r->stale = 1;
		pthread_mutex_unlock(&r->lock);
		if (!current)
			return hfm_error_set(HFM_ENOENT, "%s changed after commit %s", e->path,
					     commit);
		if (ctx && ctx->waiter)
			hfm_waiter_wake(ctx->waiter);
		return HFM_EAGAIN;
	}
	out->kind = HFM_BODY_FD;
	out->fd = fd;
	out->offset = 0;
	out->size = (uint64_t)st.st_size;
	return 0;
}

/*
 * The repos of type t, as locate() finds them: under the type's folder, a
 * folder that holds files is a canonical repo, any other is an org whose
 * folders are repos.
 */
static void list_dir_repos(struct modelbin *mb, enum hfm_repo_type t,
			   void (*cb)(void *cls, const char *name), void *cls)
{
	const char *prefix = hfm_repo_type_prefix(t);
	char *top = hfm_asprintf("%s/%s", mb->root, prefix);
	DIR *d = opendir(top), *d2;
	struct dirent *de, *de2;
	char real[PATH_MAX];
	int fd;

	while (d && (de = readdir(d))) {
		struct hfm_repo_id id;
		char *sub;
		int canonical;

		if (hfm_repo_id_set(&id, t, NULL, de->d_name) || id_possible(&id))
			continue;
		sub = hfm_asprintf("%s%s", prefix, de->d_name);
		canonical = holds_file(mb, sub);
		free(sub);
		if (canonical) {
			if ((fd = open_repo_dir(mb, &id, real)) >= 0) {
				close(fd);
				cb(cls, id.name);
			}
			continue;
		}
		sub = hfm_asprintf("%s/%s", top, de->d_name);
		d2 = opendir(sub);
		free(sub);
		while (d2 && (de2 = readdir(d2))) {
			if (hfm_repo_id_set(&id, t, de->d_name, de2->d_name) || id_possible(&id) ||
			    (fd = open_repo_dir(mb, &id, real)) < 0)
				continue;
			close(fd);
			cb(cls, id.name);
		}
		if (d2)
			closedir(d2);
	}
	if (d)
		closedir(d);
	free(top);
}

static void mb_list_repos(struct hfm_source *src, enum hfm_repo_type t,
			  void (*cb)(void *cls, const char *name), void *cls)
{
	struct modelbin *mb = (struct modelbin *)src;

	list_dir_repos(mb, t, cb, cls);
}

static void mb_free(struct hfm_source *src)
{
	struct modelbin *mb = (struct modelbin *)src;
	struct mb_repo *r = mb->repos, *next;
	int i;

	for (; r; r = next) {
		next = r->next;
		for (i = 0; i < SNAP_RING; i++)
			if (r->ring[i])
				hfm_snapshot_unref(&r->ring[i]->base);
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->scanned);
		free(r->rel);
		free(r->abs);
		free(r);
	}
	close(mb->root_fd);
	pthread_mutex_destroy(&mb->lock);
	free(mb->root);
	free(mb->base.label);
	free(mb);
}

static const struct hfm_source_ops modelbin_ops = {
	.kind = "model-bin",
	.repo_open = mb_repo_open,
	.repo_close = mb_repo_close,
	.resolve = mb_resolve,
	.list = mb_list,
	.stat = mb_stat,
	.info = NULL,
	.refs = mb_refs,
	.commits = mb_commits,
	.open = mb_open,
	.list_repos = mb_list_repos,
	.free = mb_free,
};

struct prefetch_ctx {
	struct modelbin *mb;
	enum hfm_repo_type type;
};

static void prefetch_repo(void *cls, const char *name)
{
	struct prefetch_ctx *pc = cls;
	struct hfm_repo_id id;
	struct hfm_repo *repo;
	struct mb_snap *s;

	id.type = pc->type;
	snprintf(id.name, sizeof(id.name), "%s", name);
	if (mb_repo_open(&repo, &pc->mb->base, &id, NULL) == 0 &&
	    current_snapshot(&s, (struct mb_repo *)repo) == 0) {
		prefetch_snapshot((struct mb_repo *)repo, s);
		hfm_snapshot_unref(&s->base);
	}
}

void hfm_modelbin_prefetch_all(struct hfm_source *src)
{
	struct prefetch_ctx pc;
	int t;

	pc.mb = (struct modelbin *)src;
	for (t = 0; t < HFM_REPO_TYPES; t++) {
		pc.type = (enum hfm_repo_type)t;
		mb_list_repos(src, pc.type, prefetch_repo, &pc);
	}
}

int hfm_modelbin_new(struct hfm_source **out, const char *root, struct hfm_hasher *hasher,
		     double rescan_interval)
{
	struct modelbin *mb;
	char real[PATH_MAX];
	struct stat st;

	if (!realpath(root, real) || stat(real, &st) < 0)
		return hfm_error_set(HFM_EIO, "%s: %s", root, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return hfm_error_set(HFM_EIO, "%s: not a directory", root);
	mb = hfm_calloc(1, sizeof(*mb));
	mb->base.ops = &modelbin_ops;
	mb->base.label = hfm_strdup(real);
	mb->root = hfm_strdup(real);
	mb->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mb->root_fd < 0) {
		int err = errno;
		free(mb->root);
		free(mb->base.label);
		free(mb);
		return hfm_error_set(HFM_EIO, "%s: %s", root, strerror(err));
	}
	mb->hasher = hasher;
	mb->rescan_ns = (uint64_t)(rescan_interval * 1e9);
	pthread_mutex_init(&mb->lock, NULL);
	*out = &mb->base;
	return 0;
}
