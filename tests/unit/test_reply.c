/* test_reply.c - the Hub's reply rules (reply.h), without a socket. */
#include <string.h>

#include "hfm/reply.h"
#include "tap.h"

#define OID "0123456789abcdef0123456789abcdef01234567"
#define SHA "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"

static void test_errors(void)
{
	static const struct {
		int code;
		unsigned status;
		const char *hub_code;
	} cases[] = {
		{ HFM_ENOREPO, 404, "RepoNotFound" },
		{ HFM_EDENIED, 404, "RepoNotFound" },     /* denied looks like absent */
		{ HFM_ENOREV, 404, "RevisionNotFound" },
		{ HFM_ENOENT, 404, "EntryNotFound" },
		{ HFM_EUNAVAIL, 502, NULL },              /* the file exists: not EntryNotFound */
		{ HFM_EGATED, 401, "GatedRepo" },
		{ HFM_EINVAL, 400, NULL },
		{ HFM_ETOOBIG, 413, NULL },
		{ HFM_EUPSTREAM, 502, NULL },
		{ HFM_ETIMEOUT, 504, NULL },
		{ HFM_EOFFLINE, 503, NULL },
		{ HFM_EAGAIN, 503, NULL },
		{ HFM_ECORRUPT, 500, NULL },
		{ HFM_EIO, 500, NULL },
		{ HFM_ERROR, 500, NULL },
		{ -999, 500, NULL },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(cases); i++) {
		struct hfm_error_rule e;
		hfm_error_rule(&e, cases[i].code, 0);
		TAP_IS_INT(e.status, cases[i].status, "error %d: status %u", cases[i].code,
			   cases[i].status);
		TAP_IS_STR(e.hub_code, cases[i].hub_code, "error %d: X-Error-Code", cases[i].code);
		TAP_OK(e.dflt && *e.dflt, "error %d: has a default message", cases[i].code);
	}
	struct hfm_error_rule e;
	hfm_error_rule(&e, HFM_EGATED, 1);
	TAP_IS_INT(e.status, 403, "gated with Authorization: 403");
	TAP_IS_STR(e.hub_code, "GatedRepo", "gated with Authorization: still GatedRepo");
	hfm_error_rule(&e, HFM_ENOREPO, 1);
	TAP_IS_INT(e.status, 404, "Authorization changes nothing but GatedRepo");
	hfm_error_rule(&e, -999, 0);
	TAP_IS_STR(e.dflt, "Internal error", "unknown code: Internal error");
}

static void test_etags(void)
{
	TAP_OK(hfm_etag_matches("\"" OID "\"", OID), "quoted etag matches");
	TAP_OK(hfm_etag_matches(OID, OID), "bare etag matches");
	TAP_OK(hfm_etag_matches("W/\"" OID "\"", OID), "weak etag matches");
	TAP_OK(hfm_etag_matches("\"x\", \"" OID "\"", OID), "second of a list matches");
	TAP_OK(hfm_etag_matches("\"x\",\t\"" OID "\" ,\"y\"", OID), "list with tabs and spaces");
	TAP_OK(hfm_etag_matches("*", OID), "* matches anything");
	TAP_OK(!hfm_etag_matches(NULL, OID), "no header: no match");
	TAP_OK(!hfm_etag_matches("", OID), "empty header: no match");
	TAP_OK(!hfm_etag_matches("\"x\"", OID), "another etag: no match");
	TAP_OK(!hfm_etag_matches("\"" OID "0\"", OID), "a longer etag: no match");
	TAP_OK(!hfm_etag_matches("\"0123\"", OID), "a prefix: no match");
	TAP_OK(!hfm_etag_matches("\"" OID, OID "\""), "quotes are not part of the value");
}

static void test_content_types(void)
{
	TAP_IS_STR(hfm_content_type_for("config.json"), "application/json", "json");
	TAP_IS_STR(hfm_content_type_for("dir/README.MD"), "text/plain; charset=utf-8",
		   "extension in any case");
	TAP_IS_STR(hfm_content_type_for("a/index.html"), "text/plain; charset=utf-8",
		   "html is text/plain (never runs on our origin)");
	TAP_IS_STR(hfm_content_type_for("x.svg"), "text/plain; charset=utf-8", "svg is text/plain");
	TAP_IS_STR(hfm_content_type_for("data.csv"), "text/csv; charset=utf-8", "csv");
	TAP_IS_STR(hfm_content_type_for("img.JPEG"), "image/jpeg", "jpeg");
	TAP_IS_STR(hfm_content_type_for("model.safetensors"), "application/octet-stream",
		   "unknown extension: octet-stream");
	TAP_IS_STR(hfm_content_type_for("v1.0/weights"), "application/octet-stream",
		   "a dot in a directory name is not an extension");
	TAP_IS_STR(hfm_content_type_for("Makefile"), "application/octet-stream", "no extension");
}

static void entry(struct hfm_entry *e, const char *path, int lfs)
{
	memset(e, 0, sizeof(*e));
	e->path = path;
	e->is_lfs = (uint8_t)lfs;
	memcpy(e->oid, OID, sizeof(OID));
	if (lfs)
		memcpy(e->lfs_oid, SHA, sizeof(SHA));
}

static void test_files(void)
{
	struct hfm_entry small, lfs;
	struct hfm_file_decision d;
	entry(&small, "digits.txt", 0);
	entry(&lfs, "w/model.bin", 1);

	hfm_file_decide(&d, &small, 1000, 0, NULL, NULL, NULL);
	TAP_IS_INT(d.status, 200, "plain GET: 200");
	TAP_OK(d.start == 0 && d.len == 1000, "plain GET: the whole body");
	TAP_IS_STR(d.etag, "\"" OID "\"", "small file: ETag is the quoted blob id");
	TAP_OK(!d.linked, "small file: no X-Linked-*");
	TAP_IS_STR(d.content_range, "", "plain GET: no Content-Range");
	TAP_IS_STR(d.content_type, "text/plain; charset=utf-8", "plain GET: Content-Type by name");

	hfm_file_decide(&d, &lfs, 5000, 0, NULL, NULL, NULL);
	TAP_IS_STR(d.etag, "\"" SHA "\"", "LFS file via /resolve/: ETag is the sha256");
	TAP_OK(d.linked && d.size == 5000, "LFS file via /resolve/: X-Linked-* with the size");
	hfm_file_decide(&d, &lfs, 130, 1, NULL, NULL, NULL);
	TAP_IS_STR(d.etag, "\"" OID "\"", "LFS file via /raw/: ETag is the pointer's blob id");
	TAP_OK(!d.linked, "LFS file via /raw/: no X-Linked-*");

	hfm_file_decide(&d, &small, 1000, 0, "\"" OID "\"", "bytes=0-9", NULL);
	TAP_IS_INT(d.status, 304, "If-None-Match with the ETag: 304, Range or not");
	TAP_OK(d.len == 0 && !d.content_type && !d.content_range[0], "304: no body, no type");
	hfm_file_decide(&d, &lfs, 5000, 0, "\"" OID "\"", NULL, NULL);
	TAP_IS_INT(d.status, 200, "If-None-Match with the pointer id on /resolve/: 200");

	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=10-19", NULL);
	TAP_IS_INT(d.status, 206, "Range: 206");
	TAP_OK(d.start == 10 && d.len == 10, "Range: the slice");
	TAP_IS_STR(d.content_range, "bytes 10-19/1000", "Range: Content-Range");
	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=-100", NULL);
	TAP_OK(d.status == 206 && d.start == 900 && d.len == 100, "suffix Range: the last bytes");

	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=1000-", NULL);
	TAP_IS_INT(d.status, 416, "Range past the end: 416");
	TAP_IS_STR(d.content_range, "bytes */1000", "416: Content-Range bytes */size");
	TAP_OK(d.len == 0 && !d.content_type, "416: no body, no type");

	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=5-2", NULL);
	TAP_OK(d.status == 200 && d.len == 1000 && !d.content_range[0], "bad Range: ignored, 200");
	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=0-1,5-6", NULL);
	TAP_OK(d.status == 200 && d.len == 1000, "several ranges: ignored, 200");

	hfm_file_decide(&d, &small, 0, 0, NULL, "bytes=0-0", NULL);
	TAP_IS_INT(d.status, 200, "Range on an empty file: 200");
	TAP_IS_STR(d.content_range, "bytes */0", "Range on an empty file: bytes */0");
	TAP_OK(d.len == 0 && d.content_type, "Range on an empty file: an empty body with a type");

	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=10-19", "\"" OID "\"");
	TAP_IS_INT(d.status, 206, "If-Range with the ETag: the range");
	hfm_file_decide(&d, &small, 1000, 0, NULL, "bytes=10-19", "\"deadbeef\"");
	TAP_OK(d.status == 200 && d.len == 1000 && !d.content_range[0],
	       "If-Range with another ETag: the whole file");
	hfm_file_decide(&d, &small, 1000, 0, NULL, NULL, "\"deadbeef\"");
	TAP_IS_INT(d.status, 200, "If-Range without Range: 200");
}

/* If-Range (RFC 9110 §13.1.5): only a strong validator that matches keeps the
 * Range; anything else sends the whole file. */
static void test_if_range(void)
{
	struct hfm_entry e = { .path = "d.txt", .size = 1000, .mtime_ms = 784111777000 };
	memcpy(e.oid, OID, sizeof(e.oid));
	static const struct { const char *if_range; int keeps; const char *what; } cases[] = {
		{ "\"" OID "\"", 1, "the quoted ETag" },
		{ " \"" OID "\"\t", 1, "the quoted ETag with blanks around" },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 1, "the exact HTTP-date of the file" },
		{ "W/\"" OID "\"", 0, "a weak ETag" },
		{ OID, 0, "an unquoted ETag" },
		{ "*", 0, "*" },
		{ "\"x\", \"" OID "\"", 0, "a list of ETags" },
		{ "\"" OID, 0, "an ETag without its closing quote" },
		{ "\"" OID "\"x", 0, "an ETag with bytes after it" },
		{ "", 0, "an empty value" },
		{ "Sun, 06 Nov 1994 08:49:38 GMT", 0, "another date" },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", 0, "the date in an obsolete format" },
		{ "sun, 06 nov 1994 08:49:37 gmt", 0, "the date in another case" },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(cases); i++) {
		struct hfm_file_decision d;
		hfm_file_decide(&d, &e, 1000, 0, NULL, "bytes=10-19", cases[i].if_range);
		TAP_IS_INT(d.status, cases[i].keeps ? 206 : 200, "If-Range: %s %s the Range",
			   cases[i].what, cases[i].keeps ? "keeps" : "drops");
	}
	struct hfm_entry nodate = e;
	nodate.mtime_ms = 0;
	struct hfm_file_decision d;
	hfm_file_decide(&d, &nodate, 1000, 0, NULL, "bytes=10-19", "Thu, 01 Jan 1970 00:00:00 GMT");
	TAP_IS_INT(d.status, 200, "If-Range: a date when the file's time is unknown drops the Range");
}

int main(void)
{
	test_errors();
	test_etags();
	test_content_types();
	test_files();
	test_if_range();
	return tap_done();
}
