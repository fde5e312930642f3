/*
 * mirror.h - the bare git mirror of one repo in the store.
 *
 * A new mirror is initialised under tmp/ and renamed into
 * mirrors/<type>/<org>/<name>.git, so the final path is either absent or a
 * complete repository.  One import at a time works on a mirror: the lock is
 * hfm_store_mirror_lock() (store.h, shared with `hfmirror sync`), held until
 * hfm_imp_mirror_unlock(); a second import waits for it.
 */
#ifndef HFM_IMP_MIRROR_H
#define HFM_IMP_MIRROR_H

#include "job.h"

/*
 * Lock the mirror of job->id, create it if needed, and open it as
 * job->mirror (job->mirror_path set).  *lock_fd receives the lock.
 */
int hfm_imp_mirror_open(struct hfm_imp_job *job, int *lock_fd);
void hfm_imp_mirror_unlock(int lock_fd);

/*
 * The import lock of repo `id` (a file under meta/import-locks, named
 * `prefix` + the repo: "" for its git mirror, "cache--" for its cached
 * metadata): waits for its holder, saying so.  Release it with
 * hfm_imp_mirror_unlock().
 */
int hfm_imp_lock(int *out, const struct hfm_store *store, struct hfm_progress *progress,
		 const char *prefix, const struct hfm_repo_id *id);

/*
 * Step 3: set every ref of job->refs in the mirror (counting new and moved
 * ones), point HEAD at job->head, and add job->shallow to the mirror's
 * shallow list where the mirror lacks those commits' parents.  Refs the
 * source does not have are left alone.
 */
int hfm_imp_mirror_update(struct hfm_imp_job *job);

#endif
