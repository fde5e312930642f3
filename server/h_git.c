/*
 * h_git.c - git smart HTTP (read-only: upload-pack in protocol v0/v1 and
 * v2) and the git-lfs batch API, over the catalog (docs/git-clone.md).
 *
 * A request finds its repo as every other route does (hfm_catalog_find:
 * the proxy rules, then the sources in order; then the source's access
 * check for gated repos), so a repo the rules deny is "repository not
 * found" to git.  git sends credentials as HTTP Basic with the token as
 * the password; sources get it as "Bearer <token>".
 *
 * Which git repository answers: the source's own (git mirrors, imported
 * mirrors: source op git_path), a shadow repository built from the files
 * (model-bin, shadow.h), or the upstream hub's, relayed (repos only the
 * online cache has).  The pack is built and streamed by gitpack.c.
 *
 * LFS: the batch API answers each object with an href on this server
 * (/{repo}.git/info/lfs/objects/{oid}/{size}), which serves it as
 * /resolve/ does (Range, ETag, the same bodies).  An object is served when
 * the tree at the requested ref has it (then the source opens it, and the
 * online cache may fetch it), or, for git repositories, when its pointer
 * is in the repository's history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <git2.h>

#include "hfm/auth.h"
#include "hfm/gitpack.h"
#include "hfm/gitproto.h"
#include "hfm/gitrelay.h"
#include "hfm/gitwalk.h"
#include "hfm/gitserve.h"
#include "hfm/metrics.h"
#include "hfm/handlers.h"
#include "hfm/hash.h"
#include "hfm/shadow.h"

#define LFS_OBJECTS_MAX 10000           /* objects in one batch request */
#define ADVERT_MAX (64u << 20)          /* a ref advertisement */
#define LFS_JSON "application/vnd.git-lfs+json"

struct hfm_gitserve {
	struct hfm_gitpack_pool *pool;
	struct hfm_shadows *shadows;
	struct hfm_gitrelay *relay;
	struct hfm_metrics_probe probe;      /* registered while g lives */
};

static void gitserve_probe(void *cls);

int hfm_gitserve_new(struct hfm_gitserve **out, const struct hfm_gitserve_opts *o)
{
	struct hfm_gitserve *g = hfm_calloc(1, sizeof(*g));
	int rc;

	git_libgit2_init();
	hfm_gitpack_pool_new(&g->pool, o->max_streams, o->max_busy);
	if ((o->shadow_dir && (rc = hfm_shadows_new(&g->shadows, o->shadow_dir))) ||
	    (o->upstream_url && !o->offline &&
	     (rc = hfm_gitrelay_new(&g->relay, o->upstream_url, o->up_opts)))) {
		hfm_gitserve_free(g);
		return rc;
	}
	g->probe.read = gitserve_probe;
	g->probe.cls = g;
	hfm_metrics_probe_add(&g->probe);
	*out = g;
	return 0;
}

void hfm_gitserve_free(struct hfm_gitserve *g)
{
	if (!g)
		return;
	if (g->probe.read)
		hfm_metrics_probe_remove(&g->probe);
	hfm_gitrelay_free(g->relay);
	hfm_gitpack_pool_free(g->pool);
	hfm_shadows_free(g->shadows);
	free(g);
	git_libgit2_shutdown();
}

/* The pack pool's counters into their series at each scrape (metrics.h). */
static void gitserve_probe(void *cls)
{
	struct hfm_gitserve *g = cls;
	struct hfm_gitpack_stats st;

	hfm_gitpack_stats(&st, g->pool);
	hfm_metrics_set(HFM_M_GIT_PACKS, (int64_t)st.started);
	hfm_metrics_set(HFM_M_GIT_OBJECTS, (int64_t)st.objects);
	hfm_metrics_set(HFM_M_GIT_WHOLE_PACKS, (int64_t)st.whole);
	hfm_metrics_set(HFM_M_GIT_PACKS_RUNNING, (int64_t)st.running);
}

/* ---- answers git shows ------------------------------------------------------- */

/* A text answer: git prints it as "remote: <msg>" for errors. */
static int git_text(struct hfm_req *r, unsigned status, const char *msg)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);

	hfm_buf_puts(&b, msg);
	hfm_buf_putc(&b, '\n');
	hfm_req_add_header(r, "Cache-Control", "no-cache");
	return hfm_reply_text(r, status, "text/plain; charset=utf-8", &b);
}

/*
 * What a failure of a git or LFS route answers: "not found" for a repo
 * the rules deny or nobody has, a 401 that makes git (and git-lfs) ask
 * their credential helper for a gated repo (then "Authentication failed"
 * for a bad token), 503 to retry, else the Hub's status for the code.
 */
struct failure {
	unsigned status;
	int challenge;                       /* ask for credentials */
	char msg[600];
};

static void failure_of(struct failure *f, int code)
{
	const char *why = hfm_error_last(), *dflt;
	struct hfm_error_rule rule;

	f->challenge = 0;
	switch (code) {
	case HFM_ENOREPO:
	case HFM_EDENIED:
	case HFM_ENOREV:
		f->status = 404;
		why = NULL;
		dflt = "Repository not found";
		break;
	case HFM_EGATED:
		f->status = 401;
		f->challenge = 1;
		dflt = "Access to this repository is restricted";
		break;
	case HFM_EUNAVAIL:
		f->status = 503;
		dflt = "Unavailable";
		break;
	default:
		hfm_error_rule(&rule, code, 0);
		f->status = rule.status;
		dflt = rule.dflt;
		break;
	}
	snprintf(f->msg, sizeof(f->msg), "%s", why && *why ? why : dflt);
}

static int git_fail(struct hfm_req *r, int code)
{
	struct failure f;

	if (code == HFM_EAGAIN)
		return code;
	failure_of(&f, code);
	if (f.challenge)
		hfm_req_add_header(r, "WWW-Authenticate", "Basic realm=\"hfmirror\"");
	if (f.status == 503)
		hfm_req_add_header(r, "Retry-After", "5");
	return git_text(r, f.status, f.msg);
}

/* ---- finding the repository ------------------------------------------------------- */

/* The repo at `rev`, after the rules and the source's access check. */
static int git_find(struct hfm_found *f, struct hfm_call *c, const char *rev)
{
	const struct hfm_source_ops *ops;
	int rc;

	if ((rc = hfm_catalog_find(f, c->app->catalog, &c->route.repo, rev, &c->ctx)))
		return rc;
	ops = f->repo->src->ops;
	hfm_req_set_source(c->req, ops->kind);
	if (ops->access && (rc = ops->access(f->repo, &c->ctx))) {
		hfm_found_dispose(f);
		return rc;
	}
	return 0;
}

/*
 * The git repository that answers for f: the source's own, or the shadow
 * of a model-bin repo (built now if needed: may wait).  *path is malloc'd.
 * HFM_ENOENT for a repo of the online cache: its history is upstream's
 * (relay()).
 */
static int git_repo_of(char **path, struct hfm_call *c, const struct hfm_found *f)
{
	const struct hfm_source_ops *ops = f->repo->src->ops;
	const char *p = ops->git_path ? ops->git_path(f->repo) : NULL;

	if (p) {
		*path = hfm_strdup(p);
		return 0;
	}
	if (!strcmp(ops->kind, "model-bin") && c->app->git && c->app->git->shadows)
		return hfm_shadow_get(path, c->app->git->shadows, f, &c->ctx);
	if (!strcmp(ops->kind, "cache") && c->app->git && c->app->git->relay)
		return HFM_ENOENT;
	return hfm_error_set(HFM_EUNAVAIL, "%s has no git history on this mirror%s",
			     f->repo->id.name, !strcmp(ops->kind, "cache") ?
			     " (it is offline; git clients need a git mirror of it)" : "");
}

/*
 * A git repository with no commit yet: its source has the repo, but no
 * revision resolves, so the lookup answered HFM_ENOREV.  git clones such a
 * repository empty ("You appear to have cloned an empty repository"), and
 * so do we: the first source (after the rules, which the lookup applied)
 * whose repository of that name is empty answers.  *path is malloc'd.
 */
static int empty_repo_of(char **path, struct hfm_call *c)
{
	const struct hfm_catalog *cat = c->app->catalog;

	*path = NULL;
	for (size_t i = 0; i < cat->nsources && !*path; i++) {
		struct hfm_source *src = cat->sources[i];
		struct hfm_repo *repo = NULL;
		git_repository *g = NULL;
		const char *p;

		if (!src->ops->git_path || src->ops->repo_open(&repo, src, &c->route.repo, &c->ctx))
			continue;
		p = src->ops->git_path(repo);
		if (p && git_repository_open_ext(&g, p, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
		    git_repository_is_empty(g) == 1)
			*path = hfm_strdup(p);
		git_repository_free(g);
		src->ops->repo_close(repo);
	}
	git_error_clear();
	return *path ? 0 : hfm_error_set(HFM_ENOREV, "Repository not found");
}

/*
 * The git repository a git route answers from (git_repo_of), after the
 * rules and access checks; HFM_ENOENT: relay the request (relay()).
 */
static int git_target(char **path, struct hfm_call *c)
{
	struct hfm_found f;
	int rc;

	*path = NULL;
	if ((rc = git_find(&f, c, "HEAD")) == HFM_ENOREV)
		return empty_repo_of(path, c);
	if (rc)
		return rc;
	rc = git_repo_of(path, c, &f);
	hfm_found_dispose(&f);
	return rc;
}

/*
 * info/refs or upload-pack of a repo only the online cache has: relayed
 * to the upstream hub's git with the client's own credentials.
 */
static int relay(struct hfm_call *c, int post)
{
	struct hfm_req *r = c->req;
	const struct hfm_repo_id *id = &c->route.repo;
	const struct hfm_buf *body = hfm_req_body(r);
	static const char *const pass[] = { "Git-Protocol", "Content-Type", "Content-Encoding",
					    "Accept", "User-Agent" };
	char *lines[HFM_ARRAY_SIZE(pass) + 2];
	struct hfm_gitrelay_answer ans;
	struct hfm_body b = { .fd = -1 };
	size_t i, n = 0;
	int rc;

	for (i = 0; i < HFM_ARRAY_SIZE(pass); i++) {
		const char *v = hfm_req_header(r, pass[i]);

		if (v && !strpbrk(v, "\r\n"))
			lines[n++] = hfm_asprintf("%s: %s", pass[i], v);
	}
	lines[n++] = hfm_strdup("Expect:");    /* no 100-continue round trip */
	lines[n] = NULL;
	char *path = hfm_asprintf("/%s%s.git/%s", hfm_repo_type_prefix(id->type), id->name,
				  post ? "git-upload-pack" : "info/refs?service=git-upload-pack");
	struct hfm_gitrelay_req rq = {
		.key = r,
		.path = path,
		.post = post,
		.body = hfm_buf_cstr(body),
		.body_len = body->len,
		/* the client's own header (git's Basic as it came), unless it is
		 * a local token, which never goes upstream (ctx.authorization NULL) */
		.authorization = c->ctx.authorization ? hfm_req_header(r, "Authorization") : NULL,
		.headers = (const char *const *)lines,
	};
	rc = hfm_gitrelay_run(&ans, c->app->git->relay, &rq, c->ctx.waiter);
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(path);
	if (rc)
		return git_fail(r, rc);
	hfm_req_set_source(r, "cache");
	if (ans.status != 200) {
		hfm_stream_free(ans.body);
		if (ans.status == 401) {
			hfm_req_add_header(r, "WWW-Authenticate", ans.www_authenticate[0]
				? ans.www_authenticate : "Basic realm=\"hfmirror\"");
			return git_text(r, 401, "Authentication required by the upstream hub");
		}
		if (ans.status == 403)
			return git_text(r, 403, "The upstream hub refused access to this repository");
		if (ans.status == 404)
			return git_text(r, 404, "Repository not found");
		hfm_error_set(HFM_EUPSTREAM, "the upstream hub answered %ld", ans.status);
		return git_fail(r, HFM_EUPSTREAM);
	}
	b.kind = HFM_BODY_STREAM;
	b.stream = ans.body;
	b.source_kind = "cache";
	hfm_req_add_header(r, "Content-Type", ans.content_type[0] ? ans.content_type
				: post ? "application/x-git-upload-pack-result"
				       : "application/x-git-upload-pack-advertisement");
	hfm_req_add_header(r, "Cache-Control", "no-cache");
	return hfm_req_respond_body(r, 200, &b, 0, HFM_LEN_UNKNOWN);
}

/* ---- refs ---------------------------------------------------------------------- */

struct gref {
	char *name;
	git_oid id, peeled;
	int has_peeled;
};

struct grefs {
	struct gref *v;
	size_t n;
	char *head_target;                   /* HEAD's symref target, or NULL */
	git_oid head;
	int has_head;
};

static void grefs_dispose(struct grefs *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	free(r->head_target);
	memset(r, 0, sizeof(*r));
}

static int cmp_gref(const void *a, const void *b)
{
	return strcmp(((const struct gref *)a)->name, ((const struct gref *)b)->name);
}

static struct gref *grefs_find(struct grefs *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].name, name))
			return &r->v[i];
	return NULL;
}

static void grefs_add(struct grefs *r, const char *name, git_repository *g, git_reference *ref)
{
	git_reference *res = NULL;
	git_object *peeled = NULL;
	struct gref *e;

	if (git_reference_resolve(&res, ref) < 0) {
		git_error_clear();
		return;
	}
	r->v = hfm_realloc(r->v, (r->n + 1) * sizeof(*r->v));
	e = &r->v[r->n++];
	memset(e, 0, sizeof(*e));
	e->name = hfm_strdup(name);
	git_oid_cpy(&e->id, git_reference_target(res));
	if (git_reference_peel(&peeled, res, GIT_OBJECT_ANY) == 0) {
		if (!git_oid_equal(git_object_id(peeled), &e->id)) {
			git_oid_cpy(&e->peeled, git_object_id(peeled));
			e->has_peeled = 1;
		}
		git_object_free(peeled);
	}
	git_reference_free(res);
	git_error_clear();
	(void)g;
}

/*
 * The refs a clone gets, as the API lists them (src_git.h): branches,
 * tags, refs/pr/N, refs/convert/X; in a non-bare clone the branches that
 * exist only as refs/remotes/origin/<x> are refs/heads/<x>.  Sorted.
 */
static int grefs_load(struct grefs *out, git_repository *g)
{
	git_reference_iterator *it = NULL;
	git_reference *ref, *head = NULL;
	struct grefs remote = { 0 };
	size_t i;

	memset(out, 0, sizeof(*out));
	if (git_reference_iterator_new(&it, g) < 0)
		return hfm_error_set(HFM_EIO, "refs: %s", git_error_last() ? git_error_last()->message : "");
	while (git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);

		if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC) {
			/* refs/remotes/origin/HEAD and the like */
		} else if (!strncmp(name, "refs/heads/", 11) || !strncmp(name, "refs/tags/", 10) ||
			   !strncmp(name, "refs/pr/", 8) || !strncmp(name, "refs/convert/", 13)) {
			grefs_add(out, name, g, ref);
		} else if (!git_repository_is_bare(g) && !strncmp(name, "refs/remotes/origin/", 20)) {
			char *as = hfm_asprintf("refs/heads/%s", name + 20);

			grefs_add(&remote, as, g, ref);
			free(as);
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	for (i = 0; i < remote.n; i++) {
		if (!grefs_find(out, remote.v[i].name)) {
			out->v = hfm_realloc(out->v, (out->n + 1) * sizeof(*out->v));
			out->v[out->n++] = remote.v[i];
			remote.v[i].name = NULL;
		}
	}
	grefs_dispose(&remote);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_gref);
	if (git_reference_lookup(&head, g, "HEAD") == 0) {
		if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
			const char *t = git_reference_symbolic_target(head);
			struct gref *e = t ? grefs_find(out, t) : NULL;

			out->head_target = t ? hfm_strdup(t) : NULL;
			if (e) {
				out->head = e->id;
				out->has_head = 1;
			}
		} else if (git_reference_target(head)) {
			git_oid_cpy(&out->head, git_reference_target(head));
			out->has_head = 1;
		}
		git_reference_free(head);
	}
	git_error_clear();
	return 0;
}

static int open_repo(git_repository **g, const char *path)
{
	if (git_repository_open_ext(g, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return hfm_error_set(HFM_EIO, "cannot open the repository: %s",
				     git_error_last() ? git_error_last()->message : "");
	return 0;
}

/* ---- info/refs ----------------------------------------------------------------- */

static void no_cache(struct hfm_req *r)
{
	hfm_req_add_header(r, "Cache-Control", "no-cache, max-age=0, must-revalidate");
	hfm_req_add_header(r, "Expires", "Fri, 01 Jan 1980 00:00:00 GMT");
	hfm_req_add_header(r, "Pragma", "no-cache");
}

static void v2_capabilities(struct hfm_buf *b)
{
	hfm_pkt_printf(b, "version 2\n");
	hfm_pkt_printf(b, "agent=hfmirror/%s\n", HFM_VERSION);
	hfm_pkt_printf(b, "ls-refs=unborn\n");
	hfm_pkt_printf(b, "fetch=shallow wait-for-done\n");
	hfm_pkt_printf(b, "server-option\n");
	hfm_pkt_printf(b, "object-format=sha1\n");
	hfm_pkt_flush(b);
}

/*
 * The v0/v1 advertisement: every ref, HEAD first with the capabilities;
 * then, for a shallow repository, its shallow commits (as git's server:
 * the client then knows where the history it clones stops).
 */
static void v0_advertisement(struct hfm_buf *b, const struct grefs *refs,
			     const struct hfm_oidv *shallow)
{
	char caps[512], hex[GIT_OID_HEXSZ + 1];
	size_t i;
	int first = 1;

	snprintf(caps, sizeof(caps),
		 "multi_ack_detailed no-done side-band-64k side-band ofs-delta shallow "
		 "deepen-since deepen-relative no-progress include-tag "
		 "allow-tip-sha1-in-want allow-reachable-sha1-in-want%s%s "
		 "object-format=sha1 agent=hfmirror/%s",
		 refs->head_target ? " symref=HEAD:" : "",
		 refs->head_target ? refs->head_target : "", HFM_VERSION);
	if (refs->has_head) {
		git_oid_tostr(hex, sizeof(hex), &refs->head);
		hfm_pkt_printf(b, "%s HEAD%c%s\n", hex, '\0', caps);
		first = 0;
	}
	for (i = 0; i < refs->n; i++) {
		const struct gref *e = &refs->v[i];

		git_oid_tostr(hex, sizeof(hex), &e->id);
		if (first)
			hfm_pkt_printf(b, "%s %s%c%s\n", hex, e->name, '\0', caps);
		else
			hfm_pkt_printf(b, "%s %s\n", hex, e->name);
		first = 0;
		if (e->has_peeled) {
			git_oid_tostr(hex, sizeof(hex), &e->peeled);
			hfm_pkt_printf(b, "%s %s^{}\n", hex, e->name);
		}
	}
	if (first)
		hfm_pkt_printf(b, "%040d capabilities^{}%c%s\n", 0, '\0', caps);
	for (i = 0; i < shallow->n; i++) {
		hfm_hex(hex, shallow->v[i].id, 20);
		hfm_pkt_printf(b, "shallow %s\n", hex);
	}
	hfm_pkt_flush(b);
}

static int readonly(struct hfm_req *r)
{
	return git_text(r, 403, "This is a read-only mirror: push to the upstream repository instead");
}

static int h_info_refs(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const char *svc = hfm_req_arg(r, "service");
	struct hfm_buf b = HFM_BUF_INIT(ADVERT_MAX);
	struct grefs refs = { 0 };
	struct hfm_oidv shallow = { 0 };
	git_repository *g = NULL;
	char *path = NULL;
	int rc, v2 = hfm_git_protocol_version(hfm_req_header(r, "Git-Protocol")) == 2;

	if (svc && !strcmp(svc, "git-receive-pack"))
		return readonly(r);
	if (!svc || strcmp(svc, "git-upload-pack"))
		return git_text(r, 403, "This mirror speaks git's smart HTTP protocol only "
				"(use git 1.6.6 or later)");
	rc = git_target(&path, c);
	if (rc == HFM_ENOENT)
		return relay(c, 0);
	if (rc)
		return git_fail(r, rc);
	if (!v2) {
		if ((rc = open_repo(&g, path)) || (rc = grefs_load(&refs, g)) ||
		    (rc = hfm_gitwalk_repo_shallow(&shallow, g)))
			goto cleanup;
		hfm_pkt_printf(&b, "# service=git-upload-pack\n");
		hfm_pkt_flush(&b);
		v0_advertisement(&b, &refs, &shallow);
	} else {
		v2_capabilities(&b);
	}
	if (b.err) {
		rc = hfm_error_set(HFM_ETOOBIG, "the ref advertisement is too large");
		goto cleanup;
	}
	no_cache(r);
	rc = hfm_reply_text(r, 200, "application/x-git-upload-pack-advertisement", &b);
cleanup:
	grefs_dispose(&refs);
	hfm_oidv_dispose(&shallow);
	git_repository_free(g);
	hfm_buf_dispose(&b);
	free(path);
	return rc && !hfm_req_replied(r) ? git_fail(r, rc) : rc;
}

/* ---- upload-pack ----------------------------------------------------------------- */

static int prefix_ok(const struct hfm_upload_req *q, const char *name)
{
	size_t i;

	if (!q->nprefixes)
		return 1;
	for (i = 0; i < q->nprefixes; i++)
		if (!strncmp(name, q->prefixes[i], strlen(q->prefixes[i])))
			return 1;
	return 0;
}

/* v2 ls-refs: HEAD, then the refs, filtered by the client's prefixes. */
static void ls_refs(struct hfm_buf *b, const struct hfm_upload_req *q, const struct grefs *refs)
{
	char hex[GIT_OID_HEXSZ + 1], peel[GIT_OID_HEXSZ + 1];
	size_t i;

	if (prefix_ok(q, "HEAD")) {
		if (refs->has_head) {
			git_oid_tostr(hex, sizeof(hex), &refs->head);
			if (q->symrefs && refs->head_target)
				hfm_pkt_printf(b, "%s HEAD symref-target:%s\n", hex, refs->head_target);
			else
				hfm_pkt_printf(b, "%s HEAD\n", hex);
		} else if (q->unborn && refs->head_target) {
			hfm_pkt_printf(b, "unborn HEAD symref-target:%s\n", refs->head_target);
		}
	}
	for (i = 0; i < refs->n; i++) {
		const struct gref *e = &refs->v[i];

		if (!prefix_ok(q, e->name))
			continue;
		git_oid_tostr(hex, sizeof(hex), &e->id);
		if (q->peel && e->has_peeled) {
			git_oid_tostr(peel, sizeof(peel), &e->peeled);
			hfm_pkt_printf(b, "%s %s peeled:%s\n", hex, e->name, peel);
		} else {
			hfm_pkt_printf(b, "%s %s\n", hex, e->name);
		}
	}
	hfm_pkt_flush(b);
}

/* A protocol error git shows as "remote error: <msg>", with status 200 as upload-pack does. */
static int upload_error(struct hfm_req *r, const char *msg)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);

	hfm_pkt_printf(&b, "ERR %s\n", msg);
	hfm_req_add_header(r, "Cache-Control", "no-cache");
	return hfm_reply_text(r, 200, "application/x-git-upload-pack-result", &b);
}

/* The request body, inflated when git gzipped it. */
static int request_body(struct hfm_buf *out, struct hfm_req *r)
{
	const struct hfm_buf *body = hfm_req_body(r);
	const char *enc = hfm_req_header(r, "Content-Encoding");

	if (enc && (hfm_strieq(enc, "gzip") || hfm_strieq(enc, "x-gzip")))
		return hfm_git_gunzip(out, hfm_buf_cstr(body), body->len);
	if (enc && !hfm_strieq(enc, "identity"))
		return hfm_error_set(HFM_EINVAL, "unsupported Content-Encoding %s", enc);
	if (hfm_buf_put(out, hfm_buf_cstr(body), body->len))
		return hfm_error_set(HFM_ETOOBIG, "the request is too large");
	return 0;
}

static int h_upload_pack(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	struct hfm_buf body = HFM_BUF_INIT(HFM_GIT_REQ_MAX), out = HFM_BUF_INIT(ADVERT_MAX);
	struct hfm_upload_req q;
	struct grefs refs = { 0 };
	struct hfm_body pack = { .fd = -1 };
	git_repository *g = NULL;
	char *path = NULL, msg[600];
	int rc, version = hfm_git_protocol_version(hfm_req_header(r, "Git-Protocol"));

	memset(&q, 0, sizeof(q));
	if (hfm_req_method(r) != HFM_M_POST)
		return git_text(r, 405, "git-upload-pack takes a POST");
	rc = git_target(&path, c);
	if (rc == HFM_ENOENT)
		return relay(c, 1);
	if (rc)
		return git_fail(r, rc);
	if ((rc = request_body(&body, r)) ||
	    (rc = hfm_upload_req_parse(&q, hfm_buf_cstr(&body), body.len, version))) {
		snprintf(msg, sizeof(msg), "%s", hfm_error_last());
		rc = upload_error(r, msg);
		goto cleanup;
	}
	if (q.cmd == HFM_GIT_CMD_NONE) {
		rc = hfm_reply_text(r, 200, "application/x-git-upload-pack-result", &out);
		goto cleanup;
	}
	if (q.cmd == HFM_GIT_CMD_LS_REFS) {
		if ((rc = open_repo(&g, path)) || (rc = grefs_load(&refs, g)))
			goto cleanup;
		ls_refs(&out, &q, &refs);
		if (out.err) {
			rc = hfm_error_set(HFM_ETOOBIG, "the ref list is too large");
			goto cleanup;
		}
		hfm_req_add_header(r, "Cache-Control", "no-cache");
		rc = hfm_reply_text(r, 200, "application/x-git-upload-pack-result", &out);
		goto cleanup;
	}
	if (!c->app->git) {
		rc = hfm_error_set(HFM_EUNAVAIL, "git is not served here");
		goto cleanup;
	}
	if ((rc = hfm_gitpack_start(&pack.stream, c->app->git->pool, path, &q)))
		goto cleanup;
	pack.kind = HFM_BODY_STREAM;
	pack.source_kind = "git";
	hfm_req_add_header(r, "Content-Type", "application/x-git-upload-pack-result");
	hfm_req_add_header(r, "Cache-Control", "no-cache");
	rc = hfm_req_respond_body(r, 200, &pack, 0, HFM_LEN_UNKNOWN);
cleanup:
	hfm_upload_req_dispose(&q);
	grefs_dispose(&refs);
	git_repository_free(g);
	hfm_buf_dispose(&body);
	hfm_buf_dispose(&out);
	free(path);
	return rc && !hfm_req_replied(r) ? git_fail(r, rc) : rc;
}

/* ---- LFS ---------------------------------------------------------------------------- */

static int lfs_reply(struct hfm_req *r, unsigned status, struct hfm_buf *b)
{
	hfm_req_add_header(r, "Cache-Control", "no-cache");
	return hfm_reply_text(r, status, LFS_JSON, b);
}

static int lfs_message(struct hfm_req *r, unsigned status, const char *msg)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);

	hfm_buf_puts(&b, "{\"message\":");
	hfm_buf_json_str(&b, msg);
	hfm_buf_puts(&b, "}");
	return lfs_reply(r, status, &b);
}

static int lfs_fail(struct hfm_req *r, int code)
{
	struct failure f;

	if (code == HFM_EAGAIN)
		return code;
	failure_of(&f, code);
	if (f.challenge)
		hfm_req_add_header(r, "LFS-Authenticate", "Basic realm=\"hfmirror\"");
	return lfs_message(r, f.status, f.msg);
}

/* The LFS files of one commit, by oid. */
struct lfs_index {
	struct hfm_list *all;
	const struct hfm_entry **v;          /* the LFS ones, sorted by lfs_oid */
	size_t n;
};

static int cmp_lfs(const void *a, const void *b)
{
	return strcmp((*(const struct hfm_entry *const *)a)->lfs_oid,
		      (*(const struct hfm_entry *const *)b)->lfs_oid);
}

static int lfs_index_load(struct lfs_index *x, const struct hfm_found *f, struct hfm_ctx *ctx)
{
	const struct hfm_source_ops *ops = f->repo->src->ops;
	size_t i;
	int rc;

	memset(x, 0, sizeof(*x));
	rc = ops->list(&x->all, f->repo, f->rc.commit, "", HFM_LIST_RECURSIVE | HFM_LIST_IDS, ctx);
	if (rc == HFM_ENOENT)
		return 0;
	if (rc)
		return rc;
	x->v = hfm_malloc((x->all->n ? x->all->n : 1) * sizeof(*x->v));
	for (i = 0; i < x->all->n; i++)
		if (!x->all->items[i]->is_dir && x->all->items[i]->is_lfs)
			x->v[x->n++] = x->all->items[i];
	if (x->n)
		qsort(x->v, x->n, sizeof(*x->v), cmp_lfs);
	return 0;
}

static void lfs_index_dispose(struct lfs_index *x)
{
	if (x->all)
		hfm_list_free(x->all);
	free(x->v);
	memset(x, 0, sizeof(*x));
}

static const struct hfm_entry *lfs_index_find(const struct lfs_index *x, const char *oid,
					      uint64_t size)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(x->v[mid]->lfs_oid, oid);

		if (c == 0)
			return x->v[mid]->size == size ? x->v[mid] : NULL;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Is the object (oid, size) in the history of git repository `path`?  Its
 * pointer blob is then in the repository's object database: git-lfs writes
 * pointers in one canonical form, so its id follows from (oid, size).
 */
static int lfs_in_history(const char *path, const char *oid, uint64_t size)
{
	git_repository *g = NULL;
	git_odb *odb = NULL;
	char id_hex[HFM_SHA1_HEX + 1];
	git_oid id;
	int yes = 0;

	hfm_lfs_pointer_id(id_hex, oid, size);
	if (git_oid_fromstr(&id, id_hex) == 0 &&
	    git_repository_open_ext(&g, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0 &&
	    git_repository_odb(&odb, g) == 0)
		yes = git_odb_exists(odb, &id);
	git_odb_free(odb);
	git_repository_free(g);
	git_error_clear();
	return yes;
}

/* The entry git-lfs asks for by (oid, size): from the tree, else from history. */
struct lfs_obj {
	const struct hfm_entry *e;           /* into the index, or &own */
	struct hfm_entry own;
	char path[HFM_SHA256_HEX + 1];
};

/*
 * Find object (oid, size) in f's tree (index x) or history; open it to know
 * it can be had.  0 with *body set (the caller disposes it), HFM_ENOENT
 * (not this repo's), HFM_EUNAVAIL (known but missing), HFM_EAGAIN.
 */
static int lfs_open(struct hfm_body *body, struct lfs_obj *o, struct hfm_call *c,
		    const struct hfm_found *f, const struct lfs_index *x, const char *oid,
		    uint64_t size)
{
	const struct hfm_source_ops *ops = f->repo->src->ops;
	const char *gp = ops->git_path ? ops->git_path(f->repo) : NULL;

	memset(body, 0, sizeof(*body));
	body->fd = -1;
	if ((o->e = lfs_index_find(x, oid, size)))
		return hfm_catalog_open(body, c->app->catalog, f, o->e, 0, &c->ctx);
	if (!gp || !lfs_in_history(gp, oid, size))
		return hfm_error_set(HFM_ENOENT, "Object does not exist");
	/* only in older commits: the source opens LFS content by its ids */
	memset(&o->own, 0, sizeof(o->own));
	snprintf(o->path, sizeof(o->path), "%s", oid);
	o->own.path = o->path;
	o->own.size = size;
	o->own.is_lfs = 1;
	o->own.pointer_size = (uint32_t)hfm_lfs_pointer_len(size);
	memcpy(o->own.lfs_oid, oid, HFM_SHA256_HEX + 1);
	hfm_lfs_pointer_id(o->own.oid, oid, size);
	atomic_store(&o->own.has_ids, 1);
	o->e = &o->own;
	return ops->open(body, f->repo, f->rc.commit, &o->own, 0, &c->ctx);
}

/* The batch's "ref" as a revision we resolve, else HEAD. */
static const char *batch_rev(cJSON *root)
{
	cJSON *ref = cJSON_GetObjectItemCaseSensitive(root, "ref");
	cJSON *name = ref ? cJSON_GetObjectItemCaseSensitive(ref, "name") : NULL;

	if (cJSON_IsString(name) && name->valuestring[0] && hfm_rev_valid(name->valuestring))
		return name->valuestring;
	return "HEAD";
}

static void href_of(struct hfm_buf *b, struct hfm_req *r, const struct hfm_repo_id *id,
		    const char *oid, uint64_t size, const char *commit)
{
	hfm_buf_puts(b, hfm_req_base_url(r));
	hfm_buf_putc(b, '/');
	hfm_buf_puts(b, hfm_repo_type_prefix(id->type));
	hfm_buf_printf(b, "%s.git/info/lfs/objects/%s/%llu?rev=%s", id->name, oid,
		       (unsigned long long)size, commit);
}

static int h_lfs_batch(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_buf *body = hfm_req_body(r);
	struct hfm_buf out = HFM_BUF_INIT(16u << 20);
	struct lfs_index x = { 0 };
	struct hfm_found f = { 0 };
	cJSON *root, *op, *objs, *it;
	const char *authz = hfm_req_header(r, "Authorization");
	int rc, n = 0, found = 0;

	if (hfm_req_method(r) != HFM_M_POST)
		return lfs_message(r, 405, "the batch API takes a POST");
	root = cJSON_ParseWithLength(hfm_buf_cstr(body), body->len);
	op = root ? cJSON_GetObjectItemCaseSensitive(root, "operation") : NULL;
	objs = root ? cJSON_GetObjectItemCaseSensitive(root, "objects") : NULL;
	if (!cJSON_IsString(op) || !cJSON_IsArray(objs)) {
		cJSON_Delete(root);
		return lfs_message(r, 422, "a batch request needs \"operation\" and \"objects\"");
	}
	if (strcmp(op->valuestring, "download")) {
		cJSON_Delete(root);
		return lfs_message(r, 403, "This is a read-only mirror: upload to the upstream "
				   "repository instead");
	}
	if (cJSON_GetArraySize(objs) > LFS_OBJECTS_MAX) {
		cJSON_Delete(root);
		return lfs_message(r, 413, "too many objects in one batch");
	}
	if ((rc = git_find(&f, c, batch_rev(root))) == HFM_ENOREV)
		rc = git_find(&f, c, "HEAD");
	if (rc || (rc = lfs_index_load(&x, &f, &c->ctx)))
		goto cleanup;
	hfm_buf_puts(&out, "{\"transfer\":\"basic\",\"objects\":[");
	cJSON_ArrayForEach(it, objs) {
		cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "oid");
		cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "size");
		struct hfm_body b;
		struct lfs_obj o;
		const char *oid = cJSON_IsString(jo) ? jo->valuestring : "";
		double sz = cJSON_IsNumber(js) ? js->valuedouble : -1;

		if (n++)
			hfm_buf_putc(&out, ',');
		hfm_buf_puts(&out, "{\"oid\":");
		hfm_buf_json_str(&out, oid);
		hfm_buf_printf(&out, ",\"size\":%.0f", sz < 0 ? 0 : sz);
		if (!hfm_is_hex(oid, HFM_SHA256_HEX) || strlen(oid) != HFM_SHA256_HEX || sz < 0 ||
		    sz > 9.0e15) {
			hfm_buf_puts(&out, ",\"error\":{\"code\":422,\"message\":\"invalid object\"}}");
			continue;
		}
		rc = lfs_open(&b, &o, c, &f, &x, oid, (uint64_t)sz);
		if (rc == HFM_EAGAIN)
			goto cleanup;
		if (rc) {
			hfm_buf_printf(&out, ",\"error\":{\"code\":%d,\"message\":",
				       rc == HFM_EGATED ? 403 : 404);
			hfm_buf_json_str(&out, rc == HFM_ENOENT ? "Object does not exist"
								: hfm_error_last());
			hfm_buf_puts(&out, "}}");
			rc = 0;
			continue;
		}
		hfm_body_dispose(&b);
		found++;
		hfm_buf_puts(&out, ",\"authenticated\":true,\"actions\":{\"download\":{\"href\":\"");
		href_of(&out, r, &f.repo->id, oid, (uint64_t)sz, f.rc.commit);
		hfm_buf_puts(&out, "\"");
		if (authz) {
			hfm_buf_puts(&out, ",\"header\":{\"Authorization\":");
			hfm_buf_json_str(&out, authz);
			hfm_buf_puts(&out, "}");
		}
		hfm_buf_puts(&out, "}}}");
	}
	hfm_buf_puts(&out, "],\"hash_algo\":\"sha256\"}");
	if (out.err) {
		rc = hfm_error_set(HFM_ETOOBIG, "the batch answer is too large");
		goto cleanup;
	}
	rc = lfs_reply(r, 200, &out);
cleanup:
	(void)found;
	cJSON_Delete(root);
	lfs_index_dispose(&x);
	hfm_found_dispose(&f);
	hfm_buf_dispose(&out);
	return rc && !hfm_req_replied(r) ? lfs_fail(r, rc) : rc;
}

static int h_lfs_object(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const char *rev = hfm_req_arg(r, "rev");
	char oid[HFM_SHA256_HEX + 1];
	struct lfs_index x = { 0 };
	struct hfm_found f = { 0 };
	struct hfm_body b = { .fd = -1 };
	struct lfs_obj o;
	uint64_t size;
	int rc;

	if (hfm_req_method(r) != HFM_M_GET && hfm_req_method(r) != HFM_M_HEAD)
		return lfs_message(r, 405, "objects are downloaded with GET");
	memcpy(oid, c->route.path, HFM_SHA256_HEX);
	oid[HFM_SHA256_HEX] = '\0';
	size = strtoull(c->route.path + HFM_SHA256_HEX + 1, NULL, 10);
	if (!rev || !hfm_rev_valid(rev))
		rev = "HEAD";
	if ((rc = git_find(&f, c, rev)) == HFM_ENOREV)
		rc = git_find(&f, c, "HEAD");
	if (rc || (rc = lfs_index_load(&x, &f, &c->ctx)))
		goto cleanup;
	rc = lfs_open(&b, &o, c, &f, &x, oid, size);
	if (rc == HFM_ENOENT) {
		rc = lfs_message(r, 404, "Object does not exist");
		goto cleanup;
	}
	if (!rc)
		rc = hfm_reply_file(r, o.e, &b, f.rc.commit, 0);
	if (!rc)                             /* a git-lfs download is a download too */
		hfm_call_audit(c, &f.repo->id, rev, f.rc.commit, o.e->path);
cleanup:
	lfs_index_dispose(&x);
	hfm_found_dispose(&f);
	return rc && !hfm_req_replied(r) ? lfs_fail(r, rc) : rc;
}

/* ---- dispatch -------------------------------------------------------------------- */

int hfm_h_git(struct hfm_call *c)
{
	const char *orig = c->ctx.authorization;
	/* git sends its credential helper's token as HTTP Basic; sources take Bearer */
	char *bearer = hfm_auth_bearer_of(orig);
	int rc;

	if (bearer)
		c->ctx.authorization = bearer;
	switch (c->route.kind) {
	case HFM_R_GIT_INFO_REFS:
		rc = h_info_refs(c);
		break;
	case HFM_R_GIT_UPLOAD_PACK:
		rc = h_upload_pack(c);
		break;
	case HFM_R_GIT_LFS_BATCH:
		rc = h_lfs_batch(c);
		break;
	case HFM_R_GIT_LFS_OBJECT:
		rc = h_lfs_object(c);
		break;
	case HFM_R_GIT_RECEIVE_PACK:
	default:
		rc = readonly(c->req);
		break;
	}
	c->ctx.authorization = orig;
	free(bearer);
	return rc;
}
