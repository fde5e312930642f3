/* job.c - the record of one import, filled by its steps (job.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

void hfm_imp_job_init(struct hfm_imp_job *job, const struct hfm_imp_opts *opts,
		      struct hfm_store *store, struct hfm_progress *progress,
		      struct hfm_hashindex *hashes)
{
	memset(job, 0, sizeof(*job));
	job->opts = opts;
	job->store = store;
	job->progress = progress;
	job->hashes = hashes;
	hfm_imp_lfsset_init(&job->lfs);
}

void hfm_imp_job_dispose(struct hfm_imp_job *job)
{
	size_t i;

	for (i = 0; i < job->nrefs; i++)
		free(job->refs[i].name);
	free(job->refs);
	for (i = 0; i < job->nshallow; i++)
		free(job->shallow[i]);
	free(job->shallow);
	for (i = 0; i < job->ncorrupt; i++) {
		free(job->corrupt[i].path);
		free(job->corrupt[i].reason);
	}
	free(job->corrupt);
	hfm_imp_lfsset_dispose(&job->lfs);
	git_repository_free(job->mirror);
	free(job->mirror_path);
	free(job->head);
	free(job->source);
	memset(job, 0, sizeof(*job));
}

void hfm_imp_job_add_ref(struct hfm_imp_job *job, const char *name, const git_oid *target)
{
	size_t i;

	for (i = 0; i < job->nrefs; i++) {
		if (!strcmp(job->refs[i].name, name)) {
			job->refs[i].target = *target;
			return;
		}
	}
	job->refs = hfm_realloc(job->refs, (job->nrefs + 1) * sizeof(*job->refs));
	job->refs[job->nrefs].name = hfm_strdup(name);
	job->refs[job->nrefs].target = *target;
	job->nrefs++;
}

void hfm_imp_job_add_corrupt(struct hfm_imp_job *job, const char *oid, const char *path,
			     const char *reason)
{
	struct hfm_imp_corrupt *c;

	job->corrupt = hfm_realloc(job->corrupt, (job->ncorrupt + 1) * sizeof(*job->corrupt));
	c = &job->corrupt[job->ncorrupt++];
	memset(c, 0, sizeof(*c));
	snprintf(c->oid, sizeof(c->oid), "%s", oid);
	c->path = hfm_strdup(path);
	c->reason = hfm_strdup(reason);
	hfm_progress_say(job->progress, "corrupt: %s (object %s): %s", path, oid, reason);
}

size_t hfm_imp_job_missing(const struct hfm_imp_job *job)
{
	size_t i, n = 0;

	for (i = 0; i < job->lfs.n; i++)
		n += job->lfs.v[i].state == HFM_IMP_LFS_MISSING ||
		     job->lfs.v[i].state == HFM_IMP_LFS_PENDING;
	return n;
}

int hfm_imp_git_error(const char *what)
{
	const git_error *e = git_error_last();

	return hfm_error_set(HFM_ERROR, "%s: %s", what,
			     e && e->message ? e->message : "unknown libgit2 error");
}
