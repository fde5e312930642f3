/* test_catalog.c - finding repos and listing names across sources under rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/catalog.h"
#include "tap.h"

/* A fake source: the repos it holds (of one type) and the revisions of each. */
struct fake {
	struct hfm_source base;
	enum hfm_repo_type type;
	const char *const *repos;        /* NULL-terminated */
	const char *rev;                 /* the one revision every repo has */
	char commit;                     /* resolved commits are 40 of this */
	int opens;                       /* repo_open calls */
};

static int fake_open(struct hfm_repo **out, struct hfm_source *src, const struct hfm_repo_id *id,
		     struct hfm_ctx *ctx)
{
	struct fake *f = (struct fake *)src;
	(void)ctx;
	f->opens++;
	for (const char *const *p = f->repos; *p; p++)
		if (id->type == f->type && !strcmp(*p, id->name)) {
			struct hfm_repo *r = hfm_calloc(1, sizeof(*r));
			r->src = src;
			r->id = *id;
			*out = r;
			return 0;
		}
	return HFM_ENOREPO;
}

static void fake_close(struct hfm_repo *r)
{
	free(r);
}

static int fake_resolve(struct hfm_resolved *out, struct hfm_repo *r, const char *rev,
			struct hfm_ctx *ctx)
{
	struct fake *f = (struct fake *)r->src;
	(void)ctx;
	if (strcmp(rev, f->rev))
		return hfm_error_set(HFM_ENOREV, "no revision %s here", rev);
	memset(out, 0, sizeof(*out));
	memset(out->commit, f->commit, HFM_SHA1_HEX);
	return 0;
}

static void fake_list_repos(struct hfm_source *src, enum hfm_repo_type t,
			    void (*cb)(void *cls, const char *name), void *cls)
{
	struct fake *f = (struct fake *)src;
	if (t != f->type)
		return;
	for (const char *const *p = f->repos; *p; p++)
		cb(cls, *p);
}

static const struct hfm_source_ops fake_ops = {
	.kind = "fake",
	.repo_open = fake_open,
	.repo_close = fake_close,
	.resolve = fake_resolve,
	.list_repos = fake_list_repos,
};

/* The same, but it cannot list its repos (a cache of upstream). */
static const struct hfm_source_ops fake_unlisted_ops = {
	.kind = "fake",
	.repo_open = fake_open,
	.repo_close = fake_close,
	.resolve = fake_resolve,
};

static struct hfm_repo_id id_of(enum hfm_repo_type t, const char *name)
{
	struct hfm_repo_id id;
	memset(&id, 0, sizeof(id));
	id.type = t;
	snprintf(id.name, sizeof(id.name), "%s", name);
	return id;
}

static struct hfm_rules *rules_of(const struct hfm_rule *v, size_t n)
{
	struct hfm_rules *r = NULL;
	TAP_OK(hfm_rules_compile(&r, v, n, NULL) == 0, "rules compile");
	return r;
}

static const char *const repos_a[] = { "acme/tiny", "acme/both", "zed/solo", NULL };
static const char *const repos_b[] = { "acme/both", "acme/cached", "secret/x", NULL };
static const char *const repos_c[] = { "hidden/listless", NULL };

static void test_find(void)
{
	struct fake a = { { &fake_ops, "a" }, HFM_MODEL, repos_a, "main", 'a', 0 };
	struct fake b = { { &fake_ops, "b" }, HFM_MODEL, repos_b, "refs/pr/7", 'b', 0 };
	struct hfm_source *srcs[] = { &a.base, &b.base };
	struct hfm_catalog cat = { srcs, 2, NULL };
	struct hfm_ctx ctx = { 0 };
	struct hfm_found f;
	struct hfm_repo_id id;

	id = id_of(HFM_MODEL, "acme/tiny");
	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "main", &ctx), 0, "no rules: found");
	TAP_OK(f.repo && f.repo->src == &a.base, "the first source that has it answers");
	TAP_OK(f.rc.commit[0] == 'a', "with its commit");
	hfm_found_dispose(&f);

	id = id_of(HFM_MODEL, "acme/both");
	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "refs/pr/7", &ctx), 0,
		   "a revision only the second source has");
	TAP_OK(f.repo && f.repo->src == &b.base, "the first source defers to the second");
	hfm_found_dispose(&f);

	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "v9", &ctx), HFM_ENOREV,
		   "nobody has the revision: RevisionNotFound");
	TAP_OK(!f.repo, "not found: nothing to dispose");
	id = id_of(HFM_MODEL, "acme/none");
	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "main", &ctx), HFM_ENOREPO,
		   "nobody has the repo: RepoNotFound");
	id = id_of(HFM_DATASET, "acme/tiny");
	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "main", &ctx), HFM_ENOREPO,
		   "the type is part of the repo");

	/* Olah's proxy rules: allow every name, deny the secret org; the last match wins. */
	struct hfm_rule rv[] = { { (char *)"*", 1, 0 }, { (char *)"secret/*", 0, 0 } };
	struct hfm_rules *rules = rules_of(rv, 2);
	cat.proxy_rules = rules;
	id = id_of(HFM_MODEL, "secret/x");
	a.opens = b.opens = 0;
	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "refs/pr/7", &ctx), HFM_EDENIED,
		   "a repo the rules deny: denied although a source holds it");
	TAP_OK(!f.repo, "denied: nothing to dispose");
	TAP_OK(a.opens == 0 && b.opens == 0, "denied: no source was asked");
	TAP_OK(strstr(hfm_error_last(), "secret/x") != NULL, "denied: the message names the repo");
	id = id_of(HFM_MODEL, "acme/tiny");
	TAP_IS_INT(hfm_catalog_find(&f, &cat, &id, "main", &ctx), 0, "a repo the rules allow");
	hfm_found_dispose(&f);
	hfm_rules_free(rules);
}

static int has(struct hfm_listed *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return 1;
	return 0;
}

static unsigned sources_of(struct hfm_listed *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return v[i].sources;
	return 0;
}

#define free_names hfm_listed_free

static void test_names(void)
{
	struct fake a = { { &fake_ops, "a" }, HFM_MODEL, repos_a, "main", 'a', 0 };
	struct fake b = { { &fake_ops, "b" }, HFM_MODEL, repos_b, "main", 'b', 0 };
	struct fake c = { { &fake_unlisted_ops, "c" }, HFM_MODEL, repos_c, "main", 'c', 0 };
	struct fake d = { { &fake_ops, "d" }, HFM_DATASET, repos_c, "main", 'd', 0 };
	struct hfm_source *srcs[] = { &a.base, &b.base, &c.base, &d.base };
	struct hfm_catalog cat = { srcs, 4, NULL };
	struct hfm_listed *v;
	size_t n;
	struct hfm_ctx ctx = { 0 };

	hfm_catalog_repos(&v, &n, &cat, HFM_MODEL, &ctx);
	TAP_IS_INT(n, 5, "models across sources: each name once");
	int sorted = 1;
	for (size_t i = 1; i < n; i++)
		sorted &= strcmp(v[i - 1].name, v[i].name) < 0;
	TAP_OK(sorted, "sorted in byte order, no duplicates");
	TAP_OK(n == 5 && !strcmp(v[0].name, "acme/both") && !strcmp(v[4].name, "zed/solo"), "first and last");
	TAP_IS_INT(sources_of(v, n, "acme/both"), 3, "a repo two sources list names both");
	TAP_IS_INT(sources_of(v, n, "zed/solo"), 1, "...and one only its own");
	TAP_OK(!has(v, n, "hidden/listless"), "a source that cannot list adds nothing");
	free_names(v, n);

	hfm_catalog_repos(&v, &n, &cat, HFM_DATASET, &ctx);
	TAP_IS_INT(n, 1, "datasets: only the dataset source's");
	TAP_OK(n == 1 && !strcmp(v[0].name, "hidden/listless"), "the dataset's name");
	free_names(v, n);

	hfm_catalog_repos(&v, &n, &cat, HFM_SPACE, &ctx);
	TAP_OK(n == 0 && v == NULL, "no spaces: empty, NULL array");

	struct hfm_rule rv[] = { { (char *)"acme/.*", 1, 1 }, { (char *)"acme/both", 0, 0 } };
	struct hfm_rules *rules = rules_of(rv, 2);
	cat.proxy_rules = rules;
	hfm_catalog_repos(&v, &n, &cat, HFM_MODEL, &ctx);
	TAP_IS_INT(n, 2, "under rules: only what they allow");
	TAP_OK(has(v, n, "acme/tiny") && has(v, n, "acme/cached"), "the allowed names");
	TAP_OK(!has(v, n, "acme/both") && !has(v, n, "zed/solo") && !has(v, n, "secret/x"),
	       "denied names are not listed");
	free_names(v, n);
	hfm_rules_free(rules);
}

int main(void)
{
	test_find();
	test_names();
	return tap_done();
}
