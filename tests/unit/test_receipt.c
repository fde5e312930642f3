/* test_receipt.c - receipts and their exact object sets. */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "hfm/receipt.h"
#include "tap.h"

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static void test_idset(void)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 100, 4097 };
	struct hfm_buf b = HFM_BUF_INIT((size_t)1 << 30);
	unsigned char *keys, *back;

	for (size_t s = 0; s < HFM_ARRAY_SIZE(sizes); s++) {
		size_t n = sizes[s];

		keys = calloc(n + 1, 32);
		RAND_bytes(keys, (int)(n * 32));
		qsort(keys, n, 32, cmp32);
		hfm_buf_reset(&b);
		TAP_IS_INT(hfm_idset_encode(&b, keys, n, 32), 0, "encode %zu ids", n);
		TAP_IS_INT(hfm_idset_decode(&back, n, 32, (unsigned char *)b.ptr, b.len), 0,
			   "decode %zu ids", n);
		TAP_OK(back && (!n || !memcmp(back, keys, n * 32)), "the same %zu ids", n);
		free(back);
		if (n > 2) {
			b.ptr[b.len - 1] ^= 1;
			/* a flipped low bit changes an id: still a valid set, but never the same one */
			if (hfm_idset_decode(&back, n, 32, (unsigned char *)b.ptr, b.len) == 0)
				TAP_OK(memcmp(back, keys, n * 32) != 0, "a flipped bit is not the same set");
			else
				TAP_OK(1, "a flipped bit is refused");
			free(back);
			TAP_IS_INT(hfm_idset_decode(&back, n, 32, (unsigned char *)b.ptr, b.len - 1),
				   HFM_EINVAL, "a cut set is refused");
		}
		free(keys);
	}

	/* the size at 100 000 objects, against the minimum of any exact set */
	size_t n = 100000;
	keys = malloc(n * 32);
	RAND_bytes(keys, (int)(n * 32));
	qsort(keys, n, 32, cmp32);
	hfm_buf_reset(&b);
	hfm_idset_encode(&b, keys, n, 32);
	printf("# 100000 sha256 ids: %zu bytes (%.2f bytes per id; 32 raw)\n", b.len,
	       (double)b.len / (double)n);
	TAP_OK(b.len < n * 31, "100k sha256 ids take under 31 bytes each");
	TAP_IS_INT(hfm_idset_decode(&back, n, 32, (unsigned char *)b.ptr, b.len), 0, "and decode");
	TAP_OK(back && !memcmp(back, keys, n * 32), "to the same set");
	free(back);
	free(keys);
	hfm_buf_dispose(&b);
}

static void test_receipt(void)
{
	struct hfm_receipt *r = hfm_receipt_new("inside:/store"), *p = NULL;
	struct hfm_repo_id id = { HFM_MODEL, "acme/tiny" };
	struct hfm_receipt_repo *rr = hfm_receipt_add_repo(r, &id, HFM_BUNDLE_CACHE);
	struct hfm_buf t = HFM_BUF_INIT((size_t)1 << 30), t2 = HFM_BUF_INIT((size_t)1 << 30);
	struct hfm_buf err = HFM_BUF_INIT(1024);
	const char *a = "aa23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const char *g = "1111111111111111111111111111111111111111";

	hfm_receipt_add_rev(rr, "main", g);
	hfm_receipt_add_meta(rr, "commits/1111111111111111111111111111111111111111/tree.json");
	hfm_receipt_add_meta(rr, "commits/1111111111111111111111111111111111111111/info.json");
	hfm_receipt_add_object(r, a);
	hfm_receipt_add_object(r, a);
	hfm_receipt_add_object(r, g);
	hfm_receipt_add_object(r, "not an id");
	hfm_receipt_seal(r);
	TAP_IS_INT(r->n32 + r->n20, 2, "ids are deduplicated, non-ids ignored");
	TAP_IS_INT(hfm_receipt_format(&t, r), 0, "format");
	TAP_IS_INT(hfm_receipt_parse(&p, t.ptr, t.len, &err), 0, "parse: %s", hfm_buf_cstr(&err));
	if (p) {
		hfm_receipt_format(&t2, p);
		TAP_OK(t.len == t2.len && !memcmp(t.ptr, t2.ptr, t.len), "round-trip");
		TAP_OK(hfm_receipt_has_object(p, a) && hfm_receipt_has_object(p, g), "has its objects");
		TAP_OK(!hfm_receipt_has_object(p, "ab23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		       "and no other");
		const struct hfm_receipt_repo *f = hfm_receipt_find(p, &id, HFM_BUNDLE_CACHE);
		TAP_OK(f && hfm_receipt_has_meta(f, "commits/1111111111111111111111111111111111111111/info.json"),
		       "has its meta files");
		TAP_OK(!hfm_receipt_find(p, &id, HFM_BUNDLE_GIT), "not as a git repo");
		TAP_IS_STR(f ? f->revs[0].commit : "", g, "revision");
	}
	hfm_receipt_free(p);
	for (size_t i = 0; i < t.len; i += t.len / 7 + 1) {
		t.ptr[i] ^= 0x20;
		p = NULL;
		TAP_IS_INT(hfm_receipt_parse(&p, t.ptr, t.len, &err), HFM_EINVAL,
			   "a changed byte (%zu) is refused: %s", i, hfm_buf_cstr(&err));
		hfm_receipt_free(p);
		t.ptr[i] ^= 0x20;
	}
	p = NULL;
	TAP_IS_INT(hfm_receipt_parse(&p, t.ptr, t.len - 10, &err), HFM_EINVAL, "a cut receipt is refused");
	hfm_receipt_free(p);
	hfm_receipt_free(r);
	hfm_buf_dispose(&t);
	hfm_buf_dispose(&t2);
	hfm_buf_dispose(&err);
}

int main(void)
{
	test_idset();
	test_receipt();
	return tap_done();
}
