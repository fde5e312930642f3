/* Buffers' helpers: base64 decoding (git's Basic credentials) and the byte ring. */
#include <stdlib.h>
#include <string.h>

#include "hfm/buf.h"
#include "tap.h"

static void test_b64(void)
{
	struct hfm_buf b = HFM_BUF_INIT(1024);

	TAP_IS_INT(hfm_buf_b64_decode(&b, "dXNlcjpoZl90b2tlbg==", 20), 0, "padded base64");
	TAP_IS_STR(hfm_buf_cstr(&b), "user:hf_token", "decodes");
	hfm_buf_reset(&b);
	TAP_IS_INT(hfm_buf_b64_decode(&b, "dXNlcjpoZl90b2tlbg", 18), 0, "unpadded");
	TAP_IS_STR(hfm_buf_cstr(&b), "user:hf_token", "the same");
	hfm_buf_reset(&b);
	TAP_IS_INT(hfm_buf_b64_decode(&b, "-_8", 3), 0, "the URL-safe alphabet");
	TAP_OK(b.len == 2 && (unsigned char)b.ptr[0] == 0xfb && (unsigned char)b.ptr[1] == 0xff,
	       "its bytes");
	hfm_buf_reset(&b);
	TAP_IS_INT(hfm_buf_b64_decode(&b, "ab$d", 4), HFM_EINVAL, "a character outside both");
	hfm_buf_dispose(&b);
	struct hfm_buf small = HFM_BUF_INIT(4);
	TAP_IS_INT(hfm_buf_b64_decode(&small, "dXNlcjpoZl90b2tlbg==", 20), HFM_ETOOBIG,
		   "the buffer's cap holds");
	hfm_buf_dispose(&small);
}

static void test_ring(void)
{
	struct hfm_ring r;
	char out[16];

	hfm_ring_init(&r, 8);
	TAP_IS_INT(hfm_ring_put(&r, "abcdef", 6), 6, "put 6 of 8");
	TAP_IS_INT(hfm_ring_put(&r, "ghijk", 5), 2, "then only the 2 that fit");
	TAP_IS_INT(hfm_ring_get(&r, out, 5), 5, "get 5");
	TAP_OK(!memcmp(out, "abcde", 5), "in order");
	TAP_IS_INT(hfm_ring_put(&r, "XYZW", 4), 4, "put across the end");
	TAP_IS_INT(hfm_ring_get(&r, out, sizeof(out)), 7, "get everything");
	TAP_OK(!memcmp(out, "fghXYZW", 7), "wrapped in order");
	TAP_IS_INT(hfm_ring_get(&r, out, 1), 0, "then nothing");
	hfm_ring_dispose(&r);
}

int main(void)
{
	test_b64();
	test_ring();
	return tap_done();
}
