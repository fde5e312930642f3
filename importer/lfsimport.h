/*
 * lfsimport.h - step 2 of a job (run.h): bring the listed LFS objects into
 * the store.
 *
 * An object already in objects/ is counted present without being read
 * again: it was verified when it got its name.  Only its size is checked
 * (a stat), since a hard-linked object changes if someone edits the file
 * it shares an inode with; one with the wrong size is removed and imported
 * again.  Other objects are taken from the first candidate file whose size
 * matches the pointer and whose content hashes to the oid; candidates that
 * fail are reported (job->corrupt) unless they are checked-out files, which
 * may simply have been edited.  What no candidate holds stays missing.
 */
#ifndef HFM_IMP_LFSIMPORT_H
#define HFM_IMP_LFSIMPORT_H

#include "job.h"

/* 0, or an error (the store could not be written) with a message. */
int hfm_imp_lfs_import(struct hfm_imp_job *job);

#endif
