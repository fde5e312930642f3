/*
 * fuzz_bundle_manifest: hfm_bundle_manifest_parse() on any bytes, the
 * manifest hfmirror-import reads from a bundle that crossed an air gap.
 *
 * Promises checked (bundle.h): a manifest that parses prints back (format)
 * to text that parses to the same print; every field it accepted holds what
 * the header says (ids lowercase hex of their length, names and paths that
 * pass path.h's checks, metadata paths refs.json, access or below a listed
 * commit); grants name valid users, ways and times, one record per user
 * and repo, in cache repos only; payload member names are unique; a refusal
 * says which line.
 */
#include "hfm/bundle.h"
#include "fuzz.h"

static void check_manifest(const struct hfm_bundle_manifest *m)
{
	for (size_t i = 0; i < m->nitems; i++) {
		const struct hfm_bundle_item *it = &m->items[i];

		FUZZ_CHECK(hfm_is_hex(it->digest, strlen(it->digest)));
		FUZZ_CHECK(strlen(it->digest) == HFM_SHA1_HEX || strlen(it->digest) == HFM_SHA256_HEX);
		FUZZ_CHECK(hfm_path_valid(it->name));    /* no "..": staged and published below a root */
		if (it->kind == HFM_BUNDLE_META) {
			FUZZ_CHECK(it->repo >= 0 && (size_t)it->repo < m->nrepos);
			FUZZ_CHECK(hfm_path_valid(it->relpath));
		}
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(m->items[j].name, it->name));
	}
	for (size_t i = 0; i < m->nrepos; i++) {
		const struct hfm_bundle_repo *r = &m->repos[i];

		for (size_t j = 0; j < r->nrevs; j++)
			FUZZ_CHECK(hfm_rev_valid(r->revs[j].name) && hfm_is_hex(r->revs[j].commit, 40));
		for (size_t j = 0; j < r->ncommits; j++)
			for (size_t k = 0; k < r->commits[j].nfiles; k++)
				FUZZ_CHECK(hfm_path_valid(r->commits[j].files[k].path) &&
					   r->commits[j].files[k].path[0]);
		FUZZ_CHECK(!r->ngrants || r->kind == HFM_BUNDLE_CACHE);
		for (size_t j = 0; j < r->ngrants; j++) {
			const struct hfm_bundle_grant *g = &r->grants[j];

			FUZZ_CHECK(hfm_user_name_ok(g->user) && hfm_user_name_ok(g->via));
			FUZZ_CHECK(!g->time[0] || hfm_iso_date_valid(g->time, strlen(g->time)));
			for (size_t k = 0; k < j; k++)
				FUZZ_CHECK(strcmp(r->grants[k].user, g->user));
		}
	}
	for (size_t i = 0; i < m->nvolumes; i++)
		FUZZ_CHECK(!strchr(m->volumes[i].name, '/'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hfm_bundle_manifest *m = NULL, *m2 = NULL;
	struct hfm_buf err = HFM_BUF_INIT(4096), t = HFM_BUF_INIT((size_t)1 << 30),
		       t2 = HFM_BUF_INIT((size_t)1 << 30);

	if (hfm_bundle_manifest_parse(&m, (const char *)data, size, &err)) {
		FUZZ_CHECK(!m && !strncmp(hfm_buf_cstr(&err), "manifest:", 9));
		goto out;
	}
	check_manifest(m);
	FUZZ_CHECK(hfm_bundle_manifest_format(&t, m) == 0);
	FUZZ_CHECK(hfm_bundle_manifest_parse(&m2, t.ptr, t.len, &err) == 0);
	FUZZ_CHECK(hfm_bundle_manifest_format(&t2, m2) == 0);
	FUZZ_CHECK(t.len == t2.len && !memcmp(t.ptr, t2.ptr, t.len));
out:
	hfm_bundle_manifest_free(m);
	hfm_bundle_manifest_free(m2);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&t);
	hfm_buf_dispose(&t2);
	return 0;
}
