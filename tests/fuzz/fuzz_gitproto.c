/*
 * fuzz_gitproto: what git clients send to git-upload-pack (gitproto.h), as
 * h_git.c reads it: the first byte picks the parser -- 'v' protocol v2,
 * 'z' a gzip body inflated and then parsed as v0, anything else v0 -- and
 * the rest is the request body.
 *
 * Promises checked: a request is accepted, or refused with HFM_EINVAL or
 * HFM_ETOOBIG; an accepted one holds at most HFM_GIT_OIDS_MAX ids per list
 * and HFM_GIT_PREFIXES_MAX prefixes, has the command its version allows,
 * and dispose frees it all (the sanitizers see leaks); an inflated body is
 * never larger than its buffer's cap; the pkt-line reader consumes every
 * byte of a well-formed stream, one packet at a time, and never reads past
 * its input.
 */
#include "hfm/common.h"
#include "hfm/gitproto.h"
#include "fuzz.h"

static void check_request(const char *body, size_t n, int version)
{
	struct hfm_upload_req q;
	int rc = hfm_upload_req_parse(&q, body, n, version);

	FUZZ_CHECK(rc == 0 || rc == HFM_EINVAL || rc == HFM_ETOOBIG);
	if (rc == 0) {
		FUZZ_CHECK(q.wants.n <= HFM_GIT_OIDS_MAX && q.haves.n <= HFM_GIT_OIDS_MAX &&
			   q.shallows.n <= HFM_GIT_OIDS_MAX);
		FUZZ_CHECK(q.nprefixes <= HFM_GIT_PREFIXES_MAX);
		FUZZ_CHECK(!q.all_refs || q.nprefixes == 0);
		FUZZ_CHECK(!(q.depth && q.deepen_since) && !q.deepen_not);
		if (version == 2)
			FUZZ_CHECK(q.cmd != HFM_GIT_CMD_UPLOAD && q.sideband == 2);
		else
			FUZZ_CHECK(q.cmd == HFM_GIT_CMD_UPLOAD && q.sideband <= 2);
	}
	hfm_upload_req_dispose(&q);
	FUZZ_CHECK(!q.prefixes && !q.nprefixes);
}

static void check_pkts(const char *body, size_t n)
{
	struct hfm_pkt_reader rd = { body, n };
	enum hfm_pkt k;
	const char *line;
	size_t len;

	for (;;) {
		size_t before = rd.left;

		if (hfm_pkt_read(&k, &line, &len, &rd))
			return;
		if (k == HFM_PKT_EOF) {
			FUZZ_CHECK(rd.left == 0);
			return;
		}
		FUZZ_CHECK(rd.left < before);
		if (k == HFM_PKT_DATA)
			FUZZ_CHECK(line >= body && line + len <= body + n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + (size ? 1 : 0);
	size_t n = size ? size - 1 : 0;

	if (size && data[0] == 'z') {
		struct hfm_buf out = HFM_BUF_INIT(1u << 16);
		int rc = hfm_git_gunzip(&out, body, n);

		FUZZ_CHECK(rc == 0 || rc == HFM_EINVAL || rc == HFM_ETOOBIG);
		FUZZ_CHECK(out.len <= out.max);
		if (rc == 0)
			check_request(hfm_buf_cstr(&out), out.len, 0);
		hfm_buf_dispose(&out);
		return 0;
	}
	check_pkts(body, n);
	check_request(body, n, size && data[0] == 'v' ? 2 : 0);
	return 0;
}
