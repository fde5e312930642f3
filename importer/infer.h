/*
 * infer.h - which Hub repo a source is, from what it says about itself.
 *
 * A clone names its repo in its remote URL; a Hugging Face cache folder in
 * its name ("models--org--name").  Nothing here touches the filesystem:
 * callers pass the strings, so the rules are unit-tested on their own.
 */
#ifndef HFM_IMP_INFER_H
#define HFM_IMP_INFER_H

#include "hfm/common.h"
#include "hfm/path.h"

/*
 * The repo a git remote URL names.  Accepted:
 *   https://huggingface.co/org/name[.git][/]     a model (also hf.co, any host
 *   http://host:port/[prefix/]org/name           and port: mirrors too)
 *   …/datasets/org/name, …/spaces/org/name,      the type segment right
 *   …/models/org/name                            before org/name
 *   …/name, …/datasets/name                      canonical repos (no org)
 *   ssh://git@hf.co/org/name, git@hf.co:org/name
 * User names and passwords in the URL, query strings and fragments are
 * ignored.  0, or HFM_EINVAL for a local path or file:// URL (see
 * hfm_imp_url_local_path()) and for anything that does not end in a valid
 * repo name.
 */
int hfm_imp_id_from_url(struct hfm_repo_id *out, const char *url);

/*
 * The path of a remote that is a local path or a file:// URL, as a new
 * string in *path (free() it); 0, or HFM_EINVAL for a network URL.
 */
int hfm_imp_url_local_path(char **path, const char *url);

/*
 * The repo a Hugging Face cache folder is for: "models--org--name",
 * "datasets--org--name", "spaces--org--name", or without org for
 * canonical repos ("models--gpt2").  `dirname` is the folder's base name.
 * 0 or HFM_EINVAL.
 */
int hfm_imp_id_from_cache_dir(struct hfm_repo_id *out, const char *dirname);


/*
 * Write `url` to `out` (which holds `n` bytes) with any password or token
 * replaced by "***", for messages.
 */
void hfm_imp_url_redact(char *out, size_t n, const char *url);

#endif
