/*
 * paths_body.h - the body of POST /api/{T}/{repo}/paths-info/{rev}.
 *
 * Python clients send a form (`paths=a&paths=b&expand=true`, also `paths[]`),
 * npm sends JSON (`{"paths": ["a", "b"], "expand": true}`; a lone string is
 * taken as one path).  The Content-Type decides; without one, a body whose
 * first non-blank byte is '{' is JSON.  Leading and trailing slashes are
 * tolerated and a path that is not a valid repo path (path.h) is dropped,
 * as the Hub answers nothing for it.
 *
 * Kept apart from the handler so the parse is a pure function of its input
 * (tests/fuzz feeds it arbitrary bytes).
 */
#ifndef HFM_PATHS_BODY_H
#define HFM_PATHS_BODY_H

#include <stddef.h>

#define HFM_PATHS_BODY_MAX 10000   /* paths in one request */

struct hfm_paths_body {
	char **v;      /* valid repo paths, slashes trimmed, none ""; owned */
	size_t n;
	int expand;    /* the body asked for expand=true */
};

/*
 * Parse `len` bytes of `body` (need not be NUL-terminated) sent with
 * `content_type` (may be NULL).  Returns 0 with `out` filled, or HFM_EINVAL
 * with a reason for the client (hfm_error_set): not JSON, no "paths", a
 * non-string path, more than HFM_PATHS_BODY_MAX paths.  Always call
 * hfm_paths_body_dispose().
 */
int hfm_paths_body_parse(struct hfm_paths_body *out, const char *content_type,
			 const char *body, size_t len);
void hfm_paths_body_dispose(struct hfm_paths_body *p);

#endif
