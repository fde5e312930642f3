/*
 * test_httphead.c - the request head rules (httphead.h): raw heads as they
 * arrive, the same rules over parsed fields, the pool budget, absolute-form
 * targets and the canned answers.
 */
#include <string.h>

#include "hfm/httphead.h"
#include "tap.h"

#define MAXB (1u << 20)

/* scan a NUL-terminated head; -1 = incomplete, else the status (0 = fine) */
static int scan(const char *s)
{
	struct hfm_head h;
	if (!hfm_head_scan(&h, s, strlen(s), HFM_HEAD_BUDGET, MAXB))
		return -1;
	return (int)h.status;
}

static int scan_n(const char *s, size_t n)
{
	struct hfm_head h;
	if (!hfm_head_scan(&h, s, n, HFM_HEAD_BUDGET, MAXB))
		return -1;
	return (int)h.status;
}

#define GET "GET /x HTTP/1.1\r\nHost: h\r\n"

static void test_complete(void)
{
	struct hfm_head h;
	const char *s = "GET /a?b=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\n\r\nBODY";
	TAP_IS_INT(hfm_head_scan(&h, s, strlen(s), HFM_HEAD_BUDGET, MAXB), 1, "a whole head");
	TAP_IS_INT(h.status, 0, "a whole head: fine");
	TAP_IS_INT(h.len, strlen(s) - 4, "its length stops at the blank line");
	TAP_OK(h.method_len == 3 && !memcmp(s + h.method_off, "GET", 3), "the method");
	TAP_OK(h.target_len == 6 && !memcmp(s + h.target_off, "/a?b=1", 6), "the target");
	for (size_t n = 0; n < strlen(s) - 4; n++)
		if (scan_n(s, n) != -1) {
			TAP_OK(0, "every prefix is incomplete (%zu bytes)", n);
			return;
		}
	TAP_OK(1, "every prefix is incomplete");
	TAP_IS_INT(scan("\r\n\r\nGET / HTTP/1.0\n\n"), 0, "empty lines before, bare LF endings, HTTP/1.0");
	TAP_IS_INT(scan("GET / HTTP/1.0\r\n\r\n"), 0, "HTTP/1.0 without Host");
	TAP_IS_INT(scan("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0, "OPTIONS *");
	TAP_IS_INT(scan("GET http://h:8/p?q HTTP/1.1\r\nHost: h\r\n\r\n"), 0, "absolute form");
	TAP_IS_INT(scan("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"), 0, "absolute form, no path");
	TAP_IS_INT(scan(GET "Content-Length: 0\r\n\r\n"), 0, "Content-Length: 0");
	TAP_IS_INT(scan(GET "Content-Length:  1048576 \r\n\r\n"), 0, "Content-Length at the limit, blanks");
	TAP_IS_INT(scan(GET "X-Empty:\r\nX-Tab:\tv\t\r\n\r\n"), 0, "empty and tabbed values");
	TAP_IS_INT(scan("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0, "an empty Host (RFC 9112 §3.2)");
	TAP_IS_INT(scan("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 0, "an IPv6 Host");
	TAP_IS_INT(scan(GET "X-U: caf\xc3\xa9\r\n\r\n"), 0, "UTF-8 in a value");
	TAP_IS_INT(scan("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 0, "raw UTF-8 in the target");
}

static void test_rejected(void)
{
	static const struct { const char *head; int status; const char *what; } cases[] = {
		{ GET "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "two Content-Length" },
		{ GET "Content-Length: 5\r\ncontent-length: 5\r\n\r\n", 400, "two equal Content-Length" },
		{ GET "Content-Length: 5,5\r\n\r\n", 400, "a Content-Length list" },
		{ GET "Content-Length: -1\r\n\r\n", 400, "Content-Length -1" },
		{ GET "Content-Length: +1\r\n\r\n", 400, "Content-Length +1" },
		{ GET "Content-Length:\r\n\r\n", 400, "an empty Content-Length" },
		{ GET "Content-Length: 1 2\r\n\r\n", 400, "Content-Length 1 2" },
		{ GET "Content-Length: 1048577\r\n\r\n", 413, "Content-Length over the limit" },
		{ GET "Content-Length: 18446744073709551616\r\n\r\n", 413, "Content-Length 2^64" },
		{ GET "Content-Length: 99999999999999999999999999\r\n\r\n", 413, "a 26-digit Content-Length" },
		{ "GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host" },
		{ GET "Host: i\r\n\r\n", 400, "two Host" },
		{ "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Host in HTTP/1.0" },
		{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "a Host with a blank" },
		{ "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400, "a Host with userinfo" },
		{ "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "a blank before the colon" },
		{ "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, "a tab before the colon" },
		{ GET "X(A): b\r\n\r\n", 400, "a name with a separator" },
		{ GET ": b\r\n\r\n", 400, "an empty name" },
		{ GET "X-A b\r\n\r\n", 400, "no colon" },
		{ GET " folded\r\n\r\n", 400, "obs-fold" },
		{ GET "X-A: a\rb\r\n\r\n", 400, "a bare CR in a value" },
		{ GET "X-A: a\x01" "b\r\n\r\n", 400, "a control byte in a value" },
		{ GET "X-A: a\x7f\r\n\r\n", 400, "DEL in a value" },
		{ GET "Transfer-Encoding: chunked\r\n\r\n", 411, "chunked" },
		{ GET "Transfer-Encoding: Chunked\r\n\r\n", 411, "Chunked" },
		{ GET "Transfer-Encoding: gzip, chunked\r\n\r\n", 400, "gzip, chunked" },
		{ GET "Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "chunked twice in one" },
		{ GET "Transfer-Encoding: identity\r\n\r\n", 400, "identity" },
		{ GET "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "two TE" },
		{ GET "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "TE and CL" },
		{ "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "TE in HTTP/1.0" },
		{ "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP/2.0" },
		{ "GET / HTTP/1.11\r\nHost: h\r\n\r\n", 400, "HTTP/1.11" },
		{ "GET / http/1.1\r\nHost: h\r\n\r\n", 400, "a lower-case version" },
		{ "GET /\r\n\r\n", 400, "HTTP/0.9" },
		{ "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "two blanks after the method" },
		{ "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "a blank after the version" },
		{ "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "a method with a separator" },
		{ "GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "a relative target" },
		{ "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "* with GET" },
		{ "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "an ftp URL" },
		{ "GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", 400, "an absolute URL without host" },
		{ "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "authority form" },
		{ "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "DEL in the target" },
		{ "GET /\rx HTTP/1.1\r\nHost: h\r\n\r\n", 400, "a bare CR in the request line" },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(cases); i++)
		TAP_IS_INT(scan(cases[i].head), cases[i].status, "%s: %d", cases[i].what, cases[i].status);
	TAP_IS_INT(scan_n(GET "X-A: a\0b\r\n\r\n", strlen(GET) + 13), 400, "a NUL in a value: 400");
	TAP_IS_INT(scan_n("GET /a\0 HTTP/1.1\r\nHost: h\r\n\r\n", 30), 400, "a NUL in the target: 400");
	struct hfm_head h;
	const char *s = GET "Host: i\r\n\r\n";
	hfm_head_scan(&h, s, strlen(s), HFM_HEAD_BUDGET, MAXB);
	TAP_IS_STR(h.why, "More than one Host header", "the reason says what is wrong");
	/* a problem is found as soon as its line is complete */
	TAP_IS_INT(scan(GET "X-A: a\x01\r\n"), 400, "a bad line ends the scan before the head does");
}

static void test_budget(void)
{
	static char buf[16384];
	/* one 6,000-byte field: 431 once the head costs more than the budget */
	size_t base = strlen(GET "X-P: " "\r\n\r\n");
	int last_ok = 0;
	for (size_t n = HFM_HEAD_BUDGET - 400; n < HFM_HEAD_BUDGET + 400; n++) {
		size_t pad = n - base;
		strcpy(buf, GET "X-P: ");
		memset(buf + strlen(buf), 'a', pad);
		strcpy(buf + strlen(GET "X-P: ") + pad, "\r\n\r\n");
		struct hfm_head_cost c = { n, 2, 0 };
		int want = hfm_head_cost(&c) <= HFM_HEAD_BUDGET ? 0 : 431;
		if (scan(buf) != want) {
			TAP_OK(0, "a %zu-byte head: %d", n, want);
			return;
		}
		if (!want)
			last_ok = (int)n;
	}
	TAP_OK(last_ok == (int)(HFM_HEAD_BUDGET - 2 * HFM_HEAD_FIELD_COST),
	       "heads are admitted up to the budget less 64 bytes a field (%d)", last_ok);
	/* an incomplete head longer than the budget is refused at once */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, GET "X-P: ", strlen(GET "X-P: "));
	TAP_IS_INT(scan_n(buf, HFM_HEAD_BUDGET + 1), 431, "no end within the budget: 431");
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	TAP_IS_INT(scan_n(buf, HFM_HEAD_BUDGET + 1), 414, "no end of the request line: 414");
	/* query arguments and cookies cost records too */
	strcpy(buf, "GET /?");
	for (int i = 0; i < 200; i++)
		strcat(buf, "a&");
	strcat(buf, " HTTP/1.1\r\nHost: h\r\n\r\n");
	TAP_IS_INT(scan(buf), 414, "200 query arguments: 414");
	strcpy(buf, GET "Cookie: ");
	for (int i = 0; i < 120; i++)
		strcat(buf, "a=1;");
	strcat(buf, "\r\n\r\n");
	TAP_IS_INT(scan(buf), 431, "120 cookies: 431");
	strcpy(buf, GET);
	for (int i = 0; i < 100; i++)
		strcat(buf, "X: y\r\n");
	strcat(buf, "\r\n");
	TAP_IS_INT(scan(buf), 431, "100 short fields: 431");
}

static void test_fields(void)
{
	const char *why;
	struct hfm_head_field ok[] = {
		{ "Host", 4, "h", 1 },
		{ "Content-Length", 14, "12", 2 },
	};
	TAP_IS_INT(hfm_head_check_fields(ok, 2, 1, MAXB, &why), 0, "parsed: fine");
	struct hfm_head_field dup[] = {
		{ "Host", 4, "h", 1 },
		{ "Content-Length", 14, "5", 1 },
		{ "content-length", 14, "60", 2 },
	};
	TAP_IS_INT(hfm_head_check_fields(dup, 3, 1, MAXB, &why), 400, "parsed: two Content-Length");
	struct hfm_head_field ws[] = { { "Host ", 5, "h", 1 } };
	TAP_IS_INT(hfm_head_check_fields(ws, 1, 1, MAXB, &why), 400,
		   "parsed: a name that kept its blank (libmicrohttpd's view of 'Host : h')");
	struct hfm_head_field nul[] = { { "Host", 4, "h", 1 }, { "X", 1, "a\0b", 3 } };
	TAP_IS_INT(hfm_head_check_fields(nul, 2, 1, MAXB, &why), 400, "parsed: a NUL within the length");
	TAP_IS_INT(hfm_head_check_fields(NULL, 0, 1, MAXB, &why), 400, "parsed: HTTP/1.1 without Host");
	TAP_IS_INT(hfm_head_check_fields(NULL, 0, 0, MAXB, &why), 0, "parsed: HTTP/1.0 without Host");
	struct hfm_head_field te[] = { { "Host", 4, "h", 1 }, { "Transfer-Encoding", 17, "chunked ", 8 } };
	TAP_IS_INT(hfm_head_check_fields(te, 2, 1, MAXB, &why), 411, "parsed: chunked (trailing blank)");
}

static void test_absolute(void)
{
	size_t ao, al, ro;
	const char *t = "http://Mirror.example:8090/api?x=1";
	TAP_OK(hfm_head_absolute(t, strlen(t), &ao, &al, &ro), "http URL");
	TAP_OK(al == 19 && !memcmp(t + ao, "Mirror.example:8090", al), "its authority");
	TAP_IS_STR(t + ro, "/api?x=1", "its origin-form rest");
	t = "https://h?q";
	TAP_OK(hfm_head_absolute(t, strlen(t), &ao, &al, &ro) && !strcmp(t + ro, "?q"), "https, a query only");
	t = "/http://h/";
	TAP_OK(!hfm_head_absolute(t, strlen(t), &ao, &al, &ro), "a path is not absolute");
	t = "http://";
	TAP_OK(!hfm_head_absolute(t, strlen(t), &ao, &al, &ro), "no authority: not absolute");
}

static void test_canned(void)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);
	size_t body = hfm_head_canned(&b, 503, "Busy \"now\"");
	const char *s = hfm_buf_cstr(&b);
	TAP_OK(!strncmp(s, "HTTP/1.1 503 Service Unavailable\r\n", 34), "the status line");
	TAP_OK(strstr(s, "\r\nRetry-After: 5\r\n") != NULL, "503: Retry-After");
	TAP_OK(strstr(s, "\r\nConnection: close\r\n") != NULL, "Connection: close");
	TAP_OK(strstr(s, "\r\nX-Error-Message: Busy \"now\"\r\n") != NULL, "X-Error-Message");
	const char *end = strstr(s, "\r\n\r\n");
	TAP_OK(end && strlen(end + 4) == body, "Content-Length is the body's");
	TAP_IS_STR(end ? end + 4 : NULL, "{\"error\":\"Busy \\\"now\\\"\"}", "the body is the Hub's JSON error");
	hfm_buf_dispose(&b);
}

int main(void)
{
	test_complete();
	test_rejected();
	test_budget();
	test_fields();
	test_absolute();
	test_canned();
	return tap_done();
}
