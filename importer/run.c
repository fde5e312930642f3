/* run.c - one import, in the order that keeps the store consistent (run.h). */
#include "lfsimport.h"
#include "mirror.h"
#include "run.h"
#include "sources.h"

int hfm_imp_run(struct hfm_imp_job *job)
{
	int lock_fd = -1, rc;

	if ((rc = hfm_imp_mirror_open(job, &lock_fd)))
		goto out;
	switch (job->kind) {
	case HFM_IMP_SRC_CLONE:
		rc = hfm_imp_clone_collect(job);
		break;
	case HFM_IMP_SRC_HFCACHE:
		rc = hfm_imp_hfcache_collect(job);
		break;
	case HFM_IMP_SRC_PLAIN:
		rc = hfm_imp_plain_collect(job);
		break;
	}
	if (rc || (rc = hfm_imp_lfs_import(job)))
		goto out;
	rc = hfm_imp_mirror_update(job);
out:
	hfm_imp_mirror_unlock(lock_fd);
	return rc;
}
