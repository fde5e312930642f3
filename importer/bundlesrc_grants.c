/*
 * bundlesrc_grants.c - a bundle's grants of gated repos into the store
 * (bundlesrc.h, grants.h).
 *
 * Each cache repo of a manifest may carry grant and revoke records: the
 * outside's whole record set for that repo.  They are merged record by
 * record into STORE/meta/grants.jsonl under its lock (hfm_grants_merge:
 * the later record wins, a revoke wins a tie), so importing a bundle again,
 * or an older bundle after a newer one, changes nothing.  User names are
 * taken as they are, or mapped by --grant-users; a user the site has not
 * declared (tokens file) is still recorded: grants are by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/jsonl.h"
#include "bundlesrc.h"

static void users_free(struct hfm_imp_grant_users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].from);
		free(u->v[i].to);
	}
	free(u->v);
	free(u);
}

/* "OUTSIDE INSIDE" or "OUTSIDE -", blanks between. */
static int users_line(void *cls, const char *s, size_t n, const char *path, unsigned line,
		      struct hfm_buf *err)
{
	struct hfm_imp_grant_users *u = cls;
	char *text = hfm_strndup(s, n), *rest;
	struct hfm_imp_grant_user *m;
	const char *sep = " \t\r";
	char *f1 = strtok_r(text, sep, &rest), *f2 = strtok_r(NULL, sep, &rest);
	int rc = 0;

	if (!f1 || !f2 || strtok_r(NULL, sep, &rest)) {
		rc = hfm_jsonl_bad(err, path, line, "line", "\"OUTSIDE INSIDE\" (or \"OUTSIDE -\") "
				   "is expected");
		goto cleanup;
	}
	if (!hfm_user_name_ok(f1)) {
		rc = hfm_jsonl_bad(err, path, line, f1, "not a user name");
		goto cleanup;
	}
	if (strcmp(f2, "-") && !hfm_user_name_ok(f2)) {
		rc = hfm_jsonl_bad(err, path, line, f2, "not a user name (or - to drop the user)");
		goto cleanup;
	}
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i].from, f1)) {
			rc = hfm_jsonl_bad(err, path, line, f1, "mapped twice");
			goto cleanup;
		}
	m = hfm_array_push(&u->v, &u->n, sizeof(*m));
	m->from = hfm_strdup(f1);
	m->to = strcmp(f2, "-") ? hfm_strdup(f2) : NULL;
cleanup:
	free(text);
	return rc;
}

/* The inside name of an outside user, or NULL (dropped). */
static const char *inside_name(const struct hfm_imp_bundle *b, const char *user)
{
	if (!b->grant_users)
		return user;
	for (size_t i = 0; i < b->grant_users->n; i++)
		if (!strcmp(b->grant_users->v[i].from, user))
			return b->grant_users->v[i].to;
	return NULL;
}

/* err's lines as one message: no newline at its end */
static const char *msg(struct hfm_buf *err)
{
	while (err->len && err->ptr[err->len - 1] == '\n')
		err->ptr[--err->len] = '\0';
	return err->len ? hfm_buf_cstr(err) : hfm_error_last();
}

static char *grants_path(const struct hfm_imp_bundle *b)
{
	return hfm_asprintf("%s/%s", b->store->root, HFM_GRANTS_FILE);
}

int hfm_imp_bundle_grants_check(struct hfm_imp_bundle *b)
{
	const struct hfm_imp_opts *o = b->opts;
	struct hfm_buf err = HFM_BUF_INIT(16384);
	struct hfm_grant_list l;
	char *path = NULL;
	int rc = 0;

	for (size_t i = 0; i < b->m->nrepos; i++)
		b->grants_carried += b->m->repos[i].ngrants;
	if (o->grant_users) {               /* read even when this bundle has no grants */
		b->grant_users = hfm_calloc(1, sizeof(*b->grant_users));
		rc = hfm_jsonl_lines(o->grant_users, users_line, b->grant_users, &err);
		if (rc == HFM_ENOENT)
			rc = hfm_error_set(rc, "--grant-users %s: no such file", o->grant_users);
		else if (rc)
			rc = hfm_error_set(rc, "--grant-users %s", msg(&err));
		if (rc)
			goto cleanup;
	}
	if (!b->grants_carried || o->no_grants)
		goto cleanup;
	/* the merge reads it again under its lock: a file that does not read fails now */
	path = grants_path(b);
	if ((rc = hfm_grants_read(&l, path, &err)))
		rc = hfm_error_set(rc, "%s: its grants cannot be merged: %s (fix that file, or "
				   "import with --no-grants)", b->path, msg(&err));
	else
		hfm_grant_list_dispose(&l);
cleanup:
	free(path);
	hfm_buf_dispose(&err);
	return rc;
}

int hfm_imp_bundle_grants_publish(struct hfm_imp_bundle *b, size_t ri)
{
	const struct hfm_bundle_repo *r = &b->m->repos[ri];
	struct hfm_grant_list in = { 0 };
	struct hfm_grants_merged m;
	struct hfm_buf err = HFM_BUF_INIT(16384);
	char key[HFM_GRANTS_KEY_MAX], *path = NULL;
	int rc = 0;

	if (!r->ngrants || b->opts->no_grants)
		return 0;
	hfm_grants_key(key, sizeof(key), &r->id);
	for (size_t i = 0; i < r->ngrants; i++) {
		const struct hfm_bundle_grant *g = &r->grants[i];
		const char *user = inside_name(b, g->user);

		if (!user) {
			b->grants_dropped++;
			if (b->opts->display != HFM_SHOW_QUIET)
				hfm_progress_say(b->progress, "grants: %s %s of %s is not merged: %s "
						 "is not a user of --grant-users", g->revoked ?
						 "the revoke" : "the grant", g->user, key, g->user);
			continue;
		}
		hfm_grant_list_add(&in, user, key, g->via, g->time, g->revoked);
	}
	if (!in.n || (rc = hfm_store_mkdirs(b->store, "meta")))
		goto cleanup;
	path = grants_path(b);
	if ((rc = hfm_grants_merge(&m, path, &in, &err))) {
		rc = hfm_error_set(rc, "merging the grants of %s: %s", r->id.name, msg(&err));
		goto cleanup;
	}
	b->grants.granted += m.granted;
	b->grants.revoked += m.revoked;
	b->grants.changed += m.changed;
	b->grants.unchanged += m.unchanged;
cleanup:
	hfm_grant_list_dispose(&in);
	hfm_buf_dispose(&err);
	free(path);
	return rc;
}

void hfm_imp_bundle_grants_dispose(struct hfm_imp_bundle *b)
{
	users_free(b->grant_users);
	b->grant_users = NULL;
}
