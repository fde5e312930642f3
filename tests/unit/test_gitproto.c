/* git's wire format: pkt-lines, side-band, upload-pack requests, hostile ones. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "hfm/gitproto.h"
#include "tap.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"

/* A request body from lines: "|" is a flush, "-" a delim, the rest data pkts. */
static void req(struct hfm_buf *b, const char *const *lines)
{
	hfm_buf_reset(b);
	for (; *lines; lines++) {
		if (!strcmp(*lines, "|"))
			hfm_pkt_flush(b);
		else if (!strcmp(*lines, "-"))
			hfm_pkt_delim(b);
		else
			hfm_pkt_printf(b, "%s\n", *lines);
	}
}

static int parse(struct hfm_upload_req *q, struct hfm_buf *b, int version)
{
	return hfm_upload_req_parse(q, hfm_buf_cstr(b), b->len, version);
}

static void test_pkt(void)
{
	struct hfm_buf b = HFM_BUF_INIT(1 << 20);
	struct hfm_pkt_reader rd;
	enum hfm_pkt k;
	const char *line;
	size_t n;

	hfm_pkt_printf(&b, "hello\n");
	hfm_pkt_flush(&b);
	hfm_pkt_delim(&b);
	hfm_pkt_put(&b, "raw", 3);
	TAP_IS_STR(hfm_buf_cstr(&b), "000ahello\n000000010007raw", "pkt-lines are written");
	rd.p = b.ptr;
	rd.left = b.len;
	TAP_OK(hfm_pkt_read(&k, &line, &n, &rd) == 0 && k == HFM_PKT_DATA && n == 5 &&
	       !memcmp(line, "hello", 5), "a data pkt, LF removed");
	TAP_OK(hfm_pkt_read(&k, &line, &n, &rd) == 0 && k == HFM_PKT_FLUSH, "a flush");
	TAP_OK(hfm_pkt_read(&k, &line, &n, &rd) == 0 && k == HFM_PKT_DELIM, "a delim");
	TAP_OK(hfm_pkt_read(&k, &line, &n, &rd) == 0 && k == HFM_PKT_DATA && n == 3, "no LF");
	TAP_OK(hfm_pkt_read(&k, &line, &n, &rd) == 0 && k == HFM_PKT_EOF, "then the end");

	static const char *const bad[] = { "00", "zzzz", "0003", "0010abc", "000" };
	for (size_t i = 0; i < HFM_ARRAY_SIZE(bad); i++) {
		rd.p = bad[i];
		rd.left = strlen(bad[i]);
		TAP_OK(hfm_pkt_read(&k, &line, &n, &rd) == HFM_EINVAL, "bad pkt '%s' is refused",
		       bad[i]);
	}

	/* side-band: split at the payload limit, band byte first */
	char data[2500];
	memset(data, 'x', sizeof(data));
	hfm_buf_reset(&b);
	hfm_pkt_band(&b, 1, data, sizeof(data), 999);
	TAP_IS_INT(b.len, 3 * 5 + 2500, "2500 bytes in side-band packets of 999");
	TAP_OK(!memcmp(b.ptr, "03ec\001", 5), "the first is 1004 bytes on band 1");
	hfm_buf_reset(&b);
	hfm_pkt_band(&b, 2, "hi", 2, 0);
	TAP_IS_STR(hfm_buf_cstr(&b), "0007\002hi", "progress on band 2");
	TAP_OK(hfm_pkt_put(&b, data, HFM_PKT_PAYLOAD_MAX + 1) == HFM_ETOOBIG,
	       "a pkt-line over the limit is refused");
	hfm_buf_dispose(&b);
}

static void test_v0(void)
{
	struct hfm_buf b = HFM_BUF_INIT(HFM_GIT_REQ_MAX);
	struct hfm_upload_req q;

	req(&b, (const char *const[]){ "want " OID_A " multi_ack_detailed side-band-64k thin-pack "
				       "no-progress include-tag ofs-delta no-done deepen-relative "
				       "agent=git/2.39 some-future-cap",
				       "want " OID_B, "shallow " OID_B, "deepen 3", "|",
				       "have " OID_A, "have " OID_B, "|", "have " OID_A, "done",
				       NULL });
	TAP_IS_INT(parse(&q, &b, 0), 0, "a v0 request parses");
	TAP_IS_INT(q.cmd, HFM_GIT_CMD_UPLOAD, "an upload");
	TAP_IS_INT(q.wants.n, 2, "two wants");
	TAP_IS_INT(q.shallows.n, 1, "one shallow");
	TAP_IS_INT(q.haves.n, 3, "haves of two rounds");
	TAP_OK(q.done && q.negotiating, "done, negotiating");
	TAP_IS_INT(q.depth, 3, "deepen 3");
	TAP_OK(q.multi_ack == 2 && q.sideband == 2 && q.thin_pack && q.no_progress &&
	       q.include_tag && q.ofs_delta && q.no_done && q.deepen_relative,
	       "capabilities of the first want, unknown ones ignored");
	TAP_OK(q.wants.v[0].id[0] == 0x01 && q.wants.v[1].id[19] == 0xef, "ids decoded");
	hfm_upload_req_dispose(&q);

	req(&b, (const char *const[]){ "want " OID_A " side-band", "deepen 1", "|", NULL });
	TAP_IS_INT(parse(&q, &b, 0), 0, "wants only (a shallow fetch's first round)");
	TAP_OK(!q.negotiating && !q.done && q.sideband == 1, "not negotiating, side-band");
	hfm_upload_req_dispose(&q);

	TAP_IS_INT(hfm_upload_req_parse(&q, "", 0, 0), 0, "an empty body is nothing wanted");
	TAP_IS_INT(q.wants.n, 0, "no wants");
	hfm_upload_req_dispose(&q);

	const char *const *bad[] = {
		(const char *const[]){ "want 0123", "|", NULL },
		(const char *const[]){ "want " OID_A "x", "|", NULL },
		(const char *const[]){ "want " OID_A, "want " OID_B " cap", "|", NULL },
		(const char *const[]){ "want " OID_A, NULL },
		(const char *const[]){ "want " OID_A, "deepen 0", "|", NULL },
		(const char *const[]){ "want " OID_A, "deepen x", "|", NULL },
		(const char *const[]){ "want " OID_A, "deepen-not main", "|", NULL },
		(const char *const[]){ "want " OID_A, "deepen 2", "deepen-since 5", "|", NULL },
		(const char *const[]){ "want " OID_A, "filter blob:none", "|", NULL },
		(const char *const[]){ "want " OID_A, "|", "have zz", NULL },
		(const char *const[]){ "want " OID_A, "|", "something", NULL },
		(const char *const[]){ "have " OID_A, "|", NULL },
		(const char *const[]){ "want " OID_A, "-", "|", NULL },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(bad); i++) {
		req(&b, bad[i]);
		int rc = parse(&q, &b, 0);
		TAP_OK(rc == HFM_EINVAL, "bad v0 request %zu refused: %s", i, hfm_error_last());
		hfm_upload_req_dispose(&q);
	}
	/* a want list over the bound */
	hfm_buf_reset(&b);
	for (int i = 0; i <= HFM_GIT_OIDS_MAX; i++)
		hfm_pkt_printf(&b, "want %s\n", OID_A);
	hfm_pkt_flush(&b);
	TAP_IS_INT(parse(&q, &b, 0), HFM_ETOOBIG, "more than %d wants: %s", HFM_GIT_OIDS_MAX,
		   hfm_error_last());
	hfm_upload_req_dispose(&q);
	hfm_buf_dispose(&b);
}

static void test_v2(void)
{
	struct hfm_buf b = HFM_BUF_INIT(HFM_GIT_REQ_MAX);
	struct hfm_upload_req q;

	req(&b, (const char *const[]){ "command=fetch", "agent=git/2.39", "object-format=sha1",
				       "session-id=x", "-", "thin-pack", "no-progress", "ofs-delta",
				       "include-tag", "want " OID_A, "have " OID_B, "shallow " OID_B,
				       "deepen 1", "deepen-relative", "wait-for-done", "done", "|",
				       NULL });
	TAP_IS_INT(parse(&q, &b, 2), 0, "a v2 fetch parses");
	TAP_OK(q.cmd == HFM_GIT_CMD_FETCH && q.wants.n == 1 && q.haves.n == 1 &&
	       q.shallows.n == 1 && q.depth == 1 && q.deepen_relative && q.done &&
	       q.thin_pack && q.no_progress && q.ofs_delta && q.include_tag && q.wait_for_done &&
	       q.sideband == 2, "its arguments");
	hfm_upload_req_dispose(&q);

	req(&b, (const char *const[]){ "command=ls-refs", "-", "symrefs", "peel", "unborn",
				       "ref-prefix refs/heads/", "ref-prefix HEAD", "|", NULL });
	TAP_IS_INT(parse(&q, &b, 2), 0, "ls-refs parses");
	TAP_OK(q.cmd == HFM_GIT_CMD_LS_REFS && q.symrefs && q.peel && q.unborn &&
	       q.nprefixes == 2 && !strcmp(q.prefixes[1], "HEAD"), "its arguments");
	hfm_upload_req_dispose(&q);

	req(&b, (const char *const[]){ "command=ls-refs", "|", NULL });
	TAP_IS_INT(parse(&q, &b, 2), 0, "ls-refs without arguments");
	hfm_upload_req_dispose(&q);
	req(&b, (const char *const[]){ "|", NULL });
	TAP_OK(parse(&q, &b, 2) == 0 && q.cmd == HFM_GIT_CMD_NONE, "an empty request");
	hfm_upload_req_dispose(&q);

	const char *const *bad[] = {
		(const char *const[]){ "command=push", "|", NULL },
		(const char *const[]){ "fetch", "|", NULL },
		(const char *const[]){ "command=fetch", "object-format=sha256", "-", "|", NULL },
		(const char *const[]){ "command=fetch", "-", "want-ref refs/heads/main", "|", NULL },
		(const char *const[]){ "command=fetch", "-", "filter blob:none", "|", NULL },
		(const char *const[]){ "command=fetch", "-", "sideband-all", "|", NULL },
		(const char *const[]){ "command=fetch", "-", "want " OID_A, "-", "|", NULL },
		(const char *const[]){ "command=fetch", "-", "want " OID_A, NULL },
		(const char *const[]){ "command=ls-refs", "-", "bogus", "|", NULL },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(bad); i++) {
		req(&b, bad[i]);
		int rc = parse(&q, &b, 2);
		TAP_OK(rc == HFM_EINVAL, "bad v2 request %zu refused: %s", i, hfm_error_last());
		hfm_upload_req_dispose(&q);
	}
	/* past the prefix bound the answer is unfiltered, not an error */
	hfm_buf_reset(&b);
	hfm_pkt_printf(&b, "command=ls-refs\n");
	hfm_pkt_delim(&b);
	for (int i = 0; i <= HFM_GIT_PREFIXES_MAX; i++)
		hfm_pkt_printf(&b, "ref-prefix refs/x%d\n", i);
	hfm_pkt_flush(&b);
	TAP_OK(parse(&q, &b, 2) == 0 && q.nprefixes == 0 && q.all_refs, "too many prefixes: all refs");
	hfm_upload_req_dispose(&q);
	hfm_buf_dispose(&b);
}

static void test_gunzip(void)
{
	struct hfm_buf in = HFM_BUF_INIT(1 << 20), out = HFM_BUF_INIT(1 << 20);
	char plain[5000];
	unsigned char z[8192];
	z_stream s;

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (char)('a' + i % 7);
	memset(&s, 0, sizeof(s));
	deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	s.next_in = (Bytef *)plain;
	s.avail_in = sizeof(plain);
	s.next_out = z;
	s.avail_out = sizeof(z);
	deflate(&s, Z_FINISH);
	size_t zn = sizeof(z) - s.avail_out;
	deflateEnd(&s);
	TAP_IS_INT(hfm_git_gunzip(&out, z, zn), 0, "gzip inflates");
	TAP_OK(out.len == sizeof(plain) && !memcmp(out.ptr, plain, out.len), "to the same bytes");
	hfm_buf_dispose(&out);
	TAP_IS_INT(hfm_git_gunzip(&out, z, zn / 2), HFM_EINVAL, "cut short: %s", hfm_error_last());
	hfm_buf_dispose(&out);
	TAP_IS_INT(hfm_git_gunzip(&out, "not gzip at all", 15), HFM_EINVAL, "not gzip");
	hfm_buf_dispose(&out);
	struct hfm_buf small = HFM_BUF_INIT(100);
	TAP_IS_INT(hfm_git_gunzip(&small, z, zn), HFM_ETOOBIG, "over the cap: %s",
		   hfm_error_last());
	hfm_buf_dispose(&small);
	hfm_buf_dispose(&in);

	TAP_IS_INT(hfm_git_protocol_version("version=2"), 2, "Git-Protocol version=2");
	TAP_IS_INT(hfm_git_protocol_version("x=y:version=2"), 2, "among other keys");
	TAP_IS_INT(hfm_git_protocol_version("version=1"), 0, "version=1 is v0's format");
	TAP_IS_INT(hfm_git_protocol_version(NULL), 0, "no header");
}

int main(void)
{
	test_pkt();
	test_v0();
	test_v2();
	test_gunzip();
	return tap_done();
}
