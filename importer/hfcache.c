/*
 * hfcache.c - step 1 for one repo folder of a Hugging Face cache:
 *
 *   models--org--name/blobs/<id>                  content, named by its Hub id:
 *                                                 sha256 for LFS files, git
 *                                                 blob sha1 for the others
 *   models--org--name/snapshots/<commit>/<path>   symlinks into blobs/
 *   models--org--name/refs/<revision>             the commit of a branch,
 *                                                 refs/refs/pr/1 for a PR
 *
 * The cache has no git objects, so each snapshot becomes one commit of its
 * files.  The blob names say which files are LFS, exactly as the Hub stored
 * them, so a complete snapshot gives the Hub's own tree id.  The commit id
 * cannot be the Hub's (its parents and message are not in the cache); the
 * mirror commit carries the Hub's id in a "Hub-Commit:" trailer and under
 * refs/hfmirror/hub/<hub commit>, so it stays reachable even when no branch
 * names it (a download pinned to a commit).
 *
 * A snapshot holds only the files that were downloaded: a partial download
 * gives a partial tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirtree.h"
#include "hfm/plainrepo.h"
#include "sources.h"

struct snapshot {
	char hub[HFM_SHA1_HEX + 1];    /* the Hub's commit id (the folder name) */
	git_oid commit;                /* the mirror's */
	int built;
};

struct cache_ref {
	char *revision;                /* "main", "refs/pr/1" */
	char hub[HFM_SHA1_HEX + 1];
};

/* Read a small file of the cache (a blob named by its git id) into a blob. */
static int small_blob(git_oid *out, git_repository *repo, const char *path, uint64_t size)
{
	char *data = hfm_malloc(size ? (size_t)size : 1);
	FILE *f = fopen(path, "rb");
	int rc = 0;

	if (!f || (size && fread(data, 1, (size_t)size, f) != size))
		rc = hfm_error_set(HFM_EIO, "%s: %s", path, f ? "short read" : strerror(errno));
	else if (git_blob_create_from_buffer(out, repo, data, (size_t)size) < 0)
		rc = hfm_imp_git_error(path);
	if (f)
		fclose(f);
	free(data);
	return rc;
}

/* A snapshot entry that links into blobs/: its blob or its LFS pointer. */
static int cache_file(struct hfm_imp_job *job, struct hfm_imp_file *f, const char *blob_name,
		      const char *where)
{
	git_odb *odb = NULL;
	git_oid id, got;
	int rc = 0;

	if (hfm_is_hex(blob_name, HFM_SHA256_HEX)) {
		struct hfm_buf pointer = HFM_BUF_INIT(1024);
		struct hfm_imp_lfs *e;

		hfm_lfs_pointer(&pointer, blob_name, (uint64_t)f->st.st_size);
		if (git_blob_create_from_buffer(&f->blob, job->mirror, pointer.ptr, pointer.len) < 0)
			rc = hfm_imp_git_error(f->abs);
		else if ((rc = hfm_imp_lfsset_add(&e, &job->lfs, blob_name,
						  (uint64_t)f->st.st_size, where)) == 0)
			hfm_imp_lfs_add_cand(e, f->abs, HFM_IMP_CAND_CACHE, NULL);
		hfm_buf_dispose(&pointer);
		f->keep = !rc;
		return rc;
	}
	/* named by its git blob id: known already, or read and checked */
	git_oid_fromstr(&id, blob_name);
	if (git_repository_odb(&odb, job->mirror) == 0 &&
	    git_odb_exists_ext(odb, &id, GIT_ODB_LOOKUP_NO_REFRESH)) {
		f->blob = id;
		f->keep = 1;
	} else if ((rc = small_blob(&got, job->mirror, f->abs, (uint64_t)f->st.st_size)) == 0) {
		if (git_oid_equal(&got, &id)) {
			f->blob = id;
			f->keep = 1;
		} else {
			char hex[GIT_OID_HEXSZ + 1];
			char *why;

			git_oid_tostr(hex, sizeof(hex), &got);
			why = hfm_asprintf("content has git blob id %s", hex);
			hfm_imp_job_add_corrupt(job, blob_name, f->abs, why);
			free(why);
			hfm_progress_say(job->progress, "%s: corrupt cache blob, left out "
					     "of the snapshot", where);
		}
	}
	git_odb_free(odb);
	return rc;
}

static int build_snapshot(struct hfm_imp_job *job, struct snapshot *snap)
{
	struct hfm_imp_filelist files;
	struct hfm_lfs_attrs *attrs = NULL;
	char *dir = hfm_asprintf("%s/snapshots/%s", job->source, snap->hub), *msg = NULL;
	git_oid tree;
	int64_t when = 0;
	size_t i;
	int rc, dirfd;

	if ((rc = hfm_imp_dir_list(&files, dir, job->progress)))
		goto cleanup;
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		attrs = hfm_lfs_attrs_read(dirfd);
		close(dirfd);
	}
	for (i = 0; i < files.n && !rc; i++) {
		struct hfm_imp_file *f = &files.v[i];
		char target[HFM_PATH_MAX], *where = hfm_asprintf("%.12s:%s", snap->hub, f->rel);
		const char *base;
		ssize_t n = f->is_link ? readlink(f->abs, target, sizeof(target) - 1) : -1;

		if (n > 0) {
			target[n] = '\0';
			base = strrchr(target, '/');
			base = base ? base + 1 : target;
		} else {
			base = "";
		}
		if (hfm_is_hex(base, HFM_SHA256_HEX) || hfm_is_hex(base, HFM_SHA1_HEX))
			rc = cache_file(job, f, base, where);
		else
			rc = hfm_imp_plain_file(job, f, attrs, where);
		when = HFM_MAX(when, (int64_t)f->st.st_mtime);
		free(where);
	}
	if (rc || (rc = hfm_imp_dir_tree(&tree, job->mirror, &files)))
		goto cleanup;
	msg = hfm_asprintf("Snapshot of %s from a Hugging Face cache\n\nHub-Commit: %s\n",
			   job->id.name, snap->hub);
	if ((rc = hfm_imp_dir_commit(&snap->commit, job->mirror, &tree, NULL, when, msg)))
		goto cleanup;
	snap->built = 1;
cleanup:
	hfm_lfs_attrs_free(attrs);
	hfm_imp_filelist_dispose(&files);
	free(msg);
	free(dir);
	return rc;
}

static int cmp_snap(const void *a, const void *b)
{
	return strcmp(((const struct snapshot *)a)->hub, ((const struct snapshot *)b)->hub);
}

static int list_snapshots(struct snapshot **out, size_t *n, const char *source)
{
	char *path = hfm_asprintf("%s/snapshots", source);
	DIR *d = opendir(path);
	struct dirent *de;
	struct snapshot *v = NULL;
	size_t cnt = 0;

	if (!d) {
		int rc = hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));

		free(path);
		return rc;
	}
	while ((de = readdir(d))) {
		if (!hfm_is_hex(de->d_name, HFM_SHA1_HEX))
			continue;
		v = hfm_realloc(v, (cnt + 1) * sizeof(*v));
		memset(&v[cnt], 0, sizeof(*v));
		memcpy(v[cnt].hub, de->d_name, sizeof(v[cnt].hub));
		cnt++;
	}
	closedir(d);
	free(path);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_snap);
	*out = v;
	*n = cnt;
	return 0;
}

/* refs/<revision> files, recursively ("refs/refs/pr/1" is revision "refs/pr/1"). */
static void list_refs(struct cache_ref **v, size_t *n, const char *dir, const char *rel)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *abs, *r, line[128];
		struct stat st;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		abs = hfm_asprintf("%s/%s", dir, de->d_name);
		r = rel[0] ? hfm_asprintf("%s/%s", rel, de->d_name) : hfm_strdup(de->d_name);
		if (stat(abs, &st) == 0 && S_ISDIR(st.st_mode)) {
			list_refs(v, n, abs, r);
		} else if ((f = fopen(abs, "r"))) {
			if (fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\r\n")] = '\0';
				if (hfm_is_hex(line, HFM_SHA1_HEX)) {
					*v = hfm_realloc(*v, (*n + 1) * sizeof(**v));
					(*v)[*n].revision = r;
					memcpy((*v)[*n].hub, line, sizeof((*v)[*n].hub));
					(*n)++;
					r = NULL;
				}
			}
			fclose(f);
		}
		free(r);
		free(abs);
	}
	closedir(d);
}

static struct snapshot *find_snapshot(struct snapshot *v, size_t n, const char *hub)
{
	struct snapshot key;

	memcpy(key.hub, hub, sizeof(key.hub));
	return bsearch(&key, v, n, sizeof(*v), cmp_snap);
}

int hfm_imp_hfcache_collect(struct hfm_imp_job *job)
{
	struct snapshot *snaps = NULL;
	struct cache_ref *refs = NULL;
	size_t nsnaps = 0, nrefs = 0, i;
	char *refdir = hfm_asprintf("%s/refs", job->source);
	int rc;

	if ((rc = list_snapshots(&snaps, &nsnaps, job->source)))
		goto cleanup;
	if (!nsnaps) {
		rc = hfm_error_set(HFM_EINVAL, "%s has no snapshots to import", job->source);
		goto cleanup;
	}
	for (i = 0; i < nsnaps && !rc; i++) {
		char *name = hfm_asprintf("refs/hfmirror/hub/%s", snaps[i].hub);

		if (!(rc = build_snapshot(job, &snaps[i])))
			hfm_imp_job_add_ref(job, name, &snaps[i].commit);
		free(name);
	}
	if (rc)
		goto cleanup;
	list_refs(&refs, &nrefs, refdir, "");
	for (i = 0; i < nrefs; i++) {
		struct snapshot *s = find_snapshot(snaps, nsnaps, refs[i].hub);
		char *name = !strncmp(refs[i].revision, "refs/", 5)
				     ? hfm_strdup(refs[i].revision)
				     : hfm_asprintf("refs/heads/%s", refs[i].revision);
		int valid = 0;

		if (!s) {
			hfm_progress_say(job->progress, "%s: revision %s is commit %s, which "
					     "has no snapshot folder; skipped", job->source,
					     refs[i].revision, refs[i].hub);
		} else if (git_reference_name_is_valid(&valid, name) < 0 || !valid) {
			hfm_progress_say(job->progress, "%s: revision %s is not a valid ref "
					     "name; skipped", job->source, refs[i].revision);
		} else {
			hfm_imp_job_add_ref(job, name, &s->commit);
			if (!strcmp(name, "refs/heads/main") || (!job->head &&
								 !strncmp(name, "refs/heads/", 11))) {
				free(job->head);
				job->head = hfm_strdup(name + 11);
			}
		}
		free(name);
	}
	hfm_progress_say(job->progress, "%s: %zu snapshots, %zu revisions, %zu LFS objects",
			     job->id.name, nsnaps, nrefs, job->lfs.n);
cleanup:
	for (i = 0; i < nrefs; i++)
		free(refs[i].revision);
	free(refs);
	free(snaps);
	free(refdir);
	return rc;
}
