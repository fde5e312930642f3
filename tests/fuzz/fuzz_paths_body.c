/*
 * fuzz_paths_body: the paths-info request body (hfm_paths_body_parse(), and
 * through it hfm_form_parse() and cJSON) on any bytes, sent as JSON, as a
 * form and with no Content-Type.
 *
 * Promises checked (paths_body.h): refused with a reason, or every path
 * kept is a non-empty valid repo path without leading or trailing '/', at
 * most HFM_PATHS_BODY_MAX of them; nothing is read past the body's length
 * (the input buffer has no NUL after it).
 */
#include "hfm/common.h"
#include "hfm/path.h"
#include "hfm/paths_body.h"
#include "fuzz.h"

static const char *const types[] = {
	NULL,
	"application/json",
	"application/x-www-form-urlencoded",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t t, i;

	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct hfm_paths_body p;
		int rc;

		hfm_error_clear();
		rc = hfm_paths_body_parse(&p, types[t], (const char *)data, size);
		if (rc) {
			FUZZ_CHECK(rc == HFM_EINVAL);
			FUZZ_CHECK(hfm_error_last()[0] != '\0');
		} else {
			FUZZ_CHECK(p.n <= HFM_PATHS_BODY_MAX);
			FUZZ_CHECK(p.expand == 0 || p.expand == 1);
			for (i = 0; i < p.n; i++) {
				size_t n = strlen(p.v[i]);

				FUZZ_CHECK(n > 0);
				FUZZ_CHECK(p.v[i][0] != '/' && p.v[i][n - 1] != '/');
				FUZZ_CHECK(hfm_path_valid(p.v[i]));
			}
		}
		hfm_paths_body_dispose(&p);
	}
	return 0;
}
