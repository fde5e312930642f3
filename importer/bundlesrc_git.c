/*
 * bundlesrc_git.c - a bundle's git mirrors: index the pack in the staging
 * area, check it, then publish it and move the refs (bundlesrc.h).
 *
 * The checks, before anything is published: git's indexer hashes every
 * object of the pack (so every tree id is recomputed from its entries);
 * each ref's target exists; each revision's tree, walked as the exporter
 * walked it, gives exactly the manifest's file list (paths, blob ids, LFS
 * oids and sizes); and the history the refs reach is complete down to
 * commits the mirror already had (or the shallow boundary).
 *
 * The refs move at once: the mirror's loose refs are packed first (git
 * pack-refs: the same values), then a new packed-refs with the bundle's
 * refs replaces the old one by rename, under git's own packed-refs.lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/fsutil.h"
#include "bundlesrc.h"
#include "keyset.h"
#include "mirror.h"

#define LFS_POINTER_MAX 1024
#define INDEX_CHUNK ((size_t)8 << 20)

static char *scratch_path(const struct hfm_imp_bundle *b, size_t ri)
{
	return hfm_asprintf("%s/git/%zu", hfm_imp_stage_path(b->st), ri);
}

/* Open the store's mirror of r, if there is one (NULL otherwise). */
static git_repository *open_mirror(const struct hfm_imp_bundle *b, const struct hfm_bundle_repo *r)
{
	struct hfm_buf path = HFM_BUF_INIT(HFM_PATH_MAX);
	git_repository *repo = NULL;
	struct stat st;

	hfm_store_mirror_path(&path, b->store, &r->id);
	if (stat(path.ptr, &st) == 0)
		git_repository_open_ext(&repo, path.ptr, GIT_REPOSITORY_OPEN_NO_SEARCH |
					GIT_REPOSITORY_OPEN_BARE, NULL);
	hfm_buf_dispose(&path);
	return repo;
}

static int index_pack(struct hfm_imp_bundle *b, size_t ri, const struct hfm_bundle_item *it,
		      const char *scratch, git_odb *old)
{
	struct hfm_imp_bundle_repo *res = &b->repos[ri];
	git_indexer_options opts;
	git_indexer_progress stats;
	git_indexer *idx = NULL;
	char *packdir = hfm_asprintf("%s/objects/pack", scratch), *buf = NULL;
	char key[HFM_IMP_STAGE_KEY_MAX];
	int fd, rc = 0;
	ssize_t n;

	hfm_imp_stage_key(key, it);
	fd = openat(hfm_imp_stage_fd(b->st), key, O_RDONLY | O_CLOEXEC);
	memset(&stats, 0, sizeof(stats));
	git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
	if (fd < 0) {
		rc = hfm_error_set(HFM_EIO, "%s: %s", it->name, strerror(errno));
		goto out;
	}
	if (git_indexer_new(&idx, packdir, 0, old, &opts) < 0) {
		rc = hfm_imp_git_error(it->name);
		goto out;
	}
	buf = hfm_malloc(INDEX_CHUNK);
	while ((n = read(fd, buf, INDEX_CHUNK)) > 0)
		if (git_indexer_append(idx, buf, (size_t)n, &stats) < 0) {
			rc = hfm_imp_git_error(it->name);
			goto out;
		}
	if (n < 0 || git_indexer_commit(idx, &stats) < 0) {
		rc = n < 0 ? hfm_error_set(HFM_EIO, "%s: %s", it->name, strerror(errno))
			   : hfm_imp_git_error(it->name);
		goto out;
	}
	res->pack = hfm_asprintf("pack-%s", git_indexer_name(idx));
	res->git_objects = stats.indexed_objects;
out:
	git_indexer_free(idx);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(packdir);
	return rc;
}

/* -- the file list of a tree, as the exporter lists it -- */

struct tfile {
	char *path;
	char oid[GIT_OID_HEXSZ + 1];
	uint64_t size;
	char lfs[HFM_SHA256_HEX + 1];
};

struct tlist {
	git_odb *odb;
	struct tfile *v;
	size_t n, cap;
	int rc;
};

static int tlist_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct tlist *l = payload;
	git_filemode_t mode = git_tree_entry_filemode(e);
	char *path = hfm_asprintf("%s%s", root, git_tree_entry_name(e));
	git_odb_object *o = NULL;
	git_object_t type;
	struct tfile *f;
	size_t len;

	if (!hfm_path_valid(path)) {
		free(path);
		return mode == GIT_FILEMODE_TREE ? 1 : 0;
	}
	if (mode == GIT_FILEMODE_TREE || mode == GIT_FILEMODE_COMMIT) {
		free(path);
		return 0;
	}
	if (git_odb_read_header(&len, &type, l->odb, git_tree_entry_id(e)) < 0) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
		l->rc = hfm_error_set(HFM_EINVAL, "blob %s of %s is in neither the bundle nor the "
				      "store", hex, path);
		free(path);
		return -1;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = hfm_realloc(l->v, l->cap * sizeof(*l->v));
	}
	f = &l->v[l->n++];
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->size = len;
	git_oid_tostr(f->oid, sizeof(f->oid), git_tree_entry_id(e));
	if (len <= LFS_POINTER_MAX && git_odb_read(&o, l->odb, git_tree_entry_id(e)) == 0 &&
	    hfm_lfs_pointer_parse(f->lfs, &f->size, git_odb_object_data(o), git_odb_object_size(o)))
		f->size = len, f->lfs[0] = '\0';
	git_odb_object_free(o);
	return 0;
}

static int cmp_tfile(const void *a, const void *b)
{
	return strcmp(((const struct tfile *)a)->path, ((const struct tfile *)b)->path);
}

static int cmp_mfile(const void *a, const void *b)
{
	return strcmp((*(struct hfm_bundle_file *const *)a)->path,
		      (*(struct hfm_bundle_file *const *)b)->path);
}

/* The commit's tree gives exactly the manifest's file list. */
static int check_files(git_repository *repo, git_odb *odb, const struct hfm_bundle_repo *r,
		       const struct hfm_bundle_commit *c)
{
	struct tlist l = { .odb = odb };
	struct hfm_bundle_file **mf = hfm_calloc(c->nfiles + 1, sizeof(*mf));
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	const char *diff = NULL;
	git_oid id;
	size_t i;
	int rc = 0;

	git_oid_fromstr(&id, c->sha);
	if (git_commit_lookup(&commit, repo, &id) < 0 || git_commit_tree(&tree, commit) < 0) {
		rc = hfm_error_set(HFM_EINVAL, "%s: commit %s (or its tree) is in neither the "
				   "bundle nor the store", r->id.name, c->sha);
		goto out;
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, tlist_cb, &l) < 0) {
		rc = l.rc ? l.rc : hfm_imp_git_error(r->id.name);
		goto out;
	}
	for (i = 0; i < c->nfiles; i++)
		mf[i] = &c->files[i];
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_tfile);
	if (c->nfiles)
		qsort(mf, c->nfiles, sizeof(*mf), cmp_mfile);
	for (i = 0; i < l.n && i < c->nfiles && !diff; i++)
		if (strcmp(l.v[i].path, mf[i]->path) || strcmp(l.v[i].oid, mf[i]->oid) ||
		    l.v[i].size != mf[i]->size || strcmp(l.v[i].lfs, mf[i]->lfs))
			diff = strcmp(l.v[i].path, mf[i]->path) < 0 ? l.v[i].path : mf[i]->path;
	if (!diff && l.n != c->nfiles)
		diff = l.n > c->nfiles ? l.v[c->nfiles].path : mf[l.n]->path;
	if (diff)
		rc = hfm_error_set(HFM_EINVAL, "%s@%.12s: the manifest's file list does not match "
				   "the commit's tree (first difference: %s)", r->id.name, c->sha, diff);
out:
	for (i = 0; i < l.n; i++)
		free(l.v[i].path);
	free(l.v);
	free(mf);
	git_tree_free(tree);
	git_commit_free(commit);
	return rc;
}

/* -- connectivity: everything the refs reach is here -- */

struct conn {
	git_repository *repo;
	git_odb *all, *old;              /* old: the mirror before this bundle, or NULL */
	struct hfm_imp_keyset trees;
	const struct hfm_bundle_repo *r;
};

static int tree_complete(struct conn *c, const git_oid *id)
{
	git_tree *t = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	int added, rc = 0;

	hfm_imp_keyset_put(&c->trees, id->id, &added);
	if (!added || (c->old && git_odb_exists(c->old, id)))
		return 0;
	if (git_tree_lookup(&t, c->repo, id) < 0) {
		git_oid_tostr(hex, sizeof(hex), id);
		return hfm_error_set(HFM_EINVAL, "%s: tree %s is in neither the bundle nor the store",
				     c->r->id.name, hex);
	}
	for (size_t i = 0, n = git_tree_entrycount(t); i < n && !rc; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_filemode(e) == GIT_FILEMODE_TREE) {
			rc = tree_complete(c, git_tree_entry_id(e));
		} else if (git_tree_entry_filemode(e) != GIT_FILEMODE_COMMIT &&
			   !git_odb_exists(c->all, git_tree_entry_id(e))) {
			git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
			rc = hfm_error_set(HFM_EINVAL, "%s: blob %s (%s) is in neither the bundle nor "
					   "the store", c->r->id.name, hex, git_tree_entry_name(e));
		}
	}
	git_tree_free(t);
	return rc;
}

static int is_shallow(const struct hfm_bundle_repo *r, const char *hex)
{
	for (size_t i = 0; i < r->nshallow; i++)
		if (!strcmp(r->shallow[i], hex))
			return 1;
	return 0;
}

static int history_complete(struct conn *c, const git_oid *tips, size_t ntips)
{
	struct hfm_imp_keyset seen;
	git_oid *stack = hfm_calloc(ntips + 1, sizeof(*stack));
	size_t n = ntips, cap = ntips + 1;
	int rc = 0;

	memcpy(stack, tips, ntips * sizeof(*stack));
	hfm_imp_keyset_init(&seen, GIT_OID_RAWSZ);
	while (n && !rc) {
		git_oid id = stack[--n];
		git_commit *commit = NULL;
		char hex[GIT_OID_HEXSZ + 1];
		int added;

		hfm_imp_keyset_put(&seen, id.id, &added);
		if (!added || (c->old && git_odb_exists(c->old, &id)))
			continue;            /* the mirror had it: its history is complete */
		git_oid_tostr(hex, sizeof(hex), &id);
		if (git_commit_lookup(&commit, c->repo, &id) < 0) {
			rc = hfm_error_set(HFM_EINVAL, "%s: commit %s is in neither the bundle nor the "
					   "store (the bundle relies on a history this store lacks)",
					   c->r->id.name, hex);
			break;
		}
		rc = tree_complete(c, git_commit_tree_id(commit));
		if (!rc && !is_shallow(c->r, hex)) {
			for (unsigned i = 0; i < git_commit_parentcount(commit); i++) {
				if (n == cap) {
					cap *= 2;
					stack = hfm_realloc(stack, cap * sizeof(*stack));
				}
				stack[n++] = *git_commit_parent_id(commit, i);
			}
		}
		git_commit_free(commit);
	}
	hfm_imp_keyset_dispose(&seen);
	free(stack);
	return rc;
}

int hfm_imp_bundle_git_verify(struct hfm_imp_bundle *b, size_t ri,
			      const struct hfm_bundle_item *pack)
{
	const struct hfm_bundle_repo *r = &b->m->repos[ri];
	struct hfm_buf objdir = HFM_BUF_INIT(HFM_PATH_MAX);
	git_repository *mirror = open_mirror(b, r), *repo = NULL;
	git_odb *old = NULL, *odb = NULL;
	char *scratch = scratch_path(b, ri);
	git_oid *tips = hfm_calloc(r->nrevs + 1, sizeof(*tips));
	struct conn c = { 0 };
	size_t i;
	int rc = 0;

	hfm_imp_stage_rmtree(scratch);
	if (mirror && git_repository_odb(&old, mirror) < 0) {
		rc = hfm_imp_git_error(r->id.name);
		goto out;
	}
	if (git_repository_init(&repo, scratch, 1) < 0 || git_repository_odb(&odb, repo) < 0) {
		rc = hfm_imp_git_error(scratch);
		goto out;
	}
	if (pack && (rc = index_pack(b, ri, pack, scratch, old)))
		goto out;
	git_odb_refresh(odb);
	if (mirror) {
		hfm_buf_printf(&objdir, "%s/objects", git_repository_path(mirror));
		if (git_odb_add_disk_alternate(odb, objdir.ptr) < 0) {
			rc = hfm_imp_git_error(objdir.ptr);
			goto out;
		}
	}
	for (i = 0; i < r->nrevs && !rc; i++) {
		git_object *obj = NULL, *commit = NULL;
		git_oid id;
		char hex[GIT_OID_HEXSZ + 1];
		size_t k;

		git_oid_fromstr(&id, r->revs[i].commit);
		if (git_object_lookup(&obj, repo, &id, GIT_OBJECT_ANY) < 0 ||
		    git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
			rc = hfm_error_set(HFM_EINVAL, "%s: %s names %s, which is in neither the bundle "
					   "nor the store (or is no commit)", r->id.name, r->revs[i].name,
					   r->revs[i].commit);
		} else {
			git_oid_tostr(hex, sizeof(hex), git_object_id(commit));
			for (k = 0; k < r->ncommits && strcmp(r->commits[k].sha, hex); k++)
				;
			if (k == r->ncommits)
				rc = hfm_error_set(HFM_EINVAL, "the manifest is inconsistent: %s: %s "
						   "reaches commit %s, which it does not describe",
						   r->id.name, r->revs[i].name, hex);
			tips[i] = *git_object_id(commit);
		}
		git_object_free(commit);
		git_object_free(obj);
	}
	for (i = 0; i < r->ncommits && !rc; i++)
		rc = check_files(repo, odb, r, &r->commits[i]);
	if (rc)
		goto out;
	c.repo = repo;
	c.all = odb;
	c.old = old;
	c.r = r;
	hfm_imp_keyset_init(&c.trees, GIT_OID_RAWSZ);
	rc = history_complete(&c, tips, r->nrevs);
	hfm_imp_keyset_dispose(&c.trees);
out:
	free(tips);
	free(scratch);
	git_odb_free(odb);
	git_odb_free(old);
	git_repository_free(repo);
	git_repository_free(mirror);
	hfm_buf_dispose(&objdir);
	return rc;
}

/* ---- publishing ----------------------------------------------------------------------------- */

struct pref {
	char *name;
	char oid[GIT_OID_HEXSZ + 1];
};

static int cmp_pref(const void *a, const void *b)
{
	return strcmp(((const struct pref *)a)->name, ((const struct pref *)b)->name);
}

/* The refs of packed-refs (peel lines skipped). */
static int read_packed(struct pref **out, size_t *n, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[HFM_PATH_MAX + 64];

	*out = NULL;
	*n = 0;
	if (!f)
		return errno == ENOENT ? 0 : hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t l = strcspn(line, "\r\n");

		line[l] = '\0';
		if (line[0] == '#' || line[0] == '^' || l < GIT_OID_HEXSZ + 2 ||
		    line[GIT_OID_HEXSZ] != ' ')
			continue;
		*out = hfm_realloc(*out, (*n + 1) * sizeof(**out));
		memcpy((*out)[*n].oid, line, GIT_OID_HEXSZ);
		(*out)[*n].oid[GIT_OID_HEXSZ] = '\0';
		(*out)[*n].name = hfm_strdup(line + GIT_OID_HEXSZ + 1);
		(*n)++;
	}
	fclose(f);
	return 0;
}

/* Every ref of the bundle at once: packed-refs written aside and renamed. */
static int move_refs(struct hfm_imp_bundle *b, size_t ri, git_repository *repo)
{
	const struct hfm_bundle_repo *r = &b->m->repos[ri];
	struct hfm_imp_bundle_repo *res = &b->repos[ri];
	struct hfm_buf text = HFM_BUF_INIT((size_t)1 << 30), path = HFM_BUF_INIT(HFM_PATH_MAX),
		       lock = HFM_BUF_INIT(HFM_PATH_MAX);
	struct pref *refs = NULL;
	size_t n = 0, i, j;
	git_refdb *db = NULL;
	int fd = -1, rc = 0, all_peeled = 1, tries;

	/* loose refs first into packed-refs (same values): then one file holds them all */
	if (git_repository_refdb(&db, repo) < 0 || git_refdb_compress(db) < 0) {
		rc = hfm_imp_git_error("packing the mirror's refs");
		goto out;
	}
	hfm_buf_printf(&path, "%spacked-refs", git_repository_path(repo));
	hfm_buf_printf(&lock, "%s.lock", path.ptr);
	if ((rc = read_packed(&refs, &n, path.ptr)))
		goto out;
	for (i = 0; i < r->nrevs; i++) {
		for (j = 0; j < n && strcmp(refs[j].name, r->revs[i].name); j++)
			;
		if (j == n) {
			refs = hfm_realloc(refs, (n + 1) * sizeof(*refs));
			refs[n].name = hfm_strdup(r->revs[i].name);
			n++;
			res->revs_new++;
		} else if (strcmp(refs[j].oid, r->revs[i].commit)) {
			res->revs_moved++;
		}
		memcpy(refs[j].oid, r->revs[i].commit, GIT_OID_HEXSZ + 1);
	}
	if (n)
		qsort(refs, n, sizeof(*refs), cmp_pref);
	for (i = 0; i < n; i++) {
		git_object *obj = NULL, *peeled = NULL;
		git_oid id;

		hfm_buf_printf(&text, "%s %s\n", refs[i].oid, refs[i].name);
		if (git_oid_fromstr(&id, refs[i].oid) < 0 ||
		    git_object_lookup(&obj, repo, &id, GIT_OBJECT_ANY) < 0) {
			all_peeled = 0;
		} else if (git_object_type(obj) == GIT_OBJECT_TAG) {
			char hex[GIT_OID_HEXSZ + 1];

			if (git_tag_peel(&peeled, (git_tag *)obj) == 0) {
				git_oid_tostr(hex, sizeof(hex), git_object_id(peeled));
				hfm_buf_printf(&text, "^%s\n", hex);
			} else {
				all_peeled = 0;
			}
		}
		git_object_free(peeled);
		git_object_free(obj);
	}
	hfm_error_clear();
	for (tries = 0; (fd = open(lock.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 &&
			errno == EEXIST && tries < 100; tries++)
		usleep(100 * 1000);
	if (fd < 0) {
		rc = hfm_error_set(HFM_EIO, "%s: %s%s", lock.ptr, strerror(errno), errno == EEXIST ?
				   " (another git process is writing refs; remove the file if none is)" : "");
		goto out;
	}
	{
		const char *head = all_peeled ? "# pack-refs with: peeled fully-peeled sorted \n"
					      : "# pack-refs with: sorted \n";

		if (hfm_write_all(fd, head, strlen(head)) < 0 ||
		    hfm_write_all(fd, hfm_buf_cstr(&text), text.len) < 0 || fsync(fd) < 0 ||
		    rename(lock.ptr, path.ptr) < 0) {
			rc = hfm_error_set(HFM_EIO, "%s: %s", path.ptr, strerror(errno));
			unlink(lock.ptr);
		}
	}
out:
	if (fd >= 0)
		close(fd);
	for (i = 0; i < n; i++)
		free(refs[i].name);
	free(refs);
	git_refdb_free(db);
	hfm_buf_dispose(&text);
	hfm_buf_dispose(&path);
	hfm_buf_dispose(&lock);
	return rc;
}

int hfm_imp_bundle_git_publish(struct hfm_imp_bundle *b, size_t ri)
{
	const struct hfm_bundle_repo *r = &b->m->repos[ri];
	struct hfm_imp_bundle_repo *res = &b->repos[ri];
	struct hfm_imp_job job;
	char *scratch = scratch_path(b, ri);
	git_odb *odb = NULL;
	int lock_fd = -1, rc;
	size_t i;

	hfm_imp_job_init(&job, b->opts, b->store, b->progress, NULL);
	job.id = r->id;
	job.source = hfm_asprintf("bundle %s", b->m->id);
	if ((rc = hfm_imp_mirror_open(&job, &lock_fd)))
		goto out;
	if (res->pack) {
		/* the .pack before its .idx: git finds a pack by its index */
		static const char *const ext[] = { "pack", "idx" };

		for (i = 0; i < 2 && !rc; i++) {
			char *from = hfm_asprintf("%s/objects/pack/%s.%s", scratch, res->pack, ext[i]);
			char *to = hfm_asprintf("%sobjects/pack/%s.%s", git_repository_path(job.mirror),
						res->pack, ext[i]);

			if (rename(from, to) < 0)
				rc = hfm_error_set(HFM_EIO, "publishing %s: %s", to, strerror(errno));
			free(from);
			free(to);
		}
		if (rc)
			goto out;
		if (git_repository_odb(&odb, job.mirror) == 0)
			git_odb_refresh(odb);
	}
	/* shallow before the refs (mirror.h), as the clone importer does */
	for (i = 0; i < r->nshallow; i++) {
		job.shallow = hfm_realloc(job.shallow, (job.nshallow + 1) * sizeof(*job.shallow));
		job.shallow[job.nshallow++] = hfm_strdup(r->shallow[i]);
	}
	if ((rc = hfm_imp_mirror_update(&job)) || (rc = move_refs(b, ri, job.mirror)))
		goto out;
	if (r->head) {
		char *full = hfm_asprintf("refs/heads/%s", r->head);

		if (git_repository_set_head(job.mirror, full) < 0)
			rc = hfm_imp_git_error("set HEAD");
		free(full);
	}
out:
	git_odb_free(odb);
	hfm_imp_mirror_unlock(lock_fd);
	hfm_imp_job_dispose(&job);
	free(scratch);
	return rc;
}
