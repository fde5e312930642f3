/*
 * export.c - hfmirror export and hfmirror receipt (export.h).
 *
 * An export reads the store in two passes: the plan (which revisions, their
 * commits and file lists, which metadata files, git packs and objects, and
 * what the receipt lets it leave out) fills the manifest; then the payload
 * is written in manifest order.  Metadata files are hashed when planned and
 * again while written, so one that changes in between fails the export
 * instead of the import.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <git2.h>

#include "hfm/bundle.h"
#include "hfm/bundleio.h"
#include "hfm/config.h"
#include "hfm/export.h"
#include "hfm/fsutil.h"
#include "hfm/grants.h"
#include "hfm/hash.h"
#include "hfm/receipt.h"
#include "hfm/store.h"
#include "hfm/sync.h"

#define LFS_POINTER_MAX 1024         /* as src_git.c: git-lfs pointers are smaller */
#define META_MAX ((size_t)512 << 20) /* as src_cache.c: a whole paged tree */
#define PACK_BUF ((size_t)8 << 20)
#define SAY_EVERY_NS (5ull * 1000000000ull)

static int is_sha(const char *s)
{
	return strlen(s) == HFM_SHA1_HEX && hfm_is_hex(s, HFM_SHA1_HEX);
}

static int git_fail(const char *what)
{
	const git_error *e = git_error_last();

	return hfm_error_set(HFM_ERROR, "%s: %s", what, e && e->message ? e->message : "libgit2 failed");
}

/* ---- reading the store ------------------------------------------------------------- */

/* Read <root>/rel (at most max bytes) into out; HFM_ENOENT when absent. */
static int read_rel(struct hfm_buf *out, int root_fd, const char *rel, size_t max)
{
	struct stat st;
	int fd = openat(root_fd, rel, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	char *p;

	if (fd < 0)
		return errno == ENOENT ? HFM_ENOENT : hfm_error_set(HFM_EIO, "%s: %s", rel, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		return hfm_error_set(HFM_EIO, "%s: not a regular file of at most %zu bytes", rel, max);
	}
	p = hfm_buf_reserve(out, (size_t)st.st_size);
	while (p && got < (size_t)st.st_size) {
		ssize_t n = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!p || got != (size_t)st.st_size)
		return hfm_error_set(HFM_EIO, "%s: cannot read it", rel);
	out->len += got;
	out->ptr[out->len] = '\0';
	return 0;
}

static int is_dir_at(int root_fd, const char *rel)
{
	struct stat st;

	return fstatat(root_fd, rel, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The names in directory rel, sorted; no dot files and no "*.tmp" (the
 * cache's files being written).  want: 0 files, 1 directories, -1 both.
 * An absent directory has no names.
 */
static int list_names(char ***out, size_t *n, int root_fd, const char *rel, int want)
{
	int fd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return errno == ENOENT || errno == ENOTDIR ? 0 :
		       hfm_error_set(HFM_EIO, "%s: %s", rel, strerror(errno));
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		struct stat st;

		if (de->d_name[0] == '.' || (l > 4 && !strcmp(de->d_name + l - 4, ".tmp")))
			continue;
		if (want >= 0 && (fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
				  (want == 1) != !!S_ISDIR(st.st_mode) ||
				  (want == 0 && !S_ISREG(st.st_mode))))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = hfm_realloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = hfm_strdup(de->d_name);
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), cmp_str);
	return 0;
}

typedef int file_fn(void *cls, const char *relpath);

/* Every regular file below root/base/sub, as "sub/..." paths, sorted per directory. */
static int walk_files(int root_fd, const char *base, const char *sub, file_fn *fn, void *cls)
{
	char **names;
	size_t n, i;
	char *rel = hfm_asprintf("%s/%s", base, sub);
	int rc = list_names(&names, &n, root_fd, rel, -1);

	for (i = 0; !rc && i < n; i++) {
		char *child = hfm_asprintf("%s/%s", sub, names[i]), *full = hfm_asprintf("%s/%s", rel, names[i]);
		struct stat st;

		if (fstatat(root_fd, full, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				rc = walk_files(root_fd, base, child, fn, cls);
			else if (S_ISREG(st.st_mode))
				rc = fn(cls, child);
		}
		free(child);
		free(full);
	}
	free_names(names, n);
	free(rel);
	return rc;
}

static void cache_dir(char *out, size_t n, const struct hfm_repo_id *id)
{
	snprintf(out, n, "meta/%s/%s", hfm_repo_type_plural(id->type), id->name);
}

static int cache_has(const struct hfm_store *s, const struct hfm_repo_id *id)
{
	char dir[HFM_REPO_NAME_MAX + 64], sub[HFM_REPO_NAME_MAX + 80];

	cache_dir(dir, sizeof(dir), id);
	snprintf(sub, sizeof(sub), "%s/revs", dir);
	if (is_dir_at(s->root_fd, sub))
		return 1;
	snprintf(sub, sizeof(sub), "%s/commits", dir);
	return is_dir_at(s->root_fd, sub);
}

static int mirror_has(const struct hfm_store *s, const struct hfm_repo_id *id)
{
	char rel[HFM_REPO_NAME_MAX + 64];

	snprintf(rel, sizeof(rel), "mirrors/%s/%s.git", hfm_repo_type_plural(id->type), id->name);
	return is_dir_at(s->root_fd, rel);
}

typedef int repo_fn(void *cls, const struct hfm_repo_id *id, enum hfm_bundle_kind kind);

/* Every repo of the store: the cache's (meta/) and the mirrors' (mirrors/). */
static int scan_repos(const struct hfm_store *s, repo_fn *fn, void *cls)
{
	int rc = 0;

	for (int t = 0; t < HFM_REPO_TYPES && !rc; t++) {
		for (int kind = 0; kind < 2 && !rc; kind++) {
			char top[64], **names, **subs;
			size_t n, ns;

			snprintf(top, sizeof(top), "%s/%s", kind ? "mirrors" : "meta",
				 hfm_repo_type_plural((enum hfm_repo_type)t));
			if ((rc = list_names(&names, &n, s->root_fd, top, 1)))
				return rc;
			for (size_t i = 0; i < n && !rc; i++) {
				struct hfm_repo_id id;
				size_t l = strlen(names[i]);
				char *rel = hfm_asprintf("%s/%s", top, names[i]);

				if (kind == HFM_BUNDLE_GIT && l > 4 && !strcmp(names[i] + l - 4, ".git")) {
					names[i][l - 4] = '\0';
					if (!hfm_repo_id_parse(&id, (enum hfm_repo_type)t, names[i]))
						rc = fn(cls, &id, HFM_BUNDLE_GIT);
				} else if (kind == HFM_BUNDLE_CACHE &&
					   !hfm_repo_id_parse(&id, (enum hfm_repo_type)t, names[i]) &&
					   cache_has(s, &id)) {
					rc = fn(cls, &id, HFM_BUNDLE_CACHE);
				} else if (!(rc = list_names(&subs, &ns, s->root_fd, rel, 1))) {
					for (size_t j = 0; j < ns && !rc; j++) {
						char *full = hfm_asprintf("%s/%s", names[i], subs[j]);
						size_t fl = strlen(full);

						if (kind == HFM_BUNDLE_GIT) {
							if (fl > 4 && !strcmp(full + fl - 4, ".git")) {
								full[fl - 4] = '\0';
								if (!hfm_repo_id_parse(&id, (enum hfm_repo_type)t, full))
									rc = fn(cls, &id, HFM_BUNDLE_GIT);
							}
						} else if (!hfm_repo_id_parse(&id, (enum hfm_repo_type)t, full) &&
							   cache_has(s, &id)) {
							rc = fn(cls, &id, HFM_BUNDLE_CACHE);
						}
						free(full);
					}
					free_names(subs, ns);
				}
				free(rel);
			}
			free_names(names, n);
		}
	}
	return rc;
}

typedef int rev_fn(void *cls, const char *rev, const char *commit);

/* The cache's revision mappings of a repo: revs/<enc rev> holds the commit. */
static int scan_cache_revs(const struct hfm_store *s, const struct hfm_repo_id *id, rev_fn *fn,
			   void *cls)
{
	char dir[HFM_REPO_NAME_MAX + 80], **names;
	size_t n;
	int rc;

	cache_dir(dir, sizeof(dir), id);
	strcat(dir, "/revs");
	if ((rc = list_names(&names, &n, s->root_fd, dir, 0)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		struct hfm_buf b = HFM_BUF_INIT(256);
		char *rel = hfm_asprintf("%s/%s", dir, names[i]), *rev = hfm_malloc(strlen(names[i]) + 1);

		if (hfm_pct_decode(rev, names[i], strlen(names[i]), 0) >= 0 && hfm_rev_valid(rev) &&
		    read_rel(&b, s->root_fd, rel, 256) == 0 && is_sha(hfm_buf_cstr(&b)))
			rc = fn(cls, rev, b.ptr);
		hfm_buf_dispose(&b);
		free(rel);
		free(rev);
	}
	free_names(names, n);
	return rc;
}

/* ---- the plan ---------------------------------------------------------------------- */

/* An object some file of the plan needs. */
struct want {
	char oid[HFM_SHA256_HEX + 1];
	uint64_t size;
	size_t repo, commit, file;       /* the file that asked, for messages */
};

struct pack {
	long repo;
	int fd;                          /* unlinked temporary file */
};

struct plan {
	const struct hfm_export_opts *o;
	struct hfm_store *store;
	struct hfm_receipt *since;
	struct hfm_bundle_manifest *m;
	struct want *wants;
	size_t nwants, capwants;
	struct pack *packs;
	size_t npacks;
	size_t left_objects, left_meta, missing, git_objects;
	uint64_t left_bytes, carried_bytes;
};

static void want(struct plan *p, const char *oid, uint64_t size, size_t repo, size_t commit,
		 size_t file)
{
	struct want *w;

	if (p->nwants == p->capwants) {
		p->capwants = p->capwants ? p->capwants * 2 : 256;
		p->wants = hfm_realloc(p->wants, p->capwants * sizeof(*p->wants));
	}
	w = &p->wants[p->nwants++];
	snprintf(w->oid, sizeof(w->oid), "%s", oid);
	w->size = size;
	w->repo = repo;
	w->commit = commit;
	w->file = file;
}

/* The sync manifest's patterns (sync.h), so that `export -m` carries what `sync -m` fetched. */
static int selected(const struct hfm_export_repo *spec, const char *path)
{
	const struct hfm_sync_want w = {
		.include = spec->include, .n_include = spec->ninclude,
		.exclude = spec->exclude, .n_exclude = spec->nexclude,
	};

	return (!spec->ninclude && !spec->nexclude) || hfm_sync_wants(&w, path);
}

static struct hfm_bundle_commit *commit_once(struct hfm_bundle_repo *r, const char *sha, int *added)
{
	for (size_t i = 0; i < r->ncommits; i++)
		if (!strcmp(r->commits[i].sha, sha)) {
			*added = 0;
			return &r->commits[i];
		}
	*added = 1;
	return hfm_bundle_add_commit(r, sha);
}

static int add_meta_file(struct plan *p, long ri, const char *dir, const char *relpath)
{
	const struct hfm_receipt_repo *rr = hfm_receipt_find(p->since, &p->m->repos[ri].id,
							     HFM_BUNDLE_CACHE);
	struct hfm_buf b = HFM_BUF_INIT(META_MAX);
	char sha[HFM_SHA256_HEX + 1], *rel;
	int rc;

	/* refs.json and access change in place: always carried */
	if (!strncmp(relpath, "commits/", 8) && hfm_receipt_has_meta(rr, relpath)) {
		p->left_meta++;
		return 0;
	}
	rel = hfm_asprintf("%s/%s", dir, relpath);
	rc = read_rel(&b, p->store->root_fd, rel, META_MAX);
	if (!rc) {
		hfm_sha256_hex(sha, hfm_buf_cstr(&b), b.len);
		hfm_bundle_add_item(p->m, HFM_BUNDLE_META, ri, relpath, b.len, sha);
	}
	free(rel);
	hfm_buf_dispose(&b);
	return rc;
}

struct meta_walk {
	struct plan *p;
	long ri;
	const char *dir;
};

static int meta_walk_fn(void *cls, const char *relpath)
{
	struct meta_walk *w = cls;

	return hfm_path_valid(relpath) ? add_meta_file(w->p, w->ri, w->dir, relpath) : 0;
}

/* The files of a cached commit, from its tree.json (all pages, as upstream listed them). */
static int cache_commit_files(struct plan *p, const struct hfm_export_repo *spec, long ri,
			      struct hfm_bundle_commit *c, const char *dir)
{
	struct hfm_bundle_repo *r = &p->m->repos[ri];
	struct hfm_buf b = HFM_BUF_INIT(META_MAX);
	char *rel = hfm_asprintf("%s/commits/%s/tree.json", dir, c->sha), *irel;
	size_t ci = (size_t)(c - r->commits);
	cJSON *j = NULL, *it;
	int rc;

	irel = hfm_asprintf("%s/commits/%s/info.json", dir, c->sha);
	rc = read_rel(&b, p->store->root_fd, irel, META_MAX);
	if (rc == 0) {
		hfm_buf_reset(&b);
		rc = read_rel(&b, p->store->root_fd, rel, META_MAX);
	}
	if (rc == HFM_ENOENT) {
		rc = hfm_error_set(HFM_ENOENT, "%s: the store has no file list of commit %s "
				   "(meta/.../%s missing): let a client list or download this "
				   "revision through the proxy (or hfmirror sync it) first",
				   r->id.name, c->sha, strstr(rel, "commits/"));
		goto out;
	}
	if (rc)
		goto out;
	j = cJSON_ParseWithLength(hfm_buf_cstr(&b), b.len);
	if (!cJSON_IsArray(j)) {
		rc = hfm_error_set(HFM_EINVAL, "%s: not a JSON array", rel);
		goto out;
	}
	cJSON_ArrayForEach(it, j) {
		cJSON *path = cJSON_GetObjectItemCaseSensitive(it, "path");
		cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
		cJSON *oid = cJSON_GetObjectItemCaseSensitive(it, "oid");
		cJSON *size = cJSON_GetObjectItemCaseSensitive(it, "size");
		cJSON *lfs = cJSON_GetObjectItemCaseSensitive(it, "lfs");
		cJSON *loid = cJSON_GetObjectItemCaseSensitive(lfs, "oid");
		cJSON *lsize = cJSON_GetObjectItemCaseSensitive(lfs, "size");
		const char *lfs_oid = NULL;
		uint64_t sz;
		int absent;

		if (!cJSON_IsString(path) || !*path->valuestring || !hfm_path_valid(path->valuestring) ||
		    (cJSON_IsString(type) && strcmp(type->valuestring, "file")))
			continue;
		if (!cJSON_IsString(oid) || !is_sha(oid->valuestring)) {
			rc = hfm_error_set(HFM_EINVAL, "%s: %s has no git blob id", rel, path->valuestring);
			goto out;
		}
		sz = cJSON_IsNumber(size) && size->valuedouble > 0 ? (uint64_t)size->valuedouble : 0;
		if (cJSON_IsObject(lfs)) {
			if (!cJSON_IsString(loid) || strlen(loid->valuestring) != HFM_SHA256_HEX ||
			    !hfm_is_hex(loid->valuestring, HFM_SHA256_HEX)) {
				rc = hfm_error_set(HFM_EINVAL, "%s: %s has a bad LFS oid", rel,
						   path->valuestring);
				goto out;
			}
			lfs_oid = loid->valuestring;
			sz = cJSON_IsNumber(lsize) && lsize->valuedouble > 0 ? (uint64_t)lsize->valuedouble : 0;
		}
		absent = !selected(spec, path->valuestring);
		hfm_bundle_add_file(c, path->valuestring, oid->valuestring, sz, lfs_oid, absent);
		if (!absent && sz)
			want(p, lfs_oid ? lfs_oid : oid->valuestring, sz, (size_t)ri, ci, c->nfiles - 1);
	}
out:
	cJSON_Delete(j);
	hfm_buf_dispose(&b);
	free(rel);
	free(irel);
	return rc;
}

struct rev_add {
	struct plan *p;
	struct hfm_bundle_repo *r;
};

static int rev_add_fn(void *cls, const char *rev, const char *commit)
{
	struct rev_add *a = cls;
	int added;

	hfm_bundle_add_rev(a->r, rev, commit);
	commit_once(a->r, commit, &added);
	return 0;
}

/*
 * Every grant and revoke record of the repo in the store's grants file
 * (grants.h), whatever --since says: the merge inside is idempotent, and a
 * receipt does not list grants.  A grants file that does not read fails
 * the export: a bundle without them would look like "no grants".
 */
static int plan_grants(struct plan *p, long ri)
{
	struct hfm_bundle_repo *r = &p->m->repos[ri];
	char *path = hfm_asprintf("%s/%s", p->store->root, HFM_GRANTS_FILE);
	struct hfm_buf err = HFM_BUF_INIT(16384);
	struct hfm_grant_list l;
	char key[HFM_GRANTS_KEY_MAX];
	int rc = hfm_grants_read(&l, path, &err);

	hfm_grants_key(key, sizeof(key), &r->id);
	if (rc) {
		rc = hfm_error_set(rc, "the grants of %s cannot be carried: %s", r->id.name,
				   err.len ? hfm_buf_cstr(&err) : hfm_error_last());
		goto cleanup;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct hfm_grant *g = &l.v[i];

		if (strcasecmp(g->repo, key))
			continue;
		hfm_bundle_add_grant(r, g->user, g->via, g->time, g->revoked);
	}
cleanup:
	hfm_grant_list_dispose(&l);
	hfm_buf_dispose(&err);
	free(path);
	return rc;
}

/*
 * An incremental bundle leaves out a commit no revision of it names whose
 * metadata and objects the receipt lists (a commit the cache keeps, pinned
 * by id): describing it again would only repeat its file list, which is
 * most of a manifest's bytes.  Its wants and items start at the indexes
 * given.
 */
static int commit_known(const struct plan *p, const struct hfm_bundle_repo *r, size_t ci,
			size_t wants_from, size_t items_from)
{
	const struct hfm_receipt_repo *rr = p->since ? hfm_receipt_find(p->since, &r->id,
									 HFM_BUNDLE_CACHE) : NULL;
	const char *sha = r->commits[ci].sha;
	char rel[HFM_SHA1_HEX + 32];

	if (!rr || p->m->nitems != items_from)
		return 0;
	for (size_t i = 0; i < r->nrevs; i++)
		if (!strcmp(r->revs[i].commit, sha))
			return 0;
	for (const char *const *f = (const char *const[]){ "tree.json", "info.json", NULL }; *f;
	     f++) {
		snprintf(rel, sizeof(rel), "commits/%s/%s", sha, *f);
		if (!hfm_receipt_has_meta(rr, rel))
			return 0;
	}
	for (size_t i = wants_from; i < p->nwants; i++)
		if (!hfm_receipt_has_object(p->since, p->wants[i].oid))
			return 0;
	return 1;
}

static int plan_cache(struct plan *p, const struct hfm_export_repo *spec)
{
	struct hfm_bundle_repo *r = hfm_bundle_add_repo(p->m, &spec->id, HFM_BUNDLE_CACHE);
	long ri = (long)(p->m->nrepos - 1);
	char dir[HFM_REPO_NAME_MAX + 64];
	struct meta_walk mw = { p, ri, dir };
	int rc = 0, added;
	size_t i;

	cache_dir(dir, sizeof(dir), &spec->id);
	if (!spec->nrevs) {
		struct rev_add a = { p, r };
		char *cdir = hfm_asprintf("%s/commits", dir), **names;
		size_t n;

		/* every mapping, and every commit the cache holds (pinned by id, too) */
		if ((rc = scan_cache_revs(p->store, &spec->id, rev_add_fn, &a)) ||
		    (rc = list_names(&names, &n, p->store->root_fd, cdir, 1))) {
			free(cdir);
			return rc;
		}
		for (i = 0; i < n; i++) {
			char *t = hfm_asprintf("%s/%s/tree.json", cdir, names[i]);
			struct stat st;

			if (is_sha(names[i]) && fstatat(p->store->root_fd, t, &st, 0) == 0)
				commit_once(r, names[i], &added);
			free(t);
		}
		free_names(names, n);
		free(cdir);
	}
	for (i = 0; i < spec->nrevs; i++) {
		const char *rev = spec->revs[i];
		struct hfm_buf rel = HFM_BUF_INIT(HFM_PATH_MAX), b = HFM_BUF_INIT(256);

		if (is_sha(rev)) {
			commit_once(r, rev, &added);
			continue;
		}
		hfm_buf_printf(&rel, "%s/revs/", dir);
		hfm_buf_urlenc(&rel, rev, 0);
		rc = read_rel(&b, p->store->root_fd, hfm_buf_cstr(&rel), 256);
		if (rc == HFM_ENOENT || (!rc && !is_sha(hfm_buf_cstr(&b))))
			rc = hfm_error_set(HFM_ENOREV, "%s@%s is not in the store: the cache never "
					   "resolved that revision (download it through the proxy, "
					   "or hfmirror sync it, first)", spec->id.name, rev);
		if (!rc) {
			hfm_bundle_add_rev(r, rev, b.ptr);
			commit_once(r, b.ptr, &added);
		}
		hfm_buf_dispose(&rel);
		hfm_buf_dispose(&b);
		if (rc)
			return rc;
	}
	for (i = 0; i < r->ncommits; i++) {
		size_t wants_before = p->nwants, items_before = p->m->nitems;
		char sub[64];

		r = &p->m->repos[ri];        /* items may have moved the array: re-read */
		if ((rc = cache_commit_files(p, spec, ri, &r->commits[i], dir)))
			return rc;
		snprintf(sub, sizeof(sub), "commits/%s", r->commits[i].sha);
		if ((rc = walk_files(p->store->root_fd, dir, sub, meta_walk_fn, &mw)))
			return rc;
		if (commit_known(p, r, i, wants_before, items_before)) {
			p->nwants = wants_before;
			hfm_bundle_drop_commit(r, i--);
		}
	}
	/* the repo's access mark (gated, private), then who may pass it offline */
	for (const char *const *f = (const char *const[]){ "refs.json", "access", NULL }; *f; f++) {
		char *rel = hfm_asprintf("%s/%s", dir, *f);
		struct stat st;

		if (fstatat(p->store->root_fd, rel, &st, 0) == 0)
			rc = add_meta_file(p, ri, dir, *f);
		free(rel);
		if (rc)
			return rc;
	}
	return plan_grants(p, ri);
}

/* -- git mirrors -- */

struct tree_walk {
	struct plan *p;
	const struct hfm_export_repo *spec;
	git_odb *odb;
	size_t ri, ci;
	int rc;
};

static int tree_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct tree_walk *w = payload;
	git_filemode_t mode = git_tree_entry_filemode(e);
	struct hfm_bundle_commit *c = &w->p->m->repos[w->ri].commits[w->ci];
	char *path = hfm_asprintf("%s%s", root, git_tree_entry_name(e));
	char hex[GIT_OID_HEXSZ + 1], lfs[HFM_SHA256_HEX + 1] = "";
	git_odb_object *o = NULL;
	git_object_t type;
	uint64_t size;
	size_t len;
	int ret = 0, absent;

	if (!hfm_path_valid(path)) {
		ret = mode == GIT_FILEMODE_TREE ? 1 : 0;   /* skipped with everything below */
		goto out;
	}
	if (mode == GIT_FILEMODE_TREE || mode == GIT_FILEMODE_COMMIT)
		goto out;
	if (git_odb_read_header(&len, &type, w->odb, git_tree_entry_id(e)) < 0) {
		w->rc = git_fail(path);
		ret = -1;
		goto out;
	}
	size = len;
	if (len <= LFS_POINTER_MAX && git_odb_read(&o, w->odb, git_tree_entry_id(e)) == 0 &&
	    hfm_lfs_pointer_parse(lfs, &size, git_odb_object_data(o), git_odb_object_size(o)))
		size = len, lfs[0] = '\0';
	git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
	absent = !selected(w->spec, path);
	hfm_bundle_add_file(c, path, hex, size, lfs, absent);
	if (lfs[0] && !absent && size)
		want(w->p, lfs, size, w->ri, w->ci, c->nfiles - 1);
out:
	git_odb_object_free(o);
	free(path);
	return ret;
}

/* The packbuilder's output into an unlinked temporary file, hashed on the way. */
struct pack_out {
	int fd;
	struct hfm_hashctx *h;
	uint64_t size;
	char *buf;
	size_t len;
};

static int pack_flush(struct pack_out *po)
{
	if (po->len && hfm_write_all(po->fd, po->buf, po->len) < 0)
		return -1;
	hfm_hashctx_update(po->h, po->buf, po->len);
	po->len = 0;
	return 0;
}

static int pack_piece(void *data, size_t size, void *payload)
{
	struct pack_out *po = payload;

	po->size += size;
	if (po->len + size > PACK_BUF && pack_flush(po) < 0)
		return -1;
	if (size >= PACK_BUF) {
		hfm_hashctx_update(po->h, data, size);
		return hfm_write_all(po->fd, data, size);
	}
	memcpy(po->buf + po->len, data, size);
	po->len += size;
	return 0;
}

/* An anonymous read-write file in the store's tmp/ (same filesystem, no name left behind). */
static int anon_file(int *fd, const struct hfm_store *s)
{
	char *path;

	*fd = openat(s->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return 0;
	path = hfm_asprintf("%s/tmp/export-pack-XXXXXX", s->root);
	*fd = mkostemp(path, O_CLOEXEC);
	if (*fd >= 0)
		unlink(path);
	free(path);
	return *fd >= 0 ? 0 : hfm_error_set(HFM_EIO, "a temporary file in %s/tmp: %s", s->root,
					     strerror(errno));
}

static int write_pack(struct plan *p, git_packbuilder *pb, long ri)
{
	struct pack_out po = { .fd = -1 };
	char sha[HFM_SHA256_HEX + 1];
	int rc;

	if ((rc = anon_file(&po.fd, p->store)))
		goto out;
	po.h = hfm_hashctx_new(0, 0, 1);
	po.buf = hfm_malloc(PACK_BUF);
	errno = 0;
	if (git_packbuilder_foreach(pb, pack_piece, &po) < 0 || pack_flush(&po) < 0)
		rc = errno ? hfm_error_set(HFM_EIO, "writing the pack: %s", strerror(errno))
			   : git_fail("building the pack");
	hfm_hashctx_final(po.h, NULL, sha);
	free(po.buf);
	if (rc)
		goto out;
	hfm_bundle_add_item(p->m, HFM_BUNDLE_PACK, ri, NULL, po.size, sha);
	p->packs = hfm_realloc(p->packs, (p->npacks + 1) * sizeof(*p->packs));
	p->packs[p->npacks].repo = ri;
	p->packs[p->npacks++].fd = po.fd;
	po.fd = -1;
out:
	if (po.fd >= 0)
		close(po.fd);
	return rc;
}

/* A ref of the mirror to export: name and direct target. */
static int git_add_ref(struct plan *p, git_repository *repo, git_revwalk *walk,
		       git_packbuilder *pb, long ri, const char *name, const git_oid *target)
{
	struct hfm_bundle_repo *r = &p->m->repos[ri];
	git_object *obj = NULL, *commit = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	int added, rc = 0;

	if (git_object_lookup(&obj, repo, target, GIT_OBJECT_ANY) < 0 ||
	    git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		rc = hfm_error_set(HFM_EINVAL, "%s: ref %s names no commit of the mirror", r->id.name,
				   name);
		goto out;
	}
	if (git_object_type(obj) == GIT_OBJECT_TAG && git_packbuilder_insert(pb, target, name) < 0) {
		rc = git_fail(name);
		goto out;
	}
	git_oid_tostr(hex, sizeof(hex), target);
	if (!strncmp(name, "refs/", 5))
		hfm_bundle_add_rev(r, name, hex);
	git_oid_tostr(hex, sizeof(hex), git_object_id(commit));
	commit_once(r, hex, &added);
	if (added && git_revwalk_push(walk, git_object_id(commit)) < 0)
		rc = git_fail(name);
out:
	git_object_free(commit);
	git_object_free(obj);
	return rc;
}

static int plan_git(struct plan *p, const struct hfm_export_repo *spec)
{
	struct hfm_bundle_repo *r = hfm_bundle_add_repo(p->m, &spec->id, HFM_BUNDLE_GIT);
	long ri = (long)(p->m->nrepos - 1);
	const struct hfm_receipt_repo *rr = hfm_receipt_find(p->since, &spec->id, HFM_BUNDLE_GIT);
	struct hfm_buf path = HFM_BUF_INIT(HFM_PATH_MAX), shallow = HFM_BUF_INIT(1 << 20);
	git_repository *repo = NULL;
	git_revwalk *walk = NULL;
	git_packbuilder *pb = NULL;
	git_reference *ref = NULL, *res = NULL;
	git_reference_iterator *iter = NULL;
	git_odb *odb = NULL;
	char *sp;
	size_t i;
	int rc = 0;

	hfm_store_mirror_path(&path, p->store, &spec->id);
	if (git_repository_open_ext(&repo, path.ptr, GIT_REPOSITORY_OPEN_NO_SEARCH |
				    GIT_REPOSITORY_OPEN_BARE, NULL) < 0 ||
	    git_repository_odb(&odb, repo) < 0 || git_revwalk_new(&walk, repo) < 0 ||
	    git_packbuilder_new(&pb, repo) < 0) {
		rc = git_fail(path.ptr);
		goto out;
	}
	git_packbuilder_set_threads(pb, 0);
	if (git_reference_lookup(&ref, repo, "HEAD") == 0 &&
	    git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC &&
	    !strncmp(git_reference_symbolic_target(ref), "refs/heads/", 11))
		r->head = hfm_strdup(git_reference_symbolic_target(ref) + 11);
	git_reference_free(ref);
	ref = NULL;
	hfm_buf_printf(&path, "/shallow");
	if (read_rel(&shallow, AT_FDCWD, path.ptr, 1 << 20) == 0) {
		for (sp = strtok(shallow.ptr, "\n"); sp; sp = strtok(NULL, "\n"))
			if (is_sha(sp)) {
				r->shallow = hfm_realloc(r->shallow, (r->nshallow + 1) * sizeof(*r->shallow));
				memcpy(r->shallow[r->nshallow++], sp, HFM_SHA1_HEX + 1);
			}
	}
	hfm_error_clear();
	if (spec->nrevs) {
		for (i = 0; i < spec->nrevs && !rc; i++) {
			const char *rev = spec->revs[i];
			git_oid id;

			if (is_sha(rev)) {
				git_oid_fromstr(&id, rev);
				rc = git_add_ref(p, repo, walk, pb, ri, rev, &id);
			} else if (git_reference_dwim(&ref, repo, rev) < 0 ||
				   git_reference_resolve(&res, ref) < 0) {
				rc = hfm_error_set(HFM_ENOREV, "%s@%s: the mirror has no such branch, "
						   "tag or ref", spec->id.name, rev);
			} else {
				rc = git_add_ref(p, repo, walk, pb, ri, git_reference_name(ref),
						 git_reference_target(res));
			}
			git_reference_free(ref);
			git_reference_free(res);
			ref = res = NULL;
		}
	} else {
		if (git_reference_iterator_new(&iter, repo) < 0) {
			rc = git_fail(spec->id.name);
			goto out;
		}
		while (!rc && git_reference_next(&ref, iter) == 0) {
			if (git_reference_type(ref) == GIT_REFERENCE_DIRECT)
				rc = git_add_ref(p, repo, walk, pb, ri, git_reference_name(ref),
						 git_reference_target(ref));
			git_reference_free(ref);
			ref = NULL;
		}
	}
	if (rc)
		goto out;
	/* what the inside holds already: the pack leaves out everything it reaches */
	for (i = 0; rr && i < rr->nrevs; i++) {
		git_object *obj = NULL, *c = NULL;
		git_oid id;

		if (git_oid_fromstr(&id, rr->revs[i].commit) == 0 &&
		    git_object_lookup(&obj, repo, &id, GIT_OBJECT_ANY) == 0 &&
		    git_object_peel(&c, obj, GIT_OBJECT_COMMIT) == 0)
			git_revwalk_hide(walk, git_object_id(c));
		git_object_free(c);
		git_object_free(obj);
	}
	hfm_error_clear();
	if (git_packbuilder_insert_walk(pb, walk) < 0) {
		rc = git_fail("packing");
		goto out;
	}
	p->git_objects += git_packbuilder_object_count(pb);
	if (git_packbuilder_object_count(pb) && (rc = write_pack(p, pb, ri)))
		goto out;
	for (i = 0; i < p->m->repos[ri].ncommits && !rc; i++) {
		struct tree_walk w = { p, spec, odb, (size_t)ri, i, 0 };
		git_commit *c = NULL;
		git_tree *t = NULL;
		git_oid id;

		git_oid_fromstr(&id, p->m->repos[ri].commits[i].sha);
		if (git_commit_lookup(&c, repo, &id) < 0 || git_commit_tree(&t, c) < 0 ||
		    git_tree_walk(t, GIT_TREEWALK_PRE, tree_cb, &w) < 0)
			rc = w.rc ? w.rc : git_fail(spec->id.name);
		git_tree_free(t);
		git_commit_free(c);
	}
out:
	git_reference_iterator_free(iter);
	git_packbuilder_free(pb);
	git_revwalk_free(walk);
	git_odb_free(odb);
	git_repository_free(repo);
	hfm_buf_dispose(&path);
	hfm_buf_dispose(&shallow);
	return rc;
}

static int cmp_want(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->oid, ((const struct want *)b)->oid);
}

/* Which wanted objects travel: not those the receipt has; say which the store lacks. */
static int plan_objects(struct plan *p)
{
	struct hfm_bundle_manifest *m = p->m;
	char **missing = NULL;
	size_t nmissing = 0, i, j;
	int rc = 0;

	if (p->nwants)
		qsort(p->wants, p->nwants, sizeof(*p->wants), cmp_want);
	for (i = 0; i < p->nwants; i = j) {
		const struct want *w = &p->wants[i];
		uint64_t size = 0;
		int fd;

		for (j = i + 1; j < p->nwants && !strcmp(p->wants[j].oid, w->oid); j++)
			if (p->wants[j].size != w->size)
				return hfm_error_set(HFM_EINVAL, "object %s is listed with %llu and "
						     "%llu bytes", w->oid,
						     (unsigned long long)w->size,
						     (unsigned long long)p->wants[j].size);
		if (p->since && hfm_receipt_has_object(p->since, w->oid)) {
			p->left_objects++;
			p->left_bytes += w->size;
			continue;
		}
		if (hfm_store_object_open(&fd, &size, p->store, w->oid) == 0) {
			close(fd);
			if (size != w->size) {
				const struct hfm_bundle_repo *r = &m->repos[w->repo];
				return hfm_error_set(HFM_ECORRUPT, "object %s in the store has %llu "
						     "bytes; %s@%.12s:%s says %llu", w->oid,
						     (unsigned long long)size, r->id.name,
						     r->commits[w->commit].sha,
						     r->commits[w->commit].files[w->file].path,
						     (unsigned long long)w->size);
			}
			hfm_bundle_add_item(m, HFM_BUNDLE_OBJECT, -1, NULL, size, w->oid);
			p->carried_bytes += size;
			continue;
		}
		missing = hfm_realloc(missing, (nmissing + 1) * sizeof(*missing));
		missing[nmissing++] = p->wants[i].oid;
	}
	if (!nmissing)
		goto out;
	p->missing = nmissing;
	if (!p->o->allow_missing) {
		struct hfm_buf msg = HFM_BUF_INIT(16384);

		hfm_buf_printf(&msg, "the store lacks the content of %zu file%s:", nmissing,
			       nmissing == 1 ? "" : "s");
		for (i = 0; i < p->nwants; i++) {
			const struct want *w = &p->wants[i];
			const struct hfm_bundle_repo *r = &m->repos[w->repo];
			const char *key = w->oid;

			if (!bsearch(&key, missing, nmissing, sizeof(*missing), cmp_str) ||
			    (i && !strcmp(p->wants[i - 1].oid, w->oid)))
				continue;
			if (msg.len > 1500) {
				hfm_buf_puts(&msg, "\n  ...");
				break;
			}
			hfm_buf_printf(&msg, "\n  %s@%.12s: %s (%.12s…, %llu bytes)", r->id.name,
				       r->commits[w->commit].sha, r->commits[w->commit].files[w->file].path,
				       w->oid, (unsigned long long)w->size);
		}
		hfm_buf_puts(&msg, "\ndownload them through the proxy (or hfmirror sync) first, "
			     "narrow the export with --include/--exclude, or pass --allow-missing "
			     "(the inside then answers 502 for those files)");
		rc = hfm_error_set(HFM_ENOENT, "%s", hfm_buf_cstr(&msg));
		hfm_buf_dispose(&msg);
		goto out;
	}
	/* --allow-missing: the files stay listed, marked absent */
	for (i = 0; i < m->nrepos; i++)
		for (j = 0; j < m->repos[i].ncommits; j++)
			for (size_t k = 0; k < m->repos[i].commits[j].nfiles; k++) {
				struct hfm_bundle_file *f = &m->repos[i].commits[j].files[k];
				const char *oid = hfm_bundle_file_object(&m->repos[i], f);

				if (oid && bsearch(&oid, missing, nmissing, sizeof(*missing), cmp_str))
					f->absent = 1;
			}
out:
	free(missing);
	return rc;
}

/* ---- writing ---------------------------------------------------------------------- */

struct progress {
	const struct hfm_export_opts *o;
	uint64_t total, done, started, last;
};

static void progress_tick(struct progress *pr, uint64_t add)
{
	uint64_t now = hfm_mono_ns();

	pr->done += add;
	if (pr->o->quiet || now - pr->last < SAY_EVERY_NS)
		return;
	pr->last = now;
	fprintf(stderr, "%s export: %.1f of %.1f MiB (%.0f MiB/s)\n", pr->o->prog,
		(double)pr->done / 1048576.0, (double)pr->total / 1048576.0,
		(double)pr->done / 1048576.0 / ((double)(now - pr->started) / 1e9));
}

static int write_payload(struct plan *p, struct hfm_bundle_out *w)
{
	struct hfm_bundle_manifest *m = p->m;
	struct progress pr = { p->o, 0, 0, hfm_mono_ns(), hfm_mono_ns() };
	int rc = 0;

	for (size_t i = 0; i < m->nitems; i++)
		pr.total += m->items[i].size;
	for (size_t i = 0; i < m->nitems && !rc; i++) {
		const struct hfm_bundle_item *it = &m->items[i];

		if (it->kind == HFM_BUNDLE_META) {
			struct hfm_buf b = HFM_BUF_INIT(META_MAX);
			char dir[HFM_REPO_NAME_MAX + 64], sha[HFM_SHA256_HEX + 1], *rel;

			cache_dir(dir, sizeof(dir), &m->repos[it->repo].id);
			rel = hfm_asprintf("%s/%s", dir, it->relpath);
			rc = read_rel(&b, p->store->root_fd, rel, META_MAX);
			if (!rc) {
				hfm_sha256_hex(sha, hfm_buf_cstr(&b), b.len);
				if (b.len != it->size || strcmp(sha, it->digest))
					rc = hfm_error_set(HFM_EIO, "%s changed while it was exported "
							   "(a proxy still writing this store?): "
							   "export again", rel);
			}
			if (!rc && !(rc = hfm_bundle_out_begin(w, it->name, it->size)) &&
			    !(rc = hfm_bundle_out_write(w, hfm_buf_cstr(&b), b.len)))
				rc = hfm_bundle_out_end(w);
			free(rel);
			hfm_buf_dispose(&b);
		} else if (it->kind == HFM_BUNDLE_PACK) {
			int fd = -1;

			for (size_t k = 0; k < p->npacks; k++)
				if (p->packs[k].repo == it->repo)
					fd = p->packs[k].fd;
			if (!(rc = hfm_bundle_out_begin(w, it->name, it->size)) &&
			    !(rc = hfm_bundle_out_copy(w, fd, it->size)))
				rc = hfm_bundle_out_end(w);
		} else {
			uint64_t size;
			int fd;

			if ((rc = hfm_store_object_open(&fd, &size, p->store, it->digest))) {
				rc = hfm_error_set(HFM_EIO, "object %s left the store while it was "
						   "exported (evicted?): export again", it->digest);
				break;
			}
			if (size != it->size)
				rc = hfm_error_set(HFM_EIO, "object %s changed size while exported",
						   it->digest);
			if (!rc && !(rc = hfm_bundle_out_begin(w, it->name, it->size)) &&
			    !(rc = hfm_bundle_out_copy(w, fd, it->size)))
				rc = hfm_bundle_out_end(w);
			close(fd);
		}
		progress_tick(&pr, it->size);
	}
	return rc;
}

/* The manifest's text and its signature (when signing). */
static int seal(struct plan *p, struct hfm_buf *text, struct hfm_buf *sig)
{
	int rc = hfm_bundle_manifest_format(text, p->m);

	if (!rc && p->o->sign_key)
		rc = hfm_bundle_sign(sig, p->o->sign_key, text->ptr, text->len);
	return rc;
}

static int member(struct hfm_bundle_out *w, const char *name, const struct hfm_buf *b)
{
	int rc;

	if (!(rc = hfm_bundle_out_begin(w, name, b->len)) &&
	    !(rc = hfm_bundle_out_write(w, hfm_buf_cstr(b), b->len)))
		rc = hfm_bundle_out_end(w);
	return rc;
}

static int is_stream_out(const char *out)
{
	size_t l = strlen(out);
	struct stat st;

	if (!strcmp(out, "-"))
		return 1;
	if (stat(out, &st) == 0)
		return S_ISREG(st.st_mode);
	return l > 4 && !strcmp(out + l - 4, ".tar");
}

static int write_bundle(struct plan *p, uint64_t *written)
{
	const struct hfm_export_opts *o = p->o;
	struct hfm_buf text = HFM_BUF_INIT(HFM_BUNDLE_MANIFEST_MAX), sig = HFM_BUF_INIT(4096);
	struct hfm_bundle_out *w = NULL;
	char *part = NULL;
	int fd = -1, rc;

	if (is_stream_out(o->out)) {
		if (o->split) {
			rc = hfm_error_set(HFM_EINVAL, "--split makes volumes in a directory; -o %s "
					   "is a stream", o->out);
			goto out;
		}
		if (!strcmp(o->out, "-")) {
			if (isatty(STDOUT_FILENO)) {
				rc = hfm_error_set(HFM_EINVAL, "-o -: stdout is a terminal; pipe or "
						   "redirect the bundle");
				goto out;
			}
			fd = STDOUT_FILENO;
		} else {
			part = hfm_asprintf("%s.part", o->out);
			fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0) {
				rc = hfm_error_set(HFM_EIO, "%s: %s", part, strerror(errno));
				goto out;
			}
		}
		if ((rc = seal(p, &text, &sig)) || (rc = hfm_bundle_out_fd(&w, fd)) ||
		    (rc = member(w, "manifest", &text)) ||
		    (sig.len && (rc = member(w, "manifest.sig", &sig))) ||
		    (rc = write_payload(p, w)) || (rc = hfm_bundle_out_finish(w, NULL)))
			goto out;
		if (part && (fsync(fd) < 0 || rename(part, o->out) < 0)) {
			rc = hfm_error_set(HFM_EIO, "%s: %s", o->out, strerror(errno));
			goto out;
		}
	} else {
		char **names;
		size_t n;

		if (mkdir(o->out, 0755) < 0 && errno != EEXIST) {
			rc = hfm_error_set(HFM_EIO, "-o %s: %s", o->out, strerror(errno));
			goto out;
		}
		if ((rc = list_names(&names, &n, AT_FDCWD, o->out, -1)))
			goto out;
		free_names(names, n);
		if (n) {
			rc = hfm_error_set(HFM_EINVAL, "-o %s: the directory is not empty (a bundle "
					   "goes into a new or empty directory)", o->out);
			goto out;
		}
		if ((rc = hfm_bundle_out_dir(&w, o->out, o->split)) || (rc = write_payload(p, w)) ||
		    (rc = hfm_bundle_out_finish(w, p->m)) || (rc = seal(p, &text, &sig)))
			goto out;
		/* the manifest last: a directory with one is a finished bundle */
		if ((sig.len && (rc = hfm_bundle_write_file(o->out, "manifest.sig", sig.ptr, sig.len))) ||
		    (rc = hfm_bundle_write_file(o->out, "manifest", text.ptr, text.len)))
			goto out;
	}
	*written = hfm_bundle_out_bytes(w) + text.len + sig.len;
out:
	hfm_bundle_out_free(w);
	if (fd > STDOUT_FILENO)
		close(fd);
	if (rc && part)
		unlink(part);
	free(part);
	hfm_buf_dispose(&text);
	hfm_buf_dispose(&sig);
	return rc;
}

/* ---- the command ------------------------------------------------------------------ */

struct all_repos {
	struct hfm_export_repo *v;
	size_t n;
};

static int all_fn(void *cls, const struct hfm_repo_id *id, enum hfm_bundle_kind kind)
{
	struct all_repos *a = cls;

	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].id.type == id->type && !strcmp(a->v[i].id.name, id->name))
			return 0;
	a->v = hfm_realloc(a->v, (a->n + 1) * sizeof(*a->v));
	memset(&a->v[a->n], 0, sizeof(*a->v));
	a->v[a->n++].id = *id;
	return 0;
}

static void host_source(char *out, size_t n, const char *root)
{
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(out, n, "%s:%s", host, root);
}

static void human(char *out, size_t n, uint64_t b)
{
	if (b >= (1ull << 30))
		snprintf(out, n, "%.2f GiB", (double)b / (double)(1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(out, n, "%.1f MiB", (double)b / (double)(1ull << 20));
	else
		snprintf(out, n, "%llu bytes", (unsigned long long)b);
}

int hfm_export_run(const struct hfm_export_opts *o)
{
	struct plan p = { .o = o };
	struct all_repos all = { 0 };
	const struct hfm_export_repo *specs = o->repos;
	size_t nspecs = o->nrepos, i;
	char source[HFM_PATH_MAX + 300], tool[64], b1[32], b2[32];
	uint64_t written = 0;
	int rc;

	hfm_error_clear();
	if ((rc = hfm_store_open(&p.store, o->store, 0)))
		goto out;
	if (o->since) {
		struct hfm_buf b = HFM_BUF_INIT(HFM_RECEIPT_MAX), err = HFM_BUF_INIT(1024);

		rc = read_rel(&b, AT_FDCWD, o->since, HFM_RECEIPT_MAX);
		if (rc == HFM_ENOENT)
			rc = hfm_error_set(rc, "--since %s: no such file", o->since);
		if (!rc && hfm_receipt_parse(&p.since, b.ptr, b.len, &err))
			rc = hfm_error_set(HFM_EINVAL, "--since %s: %s", o->since, hfm_buf_cstr(&err));
		hfm_buf_dispose(&b);
		hfm_buf_dispose(&err);
		if (rc)
			goto out;
	}
	host_source(source, sizeof(source), p.store->root);
	snprintf(tool, sizeof(tool), "hfmirror/%s", HFM_VERSION);
	p.m = hfm_bundle_manifest_new(tool, source);
	if (p.since)
		memcpy(p.m->since, p.since->id, sizeof(p.m->since));
	if (o->all) {
		if ((rc = scan_repos(p.store, all_fn, &all)))
			goto out;
		if (!all.n) {
			rc = hfm_error_set(HFM_ENOENT, "the store %s holds no repos", p.store->root);
			goto out;
		}
		specs = all.v;
		nspecs = all.n;
	}
	for (i = 0; i < nspecs; i++) {
		const struct hfm_export_repo *s = &specs[i];
		int in_cache = cache_has(p.store, &s->id), in_git = mirror_has(p.store, &s->id);

		if (!in_cache && !in_git) {
			rc = hfm_error_set(HFM_ENOREPO, "%s (%s) is not in the store %s: fetch it "
					   "through the proxy (or hfmirror sync) or import it with "
					   "hfmirror-import first", s->id.name,
					   hfm_repo_type_name(s->id.type), p.store->root);
			goto out;
		}
		if ((in_git && (rc = plan_git(&p, s))) || (in_cache && (rc = plan_cache(&p, s))))
			goto out;
	}
	if ((rc = plan_objects(&p)) || (rc = write_bundle(&p, &written)))
		goto out;
	if (!o->quiet) {
		size_t nmeta = 0, nobj = 0;

		for (i = 0; i < p.m->nrepos; i++) {
			const struct hfm_bundle_repo *r = &p.m->repos[i];
			size_t files = 0;

			for (size_t j = 0; j < r->ncommits; j++)
				files += r->commits[j].nfiles;
			fprintf(stderr, "%s export: %s (%s, %s): %zu revision%s, %zu commit%s, %zu files\n",
				o->prog, r->id.name, hfm_repo_type_name(r->id.type),
				r->kind == HFM_BUNDLE_GIT ? "git mirror" : "cache", r->nrevs,
				r->nrevs == 1 ? "" : "s", r->ncommits, r->ncommits == 1 ? "" : "s", files);
		}
		for (i = 0; i < p.m->nitems; i++) {
			nmeta += p.m->items[i].kind == HFM_BUNDLE_META;
			nobj += p.m->items[i].kind == HFM_BUNDLE_OBJECT;
		}
		human(b1, sizeof(b1), p.carried_bytes);
		human(b2, sizeof(b2), written);
		fprintf(stderr, "%s export: wrote %s: bundle %s, %zu objects (%s), %zu metadata "
			"files, %zu git pack%s (%zu git objects)", o->prog,
			strcmp(o->out, "-") ? o->out : "stdout", p.m->id, nobj, b1, nmeta, p.npacks,
			p.npacks == 1 ? "" : "s", p.git_objects);
		if (p.m->nvolumes)
			fprintf(stderr, ", %zu volume%s", p.m->nvolumes, p.m->nvolumes == 1 ? "" : "s");
		fprintf(stderr, "; %s in all%s\n", b2, o->sign_key ? "; signed" : "");
		if (p.since) {
			human(b1, sizeof(b1), p.left_bytes);
			fprintf(stderr, "%s export: incremental since receipt %s: left out %zu objects "
				"(%s) and %zu metadata files the inside has\n", o->prog, p.since->id,
				p.left_objects, b1, p.left_meta);
		}
		if (p.missing)
			fprintf(stderr, "%s export: %zu objects the store lacks are marked absent "
				"(--allow-missing): the inside answers 502 for their files\n",
				o->prog, p.missing);
	}
out:
	if (rc)
		fprintf(stderr, "%s export: %s\n", o->prog, hfm_error_last()[0] ? hfm_error_last()
										: hfm_strerror(rc));
	for (i = 0; i < p.npacks; i++)
		close(p.packs[i].fd);
	free(p.packs);
	free(p.wants);
	free(all.v);
	hfm_bundle_manifest_free(p.m);
	hfm_receipt_free(p.since);
	hfm_store_free(p.store);
	return rc ? 1 : 0;
}

/* ---- command lines ------------------------------------------------------------------- */

static const char export_usage[] =
	"usage: %s export --repos-path STORE -o OUT (-m SYNC.toml | --repo ID[@REV]... | --all)\n"
	"                [--include GLOB]... [--exclude GLOB]... [--since RECEIPT]\n"
	"                [--split SIZE] [--sign KEY.pem] [--allow-missing] [-q]\n"
	"\n"
	"Write a bundle of repos of STORE for hfmirror-import on the other side of an\n"
	"air gap (docs/airgap.md): every revision's commit and file list, the cached\n"
	"metadata, git packs and objects the other side needs to serve them offline,\n"
	"and the grants of gated repos (hfmirror grant; docs/sync.md).\n"
	"\n"
	"  --repos-path STORE  the store to read (default: ./repos)\n"
	"  -o OUT              a new directory (manifest + payload volumes), FILE.tar,\n"
	"                      or - for a tar stream on stdout (a one-way link)\n"
	"  --repo ID[@REV]     a repo: org/name, or datasets/org/name, spaces/...;\n"
	"                      @REV a branch, tag, refs/pr/N or commit id (repeatable;\n"
	"                      without @REV every revision the store has)\n"
	"  -m, --manifest SYNC.toml\n"
	"                      the repos, revisions and include/exclude patterns of a\n"
	"                      sync manifest (docs/sync.md): what `hfmirror sync -m`\n"
	"                      fetched (may be combined with --repo)\n"
	"  --all               every repo in the store\n"
	"  --include GLOB      carry only matching files of the --repo repos (others\n"
	"                      stay listed, absent); '*' crosses '/', DIR/ is a folder\n"
	"  --exclude GLOB      do not carry matching files\n"
	"  --since RECEIPT     leave out what the receipt says the other side has\n"
	"                      (hfmirror receipt there): an incremental bundle\n"
	"  --split SIZE        volumes of at most SIZE (e.g. 4G) for removable media\n"
	"  --sign KEY.pem      sign the manifest (Ed25519: openssl genpkey -algorithm ed25519)\n"
	"  --allow-missing     export revisions whose content the store lacks; their\n"
	"                      files are marked absent (502 on the other side)\n"
	"  -q, --quiet         only errors\n";

static const char receipt_usage[] =
	"usage: %s receipt --repos-path STORE -o RECEIPT\n"
	"\n"
	"Write what STORE holds (repos, revisions and their commits, the exact set of\n"
	"its objects; no file content) for the sender's next `export --since RECEIPT`.\n"
	"\n"
	"  --repos-path STORE  the store (default: ./repos)\n"
	"  -o RECEIPT          the file to write, or - for stdout\n"
	"  -q, --quiet         only errors\n";

/* "[models/|datasets/|spaces/]org/name[@rev]" into specs (merging a repo's revs). */
static int parse_repo_arg(struct hfm_export_repo **v, size_t *n, const char *arg)
{
	char *s = hfm_strdup(arg), *at = strchr(s, '@'), *name = s;
	enum hfm_repo_type t = HFM_MODEL;
	struct hfm_repo_id id;
	struct hfm_export_repo *r = NULL;
	int rc = 0;

	if (at)
		*at++ = '\0';
	for (int k = 0; k < HFM_REPO_TYPES; k++) {
		const char *pl = hfm_repo_type_plural((enum hfm_repo_type)k);
		size_t l = strlen(pl);

		if (!strncmp(name, pl, l) && name[l] == '/' && name[l + 1]) {
			t = (enum hfm_repo_type)k;
			name += l + 1;
			break;
		}
	}
	if (hfm_repo_id_parse(&id, t, name) || (at && (!*at || !hfm_rev_valid(at)))) {
		rc = HFM_EINVAL;
		goto out;
	}
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].id.type == id.type && !strcmp((*v)[i].id.name, id.name))
			r = &(*v)[i];
	if (!r) {
		*v = hfm_realloc(*v, (*n + 1) * sizeof(**v));
		r = &(*v)[(*n)++];
		memset(r, 0, sizeof(*r));
		r->id = id;
	} else if (!r->nrevs || !at) {
		rc = HFM_EINVAL;             /* "every revision" and one revision at once */
		goto out;
	}
	if (at)
		hfm_config_push_str(&r->revs, &r->nrevs, at);
out:
	free(s);
	return rc;
}

static void free_specs(struct hfm_export_repo *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < v[i].nrevs; j++)
			free(v[i].revs[j]);
		free(v[i].revs);
	}
	free(v);
}

/*
 * The repos of a sync manifest into specs, each with its revisions and its
 * patterns (borrowed from m).  A repo also named by --repo is an error: two
 * selections of its files would have to be merged.
 */
static int add_manifest_specs(struct hfm_export_repo **v, size_t *n,
			      const struct hfm_sync_manifest *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct hfm_sync_want *w = &m->repos[i];
		struct hfm_export_repo *r;

		for (size_t j = 0; j < *n; j++)
			if ((*v)[j].id.type == w->id.type && !strcmp((*v)[j].id.name, w->id.name)) {
				fprintf(stderr, "%s:%u: repo: %s is also named by --repo\n", m->path, w->line, w->id.name);
				return HFM_EINVAL;
			}
		*v = hfm_realloc(*v, (*n + 1) * sizeof(**v));
		r = &(*v)[(*n)++];
		memset(r, 0, sizeof(*r));
		r->id = w->id;
		for (size_t j = 0; j < w->n_revisions; j++)
			hfm_config_push_str(&r->revs, &r->nrevs, w->revisions[j]);
		r->include = w->include;
		r->ninclude = w->n_include;
		r->exclude = w->exclude;
		r->nexclude = w->n_exclude;
	}
	return 0;
}

enum { X_REPOS = 1000, X_REPO, X_ALL, X_INCLUDE, X_EXCLUDE, X_SINCE, X_SPLIT, X_SIGN,
       X_ALLOW_MISSING, X_MANIFEST };

int hfm_export_main(const char *prog, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repos-path", required_argument, NULL, X_REPOS },
		{ "repo", required_argument, NULL, X_REPO },
		{ "all", no_argument, NULL, X_ALL },
		{ "include", required_argument, NULL, X_INCLUDE },
		{ "exclude", required_argument, NULL, X_EXCLUDE },
		{ "since", required_argument, NULL, X_SINCE },
		{ "split", required_argument, NULL, X_SPLIT },
		{ "sign", required_argument, NULL, X_SIGN },
		{ "allow-missing", no_argument, NULL, X_ALLOW_MISSING },
		{ "manifest", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hfm_export_opts o = { .store = "repos", .prog = prog };
	struct hfm_export_repo *specs = NULL;
	struct hfm_sync_manifest *manifest = NULL;
	char **inc = NULL, **exc = NULL;
	size_t nspecs = 0, nflag, ninc = 0, nexc = 0, i;
	struct hfm_buf err = HFM_BUF_INIT(1024);
	int c, rc = 2;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:m:qh", longopts, NULL)) != -1) {
		switch (c) {
		case X_REPOS:
			o.store = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case X_REPO:
			if (parse_repo_arg(&specs, &nspecs, optarg)) {
				fprintf(stderr, "%s export: --repo %s: not [TYPE/]ORG/NAME[@REV] (or a "
					"repo given both with and without @REV)\n", prog, optarg);
				goto out;
			}
			break;
		case X_ALL:
			o.all = 1;
			break;
		case X_INCLUDE:
			hfm_config_push_str(&inc, &ninc, optarg);
			break;
		case X_EXCLUDE:
			hfm_config_push_str(&exc, &nexc, optarg);
			break;
		case X_SINCE:
			o.since = optarg;
			break;
		case X_SPLIT:
			hfm_buf_reset(&err);
			if (hfm_parse_size(&o.split, optarg, &err) || !o.split) {
				fprintf(stderr, "%s export: --split %s: %s\n", prog, optarg,
					err.len ? hfm_buf_cstr(&err) : "a size such as 4G");
				goto out;
			}
			break;
		case X_SIGN:
			o.sign_key = optarg;
			break;
		case X_ALLOW_MISSING:
			o.allow_missing = 1;
			break;
		case 'm':
			if (manifest) {
				fprintf(stderr, "%s export: -m given twice\n", prog);
				goto out;
			}
			hfm_buf_reset(&err);
			if (hfm_sync_manifest_read(&manifest, optarg, &err)) {
				fprintf(stderr, "%s", hfm_buf_cstr(&err));
				goto out;
			}
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'h':
			printf(export_usage, prog);
			rc = 0;
			goto out;
		case ':':
			fprintf(stderr, "%s export: %s needs a value\n", prog, argv[optind - 1]);
			goto out;
		default:
			fprintf(stderr, "%s export: unknown option '%s'\n", prog, argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s export: unexpected argument '%s'\n", prog, argv[optind]);
		goto out;
	}
	nflag = nspecs;
	for (i = 0; i < nflag; i++) {
		specs[i].include = inc;
		specs[i].ninclude = ninc;
		specs[i].exclude = exc;
		specs[i].nexclude = nexc;
	}
	if (manifest && add_manifest_specs(&specs, &nspecs, manifest))
		goto out;
	if (!o.out || (!nspecs && !o.all) || (nspecs && o.all)) {
		fprintf(stderr, "%s export: needs -o OUT and either -m SYNC.toml, --repo ID[@REV] "
			"or --all\n"
			"Run '%s export --help' for usage.\n", prog, prog);
		goto out;
	}
	o.repos = specs;
	o.nrepos = nspecs;
	if (o.all && (ninc || nexc)) {
		fprintf(stderr, "%s export: --include and --exclude go with --repo\n", prog);
		goto out;
	}
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	rc = hfm_export_run(&o);
	git_libgit2_shutdown();
out:
	free_specs(specs, nspecs);
	hfm_sync_manifest_free(manifest);
	for (i = 0; i < ninc; i++)
		free(inc[i]);
	free(inc);
	for (i = 0; i < nexc; i++)
		free(exc[i]);
	free(exc);
	hfm_buf_dispose(&err);
	return rc;
}

/* -- receipt -- */

struct receipt_scan {
	const struct hfm_store *store;
	struct hfm_receipt *r;
	struct hfm_receipt_repo *rr;
};

static int receipt_rev_fn(void *cls, const char *rev, const char *commit)
{
	hfm_receipt_add_rev(((struct receipt_scan *)cls)->rr, rev, commit);
	return 0;
}

static int receipt_meta_fn(void *cls, const char *relpath)
{
	if (hfm_path_valid(relpath))
		hfm_receipt_add_meta(((struct receipt_scan *)cls)->rr, relpath);
	return 0;
}

static int receipt_repo_fn(void *cls, const struct hfm_repo_id *id, enum hfm_bundle_kind kind)
{
	struct receipt_scan *s = cls;
	char dir[HFM_REPO_NAME_MAX + 64];
	int rc = 0;

	s->rr = hfm_receipt_add_repo(s->r, id, kind);
	if (kind == HFM_BUNDLE_CACHE) {
		cache_dir(dir, sizeof(dir), id);
		if (!(rc = scan_cache_revs(s->store, id, receipt_rev_fn, s)))
			rc = walk_files(s->store->root_fd, dir, "commits", receipt_meta_fn, s);
		return rc;
	}
	struct hfm_buf path = HFM_BUF_INIT(HFM_PATH_MAX);
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref;

	hfm_store_mirror_path(&path, s->store, id);
	if (git_repository_open_ext(&repo, path.ptr, GIT_REPOSITORY_OPEN_NO_SEARCH |
				    GIT_REPOSITORY_OPEN_BARE, NULL) < 0 ||
	    git_reference_iterator_new(&it, repo) < 0) {
		rc = git_fail(path.ptr);
	} else {
		while (git_reference_next(&ref, it) == 0) {
			char hex[GIT_OID_HEXSZ + 1];

			if (git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
				git_oid_tostr(hex, sizeof(hex), git_reference_target(ref));
				hfm_receipt_add_rev(s->rr, git_reference_name(ref), hex);
			}
			git_reference_free(ref);
		}
	}
	git_reference_iterator_free(it);
	git_repository_free(repo);
	hfm_buf_dispose(&path);
	return rc;
}

/* Every object the store holds (objects/xx/<oid>). */
static int receipt_objects(const struct hfm_store *s, struct hfm_receipt *r)
{
	char **dirs, **names;
	size_t nd, n;
	int rc;

	if ((rc = list_names(&dirs, &nd, s->objects_fd, ".", 1)))
		return rc;
	for (size_t i = 0; i < nd && !rc; i++) {
		if (strlen(dirs[i]) != 2)
			continue;
		if ((rc = list_names(&names, &n, s->objects_fd, dirs[i], 0)))
			break;
		for (size_t j = 0; j < n; j++)
			if (!strncmp(names[j], dirs[i], 2) && hfm_store_oid_valid(names[j]))
				hfm_receipt_add_object(r, names[j]);
		free_names(names, n);
	}
	free_names(dirs, nd);
	return rc;
}

int hfm_receipt_main(const char *prog, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repos-path", required_argument, NULL, X_REPOS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store_path = "repos", *out = NULL;
	struct hfm_buf text = HFM_BUF_INIT(HFM_RECEIPT_MAX);
	struct receipt_scan scan = { 0 };
	struct hfm_store *store = NULL;
	char source[HFM_PATH_MAX + 300], b[32];
	int c, quiet = 0, rc = 2;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case X_REPOS:
			store_path = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			printf(receipt_usage, prog);
			return 0;
		case ':':
			fprintf(stderr, "%s receipt: %s needs a value\n", prog, argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "%s receipt: unknown option '%s'\n", prog, argv[optind - 1]);
			return 2;
		}
	}
	if (!out || optind < argc) {
		fprintf(stderr, "%s receipt: needs -o RECEIPT (and no other argument)\n"
			"Run '%s receipt --help' for usage.\n", prog, prog);
		return 2;
	}
	rc = 1;
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	if (hfm_store_open(&store, store_path, 0))
		goto fail;
	host_source(source, sizeof(source), store->root);
	scan.store = store;
	scan.r = hfm_receipt_new(source);
	if (scan_repos(store, receipt_repo_fn, &scan) || receipt_objects(store, scan.r))
		goto fail;
	hfm_receipt_seal(scan.r);
	if (hfm_receipt_format(&text, scan.r)) {
		hfm_error_set(HFM_ETOOBIG, "the receipt is too large");
		goto fail;
	}
	if (!strcmp(out, "-")) {
		if (hfm_write_all(STDOUT_FILENO, text.ptr, text.len) < 0) {
			hfm_error_set(HFM_EIO, "stdout: %s", strerror(errno));
			goto fail;
		}
	} else {
		char *dir = hfm_strdup(out), *slash = strrchr(dir, '/');
		const char *base = slash ? slash + 1 : out;
		int wrc;

		if (slash)
			*slash = '\0';
		wrc = hfm_bundle_write_file(slash ? (*dir ? dir : "/") : ".", base, text.ptr, text.len);
		free(dir);
		if (wrc)
			goto fail;
	}
	if (!quiet) {
		human(b, sizeof(b), text.len);
		fprintf(stderr, "%s receipt: wrote %s: receipt %s, %zu repos, %zu objects (%s)\n",
			prog, strcmp(out, "-") ? out : "stdout", scan.r->id, scan.r->nrepos,
			scan.r->n20 + scan.r->n32, b);
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "%s receipt: %s\n", prog, hfm_error_last());
out:
	hfm_receipt_free(scan.r);
	hfm_store_free(store);
	hfm_buf_dispose(&text);
	git_libgit2_shutdown();
	return rc;
}
