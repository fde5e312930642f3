/* Range header parsing: every case a Hub client or a hostile one sends. */
#include "hfm/range.h"
#include "tap.h"

static void check(const char *h, uint64_t size, enum hfm_range_kind want,
		  uint64_t wstart, uint64_t wlen)
{
	uint64_t start = 999, len = 999;
	enum hfm_range_kind k = hfm_range_parse(h, size, &start, &len);

	if (want == HFM_RANGE_PARTIAL)
		TAP_OK(k == want && start == wstart && len == wlen,
		       "'%s' on %llu -> 206 %llu+%llu (got kind %d %llu+%llu)", h ? h : "(null)",
		       (unsigned long long)size, (unsigned long long)wstart,
		       (unsigned long long)wlen, k, (unsigned long long)start,
		       (unsigned long long)len);
	else
		TAP_OK(k == want, "'%s' on %llu -> kind %d (got %d)", h ? h : "(null)",
		       (unsigned long long)size, want, k);
}

int main(void)
{
	check(NULL, 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=0-0", 10, HFM_RANGE_PARTIAL, 0, 1);
	check("bytes=0-", 10, HFM_RANGE_PARTIAL, 0, 10);
	check("bytes=3-", 10, HFM_RANGE_PARTIAL, 3, 7);
	check("bytes=3-5", 10, HFM_RANGE_PARTIAL, 3, 3);
	check("bytes=3-100", 10, HFM_RANGE_PARTIAL, 3, 7);
	check("bytes=9-9", 10, HFM_RANGE_PARTIAL, 9, 1);
	check("bytes=-4", 10, HFM_RANGE_PARTIAL, 6, 4);
	check("bytes=-100", 10, HFM_RANGE_PARTIAL, 0, 10);
	check("bytes = 2 - 4", 10, HFM_RANGE_PARTIAL, 2, 3);
	check("Bytes=1-1", 10, HFM_RANGE_PARTIAL, 1, 1);
	/* unsatisfiable */
	check("bytes=10-", 10, HFM_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=10-20", 10, HFM_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=-0", 10, HFM_RANGE_UNSATISFIABLE, 0, 0);
	/* zero-length representation */
	check("bytes=0-0", 0, HFM_RANGE_EMPTY_FILE, 0, 0);
	check("bytes=0-", 0, HFM_RANGE_EMPTY_FILE, 0, 0);
	check("bytes=-5", 0, HFM_RANGE_EMPTY_FILE, 0, 0);
	/* ignored: 200 with the full body */
	check("bytes=5-2", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=abc", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=1", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=-", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes", 10, HFM_RANGE_NONE, 0, 0);
	check("", 10, HFM_RANGE_NONE, 0, 0);
	check("items=0-1", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=0-1,3-4", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=-5,-2", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=0-1x", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=99999999999999999999-", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=0-99999999999999999999", 10, HFM_RANGE_NONE, 0, 0);
	check("bytes=18446744073709551615-", 10, HFM_RANGE_UNSATISFIABLE, 0, 0);
	/* large files */
	check("bytes=4294967296-", 8589934592ull, HFM_RANGE_PARTIAL, 4294967296ull, 4294967296ull);
	return tap_done();
}
