/*
 * fuzz_receipt: hfm_receipt_parse() on any bytes, the receipt that
 * `hfmirror export --since` reads (it decides what a bundle leaves out).
 *
 * Promises checked (receipt.h): a receipt that parses has sorted, unique
 * object ids (the exact sets decode or the receipt is refused), answers
 * "has" for each of them, and prints back to bytes that parse to the same
 * print; a damaged receipt is refused with its line.
 */
#include "hfm/receipt.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hfm_receipt *r = NULL, *r2 = NULL;
	struct hfm_buf err = HFM_BUF_INIT(4096), t = HFM_BUF_INIT((size_t)1 << 30),
		       t2 = HFM_BUF_INIT((size_t)1 << 30);
	char hex[HFM_SHA256_HEX + 1];

	if (hfm_receipt_parse(&r, data, size, &err)) {
		FUZZ_CHECK(!r && !strncmp(hfm_buf_cstr(&err), "receipt:", 8));
		goto out;
	}
	for (size_t i = 0; i < r->n32; i++) {
		FUZZ_CHECK(!i || memcmp(r->ids32 + (i - 1) * 32, r->ids32 + i * 32, 32) < 0);
		hfm_hex(hex, r->ids32 + i * 32, 32);
		FUZZ_CHECK(hfm_receipt_has_object(r, hex));
	}
	for (size_t i = 0; i < r->n20; i++) {
		FUZZ_CHECK(!i || memcmp(r->ids20 + (i - 1) * 20, r->ids20 + i * 20, 20) < 0);
		hfm_hex(hex, r->ids20 + i * 20, 20);
		FUZZ_CHECK(hfm_receipt_has_object(r, hex));
	}
	FUZZ_CHECK(hfm_receipt_format(&t, r) == 0);
	FUZZ_CHECK(hfm_receipt_parse(&r2, t.ptr, t.len, &err) == 0);
	FUZZ_CHECK(hfm_receipt_format(&t2, r2) == 0);
	FUZZ_CHECK(t.len == t2.len && !memcmp(t.ptr, t2.ptr, t.len));
out:
	hfm_receipt_free(r);
	hfm_receipt_free(r2);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&t);
	hfm_buf_dispose(&t2);
	return 0;
}
