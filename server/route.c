/* route.c - raw-path router (split first, decode each segment). */
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "hfm/buf.h"
#include "hfm/route.h"

#define MAX_SEGS 512

struct segs {
	size_t n;
	const char *raw[MAX_SEGS];
	size_t len[MAX_SEGS];
};

static int split(struct segs *s, const char *p)
{
	s->n = 0;
	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (s->n == MAX_SEGS)
			return HFM_EINVAL;
		s->raw[s->n] = p;
		s->len[s->n] = n;
		s->n++;
		if (!e)
			break;
		p = e + 1;
		if (!*p) {
			/* keep a trailing empty segment so "tree/main/" is seen */
			if (s->n == MAX_SEGS)
				return HFM_EINVAL;
			s->raw[s->n] = p;
			s->len[s->n] = 0;
			s->n++;
		}
	}
	return 0;
}

/* Decode segment i into a fresh string, or NULL when malformed. */
static char *seg(const struct segs *s, size_t i)
{
	char *out = hfm_malloc(s->len[i] + 1);

	if (hfm_pct_decode(out, s->raw[i], s->len[i], 0) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int seg_is(const struct segs *s, size_t i, const char *lit)
{
	return i < s->n && s->len[i] == strlen(lit) && !memcmp(s->raw[i], lit, s->len[i]);
}

/*
 * Join decoded segments [from, to) with '/', dropping one trailing empty
 * segment.  Returns NULL on a bad escape.
 */
static char *join(const struct segs *s, size_t from, size_t to)
{
	struct hfm_buf b = HFM_BUF_INIT(HFM_PATH_MAX * 4);
	size_t i;

	if (to > from && s->len[to - 1] == 0)
		to--;
	hfm_buf_puts(&b, "");
	for (i = from; i < to; i++) {
		char *d = seg(s, i);
		if (!d) {
			hfm_buf_dispose(&b);
			return NULL;
		}
		if (i > from)
			hfm_buf_putc(&b, '/');
		hfm_buf_puts(&b, d);
		free(d);
	}
	if (b.err) {
		hfm_buf_dispose(&b);
		return NULL;
	}
	return hfm_buf_detach(&b);
}

/*
 * Take a revision starting at segment i.  A `%2F`-encoded revision is one
 * segment; a raw `refs/{pr,convert,heads,tags}/x` takes three.
 */
static char *take_rev(const struct segs *s, size_t i, size_t *consumed)
{
	char *d = seg(s, i);

	*consumed = 1;
	if (!d)
		return NULL;
	if (!strcmp(d, "refs") && i + 2 < s->n &&
	    (seg_is(s, i + 1, "pr") || seg_is(s, i + 1, "convert") ||
	     seg_is(s, i + 1, "heads") || seg_is(s, i + 1, "tags")) &&
	    s->len[i + 2] > 0) {
		free(d);
		*consumed = 3;
		return join(s, i, i + 3);
	}
	return d;
}

/*
 * A repo's name may end in ".git", as in a clone URL; the Hub refuses such
 * names for repos, so it is the same repo: "acme/tiny.git" is acme/tiny for
 * every route, the rules and the sources alike.
 */
static void drop_git_suffix(char *name)
{
	size_t n = strlen(name);

	if (n > 4 && !strcmp(name + n - 4, ".git"))
		name[n - 4] = '\0';
}

/*
 * Parse the repo at segment i of type t: "org/name" (two segments) or a
 * canonical "name" (two == 0).  Returns the number of segments used, 0 if
 * the name is invalid.
 */
static size_t take_repo(struct hfm_repo_id *id, enum hfm_repo_type t,
			const struct segs *s, size_t i, int two)
{
	char *a, *b = NULL;
	int rc;

	if (i >= s->n || (two && i + 1 >= s->n))
		return 0;
	a = seg(s, i);
	if (two)
		b = seg(s, i + 1);
	if (!a || (two && !b)) {
		free(a);
		free(b);
		return 0;
	}
	drop_git_suffix(two ? b : a);
	rc = two ? hfm_repo_id_set(id, t, a, b) : hfm_repo_id_set(id, t, NULL, a);
	free(a);
	free(b);
	return rc ? 0 : (two ? 2 : 1);
}

static int is_api_keyword(const struct segs *s, size_t i)
{
	return seg_is(s, i, "revision") || seg_is(s, i, "tree") ||
	       seg_is(s, i, "paths-info") || seg_is(s, i, "refs") ||
	       seg_is(s, i, "commits") || seg_is(s, i, "xet-read-token") ||
	       seg_is(s, i, "auth-check") ||
	       seg_is(s, i, "preupload") || seg_is(s, i, "commit");
}

static int is_file_keyword(const struct segs *s, size_t i)
{
	return seg_is(s, i, "resolve") || seg_is(s, i, "raw") ||
	       seg_is(s, i, "blob") || seg_is(s, i, "tree");
}

static int parse_api_rest(struct hfm_route *r, const struct segs *s, size_t i)
{
	size_t used;

	if (i >= s->n || (i + 1 == s->n && s->len[i] == 0)) {
		r->kind = HFM_R_API_INFO;
		return 0;
	}
	if (seg_is(s, i, "revision") && i + 1 < s->n && s->len[i + 1]) {
		r->kind = HFM_R_API_REVISION;
		r->rev = join(s, i + 1, s->n);
	} else if (seg_is(s, i, "tree") && i + 1 < s->n && s->len[i + 1]) {
		r->kind = HFM_R_API_TREE;
		r->rev = take_rev(s, i + 1, &used);
		r->path = join(s, i + 1 + used, s->n);
	} else if (seg_is(s, i, "paths-info") && i + 1 < s->n && s->len[i + 1]) {
		r->kind = HFM_R_API_PATHS_INFO;
		r->rev = join(s, i + 1, s->n);
	} else if (seg_is(s, i, "refs") && (i + 1 == s->n || (i + 2 == s->n && !s->len[i + 1]))) {
		r->kind = HFM_R_API_REFS;
		return 0;
	} else if (seg_is(s, i, "auth-check") && (i + 1 == s->n || (i + 2 == s->n && !s->len[i + 1]))) {
		r->kind = HFM_R_API_AUTH_CHECK;
		return 0;
	} else if (seg_is(s, i, "commits") && i + 1 < s->n && s->len[i + 1]) {
		r->kind = HFM_R_API_COMMITS;
		r->rev = join(s, i + 1, s->n);
	} else {
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	if (!r->rev || (r->path == NULL && r->kind == HFM_R_API_TREE))
		return HFM_EINVAL;
	return 0;
}

static int parse_api(struct hfm_route *r, const struct segs *s)
{
	enum hfm_repo_type t;
	char *tname;
	size_t used;
	int two;

	if (s->n < 2 || s->len[1] == 0) {
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	if (seg_is(s, 1, "whoami-v2") && s->n == 2) {
		r->kind = HFM_R_API_WHOAMI;
		return 0;
	}
	tname = seg(s, 1);
	if (!tname || hfm_repo_type_parse(&t, tname) || strcmp(tname, hfm_repo_type_plural(t))) {
		free(tname);
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	free(tname);
	r->repo.type = t;
	if (s->n == 2 || (s->n == 3 && s->len[2] == 0)) {
		r->kind = HFM_R_API_LIST;
		return 0;
	}
	/*
	 * "/api/T/a/b/..." names repo a/b unless b is an API keyword, in which
	 * case a is a canonical repo ("/api/models/gpt2/revision/main") -- except
	 * when that reading makes no sense: "/api/T/org/tree" (no revision) and
	 * "/api/T/org/tree/tree/main" (a keyword after the keyword) are repo
	 * org/tree.  What stays ambiguous is a canonical repo at a revision
	 * named like a keyword ("/api/models/gpt2/tree/refs"), the rarer case.
	 */
	two = s->n >= 4 && s->len[3] &&
	      (!is_api_keyword(s, 3) ||
	       /* "org/tree" alone, or followed by a keyword: the repo is org/<kw> */
	       (s->n == 4 && !seg_is(s, 3, "refs") && !seg_is(s, 3, "auth-check")) ||
	       (s->n >= 5 && s->len[4] && is_api_keyword(s, 4)));
	used = take_repo(&r->repo, t, s, 2, two);
	if (!used)
		return HFM_EINVAL;
	return parse_api_rest(r, s, 2 + used);
}

static int parse_files(struct hfm_route *r, const struct segs *s)
{
	enum hfm_repo_type t = HFM_MODEL;
	size_t i = 0, used, kw;
	int two;

	if (seg_is(s, 0, "datasets") || seg_is(s, 0, "spaces")) {
		t = seg_is(s, 0, "datasets") ? HFM_DATASET : HFM_SPACE;
		i = 1;
	}
	if (i >= s->n || s->len[i] == 0) {
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	/*
	 * "/[T/]org/name/<kw>/..." or a canonical "/[T/]name/<kw>/...": one
	 * segment when the next is a file keyword, as in the API above.  A
	 * lone segment is a canonical repo page ("/gpt2").
	 */
	two = i + 1 < s->n && s->len[i + 1] && !is_file_keyword(s, i + 1);
	used = take_repo(&r->repo, t, s, i, two);
	if (!used) {
		/* "/org" alone, "/static/x.css": not a route, not an error */
		if (i + used + 2 >= s->n) {
			r->kind = HFM_R_NOTFOUND;
			return 0;
		}
		return HFM_EINVAL;
	}
	kw = i + used;
	if (kw >= s->n || (kw + 1 == s->n && s->len[kw] == 0)) {
		r->kind = HFM_R_UI_REPO;
		r->path = hfm_strdup("");
		return 0;
	}
	if (seg_is(s, kw, "resolve"))
		r->kind = HFM_R_RESOLVE;
	else if (seg_is(s, kw, "raw") || seg_is(s, kw, "blob"))
		r->kind = HFM_R_RAW;
	else if (seg_is(s, kw, "tree"))
		r->kind = HFM_R_UI_REPO;
	else {
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	if (kw + 1 >= s->n || s->len[kw + 1] == 0) {
		if (r->kind == HFM_R_UI_REPO) {
			r->path = hfm_strdup("");
			return 0;
		}
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	r->rev = take_rev(s, kw + 1, &used);
	if (!r->rev)
		return HFM_EINVAL;
	r->rev_given = 1;
	r->path = join(s, kw + 1 + used, s->n);
	if (!r->path)
		return HFM_EINVAL;
	if (r->kind != HFM_R_UI_REPO && r->path[0] == '\0') {
		r->kind = HFM_R_NOTFOUND;
		return 0;
	}
	return 0;
}

/* ---- git smart HTTP and LFS ------------------------------------------------ */

static int seg_digits(const struct segs *s, size_t i)
{
	size_t k;

	if (!s->len[i] || s->len[i] > 19)
		return 0;
	for (k = 0; k < s->len[i]; k++)
		if (s->raw[i][k] < '0' || s->raw[i][k] > '9')
			return 0;
	return 1;
}

static int seg_hex64(const struct segs *s, size_t i)
{
	size_t k;

	if (s->len[i] != 64)
		return 0;
	for (k = 0; k < 64; k++)
		if (!strchr("0123456789abcdef", s->raw[i][k]))
			return 0;
	return 1;
}

/*
 * "/[datasets/|spaces/]{name}[.git]/{suffix}" where {name} is one or two
 * segments and the suffix is one git or git-lfs asks for (route.h).
 * Returns 1 with out filled, 0 when the path is not such a route.
 */
static int parse_git(struct hfm_route *r, const struct segs *s)
{
	enum hfm_repo_type t = HFM_MODEL;
	enum hfm_route_kind kind;
	size_t n = s->n, end, i = 0;
	char *a = NULL, *b = NULL;
	int rc;

	if (n >= 3 && seg_is(s, n - 2, "info") && seg_is(s, n - 1, "refs")) {
		kind = HFM_R_GIT_INFO_REFS;
		end = n - 2;
	} else if (n >= 2 && seg_is(s, n - 1, "git-upload-pack")) {
		kind = HFM_R_GIT_UPLOAD_PACK;
		end = n - 1;
	} else if (n >= 2 && seg_is(s, n - 1, "git-receive-pack")) {
		kind = HFM_R_GIT_RECEIVE_PACK;
		end = n - 1;
	} else if (n >= 5 && seg_is(s, n - 4, "info") && seg_is(s, n - 3, "lfs") &&
		   seg_is(s, n - 2, "objects") && seg_is(s, n - 1, "batch")) {
		kind = HFM_R_GIT_LFS_BATCH;
		end = n - 4;
	} else if (n >= 6 && seg_is(s, n - 5, "info") && seg_is(s, n - 4, "lfs") &&
		   seg_is(s, n - 3, "objects") && seg_hex64(s, n - 2) && seg_digits(s, n - 1)) {
		kind = HFM_R_GIT_LFS_OBJECT;
		end = n - 5;
	} else {
		return 0;
	}
	if (end >= 2 && (seg_is(s, 0, "datasets") || seg_is(s, 0, "spaces"))) {
		t = seg_is(s, 0, "datasets") ? HFM_DATASET : HFM_SPACE;
		i = 1;
	}
	if (end - i < 1 || end - i > 2)
		return 0;
	a = seg(s, i);
	b = end - i == 2 ? seg(s, i + 1) : NULL;
	if (a && (end - i == 1 || b)) {
		char *last = b ? b : a;
		size_t l = strlen(last);

		if (l > 4 && !strcmp(last + l - 4, ".git"))
			last[l - 4] = '\0';
		rc = b ? hfm_repo_id_set(&r->repo, t, a, b) : hfm_repo_id_set(&r->repo, t, NULL, a);
	} else {
		rc = HFM_EINVAL;
	}
	free(a);
	free(b);
	if (rc)
		return 0;
	r->kind = kind;
	if (kind == HFM_R_GIT_LFS_OBJECT)
		r->path = hfm_asprintf("%.*s/%.*s", (int)s->len[n - 2], s->raw[n - 2],
				       (int)s->len[n - 1], s->raw[n - 1]);
	return 1;
}

int hfm_route_parse(struct hfm_route *out, const char *raw)
{
	struct segs s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (raw[0] != '/')
		return HFM_EINVAL;
	if (split(&s, raw))
		return HFM_EINVAL;
	if (s.n == 0) {
		out->kind = HFM_R_UI_INDEX;
		return 0;
	}
	if (seg_is(&s, 0, "api"))
		rc = parse_api(out, &s);
	else if (s.n == 1 && seg_is(&s, 0, "healthz"))
		return out->kind = HFM_R_HEALTH, 0;
	else if (s.n == 1 && seg_is(&s, 0, "readyz"))
		return out->kind = HFM_R_READY, 0;
	else if (s.n == 1 && seg_is(&s, 0, "metrics"))
		return out->kind = HFM_R_METRICS, 0;
	else if (s.n == 2 && seg_is(&s, 0, "-"))      /* no repo name starts with '-' */
		return out->kind = seg_is(&s, 1, "status") ? HFM_R_UI_STATUS :
				   seg_is(&s, 1, "ui.css") ? HFM_R_UI_CSS : HFM_R_NOTFOUND, 0;
	else if (s.n == 1 && (seg_is(&s, 0, "favicon.ico") || seg_is(&s, 0, "robots.txt")))
		return out->kind = HFM_R_NOTFOUND, 0;
	else if (parse_git(out, &s))
		return 0;
	else
		rc = parse_files(out, &s);
	if (rc)
		goto fail;
	if (out->rev && !hfm_rev_valid(out->rev)) {
		rc = HFM_EINVAL;
		goto fail;
	}
	if (out->path && !hfm_path_valid(out->path)) {
		rc = HFM_EINVAL;
		goto fail;
	}
	return 0;
fail:
	hfm_route_dispose(out);
	return rc ? rc : HFM_EINVAL;
}

void hfm_route_dispose(struct hfm_route *r)
{
	free(r->rev);
	free(r->path);
	r->rev = r->path = NULL;
}
