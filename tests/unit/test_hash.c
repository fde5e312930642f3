/* Hub ids: git blob ids, sha256, LFS pointers; and the bounded buffer. */
#include <stdlib.h>
#include <string.h>

#include "hfm/buf.h"
#include "hfm/hash.h"
#include "tap.h"

int main(void)
{
	char sha1[41], sha256[65], oid[65];
	struct hfm_buf b = HFM_BUF_INIT(16);
	uint64_t size = 0;

	/* `git hash-object` of "hello\n" and of the empty blob */
	hfm_git_blob_id(sha1, "hello\n", 6);
	TAP_IS_STR(sha1, "ce013625030ba8dba906f756967f9e9ca394464a", "git blob id of hello");
	hfm_git_blob_id(sha1, "", 0);
	TAP_IS_STR(sha1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "git blob id of empty");
	hfm_sha256_hex(sha256, "hello\n", 6);
	TAP_IS_STR(sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		   "sha256 of hello");

	/*
	 * hfm_hashctx_update feeds its digests a page at a time: pieces that
	 * start and end inside pages and span several, both digests at once,
	 * give what one call over the whole does (python's hashlib).
	 */
	{
		enum { N = 3 * 4096 + 8192 + 100 };
		static const size_t cuts[] = { 1, 4095, 4097, 8193 };
		unsigned char *d = malloc(N);
		struct hfm_hashctx *h;
		size_t i, at = 0;

		for (i = 0; i < N; i++)
			d[i] = (unsigned char)(i * 7 + 3);
		h = hfm_hashctx_new(N, 1, 1);
		for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			hfm_hashctx_update(h, d + at, cuts[i]);
			at += cuts[i];
		}
		hfm_hashctx_update(h, d + at, N - at);
		hfm_hashctx_final(h, sha1, sha256);
		TAP_IS_STR(sha256, "ba76c8607583d5f1aba5854e81b129841a3a4a6b9c7f11b99262e575491f54f1",
			   "sha256 fed in pieces across pages");
		TAP_IS_STR(sha1, "de2ac2328c913356fb444ef1a716f241889b631d",
			   "git blob id fed in pieces, with sha256 alongside");
		hfm_sha256_hex(sha256, d, N);
		TAP_IS_STR(sha256, "ba76c8607583d5f1aba5854e81b129841a3a4a6b9c7f11b99262e575491f54f1",
			   "sha256 in one call");
		free(d);
	}

	/* a pointer for a known oid, as git-lfs writes it */
	{
		struct hfm_buf p = HFM_BUF_INIT(1024);
		const char *o = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

		hfm_lfs_pointer(&p, o, 6);
		TAP_IS_STR(p.ptr, "version https://git-lfs.github.com/spec/v1\noid sha256:"
			   "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\nsize 6\n",
			   "pointer text");
		TAP_IS_INT(hfm_lfs_pointer_len(6), p.len, "pointer length");
		TAP_IS_INT(hfm_lfs_pointer_len(1234567890123ull),
			   p.len - 1 + 13, "pointer length for a 13-digit size");
		TAP_IS_INT(hfm_lfs_pointer_parse(oid, &size, p.ptr, p.len), 0, "pointer parses");
		TAP_IS_STR(oid, o, "pointer oid");
		TAP_IS_INT(size, 6, "pointer size");
		hfm_lfs_pointer_id(sha1, o, 6);
		{
			char want[41];
			hfm_git_blob_id(want, p.ptr, p.len);
			TAP_IS_STR(sha1, want, "pointer id is the blob id of the pointer text");
		}
		TAP_OK(hfm_lfs_pointer_parse(oid, &size, "hello\n", 6) == HFM_EINVAL,
		       "plain text is not a pointer");
		TAP_OK(hfm_lfs_pointer_parse(oid, &size, p.ptr, p.len - 1) == HFM_EINVAL,
		       "truncated pointer is rejected");
		{
			/* found by tests/fuzz (lfs_pointer): a second size line
			 * was appended to the first ("12" then "1" read as 121) */
			struct hfm_buf d = HFM_BUF_INIT(4096);

			hfm_buf_puts(&d, p.ptr);
			hfm_buf_puts(&d, "size 1\n");
			TAP_OK(hfm_lfs_pointer_parse(oid, &size, d.ptr, d.len) == HFM_EINVAL,
			       "a pointer with two size lines is rejected");
			hfm_buf_reset(&d);
			hfm_buf_puts(&d, p.ptr);
			hfm_buf_printf(&d, "oid sha256:%s\n", o);
			TAP_OK(hfm_lfs_pointer_parse(oid, &size, d.ptr, d.len) == HFM_EINVAL,
			       "a pointer with two oid lines is rejected");
			hfm_buf_dispose(&d);
		}
		hfm_buf_dispose(&p);
	}

	/* bounded buffers: the cap is hard and errors are sticky */
	TAP_IS_INT(hfm_buf_puts(&b, "0123456789"), 0, "append within cap");
	TAP_IS_INT(hfm_buf_puts(&b, "0123456789"), HFM_ETOOBIG, "append past cap fails");
	TAP_IS_INT(hfm_buf_puts(&b, "x"), HFM_ETOOBIG, "error is sticky");
	TAP_IS_INT(b.len, 10, "content kept");
	hfm_buf_dispose(&b);
	{
		struct hfm_buf j = HFM_BUF_INIT(1024);
		hfm_buf_json_str(&j, "a\"b\\c\n\x01\xff\xc3\xa9");
		TAP_IS_STR(j.ptr, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\"", "json escaping");
		hfm_buf_dispose(&j);
		hfm_buf_urlenc(&j, "refs/pr/1 x", 0);
		TAP_IS_STR(j.ptr, "refs%2Fpr%2F1%20x", "url encoding");
		hfm_buf_dispose(&j);
	}
	return tap_done();
}
