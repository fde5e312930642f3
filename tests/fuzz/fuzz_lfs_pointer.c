/*
 * fuzz_lfs_pointer: hfm_lfs_pointer_parse() on any blob.  It is the one LFS
 * pointer parser: src_git.c (serving) and the importer's gitclone.c both call
 * it.
 *
 * Promises checked (hash.h): a pointer is recognised only in a blob of at
 * most 1024 bytes that starts with the spec line; its oid is 64 lowercase
 * hex digits and its size is the number written on its size line; the
 * canonical pointer for (oid, size) parses back to the same pair and is
 * hfm_lfs_pointer_len() bytes long.
 */
#include "hfm/common.h"
#include "hfm/hash.h"
#include "fuzz.h"

#define SPEC "version https://git-lfs.github.com/spec/v1\n"

/* Whether some line of the blob is "size N" with N (decimal digits) == size. */
static int has_size_line(const uint8_t *data, size_t n, uint64_t size)
{
	size_t i = 0;

	while (i < n) {
		const uint8_t *line = data + i, *nl = memchr(line, '\n', n - i);
		size_t len = nl ? (size_t)(nl - line) : n - i, k;
		uint64_t v = 0;
		int digits = len > 5 && !memcmp(line, "size ", 5);

		for (k = 5; digits && k < len; k++) {
			unsigned d = (unsigned)line[k] - '0';
			if (d > 9 || v > (UINT64_MAX - d) / 10)
				digits = 0;
			else
				v = v * 10 + d;
		}
		if (digits && nl && v == size)
			return 1;
		i += len + 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char oid[HFM_SHA256_HEX + 1], oid2[HFM_SHA256_HEX + 1];
	uint64_t sz = 0, sz2 = 0;
	struct hfm_buf b = HFM_BUF_INIT(4096);

	if (hfm_lfs_pointer_parse(oid, &sz, data, size))
		return 0;
	FUZZ_CHECK(size <= 1024);
	FUZZ_CHECK(size >= strlen(SPEC) && !memcmp(data, SPEC, strlen(SPEC)));
	FUZZ_CHECK(hfm_is_hex(oid, HFM_SHA256_HEX));
	FUZZ_CHECK(has_size_line(data, size, sz));
	FUZZ_CHECK(hfm_lfs_pointer(&b, oid, sz) == 0);
	FUZZ_CHECK(b.len == hfm_lfs_pointer_len(sz));
	FUZZ_CHECK(hfm_lfs_pointer_parse(oid2, &sz2, b.ptr, b.len) == 0);
	FUZZ_CHECK(!strcmp(oid, oid2) && sz == sz2);
	hfm_buf_dispose(&b);
	return 0;
}
