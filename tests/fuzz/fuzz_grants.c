/*
 * fuzz_grants: hfm_grants_parse_record() on any bytes: a line of
 * STORE/meta/grants.jsonl, which admins edit by hand and the importer reads.
 *
 * Promises checked (grants.h): a record that parses has a valid user name,
 * a repo "models/…", "datasets/…" or "spaces/…" that hfm_grants_parse_repo
 * takes, a via of the name rule, a time that is "" or a date; what
 * hfm_grants_format_record() prints parses to the same record.  A refusal
 * is one "FILE:LINE: key: why" line.
 */
#include <string.h>

#include "hfm/grants.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 20), out = HFM_BUF_INIT(1 << 20);
	struct hfm_grant g, h;
	struct hfm_repo_id id;

	if (hfm_grants_parse_record(&g, (const char *)data, size, "f", 1, &err)) {
		FUZZ_CHECK(fuzz_lines_name_file("f", hfm_buf_cstr(&err)));
		goto out;
	}
	FUZZ_CHECK(hfm_user_name_ok(g.user) && hfm_user_name_ok(g.via));
	FUZZ_CHECK(!strncmp(g.repo, "models/", 7) || !strncmp(g.repo, "datasets/", 9) ||
		   !strncmp(g.repo, "spaces/", 7));
	FUZZ_CHECK(hfm_grants_parse_repo(&id, g.repo) == 0);
	FUZZ_CHECK(!g.time[0] || hfm_iso_date_valid(g.time, strlen(g.time)));
	hfm_grants_format_record(&out, &g);
	FUZZ_CHECK(out.len && out.ptr[out.len - 1] == '\n');
	FUZZ_CHECK(hfm_grants_parse_record(&h, out.ptr, out.len - 1, "f", 1, &err) == 0);
	FUZZ_CHECK(!strcmp(g.user, h.user) && !strcmp(g.repo, h.repo) && !strcmp(g.via, h.via) &&
		   !strcmp(g.time, h.time) && g.revoked == h.revoked);
	hfm_grant_dispose(&h);
	hfm_grant_dispose(&g);
out:
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&out);
	return 0;
}
