/* lfsimport.c - link or copy verified LFS content into the store. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lfsimport.h"

/*
 * What the store calls while it reads an object: the progress display, and
 * a test hook.  HFMIRROR_IMPORT_STALL=N makes the import stop for good once
 * N bytes of an object have been read (and, for a copy, written to tmp/), so
 * the tests can kill it in the middle of an object.
 */
struct reader {
	struct hfm_progress *progress;
	uint64_t stall_at;
};

static void on_bytes(void *payload, uint64_t done, uint64_t total)
{
	struct reader *r = payload;

	hfm_progress_bytes(r->progress, done, total);
	if (r->stall_at && done >= r->stall_at) {
		fprintf(stderr, "hfmirror-import: stalled after %llu bytes (HFMIRROR_IMPORT_STALL)\n",
			(unsigned long long)done);
		for (;;)
			pause();
	}
}

/* Present with the right size; a wrong-sized object is removed. */
static int already_present(struct hfm_imp_job *job, const struct hfm_imp_lfs *e)
{
	struct hfm_buf path = HFM_BUF_INIT(HFM_PATH_MAX);
	struct stat st;
	int present = 0;

	if (!hfm_store_object_exists(job->store, e->oid))
		return 0;
	hfm_store_object_path(&path, job->store, e->oid);
	if (stat(path.ptr, &st) == 0 && (uint64_t)st.st_size == e->size) {
		present = 1;
	} else {
		hfm_progress_say(job->progress, "warning: object %s in the store has %llu "
				     "bytes, its pointer says %llu (changed through a hard "
				     "link?); importing it again", e->oid,
				     (unsigned long long)st.st_size, (unsigned long long)e->size);
		unlink(path.ptr);
	}
	hfm_buf_dispose(&path);
	return present;
}

/* A candidate worth opening: a regular file of the pointer's size. */
static int usable(const struct hfm_imp_cand *c, uint64_t size, off_t *actual)
{
	struct stat st;

	if (stat(c->path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	*actual = st.st_size;
	return (uint64_t)st.st_size == size;
}

/* Is the open file the one that was hashed (a hash index key)? */
static int same_file(int fd, const struct hfm_hash_key *k)
{
	struct hfm_hash_key now;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return 0;
	hfm_hash_key_from_stat(&now, &st);
	return !memcmp(&now, k, sizeof(now));
}

/* The file name in "ref:dir/file". */
static const char *base_name(const char *where)
{
	const char *colon = strchr(where, ':'), *path = colon ? colon + 1 : where;
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Try the candidates of `e` in order; 0 unless the store failed. */
static int import_one(struct hfm_imp_job *job, struct hfm_imp_lfs *e)
{
	const char *stall = getenv("HFMIRROR_IMPORT_STALL");
	struct reader reader = { job->progress, stall ? strtoull(stall, NULL, 10) : 0 };
	size_t i;
	int rc;

	e->state = HFM_IMP_LFS_MISSING;
	for (i = 0; i < e->ncands; i++) {
		const struct hfm_imp_cand *c = &e->cands[i];
		int watched = c->kind == HFM_IMP_CAND_LFS || c->kind == HFM_IMP_CAND_CACHE;
		enum hfm_store_added how;
		unsigned flags = 0;
		off_t actual = 0;
		int fd;

		if (!usable(c, e->size, &actual)) {
			if (watched && actual) {
				char *why = hfm_asprintf("%llu bytes, the pointer says %llu",
							 (unsigned long long)actual,
							 (unsigned long long)e->size);

				hfm_imp_job_add_corrupt(job, e->oid, c->path, why);
				free(why);
			}
			continue;
		}
		if ((fd = open(c->path, O_RDONLY | O_CLOEXEC)) < 0) {
			hfm_progress_say(job->progress, "warning: %s: %s", c->path,
					     strerror(errno));
			continue;
		}
		if (job->opts->copy)
			flags |= HFM_STORE_COPY;
		if (c->hashed && same_file(fd, &c->key))
			flags |= HFM_STORE_VERIFIED;
		rc = hfm_store_add_fd(&how, job->store, fd, e->oid, flags, on_bytes, &reader);
		close(fd);
		if (rc == HFM_ECORRUPT) {
			if (watched)
				hfm_imp_job_add_corrupt(job, e->oid, c->path, hfm_error_last());
			else
				hfm_progress_say(job->progress, "%s differs from the committed "
						     "file (edited?); not used", c->path);
			continue;
		}
		if (rc)
			return rc;
		switch (how) {
		case HFM_STORE_LINKED:
			e->state = HFM_IMP_LFS_LINKED;
			job->linked++;
			job->bytes += e->size;
			break;
		case HFM_STORE_COPIED:
			e->state = HFM_IMP_LFS_COPIED;
			job->copied++;
			job->bytes += e->size;
			break;
		case HFM_STORE_PRESENT:
			e->state = HFM_IMP_LFS_PRESENT;   /* another import was quicker */
			job->present++;
			break;
		}
		return 0;
	}
	return 0;
}

static const char *verb(enum hfm_imp_lfs_state s)
{
	switch (s) {
	case HFM_IMP_LFS_LINKED:
		return "linked";
	case HFM_IMP_LFS_COPIED:
		return "copied";
	case HFM_IMP_LFS_PRESENT:
		return "present";
	default:
		return "missing";
	}
}

int hfm_imp_lfs_import(struct hfm_imp_job *job)
{
	uint64_t items = 0, bytes = 0;
	size_t i, j;
	off_t actual;
	int rc = 0;

	for (i = 0; i < job->lfs.n; i++) {
		struct hfm_imp_lfs *e = &job->lfs.v[i];

		if (already_present(job, e)) {
			e->state = HFM_IMP_LFS_PRESENT;
			job->present++;
			continue;
		}
		for (j = 0; j < e->ncands; j++)
			if (usable(&e->cands[j], e->size, &actual))
				break;
		if (j < e->ncands) {
			items++;
			bytes += e->size;
		} else if ((rc = import_one(job, e))) {
			/* nothing to read: this only records why each candidate fails */
			return rc;
		}
	}
	if (!items)
		return 0;
	hfm_progress_phase(job->progress, "importing", items, bytes);
	for (i = 0; i < job->lfs.n && !rc; i++) {
		struct hfm_imp_lfs *e = &job->lfs.v[i];
		char label[96];

		if (e->state != HFM_IMP_LFS_PENDING)
			continue;
		snprintf(label, sizeof(label), "%.12s %s", e->oid, base_name(e->where));
		hfm_progress_item(job->progress, label, e->size);
		rc = import_one(job, e);
		hfm_progress_item_done(job->progress, verb(e->state));
	}
	hfm_progress_phase_done(job->progress);
	return rc;
}
