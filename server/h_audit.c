/*
 * h_audit.c - the app's side of the audit log: a download's record, written
 * by the transport's end hook once the bytes sent are known (audit.h).
 */
#include <stdlib.h>

#include "hfm/grants.h"
#include "hfm/handlers.h"

struct audit_job {
	struct hfm_audit *audit;
	char *user, *repo, *rev, *commit, *path;
};

static void audit_end(void *cls, const struct hfm_req_end *e)
{
	struct audit_job *j = cls;
	struct hfm_audit_rec rec = {
		.user = j->user, .repo = j->repo, .revision = j->rev, .commit = j->commit,
		.path = j->path, .bytes = e->bytes, .complete = e->complete, .status = e->status,
		.client = e->remote,
	};

	if (e->status == 200 || e->status == 206)
		hfm_audit_write(j->audit, &rec);
	free(j->user);
	free(j->repo);
	free(j->rev);
	free(j->commit);
	free(j->path);
	free(j);
}

void hfm_call_audit(struct hfm_call *c, const struct hfm_repo_id *id, const char *rev,
		    const char *commit, const char *path)
{
	char key[HFM_REPO_NAME_MAX + 16];

	if (!c->app->audit || hfm_req_method(c->req) != HFM_M_GET || !hfm_req_replied(c->req))
		return;
	struct audit_job *j = hfm_calloc(1, sizeof(*j));
	hfm_grants_key(key, sizeof(key), id);
	j->audit = c->app->audit;
	j->user = c->ctx.who ? hfm_strdup(c->ctx.who->name) : NULL;
	j->repo = hfm_strdup(key);
	j->rev = hfm_strdup(rev ? rev : "");
	j->commit = hfm_strdup(commit ? commit : "");
	j->path = hfm_strdup(path ? path : "");
	hfm_req_on_end(c->req, audit_end, j);
}
