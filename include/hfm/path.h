/*
 * path.h - percent-decoding, repo-relative path checks and repo ids.
 *
 * Everything that reaches a source has passed through here: a repo name is
 * one or two segments of [A-Za-z0-9._-] (no leading '.', '-', no ".."); a
 * file path is '/'-separated components, none empty, "." or "..", with no
 * NUL, backslash or control byte, at most HFM_PATH_MAX bytes.  Sources may
 * therefore join a checked path below their root without further escaping
 * checks (they still open with RESOLVE_BENEATH to stop symlink escapes).
 */
#ifndef HFM_PATH_H
#define HFM_PATH_H

#include <stddef.h>

#define HFM_PATH_MAX 4096
#define HFM_REPO_NAME_MAX 200      /* "org/name" */
#define HFM_REV_MAX 256

enum hfm_repo_type {
	HFM_MODEL = 0,
	HFM_DATASET = 1,
	HFM_SPACE = 2,
};
#define HFM_REPO_TYPES 3

struct hfm_repo_id {
	enum hfm_repo_type type;
	char name[HFM_REPO_NAME_MAX + 1];   /* "org/name", or "name" for canonical repos */
};

/* "models", "datasets", "spaces" (the /api/ segment). */
const char *hfm_repo_type_plural(enum hfm_repo_type t);
/* "model", "dataset", "space". */
const char *hfm_repo_type_name(enum hfm_repo_type t);
/* URL prefix for file routes: "", "datasets/", "spaces/". */
const char *hfm_repo_type_prefix(enum hfm_repo_type t);
/* Parse "models"/"model"/"datasets"/...; returns 0 or HFM_EINVAL. */
int hfm_repo_type_parse(enum hfm_repo_type *out, const char *s);

/* One repo-name segment (org or name). */
int hfm_repo_segment_valid(const char *s, size_t n);
/* Build a repo id from one or two segments; HFM_EINVAL if invalid. */
int hfm_repo_id_set(struct hfm_repo_id *out, enum hfm_repo_type t,
		    const char *org, const char *name);
/* "org/name" or "name" (a canonical repo) of type t; 0 or HFM_EINVAL. */
int hfm_repo_id_parse(struct hfm_repo_id *out, enum hfm_repo_type t, const char *name);

/*
 * Percent-decode n bytes of `in` into `out` (which holds at least n + 1
 * bytes).  With `plus_space`, '+' decodes to ' ' (form encoding).  Returns
 * the decoded length, or -1 for a malformed escape or a decoded NUL.
 */
long hfm_pct_decode(char *out, const char *in, size_t n, int plus_space);

/* Check a repo-relative path as described above.  "" is valid (the root). */
int hfm_path_valid(const char *p);
/* Revision strings: 1..HFM_REV_MAX bytes, no control bytes, no "..". */
int hfm_rev_valid(const char *r);

/*
 * A local user or group name (tokens.h, grants.h):
 * [A-Za-z0-9][A-Za-z0-9._-]*, at most HFM_USER_NAME_MAX bytes.
 */
#define HFM_USER_NAME_MAX 96
int hfm_user_name_ok(const char *s);

#endif
