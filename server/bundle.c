/* bundle.c - the bundle manifest: build, print, parse, sign (bundle.h). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "hfm/bundle.h"

/* ---- building -------------------------------------------------------------- */

void hfm_bundle_random_id(char out[HFM_BUNDLE_ID_HEX + 1])
{
	unsigned char r[HFM_BUNDLE_ID_HEX / 2];

	if (RAND_bytes(r, sizeof(r)) != 1)
		abort();                 /* no entropy: nothing sensible to do */
	hfm_hex(out, r, sizeof(r));
}

struct hfm_bundle_manifest *hfm_bundle_manifest_new(const char *tool, const char *source)
{
	struct hfm_bundle_manifest *m = hfm_calloc(1, sizeof(*m));

	m->version = HFM_BUNDLE_VERSION;
	hfm_bundle_random_id(m->id);
	hfm_iso_date(m->created, hfm_now_ms());
	m->tool = hfm_strdup(tool ? tool : "");
	m->source = hfm_strdup(source ? source : "");
	return m;
}

void hfm_bundle_manifest_free(struct hfm_bundle_manifest *m)
{
	size_t i, j, k;

	if (!m)
		return;
	for (i = 0; i < m->nrepos; i++) {
		struct hfm_bundle_repo *r = &m->repos[i];

		for (j = 0; j < r->nrevs; j++)
			free(r->revs[j].name);
		free(r->revs);
		for (j = 0; j < r->ncommits; j++) {
			for (k = 0; k < r->commits[j].nfiles; k++)
				free(r->commits[j].files[k].path);
			free(r->commits[j].files);
		}
		free(r->commits);
		free(r->head);
		free(r->shallow);
		for (j = 0; j < r->ngrants; j++) {
			free(r->grants[j].user);
			free(r->grants[j].via);
		}
		free(r->grants);
	}
	free(m->repos);
	for (i = 0; i < m->nitems; i++) {
		free(m->items[i].name);
		free(m->items[i].relpath);
	}
	free(m->items);
	for (i = 0; i < m->nvolumes; i++)
		free(m->volumes[i].name);
	free(m->volumes);
	free(m->tool);
	free(m->source);
	free(m);
}

struct hfm_bundle_repo *hfm_bundle_add_repo(struct hfm_bundle_manifest *m,
					    const struct hfm_repo_id *id,
					    enum hfm_bundle_kind kind)
{
	struct hfm_bundle_repo *r = hfm_array_push(&m->repos, &m->nrepos, sizeof(*r));

	r->id = *id;
	r->kind = kind;
	return r;
}

void hfm_bundle_add_rev(struct hfm_bundle_repo *r, const char *name, const char *commit)
{
	struct hfm_bundle_rev *v = hfm_array_push(&r->revs, &r->nrevs, sizeof(*v));

	v->name = hfm_strdup(name);
	snprintf(v->commit, sizeof(v->commit), "%s", commit);
}

struct hfm_bundle_commit *hfm_bundle_add_commit(struct hfm_bundle_repo *r, const char *sha)
{
	struct hfm_bundle_commit *c = hfm_array_push(&r->commits, &r->ncommits, sizeof(*c));

	snprintf(c->sha, sizeof(c->sha), "%s", sha);
	return c;
}

void hfm_bundle_drop_commit(struct hfm_bundle_repo *r, size_t i)
{
	struct hfm_bundle_commit *c = &r->commits[i];

	for (size_t k = 0; k < c->nfiles; k++)
		free(c->files[k].path);
	free(c->files);
	memmove(c, c + 1, (r->ncommits - i - 1) * sizeof(*c));
	r->ncommits--;
}

void hfm_bundle_add_file(struct hfm_bundle_commit *c, const char *path, const char *oid,
			 uint64_t size, const char *lfs, int absent)
{
	struct hfm_bundle_file *f;

	if (c->nfiles == c->capfiles) {
		c->capfiles = c->capfiles ? c->capfiles * 2 : 16;
		c->files = hfm_realloc(c->files, c->capfiles * sizeof(*c->files));
	}
	f = &c->files[c->nfiles++];
	memset(f, 0, sizeof(*f));
	f->path = hfm_strdup(path);
	snprintf(f->oid, sizeof(f->oid), "%s", oid);
	f->size = size;
	snprintf(f->lfs, sizeof(f->lfs), "%s", lfs ? lfs : "");
	f->absent = absent;
}

void hfm_bundle_add_grant(struct hfm_bundle_repo *r, const char *user, const char *via,
			  const char *time, int revoked)
{
	struct hfm_bundle_grant *g = hfm_array_push(&r->grants, &r->ngrants, sizeof(*g));

	g->user = hfm_strdup(user);
	g->via = hfm_strdup(via);
	snprintf(g->time, sizeof(g->time), "%s", time ? time : "");
	g->revoked = revoked;
}

void hfm_bundle_item_name(struct hfm_buf *out, const struct hfm_bundle_manifest *m,
			  enum hfm_bundle_item_kind kind, long repo, const char *relpath,
			  const char *digest)
{
	const struct hfm_bundle_repo *r = repo >= 0 ? &m->repos[repo] : NULL;

	switch (kind) {
	case HFM_BUNDLE_OBJECT:
		hfm_buf_printf(out, "objects/%s", digest);
		break;
	case HFM_BUNDLE_META:
		hfm_buf_printf(out, "meta/%s/%s/%s", hfm_repo_type_plural(r->id.type), r->id.name,
			       relpath);
		break;
	case HFM_BUNDLE_PACK:
		hfm_buf_printf(out, "packs/%s/%s.pack", hfm_repo_type_plural(r->id.type),
			       r->id.name);
		break;
	}
}

struct hfm_bundle_item *hfm_bundle_add_item(struct hfm_bundle_manifest *m,
					    enum hfm_bundle_item_kind kind, long repo,
					    const char *relpath, uint64_t size,
					    const char *digest)
{
	struct hfm_buf name = HFM_BUF_INIT(3 * HFM_PATH_MAX);
	struct hfm_bundle_item *it;

	hfm_bundle_item_name(&name, m, kind, repo, relpath, digest);
	it = hfm_array_push(&m->items, &m->nitems, sizeof(*it));
	it->kind = kind;
	it->name = hfm_buf_detach(&name);
	it->size = size;
	snprintf(it->digest, sizeof(it->digest), "%s", digest);
	it->repo = kind == HFM_BUNDLE_OBJECT ? -1 : repo;
	it->relpath = relpath ? hfm_strdup(relpath) : NULL;
	return it;
}

void hfm_bundle_add_volume(struct hfm_bundle_manifest *m, const char *name, uint64_t size,
			   const char *sha256, const char *framing)
{
	struct hfm_bundle_volume *v = hfm_array_push(&m->volumes, &m->nvolumes, sizeof(*v));

	v->name = hfm_strdup(name);
	v->size = size;
	snprintf(v->sha256, sizeof(v->sha256), "%s", sha256);
	snprintf(v->framing, sizeof(v->framing), "%s", framing ? framing : "");
}

const char *hfm_bundle_file_object(const struct hfm_bundle_repo *r,
				   const struct hfm_bundle_file *f)
{
	if (f->absent || f->size == 0)
		return NULL;
	if (f->lfs[0])
		return f->lfs;
	return r->kind == HFM_BUNDLE_GIT ? NULL : f->oid;
}

/* ---- fields --------------------------------------------------------------------- */

void hfm_bundle_put_field(struct hfm_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!*s) {
		hfm_buf_puts(out, "%");      /* never an empty field: "%" alone is "" */
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '%') {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
			hfm_buf_put(out, esc, 3);
		} else {
			hfm_buf_putc(out, (char)c);
		}
	}
}

char *hfm_bundle_field_decode(const char *s, size_t n)
{
	char *out;
	long len;

	if (n == 1 && s[0] == '%')
		return hfm_strdup("");
	out = hfm_malloc(n + 1);
	len = hfm_pct_decode(out, s, n, 0);
	if (len < 0) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

/* ---- printing ------------------------------------------------------------------ */

int hfm_bundle_manifest_format(struct hfm_buf *out, const struct hfm_bundle_manifest *m)
{
	size_t i, j, k;

	hfm_buf_printf(out, "hfmirror-bundle %d\nid %s\ncreated %s\ntool ", m->version, m->id,
		       m->created);
	hfm_bundle_put_field(out, m->tool);
	hfm_buf_puts(out, "\nsource ");
	hfm_bundle_put_field(out, m->source);
	hfm_buf_putc(out, '\n');
	if (m->since[0])
		hfm_buf_printf(out, "since %s\n", m->since);
	for (i = 0; i < m->nvolumes; i++) {
		hfm_buf_puts(out, "volume ");
		hfm_bundle_put_field(out, m->volumes[i].name);
		hfm_buf_printf(out, " %llu %s", (unsigned long long)m->volumes[i].size,
			       m->volumes[i].sha256);
		if (m->version >= 2)
			hfm_buf_printf(out, " %s", m->volumes[i].framing);
		hfm_buf_putc(out, '\n');
	}
	for (i = 0; i < m->nitems; i++)
		if (m->items[i].kind == HFM_BUNDLE_OBJECT)
			hfm_buf_printf(out, "object %s %llu\n", m->items[i].digest,
				       (unsigned long long)m->items[i].size);
	for (i = 0; i < m->nrepos; i++) {
		const struct hfm_bundle_repo *r = &m->repos[i];

		hfm_buf_printf(out, "repo %s %s %s\n", hfm_repo_type_name(r->id.type), r->id.name,
			       r->kind == HFM_BUNDLE_GIT ? "git" : "cache");
		for (j = 0; j < m->nitems; j++) {
			const struct hfm_bundle_item *it = &m->items[j];

			if (it->repo != (long)i)
				continue;
			if (it->kind == HFM_BUNDLE_META) {
				hfm_buf_puts(out, "meta ");
				hfm_bundle_put_field(out, it->relpath);
				hfm_buf_printf(out, " %llu %s\n", (unsigned long long)it->size,
					       it->digest);
			} else {
				hfm_buf_printf(out, "pack %llu %s\n", (unsigned long long)it->size,
					       it->digest);
			}
		}
		for (j = 0; j < r->ngrants; j++) {
			const struct hfm_bundle_grant *g = &r->grants[j];

			hfm_buf_puts(out, g->revoked ? "revoke " : "grant ");
			hfm_bundle_put_field(out, g->user);
			hfm_buf_putc(out, ' ');
			hfm_bundle_put_field(out, g->via);
			hfm_buf_printf(out, " %s\n", g->time[0] ? g->time : "-");
		}
		if (r->head) {
			hfm_buf_puts(out, "head ");
			hfm_bundle_put_field(out, r->head);
			hfm_buf_putc(out, '\n');
		}
		for (j = 0; j < r->nshallow; j++)
			hfm_buf_printf(out, "shallow %s\n", r->shallow[j]);
		for (j = 0; j < r->nrevs; j++) {
			hfm_buf_puts(out, "rev ");
			hfm_bundle_put_field(out, r->revs[j].name);
			hfm_buf_printf(out, " %s\n", r->revs[j].commit);
		}
		for (j = 0; j < r->ncommits; j++) {
			const struct hfm_bundle_commit *c = &r->commits[j];

			hfm_buf_printf(out, "commit %s\n", c->sha);
			for (k = 0; k < c->nfiles; k++) {
				const struct hfm_bundle_file *f = &c->files[k];

				hfm_buf_puts(out, "file ");
				hfm_bundle_put_field(out, f->path);
				hfm_buf_printf(out, " %s %llu %s%s\n", f->oid,
					       (unsigned long long)f->size,
					       f->lfs[0] ? f->lfs : "-", f->absent ? " absent" : "");
			}
		}
	}
	hfm_buf_puts(out, "end\n");
	return out->err;
}

/* ---- parsing ---------------------------------------------------------------------- */

#define MAX_FIELDS 8

struct line {
	size_t no;
	const char *f[MAX_FIELDS];
	size_t len[MAX_FIELDS];
	size_t n;
};

struct parse {
	struct hfm_bundle_manifest *m;
	struct hfm_buf *err;
	struct line l;
	struct hfm_bundle_repo *repo;       /* the current repo record */
	struct hfm_bundle_commit *commit;   /* the current commit record */
};

static int fail(struct parse *p, const char *fmt, ...) HFM_PRINTF(2, 3);

static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	hfm_buf_reset(p->err);
	hfm_buf_printf(p->err, "manifest:%zu: ", p->l.no);
	va_start(ap, fmt);
	hfm_buf_vprintf(p->err, fmt, ap);
	va_end(ap);
	return HFM_EINVAL;
}

static int field_is(const struct line *l, size_t i, const char *s)
{
	return l->len[i] == strlen(s) && !memcmp(l->f[i], s, l->len[i]);
}

/* n lowercase hex digits (s need not end there). */
static int lhex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Field i as lowercase hex of exactly `n` digits into out[n + 1]. */
static int hex_field(struct parse *p, size_t i, char *out, size_t n, const char *what)
{
	if (p->l.len[i] != n || !lhex(p->l.f[i], n))
		return fail(p, "%s: not %zu lowercase hex digits", what, n);
	memcpy(out, p->l.f[i], n);
	out[n] = '\0';
	return 0;
}

static int u64_field(struct parse *p, size_t i, uint64_t *out, const char *what)
{
	uint64_t v = 0;
	size_t k;

	if (!p->l.len[i] || p->l.len[i] > 20)
		return fail(p, "%s: not a number", what);
	for (k = 0; k < p->l.len[i]; k++) {
		unsigned d = (unsigned)(p->l.f[i][k] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return fail(p, "%s: not a number", what);
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* A decoded text field; NULL after fail() for a bad escape. */
static char *text_field(struct parse *p, size_t i, const char *what)
{
	char *s = hfm_bundle_field_decode(p->l.f[i], p->l.len[i]);

	if (!s)
		fail(p, "%s: bad percent-encoding", what);
	return s;
}

static int want_fields(struct parse *p, size_t min, size_t max)
{
	if (p->l.n < min || p->l.n > max)
		return fail(p, "%.*s: %zu fields, expected %zu", (int)p->l.len[0], p->l.f[0],
			    p->l.n - 1, min - 1);
	return 0;
}

static int need_repo(struct parse *p, int git_only)
{
	if (!p->repo)
		return fail(p, "%.*s before any repo record", (int)p->l.len[0], p->l.f[0]);
	if (git_only && p->repo->kind != HFM_BUNDLE_GIT)
		return fail(p, "%.*s in a cache repo (git repos only)", (int)p->l.len[0], p->l.f[0]);
	return 0;
}

/* "refs.json", "access", or "commits/<40 hex>/<valid path>". */
static int relpath_ok(const char *rel, char commit[HFM_SHA1_HEX + 1])
{
	commit[0] = '\0';
	if (!strcmp(rel, "refs.json") || !strcmp(rel, "access"))
		return 1;
	if (strncmp(rel, "commits/", 8) || strlen(rel) < 8 + HFM_SHA1_HEX + 2 ||
	    !lhex(rel + 8, HFM_SHA1_HEX) || rel[8 + HFM_SHA1_HEX] != '/' ||
	    !hfm_path_valid(rel))
		return 0;
	memcpy(commit, rel + 8, HFM_SHA1_HEX);
	commit[HFM_SHA1_HEX] = '\0';
	return 1;
}

static int parse_repo(struct parse *p)
{
	struct hfm_repo_id id;
	enum hfm_repo_type t;
	char *name = NULL, *slash;
	int rc = 0;

	if ((rc = want_fields(p, 4, 4)))
		return rc;
	if (field_is(&p->l, 1, "model"))
		t = HFM_MODEL;
	else if (field_is(&p->l, 1, "dataset"))
		t = HFM_DATASET;
	else if (field_is(&p->l, 1, "space"))
		t = HFM_SPACE;
	else
		return fail(p, "repo: the type is not model, dataset or space");
	if (!(name = text_field(p, 2, "repo name")))
		return HFM_EINVAL;
	slash = strchr(name, '/');
	if (slash)
		*slash = '\0';
	rc = slash ? hfm_repo_id_set(&id, t, name, slash + 1) : hfm_repo_id_set(&id, t, NULL, name);
	if (slash)
		*slash = '/';
	if (rc) {
		rc = fail(p, "repo: %s is not a repo name", name);
		goto out;
	}
	if (!field_is(&p->l, 3, "cache") && !field_is(&p->l, 3, "git")) {
		rc = fail(p, "repo: kind must be cache or git");
		goto out;
	}
	for (size_t i = 0; i < p->m->nrepos; i++)
		if (p->m->repos[i].id.type == id.type && !strcmp(p->m->repos[i].id.name, id.name) &&
		    (p->m->repos[i].kind == HFM_BUNDLE_GIT) == field_is(&p->l, 3, "git")) {
			rc = fail(p, "repo: %s listed twice", name);
			goto out;
		}
	p->repo = hfm_bundle_add_repo(p->m, &id, field_is(&p->l, 3, "git") ? HFM_BUNDLE_GIT
									   : HFM_BUNDLE_CACHE);
	p->commit = NULL;
out:
	free(name);
	return rc;
}

static int parse_file(struct parse *p)
{
	char oid[HFM_SHA1_HEX + 1], lfs[HFM_SHA256_HEX + 1] = "";
	uint64_t size;
	char *path;
	int rc, absent = 0;

	if ((rc = want_fields(p, 5, 6)))
		return rc;
	if (!p->commit)
		return fail(p, "file before any commit record");
	if ((rc = hex_field(p, 2, oid, HFM_SHA1_HEX, "file oid")) ||
	    (rc = u64_field(p, 3, &size, "file size")))
		return rc;
	if (!field_is(&p->l, 4, "-") && (rc = hex_field(p, 4, lfs, HFM_SHA256_HEX, "file lfs oid")))
		return rc;
	if (p->l.n == 6) {
		if (!field_is(&p->l, 5, "absent"))
			return fail(p, "file: the last field may only be \"absent\"");
		absent = 1;
	}
	if (!(path = text_field(p, 1, "file path")))
		return HFM_EINVAL;
	if (!*path || !hfm_path_valid(path)) {
		rc = fail(p, "file: %s is not a valid repo path", path);
		free(path);
		return rc;
	}
	hfm_bundle_add_file(p->commit, path, oid, size, lfs, absent);
	free(path);
	return 0;
}

/* grant|revoke <user> <via> <time>: of the current (cache) repo. */
static int parse_grant(struct parse *p)
{
	const char *what = field_is(&p->l, 0, "grant") ? "grant" : "revoke";
	char *user = NULL, *via = NULL, time[HFM_ISO_DATE_LEN + 1] = "";
	int rc;

	if ((rc = want_fields(p, 4, 4)) || (rc = need_repo(p, 0)))
		return rc;
	if (p->repo->kind != HFM_BUNDLE_CACHE)
		return fail(p, "%s in a git repo (cache repos only)", what);
	if (!(user = text_field(p, 1, "grant user")) || !(via = text_field(p, 2, "grant via"))) {
		rc = HFM_EINVAL;
		goto out;
	}
	if (!hfm_user_name_ok(user)) {
		rc = fail(p, "%s: %s is not a user name", what, user);
		goto out;
	}
	if (!hfm_user_name_ok(via)) {
		rc = fail(p, "%s: %s is not a way of granting (admin, upstream)", what, via);
		goto out;
	}
	if (!field_is(&p->l, 3, "-")) {
		if (!hfm_iso_date_valid(p->l.f[3], p->l.len[3])) {
			rc = fail(p, "%s: the time is not YYYY-MM-DDTHH:MM:SS.mmmZ or -", what);
			goto out;
		}
		memcpy(time, p->l.f[3], HFM_ISO_DATE_LEN);
	}
	for (size_t i = 0; i < p->repo->ngrants; i++)
		if (!strcmp(p->repo->grants[i].user, user)) {
			rc = fail(p, "%s: %s has two records for %s", what, user, p->repo->id.name);
			goto out;
		}
	hfm_bundle_add_grant(p->repo, user, via, time, what[0] == 'r');
out:
	free(user);
	free(via);
	return rc;
}

static int parse_line(struct parse *p)
{
	struct hfm_bundle_manifest *m = p->m;
	struct line *l = &p->l;
	char sha[HFM_SHA256_HEX + 1], framing[HFM_SHA256_HEX + 1] = "", *s;
	uint64_t size;
	int rc;

	if (field_is(l, 0, "object")) {
		if ((rc = want_fields(p, 3, 3)))
			return rc;
		if (l->len[1] != HFM_SHA1_HEX && l->len[1] != HFM_SHA256_HEX)
			return fail(p, "object: an oid is 40 or 64 lowercase hex digits");
		if ((rc = hex_field(p, 1, sha, l->len[1], "object oid")) ||
		    (rc = u64_field(p, 2, &size, "object size")))
			return rc;
		hfm_bundle_add_item(m, HFM_BUNDLE_OBJECT, -1, NULL, size, sha);
	} else if (field_is(l, 0, "repo")) {
		return parse_repo(p);
	} else if (field_is(l, 0, "meta")) {
		char commit[HFM_SHA1_HEX + 1];

		if ((rc = want_fields(p, 4, 4)) || (rc = need_repo(p, 0)))
			return rc;
		if (p->repo->kind != HFM_BUNDLE_CACHE)
			return fail(p, "meta in a git repo (cache repos only)");
		if ((rc = u64_field(p, 2, &size, "meta size")) ||
		    (rc = hex_field(p, 3, sha, HFM_SHA256_HEX, "meta sha256")))
			return rc;
		if (!(s = text_field(p, 1, "meta path")))
			return HFM_EINVAL;
		if (!relpath_ok(s, commit)) {
			rc = fail(p, "meta: %s is not refs.json, access or commits/<sha>/<path>", s);
			free(s);
			return rc;
		}
		hfm_bundle_add_item(m, HFM_BUNDLE_META, (long)(p->repo - m->repos), s, size, sha);
		free(s);
	} else if (field_is(l, 0, "pack")) {
		if ((rc = want_fields(p, 3, 3)) || (rc = need_repo(p, 1)) ||
		    (rc = u64_field(p, 1, &size, "pack size")) ||
		    (rc = hex_field(p, 2, sha, HFM_SHA256_HEX, "pack sha256")))
			return rc;
		for (size_t i = 0; i < m->nitems; i++)
			if (m->items[i].kind == HFM_BUNDLE_PACK &&
			    m->items[i].repo == (long)(p->repo - m->repos))
				return fail(p, "pack: a second pack for %s", p->repo->id.name);
		hfm_bundle_add_item(m, HFM_BUNDLE_PACK, (long)(p->repo - m->repos), NULL, size, sha);
	} else if (field_is(l, 0, "head")) {
		if ((rc = want_fields(p, 2, 2)) || (rc = need_repo(p, 1)))
			return rc;
		if (!(s = text_field(p, 1, "head")))
			return HFM_EINVAL;
		if (!hfm_rev_valid(s) || strchr(s, ' ')) {
			rc = fail(p, "head: %s is not a branch name", s);
			free(s);
			return rc;
		}
		free(p->repo->head);
		p->repo->head = s;
	} else if (field_is(l, 0, "shallow")) {
		if ((rc = want_fields(p, 2, 2)) || (rc = need_repo(p, 1)) ||
		    (rc = hex_field(p, 1, sha, HFM_SHA1_HEX, "shallow")))
			return rc;
		char(*v)[HFM_SHA1_HEX + 1] = hfm_array_push(&p->repo->shallow, &p->repo->nshallow,
						  sizeof(*v));
		memcpy(*v, sha, HFM_SHA1_HEX + 1);
	} else if (field_is(l, 0, "rev")) {
		if ((rc = want_fields(p, 3, 3)) || (rc = need_repo(p, 0)) ||
		    (rc = hex_field(p, 2, sha, HFM_SHA1_HEX, "rev commit")))
			return rc;
		if (!(s = text_field(p, 1, "rev")))
			return HFM_EINVAL;
		if (!hfm_rev_valid(s) ||
		    (p->repo->kind == HFM_BUNDLE_GIT && strncmp(s, "refs/", 5))) {
			rc = fail(p, "rev: %s is not a %s", s,
				  p->repo->kind == HFM_BUNDLE_GIT ? "full ref name" : "revision");
			free(s);
			return rc;
		}
		for (size_t i = 0; i < p->repo->nrevs; i++)
			if (!strcmp(p->repo->revs[i].name, s)) {
				rc = fail(p, "rev: %s listed twice", s);
				free(s);
				return rc;
			}
		hfm_bundle_add_rev(p->repo, s, sha);
		free(s);
	} else if (field_is(l, 0, "commit")) {
		if ((rc = want_fields(p, 2, 2)) || (rc = need_repo(p, 0)) ||
		    (rc = hex_field(p, 1, sha, HFM_SHA1_HEX, "commit")))
			return rc;
		for (size_t i = 0; i < p->repo->ncommits; i++)
			if (!strcmp(p->repo->commits[i].sha, sha))
				return fail(p, "commit: %s listed twice", sha);
		p->commit = hfm_bundle_add_commit(p->repo, sha);
	} else if (field_is(l, 0, "file")) {
		return parse_file(p);
	} else if (field_is(l, 0, "grant") || field_is(l, 0, "revoke")) {
		return parse_grant(p);
	} else if (field_is(l, 0, "volume")) {
		int n = m->version >= 2 ? 5 : 4;

		if ((rc = want_fields(p, n, n)) || (rc = u64_field(p, 2, &size, "volume size")) ||
		    (rc = hex_field(p, 3, sha, HFM_SHA256_HEX, "volume sha256")) ||
		    (n == 5 && (rc = hex_field(p, 4, framing, HFM_SHA256_HEX, "volume framing sha256"))))
			return rc;
		if (!(s = text_field(p, 1, "volume name")))
			return HFM_EINVAL;
		if (!*s || strchr(s, '/') || s[0] == '.' || !hfm_path_valid(s)) {
			rc = fail(p, "volume: %s is not a file name", s);
			free(s);
			return rc;
		}
		for (size_t i = 0; i < m->nvolumes; i++)
			if (!strcmp(m->volumes[i].name, s)) {
				rc = fail(p, "volume: %s listed twice", s);
				free(s);
				return rc;
			}
		hfm_bundle_add_volume(m, s, size, sha, framing);
		free(s);
	} else if (field_is(l, 0, "since")) {
		if ((rc = want_fields(p, 2, 2)))
			return rc;
		return hex_field(p, 1, m->since, HFM_BUNDLE_ID_HEX, "since");
	} else if (field_is(l, 0, "id")) {
		if ((rc = want_fields(p, 2, 2)))
			return rc;
		return hex_field(p, 1, m->id, HFM_BUNDLE_ID_HEX, "id");
	} else if (field_is(l, 0, "created")) {
		if ((rc = want_fields(p, 2, 2)))
			return rc;
		if (l->len[1] != HFM_ISO_DATE_LEN)
			return fail(p, "created: not YYYY-MM-DDTHH:MM:SS.mmmZ");
		memcpy(m->created, l->f[1], l->len[1]);
		m->created[l->len[1]] = '\0';
	} else if (field_is(l, 0, "tool") || field_is(l, 0, "source")) {
		if ((rc = want_fields(p, 2, 2)) || !(s = text_field(p, 1, "text")))
			return rc ? rc : HFM_EINVAL;
		char **dst = field_is(l, 0, "tool") ? &m->tool : &m->source;
		free(*dst);
		*dst = s;
	} else if (l->len[0] > 2 && !memcmp(l->f[0], "x-", 2)) {
		return 0;                 /* an extension: ours to ignore */
	} else {
		return fail(p, "unknown record \"%.*s\" (a newer hfmirror wrote this bundle: "
			    "upgrade hfmirror-import)", (int)HFM_MIN(l->len[0], 40), l->f[0]);
	}
	return 0;
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp((*(struct hfm_bundle_item *const *)a)->name,
		      (*(struct hfm_bundle_item *const *)b)->name);
}

/* Checks across records: meta files of listed commits, revs of listed commits, unique names. */
static int parse_finish(struct parse *p)
{
	struct hfm_bundle_manifest *m = p->m;
	struct hfm_bundle_item **v;
	size_t i, j;
	int rc = 0;

	for (i = 0; i < m->nitems; i++) {
		struct hfm_bundle_item *it = &m->items[i];
		char commit[HFM_SHA1_HEX + 1];

		if (it->kind != HFM_BUNDLE_META)
			continue;
		relpath_ok(it->relpath, commit);
		if (!commit[0])
			continue;
		const struct hfm_bundle_repo *r = &m->repos[it->repo];
		for (j = 0; j < r->ncommits && strcmp(r->commits[j].sha, commit); j++)
			;
		if (j == r->ncommits)
			return fail(p, "meta %s: commit %s of %s has no commit record", it->relpath,
				    commit, r->id.name);
	}
	v = hfm_calloc(m->nitems + 1, sizeof(*v));
	for (i = 0; i < m->nitems; i++)
		v[i] = &m->items[i];
	qsort(v, m->nitems, sizeof(*v), item_cmp);
	for (i = 1; i < m->nitems && !rc; i++)
		if (!strcmp(v[i - 1]->name, v[i]->name))
			rc = fail(p, "%s is listed twice", v[i]->name);
	free(v);
	return rc;
}

int hfm_bundle_manifest_parse(struct hfm_bundle_manifest **out, const char *text, size_t n,
			      struct hfm_buf *err)
{
	struct parse p = { .err = err };
	const char *s = text, *e = text + n;
	int rc = 0, ended = 0;

	*out = NULL;
	p.m = hfm_calloc(1, sizeof(*p.m));
	p.m->tool = hfm_strdup("");
	p.m->source = hfm_strdup("");
	if (n > HFM_BUNDLE_MANIFEST_MAX) {
		rc = fail(&p, "larger than %zu bytes", HFM_BUNDLE_MANIFEST_MAX);
		goto out;
	}
	while (s < e && !rc) {
		const char *nl = memchr(s, '\n', (size_t)(e - s)), *q;
		struct line *l = &p.l;

		l->no++;
		if (!nl) {
			rc = fail(&p, "the last line has no newline: the manifest is cut off");
			break;
		}
		if (ended) {
			rc = fail(&p, "text after the end record");
			break;
		}
		l->n = 0;
		for (q = s; q <= nl; q++) {
			if (q < nl && *q != ' ' && (unsigned char)*q < 0x20) {
				rc = fail(&p, "a control byte in the line");
				break;
			}
			if (q == nl || *q == ' ') {
				if (l->n == MAX_FIELDS) {
					rc = fail(&p, "too many fields");
					break;
				}
				l->f[l->n] = s;
				l->len[l->n] = (size_t)(q - s);
				if (!l->len[l->n]) {
					rc = fail(&p, "an empty field (two spaces, or a space at an end)");
					break;
				}
				l->n++;
				s = q + 1;
			}
		}
		if (rc)
			break;
		s = nl + 1;
		if (l->no == 1) {
			if (l->n != 2 || !field_is(l, 0, "hfmirror-bundle"))
				rc = fail(&p, "not an hfmirror bundle manifest");
			else if (!field_is(l, 1, "1") && !field_is(l, 1, "2"))
				rc = fail(&p, "format version %.*s; this hfmirror-import reads "
					  "versions 1 to %d (upgrade it)", (int)HFM_MIN(l->len[1], 20),
					  l->f[1], HFM_BUNDLE_VERSION);
			p.m->version = field_is(l, 1, "1") ? 1 : HFM_BUNDLE_VERSION;
			continue;
		}
		if (field_is(l, 0, "end")) {
			if (l->n != 1)
				rc = fail(&p, "end: no fields expected");
			ended = 1;
			continue;
		}
		rc = parse_line(&p);
	}
	if (!rc && p.l.no == 0)
		rc = fail(&p, "empty");
	if (!rc && !ended)
		rc = fail(&p, "no end record: the manifest is cut off");
	if (!rc && !p.m->id[0])
		rc = fail(&p, "no id record");
	if (!rc && !p.m->created[0])
		rc = fail(&p, "no created record");
	if (!rc)
		rc = parse_finish(&p);
out:
	if (rc) {
		hfm_bundle_manifest_free(p.m);
		return rc;
	}
	*out = p.m;
	return 0;
}

/* ---- signatures ---------------------------------------------------------------------- */

static int openssl_error(int code, const char *what)
{
	return hfm_error_set(code, "%s (OpenSSL says nothing more)", what);
}

static int read_key(EVP_PKEY **out, const char *path, int private)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (!f)
		return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (!k && !private) {
		/* a private key file also holds the public key */
		rewind(f);
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	}
	fclose(f);
	if (!k)
		return hfm_error_set(HFM_EINVAL, "%s: not a PEM %s key", path,
				     private ? "private" : "public");
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return hfm_error_set(HFM_EINVAL, "%s: not an Ed25519 key (make one with openssl "
				     "genpkey -algorithm ed25519)", path);
	}
	*out = k;
	return 0;
}

static int raw_public(char hex[65], EVP_PKEY *k)
{
	unsigned char raw[32];
	size_t n = sizeof(raw);

	if (EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 || n != sizeof(raw))
		return openssl_error(HFM_EINVAL, "cannot read the Ed25519 public key");
	hfm_hex(hex, raw, n);
	return 0;
}

int hfm_bundle_sign(struct hfm_buf *out, const char *key_pem, const void *msg, size_t n)
{
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned char sig[64];
	size_t siglen = sizeof(sig);
	char pub[65], sighex[129];
	int rc;

	if ((rc = read_key(&k, key_pem, 1)) || (rc = raw_public(pub, k)))
		goto out;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, msg, n) != 1 || siglen != sizeof(sig)) {
		rc = openssl_error(HFM_EINVAL, "Ed25519 signing failed");
		goto out;
	}
	hfm_hex(sighex, sig, siglen);
	hfm_buf_printf(out, "hfmirror-bundle-signature 1\nkey ed25519 %s\nsig %s\n", pub, sighex);
	rc = out->err;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

/* The key and signature of a signature file; 0 or HFM_EINVAL. */
static int sig_parse(char pub[65], unsigned char sig[64], const char *s, size_t n)
{
	char text[512], sighex[129];

	if (!s || n >= sizeof(text))
		return HFM_EINVAL;
	memcpy(text, s, n);
	text[n] = '\0';
	if (sscanf(text, "hfmirror-bundle-signature 1\nkey ed25519 %64[0-9a-f]\nsig %128[0-9a-f]",
		   pub, sighex) != 2 || strlen(pub) != 64 || strlen(sighex) != 128 ||
	    hfm_unhex(sig, sighex, 64))
		return HFM_EINVAL;
	return 0;
}

void hfm_bundle_sig_key(char who[17], const char *sig, size_t siglen)
{
	char pub[65];
	unsigned char raw[64];

	who[0] = '\0';
	if (sig_parse(pub, raw, sig, siglen) == 0)
		snprintf(who, 17, "%.16s", pub);
}

int hfm_bundle_verify(const char *sig, size_t siglen, const char *const *trusted, size_t ntrusted,
		      const void *msg, size_t n, char who[17])
{
	unsigned char raw[64];
	char pub[65], kpub[65];
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *ctx = NULL;
	size_t i;
	int rc;

	if (who)
		who[0] = '\0';
	if (!sig)
		return hfm_error_set(HFM_EDENIED, "the bundle is not signed, and --trust asks "
				     "for a signature");
	if (sig_parse(pub, raw, sig, siglen))
		return hfm_error_set(HFM_EDENIED, "manifest.sig is not an hfmirror signature file");
	if (who)
		snprintf(who, 17, "%.16s", pub);
	for (i = 0; i < ntrusted; i++) {
		if ((rc = read_key(&k, trusted[i], 0)) || (rc = raw_public(kpub, k))) {
			EVP_PKEY_free(k);
			return rc;
		}
		if (!strcmp(kpub, pub))
			break;
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (!k)
		return hfm_error_set(HFM_EDENIED, "the bundle is signed by key %.16s, which is "
				     "not a trusted key (--trust)", pub);
	ctx = EVP_MD_CTX_new();
	rc = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
	     EVP_DigestVerify(ctx, raw, sizeof(raw), msg, n) == 1 ? 0 :
	     hfm_error_set(HFM_EDENIED, "the manifest's signature does not verify with key "
			   "%.16s: the manifest was changed after it was signed", pub);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}
