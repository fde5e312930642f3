/*
 * route.h - map a raw request path to what it asks for.
 *
 * The path is split on '/' *before* percent-decoding, and each segment is
 * decoded on its own, so `refs%2Fpr%2F1` stays one revision segment while a
 * raw `refs/pr/1` is recognised by its shape (refs/{pr,convert,heads,tags}/x).
 * A leading run of slashes collapses to one (old clients send `//org/repo`).
 * Olah's bug of matching routes on the decoded path is what this avoids.
 */
#ifndef HFM_ROUTE_H
#define HFM_ROUTE_H

#include "path.h"

enum hfm_route_kind {
	HFM_R_NOTFOUND = 0,   /* no such route: plain 404 */
	HFM_R_UI_INDEX,       /* GET / */
	HFM_R_UI_REPO,        /* /{repo} and /{repo}/tree/{rev}[/{path}] */
	HFM_R_UI_STATUS,      /* /-/status */
	HFM_R_UI_CSS,         /* /-/ui.css, the web UI's stylesheet */
	HFM_R_RESOLVE,        /* /{repo}/resolve/{rev}/{path} */
	HFM_R_RAW,            /* /{repo}/raw/{rev}/{path} (and /blob/) */
	HFM_R_API_LIST,       /* /api/{models,datasets,spaces} */
	HFM_R_API_INFO,       /* /api/{T}/{repo} */
	HFM_R_API_REVISION,   /* /api/{T}/{repo}/revision/{rev} */
	HFM_R_API_TREE,       /* /api/{T}/{repo}/tree/{rev}[/{path}] */
	HFM_R_API_PATHS_INFO, /* /api/{T}/{repo}/paths-info/{rev} */
	HFM_R_API_REFS,       /* /api/{T}/{repo}/refs */
	HFM_R_API_COMMITS,    /* /api/{T}/{repo}/commits/{rev} */
	HFM_R_API_AUTH_CHECK, /* /api/{T}/{repo}/auth-check */
	HFM_R_API_WHOAMI,     /* /api/whoami-v2 */
	HFM_R_HEALTH,         /* /healthz */
	HFM_R_READY,          /* /readyz */
	HFM_R_METRICS,        /* /metrics */
	/* git smart HTTP and LFS (h_git.c): {repo} is [datasets/|spaces/]name[.git] */
	HFM_R_GIT_INFO_REFS,     /* GET /{repo}/info/refs?service=git-upload-pack */
	HFM_R_GIT_UPLOAD_PACK,   /* POST /{repo}/git-upload-pack */
	HFM_R_GIT_RECEIVE_PACK,  /* /{repo}/git-receive-pack: refused */
	HFM_R_GIT_LFS_BATCH,     /* POST /{repo}/info/lfs/objects/batch */
	HFM_R_GIT_LFS_OBJECT,    /* GET /{repo}/info/lfs/objects/{oid}/{size}: path = "oid/size" */
};

static inline int hfm_route_is_git(enum hfm_route_kind k)
{
	return k >= HFM_R_GIT_INFO_REFS && k <= HFM_R_GIT_LFS_OBJECT;
}

struct hfm_route {
	enum hfm_route_kind kind;
	struct hfm_repo_id repo;   /* valid for repo routes */
	char *rev;                 /* decoded revision, NULL if the route has none */
	char *path;                /* decoded repo-relative path, "" for the root */
	int rev_given;             /* the URL named a revision (UI routes) */
};

/*
 * Parse `raw` (the request path without the query string).
 * Returns 0 with `out` filled (kind may be HFM_R_NOTFOUND), or HFM_EINVAL
 * when the path names a route but is malformed: bad escapes, invalid repo
 * name, traversal in the file path.  Always call hfm_route_dispose().
 */
int hfm_route_parse(struct hfm_route *out, const char *raw);
void hfm_route_dispose(struct hfm_route *r);

#endif
