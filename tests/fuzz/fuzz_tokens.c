/*
 * fuzz_tokens: the tokens file reader (hfm_tokfile_read(), jsonl.c) on any
 * file, and the Authorization parser (hfm_auth_token_of()) on the same bytes.
 *
 * The input is written to a memfd and read through /proc/self/fd/N.
 *
 * Promises checked (tokens.h, jsonl.h, auth.h): a bad file is HFM_EINVAL with
 * one "FILE:LINE: key: why" line per problem, and nothing read; a file that
 * reads has every token's user declared and a 64-hex lowercase hash; what
 * hfm_tokfile_format() writes reads back to the same records.  A token
 * taken from an Authorization value is non-empty, fits, and has no NUL.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "hfm/auth.h"
#include "hfm/common.h"
#include "hfm/hash.h"
#include "hfm/jsonl.h"
#include "hfm/tokens.h"
#include "fuzz.h"

static int memfd = -1;
static char path[64];

static void check_read(const struct hfm_tokfile *f)
{
	for (size_t i = 0; i < f->ntokens; i++) {
		int declared = 0;
		for (size_t u = 0; u < f->nusers; u++)
			declared |= !strcmp(f->users[u].name, f->tokens[i].user);
		FUZZ_CHECK(declared);
		FUZZ_CHECK(strlen(f->tokens[i].sha256) == HFM_SHA256_HEX);
		FUZZ_CHECK(hfm_is_hex(f->tokens[i].sha256, HFM_SHA256_HEX));
	}
	for (size_t u = 0; u < f->nusers; u++)
		FUZZ_CHECK(hfm_user_name_ok(f->users[u].name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 20), out = HFM_BUF_INIT(HFM_JSONL_MAX);
	struct hfm_tokfile f, g;
	char *raw = fuzz_cstr(data, size);
	char tok[64];
	int rc;

	if (!hfm_auth_token_of(tok, sizeof(tok), raw))
		FUZZ_CHECK(tok[0] && strlen(tok) < sizeof(tok));
	free(raw);

	if (memfd < 0) {
		memfd = memfd_create("fuzz-tokens.jsonl", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	rc = hfm_tokfile_read(&f, path, &err);
	if (size > HFM_JSONL_MAX) {
		FUZZ_CHECK(rc == HFM_EIO);
		goto out;
	}
	FUZZ_CHECK(rc == 0 || rc == HFM_EINVAL);
	if (rc) {
		if (!fuzz_lines_name_file(path, hfm_buf_cstr(&err)))
			fprintf(stderr, "errors:\n%s", hfm_buf_cstr(&err));
		FUZZ_CHECK(fuzz_lines_name_file(path, hfm_buf_cstr(&err)));
		goto out;
	}
	FUZZ_CHECK(err.len == 0);
	check_read(&f);
	/* round trip */
	hfm_tokfile_format(&out, &f);
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, out.ptr, out.len, 0) == (ssize_t)out.len);
	FUZZ_CHECK(hfm_tokfile_read(&g, path, &err) == 0);
	FUZZ_CHECK(g.nusers == f.nusers && g.ntokens == f.ntokens);
	for (size_t i = 0; i < f.ntokens; i++)
		FUZZ_CHECK(!strcmp(f.tokens[i].sha256, g.tokens[i].sha256) &&
			   !strcmp(f.tokens[i].id, g.tokens[i].id));
	hfm_tokfile_dispose(&g);
out:
	hfm_tokfile_dispose(&f);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&out);
	return 0;
}
