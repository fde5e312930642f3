/*
 * probe.h - what kind of SOURCE (enum hfm_imp_kind, job.h) a directory is,
 * before any job runs: a clone, a Hugging Face cache folder or a whole
 * cache, or else a plain directory.
 */
#ifndef HFM_IMP_PROBE_H
#define HFM_IMP_PROBE_H

#include "job.h"

/*
 * What kind of source the directory `path` is.  A directory that is none of
 * the others but holds "models--*", "datasets--*" or "spaces--*" folders is
 * a whole cache (~/.cache/huggingface/hub): *cache_root is set and *kind is
 * HFM_IMP_SRC_HFCACHE; list its repos with hfm_imp_probe_cache_repos().
 * 0, or HFM_EINVAL with a message when `path` is not a directory.
 */
int hfm_imp_probe(enum hfm_imp_kind *kind, int *cache_root, const char *path);

/* The repo folders of a cache root, sorted (free each and the array). */
int hfm_imp_probe_cache_repos(char ***out, size_t *n, const char *root);

#endif
