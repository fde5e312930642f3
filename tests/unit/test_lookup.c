/*
 * test_lookup.c - which source answers (hfm_lookup) and who opens a file
 * (hfm_lookup_open), over small fake sources that do what each case needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/lookup.h"
#include "tap.h"

#define C1 "1111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222"
#define C3 "3333333333333333333333333333333333333333"

/* A stream that only counts its frees (the foreign opener's bodies). */
static int stream_frees;

static ssize_t fake_stream_read(struct hfm_stream *s, uint64_t pos, uint64_t end, char *buf,
				size_t max, struct hfm_waiter *w)
{
	(void)s, (void)pos, (void)end, (void)buf, (void)max, (void)w;
	return HFM_EIO;
}

static void fake_stream_free(struct hfm_stream *s)
{
	stream_frees++;
	free(s);
}

static const struct hfm_stream_ops fake_stream_ops = {
	.read = fake_stream_read,
	.free = fake_stream_free,
};

/*
 * A source holding one repo with a few revisions.  Forced errors come before
 * anything else in the op they name.
 */
struct fake {
	struct hfm_source base;
	const char *name;                /* its label and body text */
	const char *repo;                /* the one repo it has */
	const char *revs[4];             /* revision names ... */
	const char *commits[4];          /* ... and what they resolve to */
	int open_rc, resolve_rc, body_rc, access_rc;
	int stream_body;                 /* open answers a stream */
	int opened, closed, resolves, bodies, accesses;
	struct hfm_ctx *last_ctx;
};

struct fake_repo {
	struct hfm_repo base;
	struct fake *f;
};

static int fake_repo_open(struct hfm_repo **out, struct hfm_source *src,
			  const struct hfm_repo_id *id, struct hfm_ctx *ctx)
{
	struct fake *f = (struct fake *)src;
	struct fake_repo *r;

	(void)ctx;
	if (f->open_rc)
		return hfm_error_set(f->open_rc, "%s: repo_open failed", f->name);
	if (strcmp(id->name, f->repo))
		return hfm_error_set(HFM_ENOREPO, "%s has no %s", f->name, id->name);
	r = calloc(1, sizeof(*r));
	r->base.src = src;
	r->base.id = *id;
	r->f = f;
	f->opened++;
	*out = &r->base;
	return 0;
}

static void fake_repo_close(struct hfm_repo *r)
{
	((struct fake_repo *)r)->f->closed++;
	free(r);
}

static int fake_resolve(struct hfm_resolved *out, struct hfm_repo *repo, const char *rev,
			struct hfm_ctx *ctx)
{
	struct fake *f = ((struct fake_repo *)repo)->f;

	f->resolves++;
	f->last_ctx = ctx;
	if (f->resolve_rc)
		return hfm_error_set(f->resolve_rc, "%s: resolve failed", f->name);
	for (int i = 0; i < 4 && f->revs[i]; i++)
		if (!strcmp(f->revs[i], rev)) {
			memset(out, 0, sizeof(*out));
			snprintf(out->commit, sizeof(out->commit), "%s", f->commits[i]);
			return 0;
		}
	return hfm_error_set(HFM_ENOREV, "%s has no revision %s", f->name, rev);
}

static int fake_open(struct hfm_body *out, struct hfm_repo *repo, const char *commit,
		     const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx)
{
	struct fake *f = ((struct fake_repo *)repo)->f;

	(void)commit, (void)flags, (void)ctx;
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	f->bodies++;
	if (f->body_rc)
		return hfm_error_set(f->body_rc, "%s lacks the content of %s", f->name, e->path);
	if (f->stream_body) {
		struct hfm_stream *s = calloc(1, sizeof(*s));
		s->ops = &fake_stream_ops;
		out->kind = HFM_BODY_STREAM;
		out->stream = s;
		out->size = e->size;
		return 0;
	}
	out->kind = HFM_BODY_MEM;
	out->mem = f->name;
	out->size = strlen(f->name);
	return 0;
}

static int fake_access(struct hfm_repo *repo, struct hfm_ctx *ctx)
{
	struct fake *f = ((struct fake_repo *)repo)->f;

	(void)ctx;
	f->accesses++;
	return f->access_rc ? hfm_error_set(f->access_rc, "%s: no access", f->name) : 0;
}

static const struct hfm_source_ops fake_ops = {
	.kind = "fake",
	.repo_open = fake_repo_open,
	.repo_close = fake_repo_close,
	.resolve = fake_resolve,
	.open = fake_open,
};

/* The same, but it may open entries other sources listed (as the cache). */
static const struct hfm_source_ops foreign_ops = {
	.kind = "fake-foreign",
	.repo_open = fake_repo_open,
	.repo_close = fake_repo_close,
	.resolve = fake_resolve,
	.open = fake_open,
	.opens_foreign = 1,
	.access = fake_access,
};

static void fake_init(struct fake *f, const struct hfm_source_ops *ops, const char *name,
		      const char *repo)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = ops;
	f->name = name;
	f->repo = repo;
}

static void fake_rev(struct fake *f, const char *rev, const char *commit)
{
	int i = 0;

	while (f->revs[i])
		i++;
	f->revs[i] = rev;
	f->commits[i] = commit;
}

static struct hfm_repo_id rid(const char *name)
{
	struct hfm_repo_id id = { .type = HFM_MODEL };

	snprintf(id.name, sizeof(id.name), "%s", name);
	return id;
}

static int balanced(const struct fake *f)
{
	return f->opened == f->closed;
}

static void test_lookup(void)
{
	struct fake a, b;
	struct hfm_source *srcs[2] = { &a.base, &b.base };
	struct hfm_repo_id id = rid("org/x");
	struct hfm_ctx ctx = { 0 };
	struct hfm_found f;
	int rc;

	fake_init(&a, &fake_ops, "a", "org/x");
	fake_rev(&a, "main", C1);
	fake_init(&b, &fake_ops, "b", "org/x");
	fake_rev(&b, "main", C2);
	fake_rev(&b, "refs/pr/7", C3);

	rc = hfm_lookup(&f, srcs, 2, &id, "main", &ctx);
	TAP_IS_INT(rc, 0, "first source with repo and rev answers");
	TAP_OK(rc == 0 && f.repo->src == &a.base, "... and it is the first one");
	TAP_IS_STR(f.rc.commit, C1, "... with its commit");
	TAP_IS_INT(b.opened, 0, "the next source is not asked");
	hfm_found_dispose(&f);
	TAP_OK(balanced(&a) && f.repo == NULL, "dispose closes the repo");

	rc = hfm_lookup(&f, srcs, 2, &id, "refs/pr/7", &ctx);
	TAP_IS_INT(rc, 0, "a source with the repo but not the rev defers");
	TAP_OK(rc == 0 && f.repo->src == &b.base, "... to the next one");
	TAP_IS_STR(f.rc.commit, C3, "... which resolves it");
	TAP_OK(balanced(&a), "the deferring source's repo is closed");
	hfm_found_dispose(&f);

	rc = hfm_lookup(&f, srcs, 2, &id, "nope", &ctx);
	TAP_IS_INT(rc, HFM_ENOREV, "nobody has the rev: RevisionNotFound");
	TAP_IS_STR(hfm_error_last(), "a has no revision nope",
		   "... with the reason of the first source that had the repo");
	TAP_OK(f.repo == NULL && balanced(&a) && balanced(&b), "... and no repo left open");

	id = rid("org/none");
	rc = hfm_lookup(&f, srcs, 2, &id, "main", &ctx);
	TAP_IS_INT(rc, HFM_ENOREPO, "nobody has the repo: RepoNotFound");
	TAP_IS_STR(hfm_error_last(), "Repository not found: org/none", "... naming it");
	b.repo = "org/none";
	b.resolve_rc = HFM_ENOREPO;
	rc = hfm_lookup(&f, srcs, 2, &id, "main", &ctx);
	TAP_IS_INT(rc, HFM_ENOREPO, "a source that opens the repo, then finds none: RepoNotFound");
	TAP_IS_STR(hfm_error_last(), "b: resolve failed", "... with that source's reason (offline, ...)");
	TAP_OK(balanced(&b), "... its repo closed");
	b.repo = "org/x";
	b.resolve_rc = 0;

	/* one source lacks the repo, the other the rev: the rev is what is missing */
	id = rid("org/x");
	a.repo = "org/other";
	rc = hfm_lookup(&f, srcs, 2, &id, "refs/pr/9", &ctx);
	TAP_IS_INT(rc, HFM_ENOREV, "repo somewhere, rev nowhere: RevisionNotFound");
	TAP_IS_INT(hfm_lookup(&f, srcs, 0, &id, "main", &ctx), HFM_ENOREPO,
		   "no sources: RepoNotFound");
	a.repo = "org/x";

	/* transport errors end the lookup: they do not defer */
	a.open_rc = HFM_EUPSTREAM;
	b.opened = b.resolves = 0;
	rc = hfm_lookup(&f, srcs, 2, &id, "main", &ctx);
	TAP_IS_INT(rc, HFM_EUPSTREAM, "repo_open's transport error is the answer");
	TAP_IS_INT(b.opened, 0, "... the next source is not asked");
	a.open_rc = 0;
	a.resolve_rc = HFM_ETIMEOUT;
	rc = hfm_lookup(&f, srcs, 2, &id, "main", &ctx);
	TAP_IS_INT(rc, HFM_ETIMEOUT, "resolve's transport error is the answer");
	TAP_IS_STR(hfm_error_last(), "a: resolve failed", "... with its reason");
	TAP_OK(balanced(&a) && b.opened == 0, "... its repo closed, the next not asked");
	a.resolve_rc = HFM_EAGAIN;
	TAP_IS_INT(hfm_lookup(&f, srcs, 2, &id, "main", &ctx), HFM_EAGAIN,
		   "resolve waiting: HFM_EAGAIN for a re-run");
	TAP_OK(balanced(&a), "... without a repo left open");
	a.resolve_rc = 0;
	TAP_OK(a.last_ctx == &ctx, "the request's ctx reaches the source");
}

/*
 * A local source has the repo but not the revision; what the source behind
 * it (the cache) says cannot make that worse than RevisionNotFound.
 */
static void test_lookup_after_repo(void)
{
	struct fake a, b, c;
	struct hfm_source *srcs[3] = { &a.base, &b.base, &c.base };
	struct hfm_repo_id id = rid("org/x");
	struct hfm_ctx ctx = { 0 };
	struct hfm_found f;
	static const struct { int rc; const char *what; } later[] = {
		{ HFM_ENOREPO, "RepoNotFound (upstream lacks the repo)" },
		{ HFM_EOFFLINE, "offline" },
		{ HFM_ETIMEOUT, "a timeout (upstream unreachable)" },
		{ HFM_EUPSTREAM, "an upstream failure" },
		{ HFM_EIO, "a disk error" },
	};
	int rc;

	fake_init(&a, &fake_ops, "a", "org/x");
	fake_rev(&a, "main", C1);
	fake_init(&b, &fake_ops, "b", "org/x");
	fake_init(&c, &fake_ops, "c", "org/x");
	fake_rev(&c, "dev", C2);
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		b.resolve_rc = later[i].rc;
		rc = hfm_lookup(&f, srcs, 2, &id, "nope", &ctx);
		TAP_IS_INT(rc, HFM_ENOREV, "repo in the first source, then %s: RevisionNotFound",
			   later[i].what);
		TAP_OK(f.repo == NULL && balanced(&a) && balanced(&b), "... and no repo left open");
	}
	b.resolve_rc = HFM_ETIMEOUT;
	hfm_lookup(&f, srcs, 2, &id, "nope", &ctx);
	TAP_IS_STR(hfm_error_last(), "a has no revision nope (a later source failed: b: resolve failed)",
		   "... the message says what the later source met");
	b.resolve_rc = HFM_ENOREPO;
	hfm_lookup(&f, srcs, 2, &id, "nope", &ctx);
	TAP_IS_STR(hfm_error_last(), "a has no revision nope", "... a later miss adds nothing");

	b.resolve_rc = HFM_ETIMEOUT;
	rc = hfm_lookup(&f, srcs, 3, &id, "dev", &ctx);
	TAP_IS_INT(rc, 0, "a failing source in between does not stop the search for the revision");
	TAP_OK(rc == 0 && f.repo->src == &c.base, "... the source that has it answers");
	hfm_found_dispose(&f);

	b.resolve_rc = HFM_EAGAIN;
	TAP_IS_INT(hfm_lookup(&f, srcs, 2, &id, "nope", &ctx), HFM_EAGAIN,
		   "a later source that must wait: HFM_EAGAIN, asked again");
	b.resolve_rc = HFM_EGATED;
	TAP_IS_INT(hfm_lookup(&f, srcs, 2, &id, "nope", &ctx), HFM_EGATED,
		   "a later source's gated repo: GatedRepo (a token may open the revision)");
	b.resolve_rc = 0;
	b.open_rc = HFM_EUPSTREAM;
	TAP_IS_INT(hfm_lookup(&f, srcs, 2, &id, "nope", &ctx), HFM_ENOREV,
		   "a later repo_open failing: RevisionNotFound");
	TAP_OK(balanced(&a) && balanced(&b) && balanced(&c), "every repo opened is closed");
}

static void entry(struct hfm_entry *e, int lfs)
{
	memset(e, 0, sizeof(*e));
	e->path = "model.bin";
	e->size = 1000;
	e->is_lfs = (uint8_t)lfs;
	memset(e->lfs_oid, 'a', HFM_SHA256_HEX);
}

static void test_open(void)
{
	struct fake git, cache, other;
	struct hfm_source *srcs[3] = { &git.base, &other.base, &cache.base };
	struct hfm_repo_id id = rid("org/x");
	struct hfm_ctx ctx = { 0 };
	struct hfm_found f;
	struct hfm_entry e;
	struct hfm_body body;
	int rc;

	fake_init(&git, &fake_ops, "git", "org/x");
	fake_rev(&git, "main", C1);
	fake_init(&other, &fake_ops, "other", "org/x");
	fake_init(&cache, &foreign_ops, "cache", "org/x");
	fake_rev(&cache, C1, C1);
	entry(&e, 1);
	TAP_IS_INT(hfm_lookup(&f, srcs, 3, &id, "main", &ctx), 0, "open: the git source answers");

	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_OK(rc == 0 && body.kind == HFM_BODY_MEM && !strcmp(body.mem, "git"),
	       "the answering source opens what it has");
	TAP_IS_INT(cache.opened, 0, "... nobody else is asked");
	hfm_body_dispose(&body);

	/* the git mirror lacks the LFS object: the source that opens foreign entries does */
	git.body_rc = HFM_EUNAVAIL;
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_OK(rc == 0 && body.kind == HFM_BODY_MEM && !strcmp(body.mem, "cache"),
	       "missing LFS object: opened by the opens_foreign source, not the next one");
	TAP_OK(other.bodies == 0 && cache.bodies == 1, "... the plain source is passed over");
	TAP_OK(balanced(&cache), "... its repo handle closed");
	TAP_IS_INT(cache.resolves, 0, "a body from the store needs no upstream check");
	hfm_body_dispose(&body);

	/* not for everything the git source cannot open */
	e.is_lfs = 0;
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx), HFM_EUNAVAIL,
		   "not an LFS file: the answering source's error");
	e.is_lfs = 1;
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 3, &f, &e, HFM_OPEN_RAW, &ctx), HFM_EUNAVAIL,
		   "the raw pointer: the answering source's error");
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 2, &f, &e, 0, &ctx), HFM_EUNAVAIL,
		   "no source opens foreign entries: the answering source's error");
	TAP_IS_STR(hfm_error_last(), "git lacks the content of model.bin", "... with its reason");
	git.body_rc = HFM_ENOENT;
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx), HFM_ENOENT,
		   "another error: no fallback");
	git.body_rc = HFM_EUNAVAIL;
	TAP_IS_INT(cache.bodies, 1, "none of these reached the foreign opener");

	cache.repo = "org/other";
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_IS_INT(rc, HFM_EUNAVAIL, "foreign opener without the repo: unavailable");
	TAP_IS_STR(hfm_error_last(), "git lacks the content of model.bin", "... for the first reason");
	cache.repo = "org/x";
	cache.body_rc = HFM_EUNAVAIL;
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_IS_INT(rc, HFM_EUNAVAIL, "foreign opener cannot fetch either: unavailable");
	TAP_IS_STR(hfm_error_last(), "git lacks the content of model.bin, and this mirror is offline",
		   "... saying both");
	cache.body_rc = HFM_EGATED;
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx), HFM_EGATED,
		   "foreign opener's own error passes through");
	cache.body_rc = 0;

	/* a stream: upstream must have this very commit, and the token must be good */
	cache.stream_body = 1;
	stream_frees = 0;
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_OK(rc == 0 && body.kind == HFM_BODY_STREAM, "a stream when upstream has the commit");
	TAP_OK(cache.resolves == 1 && cache.accesses == 1, "... after resolve and access");
	hfm_body_dispose(&body);
	TAP_IS_INT(stream_frees, 1, "the caller's dispose frees the stream");

	cache.revs[0] = "main";              /* upstream has the repo, not commit C1 */
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_IS_INT(rc, HFM_EUNAVAIL, "upstream lacks the commit: unavailable");
	TAP_OK(strstr(hfm_error_last(), "the upstream hub has no commit " C1 " of org/x") != NULL,
	       "... naming the commit and repo");
	TAP_IS_INT(stream_frees, 2, "... and the stream is freed");
	cache.revs[0] = C1;
	cache.commits[0] = C2;               /* upstream says C1 is something else */
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx), HFM_EUNAVAIL,
		   "upstream resolves the commit to another: unavailable");
	cache.commits[0] = C1;

	cache.resolve_rc = HFM_ETIMEOUT;
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_IS_INT(rc, HFM_ETIMEOUT, "upstream unreachable: its transport error");
	TAP_IS_STR(hfm_error_last(), "git lacks the content of model.bin; fetching it: "
		   "cache: resolve failed", "... saying what was being done");
	cache.resolve_rc = HFM_EAGAIN;
	TAP_IS_INT(hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx), HFM_EAGAIN,
		   "upstream check in flight: HFM_EAGAIN");
	TAP_IS_INT(stream_frees, 5, "every failed attempt freed its stream");
	cache.resolve_rc = 0;

	cache.access_rc = HFM_EGATED;
	rc = hfm_lookup_open(&body, srcs, 3, &f, &e, 0, &ctx);
	TAP_IS_INT(rc, HFM_EGATED, "the token may not read the repo: refused before any byte");
	TAP_IS_INT(stream_frees, 6, "... the stream freed");
	TAP_OK(balanced(&cache), "every foreign repo handle was closed");

	hfm_found_dispose(&f);
	TAP_OK(balanced(&git), "the answering repo closed by its owner");
}

int main(void)
{
	test_lookup();
	test_lookup_after_repo();
	test_open();
	return tap_done();
}
