/* mirror.c - create, lock and update a bare mirror in the store. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirror.h"

struct waiting {
	struct hfm_progress *progress;
	const struct hfm_repo_id *id;
};

static void say_waiting(void *cls)
{
	const struct waiting *w = cls;

	hfm_progress_say(w->progress, "waiting for another import of %s to finish", w->id->name);
}

int hfm_imp_lock(int *out, const struct hfm_store *store, struct hfm_progress *progress,
		 const char *prefix, const struct hfm_repo_id *id)
{
	struct waiting w = { progress, id };

	return hfm_store_repo_lock(out, store, prefix, id, say_waiting, &w);
}

void hfm_imp_mirror_unlock(int lock_fd)
{
	if (lock_fd >= 0)
		close(lock_fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Initialise a bare repo under tmp/ and rename it to `final`. */
static int create_mirror(const struct hfm_imp_job *job, const char *final)
{
	git_repository_init_options opts;
	git_repository *repo = NULL;
	struct hfm_buf parent = HFM_BUF_INIT(HFM_PATH_MAX), tmp = HFM_BUF_INIT(HFM_PATH_MAX);
	const char *slash = strrchr(final, '/');
	int rc = 0;

	hfm_buf_put(&parent, final, (size_t)(slash - final));
	hfm_buf_printf(&tmp, "%s/tmp/mirror-%ld-%llx", job->store->root, (long)getpid(),
		       (unsigned long long)hfm_mono_ns());
	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		     GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = "main";
	opts.description = "hfmirror mirror";
	if (git_repository_init_ext(&repo, tmp.ptr, &opts) < 0) {
		rc = hfm_imp_git_error("create mirror");
		goto cleanup;
	}
	git_repository_free(repo);
	if ((rc = hfm_store_mkdirs(job->store, parent.ptr + strlen(job->store->root) + 1)))
		goto cleanup;
	if (rename(tmp.ptr, final) < 0 && errno != EEXIST && errno != ENOTEMPTY)
		rc = hfm_error_set(HFM_EIO, "create %s: %s", final, strerror(errno));
cleanup:
	/* gone after a successful rename; otherwise a leftover */
	nftw(tmp.ptr, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	hfm_buf_dispose(&parent);
	hfm_buf_dispose(&tmp);
	return rc;
}

int hfm_imp_mirror_open(struct hfm_imp_job *job, int *lock_fd)
{
	struct hfm_buf path = HFM_BUF_INIT(HFM_PATH_MAX);
	struct stat st;
	int rc, fd = -1;

	*lock_fd = -1;
	hfm_store_mirror_path(&path, job->store, &job->id);
	if (path.err) {
		rc = hfm_error_set(HFM_ETOOBIG, "store path too long");
		goto out;
	}
	if ((rc = hfm_imp_lock(&fd, job->store, job->progress, "", &job->id)))
		goto out;
	if (stat(path.ptr, &st) < 0) {
		if ((rc = create_mirror(job, path.ptr)))
			goto out;
		hfm_progress_say(job->progress, "created mirror %s", path.ptr);
	}
	if (git_repository_open_ext(&job->mirror, path.ptr, GIT_REPOSITORY_OPEN_NO_SEARCH |
				    GIT_REPOSITORY_OPEN_BARE, NULL) < 0) {
		rc = hfm_imp_git_error(path.ptr);
		goto out;
	}
	job->mirror_path = hfm_buf_detach(&path);
	*lock_fd = fd;
	fd = -1;
out:
	hfm_imp_mirror_unlock(fd);
	hfm_buf_dispose(&path);
	return rc;
}

/* Commits of the source's shallow list whose parents the mirror lacks. */
static int update_shallow(struct hfm_imp_job *job)
{
	git_odb *odb = NULL;
	struct hfm_buf text = HFM_BUF_INIT((size_t)64 << 20), path = HFM_BUF_INIT(HFM_PATH_MAX),
		       tmp = HFM_BUF_INIT(HFM_PATH_MAX);
	char line[128];
	FILE *f;
	size_t i, added = 0;
	int rc = 0;

	if (!job->nshallow)
		return 0;
	hfm_buf_printf(&path, "%s/shallow", job->mirror_path);
	if ((f = fopen(path.ptr, "r"))) {
		while (fgets(line, sizeof(line), f))
			hfm_buf_puts(&text, line);
		fclose(f);
	}
	if (git_repository_odb(&odb, job->mirror) < 0)
		return hfm_imp_git_error("mirror odb");
	for (i = 0; i < job->nshallow; i++) {
		git_commit *c = NULL;
		git_oid id;
		unsigned p, np;
		int lacks = 0;

		if (git_oid_fromstr(&id, job->shallow[i]) < 0 ||
		    strstr(hfm_buf_cstr(&text), job->shallow[i]) ||
		    git_commit_lookup(&c, job->mirror, &id) < 0)
			continue;
		np = git_commit_parentcount(c);
		for (p = 0; p < np; p++)
			lacks |= !git_odb_exists(odb, git_commit_parent_id(c, p));
		git_commit_free(c);
		if (lacks) {
			hfm_buf_printf(&text, "%s\n", job->shallow[i]);
			added++;
		}
	}
	git_odb_free(odb);
	if (added) {
		int fd;

		hfm_buf_printf(&tmp, "%s.hfmirror-tmp", path.ptr);
		fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, text.ptr, text.len) != (ssize_t)text.len ||
		    fsync(fd) < 0 || rename(tmp.ptr, path.ptr) < 0)
			rc = hfm_error_set(HFM_EIO, "%s: %s", path.ptr, strerror(errno));
		if (fd >= 0)
			close(fd);
		if (rc)
			unlink(tmp.ptr);
	}
	if (text.err)
		rc = hfm_error_set(HFM_ETOOBIG, "%s: too large", path.ptr);
	hfm_buf_dispose(&text);
	hfm_buf_dispose(&path);
	hfm_buf_dispose(&tmp);
	return rc;
}

int hfm_imp_mirror_update(struct hfm_imp_job *job)
{
	char *msg = hfm_asprintf("hfmirror-import: from %s", job->source);
	size_t i;
	int rc;

	/* before the refs: git must not walk past these commits */
	if ((rc = update_shallow(job)))
		goto out;
	for (i = 0; i < job->nrefs; i++) {
		const struct hfm_imp_ref *r = &job->refs[i];
		git_reference *old = NULL, *ref = NULL;
		int existed = git_reference_lookup(&old, job->mirror, r->name) == 0;

		if (existed && git_reference_type(old) == GIT_REFERENCE_DIRECT &&
		    git_oid_equal(git_reference_target(old), &r->target)) {
			git_reference_free(old);
			continue;
		}
		git_reference_free(old);
		if (git_reference_create(&ref, job->mirror, r->name, &r->target, 1, msg) < 0) {
			rc = hfm_imp_git_error(r->name);
			goto out;
		}
		git_reference_free(ref);
		if (existed)
			job->refs_moved++;
		else
			job->refs_new++;
	}
	if (job->head) {
		char *full = hfm_asprintf("refs/heads/%s", job->head);

		if (git_repository_set_head(job->mirror, full) < 0)
			rc = hfm_imp_git_error("set HEAD");
		free(full);
	}
out:
	free(msg);
	return rc;
}
