/* test_repolist.c - the listing's query parser and card tags; the UI's escaping builders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/repolist.h"
#include "hfm/ui.h"
#include "tap.h"

/* Arguments as "k=v" strings, NULL-terminated. */
static const char *args_of(void *cls, const char *name, size_t n)
{
	const char *const *a = cls;
	size_t kl = strlen(name);
	for (; *a; a++)
		if (!strncmp(*a, name, kl) && (*a)[kl] == '=' && n-- == 0)
			return *a + kl + 1;
	return NULL;
}

static int parse(struct hfm_rl_query *q, const char *const *a)
{
	return hfm_rl_query_parse(q, args_of, (void *)a);
}

static void test_query(void)
{
	struct hfm_rl_query q;
	const char *none[] = { NULL };
	TAP_IS_INT(parse(&q, none), 0, "no arguments: fine");
	TAP_OK(q.sort == HFM_RL_ID && !q.descending && q.limit == HFM_RL_PAGE_MAX && !q.search &&
	       !q.nfilters && !q.has_cursor && !q.want, "defaults: by id, ascending, a full page");

	const char *a1[] = { "search=TiNy", "author=acme", "filter=license:mit", "filter=text-generation",
			     "pipeline_tag=x", "sort=lastModified", "limit=5", "full=True", NULL };
	TAP_IS_INT(parse(&q, a1), 0, "the Hub's arguments parse");
	TAP_IS_STR(q.search, "TiNy", "search kept as sent (matched without case)");
	TAP_IS_STR(q.author, "acme", "author");
	TAP_IS_INT(q.nfilters, 3, "repeated filter and pipeline_tag: three tags to match");
	TAP_OK(q.sort == HFM_RL_MODIFIED && q.descending, "lastModified: newest first by default");
	TAP_IS_INT(q.limit, 5, "limit");
	TAP_OK(q.want & HFM_RL_FILES, "full=True: siblings");

	const char *a2[] = { "sort=lastModified", "direction=1", "limit=5000", NULL };
	TAP_IS_INT(parse(&q, a2), 0, "direction=1");
	TAP_OK(!q.descending && q.limit == HFM_RL_PAGE_MAX, "ascending; a limit over a page is one page");
	const char *a3[] = { "sort=downloads", "expand=siblings", NULL };
	TAP_IS_INT(parse(&q, a3), 0, "sort=downloads is accepted");
	TAP_OK(q.sort == HFM_RL_UNRANKED && (q.want & HFM_RL_FILES), "unranked; expand=siblings lists files");

	static const char *const bad[][2] = {
		{ "sort=size", "sort" }, { "direction=0", "direction" }, { "direction=down", "direction" },
		{ "limit=0", "limit" }, { "limit=-3", "limit" }, { "limit=ten", "limit" },
		{ "cursor=!!", "cursor" }, { "cursor=YWJj", "cursor" } /* "abc": no key */,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *a[] = { bad[i][0], NULL };
		int rc = parse(&q, a);
		TAP_IS_INT(rc, HFM_EINVAL, "%s: EINVAL", bad[i][0]);
		TAP_OK(strstr(hfm_error_last(), bad[i][1]) != NULL, "%s: the message names %s",
		       bad[i][0], bad[i][1]);
	}

	/* a cursor made for an item continues after it */
	struct hfm_rl_item it = { .name = (char *)"acme/x.y-z_1", .modified_ms = 1234 };
	struct hfm_rl_query qm = { .sort = HFM_RL_MODIFIED };
	struct hfm_buf b = HFM_BUF_INIT(1024);
	hfm_rl_cursor(&b, &qm, &it);
	char arg[1100];
	snprintf(arg, sizeof(arg), "cursor=%s", hfm_buf_cstr(&b));
	const char *a4[] = { arg, NULL };
	TAP_IS_INT(parse(&q, a4), 0, "our cursor parses");
	TAP_OK(q.has_cursor && q.cur_key == 1234 && !strcmp(q.cur_name, "acme/x.y-z_1"),
	       "it names the key and the repo");
	hfm_buf_dispose(&b);
}

struct tags {
	char v[16][64];
	int n;
};

static void got_tag(void *cls, const char *tag, size_t n)
{
	struct tags *t = cls;
	if (t->n < 16)
		snprintf(t->v[t->n++], 64, "%.*s", (int)n, tag);
}

static int has_tag(const struct tags *t, const char *s)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->v[i], s))
			return 1;
	return 0;
}

static void test_card(void)
{
	const char *card = "---\nlicense: apache-2.0\nlibrary_name: transformers\n"
			   "pipeline_tag: text-generation\ntags:\n- chat\n  - \"code\"\n"
			   "language: [en, fr]\ndatasets:\n- not/a-tag\n---\n# Title\ntags: no\n";
	struct tags t = { 0 };
	hfm_rl_card_tags(card, strlen(card), got_tag, &t);
	TAP_OK(has_tag(&t, "license:apache-2.0"), "license as license:x");
	TAP_OK(has_tag(&t, "transformers") && has_tag(&t, "text-generation"),
	       "library_name and pipeline_tag");
	TAP_OK(has_tag(&t, "chat") && has_tag(&t, "code"), "tags: items, quotes dropped");
	TAP_OK(has_tag(&t, "en") && has_tag(&t, "fr"), "a flow list");
	TAP_OK(!has_tag(&t, "not/a-tag") && !has_tag(&t, "no"),
	       "other lists and text after the front matter are not tags");
	TAP_IS_INT(t.n, 7, "seven tags");

	struct tags u = { 0 };
	const char *plain = "# no front matter\nlicense: mit\n";
	hfm_rl_card_tags(plain, strlen(plain), got_tag, &u);
	TAP_IS_INT(u.n, 0, "no front matter: no tags");
}

static void test_ui_escaping(void)
{
	struct hfm_buf b = HFM_BUF_INIT(1 << 16);
	hfm_ui_text(&b, "<script>alert(\"x\")</script> & 'q'");
	TAP_IS_STR(hfm_buf_cstr(&b), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;",
		   "text: every special character escaped");
	hfm_buf_reset(&b);
	hfm_ui_repo_href(&b, HFM_DATASET, "acme/ds", "resolve", "refs/pr/1", "d\"ir/<a>&b c.txt");
	TAP_IS_STR(hfm_buf_cstr(&b),
		   " href=\"/datasets/acme/ds/resolve/refs%2Fpr%2F1/d%22ir/%3Ca%3E%26b%20c.txt\"",
		   "href: the revision one segment, path segments encoded, nothing raw");
	hfm_buf_reset(&b);
	const char *md = "---\nlicense: mit\n---\n# Hi <b>x</b>\n<script>alert(1)</script>\n\n"
			 "[a](javascript:alert(1)) [b](https://example.org/?a=1&b=\"2\")\n";
	hfm_ui_markdown(&b, md, strlen(md));
	const char *h = hfm_buf_cstr(&b);
	TAP_OK(!strstr(h, "<script") && !strstr(h, "<b>"), "markdown: raw HTML dropped");
	TAP_OK(!strstr(h, "javascript:"), "markdown: javascript: links dropped");
	TAP_OK(strstr(h, "<h1>Hi") != NULL, "markdown: rendered");
	TAP_OK(strstr(h, "&amp;b=%222%22") != NULL, "markdown: a link's URL escaped");
	TAP_OK(strstr(h, "<pre class=\"meta\"><code>---\nlicense: mit\n---") != NULL,
	       "front matter shown as code");
	hfm_buf_dispose(&b);
}

int main(void)
{
	test_query();
	test_card();
	test_ui_escaping();
	return tap_done();
}
