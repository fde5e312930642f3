/*
 * fuzz_range: hfm_range_parse() on any Range header, against files of
 * several sizes (the edges: empty, one byte, and near 2^64).
 *
 * Promises checked (range.h): a partial answer lies inside the file and is
 * not empty; an empty-file answer only for an empty file; whether a header
 * is honoured does not depend on the size; the same call answers the same.
 */
#include "hfm/range.h"
#include "fuzz.h"

static const uint64_t sizes[] = {
	0, 1, 2, 100, 1000, 1u << 20, (uint64_t)1 << 40,
	UINT64_MAX / 10, UINT64_MAX - 1, UINT64_MAX,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *h = fuzz_cstr(data, size);
	uint64_t s0, l0;
	/* whether a header is honoured is syntax: the same for every size */
	int honoured = hfm_range_parse(h, 0, &s0, &l0) != HFM_RANGE_NONE;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t start = 7, len = 7, start2 = 9, len2 = 9;
		enum hfm_range_kind k = hfm_range_parse(h, sizes[i], &start, &len);

		FUZZ_CHECK(k == HFM_RANGE_NONE || k == HFM_RANGE_PARTIAL ||
			   k == HFM_RANGE_UNSATISFIABLE || k == HFM_RANGE_EMPTY_FILE);
		if (k == HFM_RANGE_PARTIAL) {
			FUZZ_CHECK(len >= 1);
			FUZZ_CHECK(start < sizes[i]);
			FUZZ_CHECK(len <= sizes[i] - start);
		}
		if (k == HFM_RANGE_EMPTY_FILE)
			FUZZ_CHECK(sizes[i] == 0);
		FUZZ_CHECK((k != HFM_RANGE_NONE) == honoured);
		if (sizes[i] == 0)
			FUZZ_CHECK(k != HFM_RANGE_PARTIAL && k != HFM_RANGE_UNSATISFIABLE);
		FUZZ_CHECK(hfm_range_parse(h, sizes[i], &start2, &len2) == k);
		if (k == HFM_RANGE_PARTIAL)
			FUZZ_CHECK(start2 == start && len2 == len);
	}
	free(h);
	return 0;
}
