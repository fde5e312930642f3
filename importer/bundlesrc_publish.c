/*
 * bundlesrc_publish.c - a verified bundle into the store: its objects, then
 * each cache repo's metadata with the revisions switched last (bundlesrc.h).
 *
 * The online cache finds a revision through one small file,
 * meta/<type>/<name>/revs/<enc rev> (the commit id), and everything else
 * by that commit (commits/<sha>/...: written once, never changed).  So the
 * commit-keyed files go first (harmless: nothing names those commits yet)
 * and the revisions switch last, all of a repo's at once: a new revs/
 * directory is made beside the old one (links to the revisions the bundle
 * does not change, files for those it does) and exchanged with it in one
 * renameat2(RENAME_EXCHANGE).  Where the filesystem cannot exchange, each
 * revision is renamed into place on its own (each still atomic).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/fsutil.h"
#include "bundlesrc.h"
#include "mirror.h"

int hfm_imp_bundle_publish_objects(struct hfm_imp_bundle *b)
{
	int sfd = hfm_imp_stage_fd(b->st);

	for (size_t i = 0; i < b->m->nitems; i++) {
		const struct hfm_bundle_item *it = &b->m->items[i];
		char rel[80], dir[3], key[HFM_IMP_STAGE_KEY_MAX];

		if (it->kind != HFM_BUNDLE_OBJECT)
			continue;
		if (b->state[i] == HFM_IMP_ITEM_PRESENT) {
			b->objects_present++;
			continue;
		}
		hfm_imp_stage_key(key, it);
		snprintf(dir, sizeof(dir), "%.2s", it->digest);
		snprintf(rel, sizeof(rel), "%s/%s", dir, it->digest);
		if (mkdirat(b->store->objects_fd, dir, 0755) < 0 && errno != EEXIST)
			return hfm_error_set(HFM_EIO, "mkdir objects/%s: %s", dir, strerror(errno));
		/* made durable by the last checkpoint; the final syncfs covers the names */
		if (renameat2(sfd, key, b->store->objects_fd, rel, RENAME_NOREPLACE) < 0) {
			if (errno == EEXIST) {
				unlinkat(sfd, key, 0);      /* another writer was quicker */
				b->objects_present++;
				continue;
			}
			if ((errno != EINVAL && errno != ENOSYS) ||
			    renameat(sfd, key, b->store->objects_fd, rel) < 0)
				return hfm_error_set(HFM_EIO, "publishing object %s: %s", it->digest,
						     strerror(errno));
		}
		b->objects_new++;
		b->bytes_new += it->size;
	}
	return 0;
}

/* Write <root>/rel holding `data` durably (a new file). */
static int write_new(int root_fd, const char *rel, const char *data, size_t n)
{
	int fd = openat(root_fd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;

	if (fd < 0 || hfm_write_all(fd, data, n) < 0 || fdatasync(fd) < 0)
		rc = hfm_error_set(HFM_EIO, "%s: %s", rel, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int fsync_dir(int root_fd, const char *rel)
{
	int fd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	fsync(fd);
	close(fd);
	return 0;
}

/* Switch every revision of the bundle's repo at once (see above). */
static int switch_revs(struct hfm_imp_bundle *b, size_t ri, const char *dir)
{
	const struct hfm_bundle_repo *r = &b->m->repos[ri];
	struct hfm_imp_bundle_repo *res = &b->repos[ri];
	int root = b->store->root_fd;
	char *revs = hfm_asprintf("%s/revs", dir);
	char *next = hfm_asprintf("%s/.revs-%ld", dir, (long)getpid());
	char *abs_next = hfm_asprintf("%s/%s", b->store->root, next);
	char **enc = hfm_calloc(r->nrevs + 1, sizeof(*enc));
	struct stat st;
	int rc = 0, had = fstatat(root, revs, &st, 0) == 0;
	size_t i;

	for (i = 0; i < r->nrevs; i++) {
		struct hfm_buf e = HFM_BUF_INIT(HFM_PATH_MAX);

		hfm_buf_urlenc(&e, r->revs[i].name, 0);
		enc[i] = hfm_buf_detach(&e);
	}
	hfm_imp_stage_rmtree(abs_next);          /* a leftover of a killed run */
	if (mkdirat(root, next, 0755) < 0) {
		rc = hfm_error_set(HFM_EIO, "mkdir %s: %s", next, strerror(errno));
		goto out;
	}
	/* the revisions the bundle leaves alone keep their files (and mtimes) */
	if (had) {
		int fd = openat(root, revs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		while (d && (de = readdir(d))) {
			size_t l = strlen(de->d_name);
			char *from, *to;

			if (de->d_name[0] == '.' || (l > 4 && !strcmp(de->d_name + l - 4, ".tmp")))
				continue;
			for (i = 0; i < r->nrevs && strcmp(enc[i], de->d_name); i++)
				;
			if (i < r->nrevs)
				continue;
			from = hfm_asprintf("%s/%s", revs, de->d_name);
			to = hfm_asprintf("%s/%s", next, de->d_name);
			if (linkat(root, from, root, to, 0) < 0)
				rc = hfm_error_set(HFM_EIO, "link %s: %s", to, strerror(errno));
			free(from);
			free(to);
			if (rc)
				break;
		}
		if (d)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		if (rc)
			goto out;
	}
	for (i = 0; i < r->nrevs && !rc; i++) {
		struct hfm_buf old = HFM_BUF_INIT(64);
		char *was = hfm_asprintf("%s/%s", revs, enc[i]), *to = hfm_asprintf("%s/%s", next, enc[i]);
		int fd = openat(root, was, O_RDONLY | O_CLOEXEC);
		char buf[64];
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

		if (fd >= 0)
			close(fd);
		if (n < 0)
			res->revs_new++;
		else if (n != HFM_SHA1_HEX || memcmp(buf, r->revs[i].commit, HFM_SHA1_HEX))
			res->revs_moved++;
		rc = write_new(root, to, r->revs[i].commit, HFM_SHA1_HEX);
		free(was);
		free(to);
		hfm_buf_dispose(&old);
	}
	if (rc)
		goto out;
	fsync_dir(root, next);
	if (!had) {
		if (renameat(root, next, root, revs) < 0)
			rc = hfm_error_set(HFM_EIO, "rename %s: %s", revs, strerror(errno));
		goto out;
	}
	if (renameat2(root, next, root, revs, RENAME_EXCHANGE) == 0)
		goto out;                     /* next now holds the old revisions: removed below */
	if (errno != EINVAL && errno != ENOSYS) {
		rc = hfm_error_set(HFM_EIO, "exchange %s: %s", revs, strerror(errno));
		goto out;
	}
	/* no exchange on this filesystem: one revision at a time */
	for (i = 0; i < r->nrevs && !rc; i++) {
		char *from = hfm_asprintf("%s/%s", next, enc[i]), *to = hfm_asprintf("%s/%s", revs, enc[i]);

		if (renameat(root, from, root, to) < 0)
			rc = hfm_error_set(HFM_EIO, "rename %s: %s", to, strerror(errno));
		free(from);
		free(to);
	}
out:
	hfm_imp_stage_rmtree(abs_next);
	fsync_dir(root, dir);
	for (i = 0; i < r->nrevs; i++)
		free(enc[i]);
	free(enc);
	free(revs);
	free(next);
	free(abs_next);
	return rc;
}

int hfm_imp_bundle_lock(int *fd, struct hfm_imp_bundle *b, size_t ri)
{
	return hfm_imp_lock(fd, b->store, b->progress, "cache--", &b->m->repos[ri].id);
}

/*
 * A staged metadata file into meta/<type>/<name>/<relpath>: linked beside
 * it and renamed over it (two files of a bundle may share one content, so
 * the staged file stays until the staging area goes).
 */
static int place_meta(struct hfm_imp_bundle *b, const struct hfm_bundle_item *it, const char *dir)
{
	char *rel = hfm_asprintf("%s/%s", dir, it->relpath), *slash = strrchr(rel, '/');
	char *tmp = hfm_asprintf("%s.%ld.bundle.tmp", rel, (long)getpid());
	char key[HFM_IMP_STAGE_KEY_MAX];
	int rc = 0;

	hfm_imp_stage_key(key, it);
	*slash = '\0';
	rc = hfm_store_mkdirs(b->store, rel);
	*slash = '/';
	unlinkat(b->store->root_fd, tmp, 0);
	if (!rc && (linkat(hfm_imp_stage_fd(b->st), key, b->store->root_fd, tmp, 0) < 0 ||
		    renameat(b->store->root_fd, tmp, b->store->root_fd, rel) < 0)) {
		rc = hfm_error_set(HFM_EIO, "publishing %s: %s", rel, strerror(errno));
		unlinkat(b->store->root_fd, tmp, 0);
	}
	if (!rc)
		b->meta_files++;
	free(rel);
	free(tmp);
	return rc;
}

int hfm_imp_bundle_cache_publish(struct hfm_imp_bundle *b, size_t ri)
{
	const struct hfm_bundle_repo *r = &b->m->repos[ri];
	char *dir = hfm_asprintf("meta/%s/%s", hfm_repo_type_plural(r->id.type), r->id.name);
	int lock_fd = -1, rc;
	size_t i;

	if ((rc = hfm_imp_bundle_lock(&lock_fd, b, ri)) || (rc = hfm_store_mkdirs(b->store, dir)))
		goto out;
	/*
	 * 1. what commits key: nothing names these commits until the revisions
	 * switch; and the access mark (gated, private), so that no revision of
	 * a gated repo is ever visible without it
	 */
	for (i = 0; i < b->m->nitems && !rc; i++) {
		const struct hfm_bundle_item *it = &b->m->items[i];

		if (it->kind == HFM_BUNDLE_META && it->repo == (long)ri &&
		    b->state[i] == HFM_IMP_ITEM_STAGED && (!strncmp(it->relpath, "commits/", 8) ||
							   !strcmp(it->relpath, "access")))
			rc = place_meta(b, it, dir);
	}
	/* who may pass the mark offline */
	if (!rc)
		rc = hfm_imp_bundle_grants_publish(b, ri);
	/* 2. the revisions, at once */
	if (!rc && r->nrevs)
		rc = switch_revs(b, ri, dir);
	/* 3. the repo's refs listing */
	for (i = 0; i < b->m->nitems && !rc; i++) {
		const struct hfm_bundle_item *it = &b->m->items[i];

		if (it->kind == HFM_BUNDLE_META && it->repo == (long)ri &&
		    b->state[i] == HFM_IMP_ITEM_STAGED && !strcmp(it->relpath, "refs.json"))
			rc = place_meta(b, it, dir);
	}
out:
	hfm_imp_mirror_unlock(lock_fd);
	free(dir);
	return rc;
}
