/*
 * plaindir.c - step 1 for a plain directory of files: one commit of them on
 * `main`, with the LFS rule model-bin uses (plainrepo.h), so a file gets the
 * same id whether model-bin serves the directory or the mirror serves the
 * import.
 *
 * Hashes are kept in the store's hash index (meta/hashindex), keyed by
 * (device, inode, size, mtime): a re-run reads no file that has not changed,
 * and makes no commit when the tree is the same as main's.  A changed
 * directory becomes a new commit whose parent is the previous main, so
 * revisions pinned to the old one keep working.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirtree.h"
#include "hfm/plainrepo.h"
#include "sources.h"

#define POINTER_MAX 1024

/* Read `size` bytes of `fd` and write them as a blob. */
static int blob_from_fd(git_oid *out, git_repository *repo, int fd, uint64_t size,
			const char *path)
{
	char *data = hfm_malloc(size ? (size_t)size : 1);
	uint64_t off = 0;
	int rc = 0;

	while (off < size) {
		ssize_t n = pread(fd, data + off, (size_t)(size - off), (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = hfm_error_set(HFM_EIO, "%s: %s", path,
					   n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		off += (uint64_t)n;
	}
	if (git_blob_create_from_buffer(out, repo, data, (size_t)size) < 0)
		rc = hfm_imp_git_error(path);
out:
	free(data);
	return rc;
}

/* The hashes of the open file, from the index or computed now (*fresh). */
static int file_hashes(struct hfm_hash_rec *rec, struct hfm_hash_key *key, int *fresh,
		       struct hfm_imp_job *job, int fd, const char *label)
{
	struct stat st;
	int binary = 0, rc;

	*fresh = 0;
	if (fstat(fd, &st) < 0)
		return hfm_error_set(HFM_EIO, "%s: %s", label, strerror(errno));
	hfm_hash_key_from_stat(key, &st);
	if (job->hashes && hfm_hashindex_get(job->hashes, key, rec) == 0)
		return 0;
	hfm_progress_item(job->progress, label, (uint64_t)st.st_size);
	rc = hfm_hash_fd_progress(fd, (uint64_t)st.st_size, rec->sha1, rec->sha256, &binary,
				  hfm_progress_bytes, job->progress);
	hfm_progress_item_done(job->progress, "hashed");
	if (rc)
		return rc;
	rec->binary = (uint8_t)binary;
	if (job->hashes)
		hfm_hashindex_put(job->hashes, key, rec);
	*fresh = 1;
	return 0;
}

int hfm_imp_plain_file(struct hfm_imp_job *job, struct hfm_imp_file *f,
		       const struct hfm_lfs_attrs *attrs, const char *ref)
{
	struct hfm_buf pointer = HFM_BUF_INIT(POINTER_MAX);
	struct hfm_hash_rec rec;
	struct hfm_hash_key key;
	struct hfm_imp_lfs *e;
	git_odb *odb = NULL;
	git_oid id;
	int fd, fresh, rc;

	fd = open(f->abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hfm_error_set(HFM_EIO, "%s: %s", f->abs, strerror(errno));
	if ((rc = file_hashes(&rec, &key, &fresh, job, fd, f->rel)))
		goto out;
	if (hfm_lfs_wanted(attrs, f->rel, key.size, rec.binary)) {
		char *where = hfm_asprintf("%s:%s", ref, f->rel);

		hfm_lfs_pointer(&pointer, rec.sha256, key.size);
		if (git_blob_create_from_buffer(&f->blob, job->mirror, pointer.ptr, pointer.len) < 0)
			rc = hfm_imp_git_error(f->abs);
		else if ((rc = hfm_imp_lfsset_add(&e, &job->lfs, rec.sha256, key.size, where)) == 0)
			hfm_imp_lfs_add_cand(e, f->abs, HFM_IMP_CAND_PLAIN, fresh ? &key : NULL);
		free(where);
	} else if (git_oid_fromstr(&id, rec.sha1) == 0 &&
		   git_repository_odb(&odb, job->mirror) == 0 &&
		   git_odb_exists_ext(odb, &id, GIT_ODB_LOOKUP_NO_REFRESH)) {
		f->blob = id;   /* unchanged since an earlier run: nothing to read */
	} else {
		rc = blob_from_fd(&f->blob, job->mirror, fd, key.size, f->abs);
	}
	f->keep = !rc;
out:
	git_odb_free(odb);
	hfm_buf_dispose(&pointer);
	close(fd);
	return rc;
}

int hfm_imp_plain_collect(struct hfm_imp_job *job)
{
	struct hfm_imp_filelist files;
	struct hfm_lfs_attrs *attrs = NULL;
	struct hfm_hash_rec rec;
	git_oid tree, commit, old;
	git_commit *old_commit = NULL;
	uint64_t items = 0, bytes = 0;
	int64_t when = 0;
	int rc, dirfd, has_old;
	size_t i;

	if ((rc = hfm_imp_dir_list(&files, job->source, job->progress)))
		goto cleanup;
	if (!files.n) {
		rc = hfm_error_set(HFM_EINVAL, "%s holds no files to import", job->source);
		goto cleanup;
	}
	if ((dirfd = open(job->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		attrs = hfm_lfs_attrs_read(dirfd);
		close(dirfd);
	}
	for (i = 0; i < files.n; i++) {
		struct hfm_hash_key key;

		hfm_hash_key_from_stat(&key, &files.v[i].st);
		if (!job->hashes || hfm_hashindex_get(job->hashes, &key, &rec)) {
			items++;
			bytes += key.size;
		}
		when = HFM_MAX(when, (int64_t)files.v[i].st.st_mtime);
	}
	if (items)
		hfm_progress_phase(job->progress, "hashing", items, bytes);
	for (i = 0; i < files.n && !rc; i++)
		rc = hfm_imp_plain_file(job, &files.v[i], attrs, "refs/heads/main");
	if (items)
		hfm_progress_phase_done(job->progress);
	if (rc || (rc = hfm_imp_dir_tree(&tree, job->mirror, &files)))
		goto cleanup;

	has_old = git_reference_name_to_id(&old, job->mirror, "refs/heads/main") == 0 &&
		  git_commit_lookup(&old_commit, job->mirror, &old) == 0;
	if (has_old && git_oid_equal(git_commit_tree_id(old_commit), &tree)) {
		commit = old;
	} else {
		char *msg = hfm_asprintf("Import the files of %s\n", job->id.name);

		rc = hfm_imp_dir_commit(&commit, job->mirror, &tree, has_old ? &old : NULL, when,
					msg);
		free(msg);
		if (rc)
			goto cleanup;
	}
	hfm_imp_job_add_ref(job, "refs/heads/main", &commit);
	job->head = hfm_strdup("main");
	hfm_progress_say(job->progress, "%s: %zu files, %zu LFS objects", job->id.name,
			     files.n, job->lfs.n);
cleanup:
	git_commit_free(old_commit);
	hfm_lfs_attrs_free(attrs);
	hfm_imp_filelist_dispose(&files);
	return rc;
}
