/* The paths-info body: forms from Python, JSON from npm, and bad bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/paths_body.h"
#include "tap.h"

/* Parse `body`; `want` is the kept paths joined with '|' (NULL: refused). */
static void expect(const char *ct, const char *body, const char *want, int expand,
		   const char *what)
{
	struct hfm_paths_body p;
	char got[1024] = "";
	int rc = hfm_paths_body_parse(&p, ct, body, strlen(body));

	if (!want) {
		TAP_IS_INT(rc, HFM_EINVAL, "%s: refused", what);
		TAP_OK(*hfm_error_last(), "%s: says why (%s)", what, hfm_error_last());
		hfm_paths_body_dispose(&p);
		return;
	}
	for (size_t i = 0; i < p.n; i++) {
		if (i)
			strcat(got, "|");
		strncat(got, p.v[i], sizeof(got) - strlen(got) - 2);
	}
	TAP_IS_INT(rc, 0, "%s: parsed", what);
	TAP_IS_STR(got, want, "%s: paths", what);
	TAP_IS_INT(p.expand, expand, "%s: expand", what);
	hfm_paths_body_dispose(&p);
}

static void too_many(const char *ct, const char *first, const char *item, const char *sep,
		     const char *last, size_t n, int ok, const char *what)
{
	size_t cap = strlen(first) + n * (strlen(item) + strlen(sep)) + strlen(last) + 1;
	char *body = malloc(cap), *e = body;
	struct hfm_paths_body p;
	int rc;

	e = stpcpy(e, first);
	for (size_t i = 0; i < n; i++) {
		if (i)
			e = stpcpy(e, sep);
		e = stpcpy(e, item);
	}
	stpcpy(e, last);
	rc = hfm_paths_body_parse(&p, ct, body, strlen(body));
	TAP_IS_INT(rc, ok ? 0 : HFM_EINVAL, "%s", what);
	if (ok)
		TAP_IS_INT(p.n, n, "%s: all kept", what);
	hfm_paths_body_dispose(&p);
	free(body);
}

/*
 * Parse `body` placed so that its last byte is the last readable one: a
 * read past the length faults.  This reaches into cJSON, which tests/fuzz
 * cannot watch (Debian's library has no ASan): cJSON before 1.7.17 read one
 * byte past an unfinished object (cJSON issue #800; Debian 12 has it
 * patched).
 */
static void at_page_end(const char *ct, const char *body, int want, const char *what)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = strlen(body);
	char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct hfm_paths_body p;

	if (map == MAP_FAILED || mprotect(map + page, page, PROT_NONE)) {
		TAP_OK(0, "%s: cannot set up the guard page", what);
		return;
	}
	memcpy(map + page - n, body, n);
	TAP_IS_INT(hfm_paths_body_parse(&p, ct, map + page - n, n), want, "%s", what);
	hfm_paths_body_dispose(&p);
	munmap(map, 2 * page);
}

int main(void)
{
	const char *form = "application/x-www-form-urlencoded";
	const char *json = "application/json";
	struct hfm_paths_body p;

	/* huggingface_hub: a form, paths repeated */
	expect(form, "paths=config.json&paths=model.safetensors&expand=True",
	       "config.json|model.safetensors", 1, "python form");
	expect(form, "paths%5B%5D=a%20b.txt&paths[]=sub%2Fdir/x", "a b.txt|sub/dir/x", 0,
	       "form paths[] and escapes");
	expect(form, "paths=a+b", "a b", 0, "form '+' is a space");
	expect(form, "", "", 0, "empty form: no paths");
	expect(form, "paths=%zz&paths=ok", "ok", 0, "bad escape: that pair skipped");
	/* @huggingface/hub: JSON */
	expect(json, "{\"paths\":[\"README.md\",\"sub/a.bin\"],\"expand\":true}",
	       "README.md|sub/a.bin", 1, "npm json");
	expect("application/json; charset=utf-8", "{\"paths\":\"one.txt\",\"expand\":\"yes\"}",
	       "one.txt", 1, "json: a lone string, expand as text");
	/* no Content-Type: sniffed */
	expect(NULL, " \n{\"paths\":[\"x\"]}", "x", 0, "sniffed json");
	expect(NULL, "paths=x", "x", 0, "sniffed form");
	/* what the Hub answers nothing for is dropped, slashes trimmed */
	expect(form, "paths=/a/&paths=../etc/passwd&paths=a//b&paths=&paths=///&paths=b",
	       "a|b", 0, "invalid paths dropped");
	/* refused */
	expect(json, "{\"paths\":[", NULL, 0, "truncated json");
	expect(json, "{\"path\":[\"a\"]}", NULL, 0, "json without paths");
	expect(json, "{\"paths\":[\"a\",1]}", NULL, 0, "json with a number");
	expect(json, "[\"a\"]", NULL, 0, "json array alone");
	/* bounds */
	too_many(form, "", "paths=a", "&", "", HFM_PATHS_BODY_MAX, 1, "form at the limit");
	too_many(form, "", "paths=a", "&", "", HFM_PATHS_BODY_MAX + 1, 0, "form over the limit");
	too_many(json, "{\"paths\":[", "\"a\"", ",", "]}", HFM_PATHS_BODY_MAX + 1, 0,
		 "json over the limit");
	/* the length is the bound, not a NUL */
	at_page_end(json, "{\"1\":1,", HFM_EINVAL, "unfinished json at the end of memory");
	at_page_end(json, "{\"paths\":[\"a\"]}", 0, "json at the end of memory");
	at_page_end(form, "paths=a%2", 0, "form at the end of memory");
	TAP_IS_INT(hfm_paths_body_parse(&p, form, "paths=ab", 7), 0, "length honoured");
	TAP_IS_STR(p.n == 1 ? p.v[0] : NULL, "a", "length honoured: path");
	hfm_paths_body_dispose(&p);
	return tap_done();
}
