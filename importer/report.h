/*
 * report.h - what an import says when it is done: a short text summary
 * (stderr) and, with --json, one JSON object per source on one line of
 * stdout:
 *
 *   {"repo", "type", "source", "mirror", "refs": {name: commit},
 *    "git_objects", "refs_new", "refs_moved", "objects_linked",
 *    "objects_copied", "objects_present", "bytes",
 *    "missing": [{"oid", "size", "path"}], "corrupt": [{"oid", "path", "reason"}],
 *    "complete"}
 *
 * "git_objects" (objects packed from a clone) only for clones.
 * A source that failed gives {"source", "repo"?, "error", "complete": false}.
 */
#ifndef HFM_IMP_REPORT_H
#define HFM_IMP_REPORT_H

#include <stdio.h>
#include "job.h"

/* The summary of a finished job; the full missing list only with `all`. */
void hfm_imp_report_text(FILE *out, const struct hfm_imp_job *job, int all);
/* Append the JSON object of a job (error NULL) or of a failed one. */
void hfm_imp_report_json(struct hfm_buf *out, const struct hfm_imp_job *job, const char *error);

#endif
