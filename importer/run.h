/*
 * run.h - the runner: one import job (job.h) through its three steps.
 *
 * The order of the steps is what keeps the store consistent when an import
 * is killed at any point:
 *   1. the source's step (sources.h) writes the source's git objects into
 *      the mirror's object database and lists the refs to set and the LFS
 *      objects they reach; no ref of the mirror moves;
 *   2. lfsimport.h brings the LFS objects into objects/ (each one staged and
 *      renamed, or hard-linked, after verification);
 *   3. mirror.h moves the mirror's refs.
 * So a ref never names a commit whose git objects are not all in the mirror,
 * and unreferenced objects left by a killed run are simply found present by
 * the next one.  The mirror is locked (mirror.h) from before step 1 to after
 * step 3.
 */
#ifndef HFM_IMP_RUN_H
#define HFM_IMP_RUN_H

#include "job.h"

/*
 * Import job->source (job->kind and job->id already set) into its mirror.
 * 0, complete or not (hfm_imp_job_missing() says), or an error code with a
 * message; either way the job holds what was done, for report.h.
 */
int hfm_imp_run(struct hfm_imp_job *job);

#endif
