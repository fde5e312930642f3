/*
 * handlers.h - the application: what runs for each request.
 *
 * The transport (http.h) calls hfm_app_handle(req, app) once a request is
 * complete (body read), and again from the top each time the request
 * waited: it returned HFM_EAGAIN after a source armed the request's waiter,
 * the connection was suspended, and the waiter fired.  The app parses the
 * route (route.h) from the raw path, and a handler asks the catalog
 * (catalog.h) and answers with one hfm_reply_*() call (reply.h) and returns
 * 0, or returns HFM_EAGAIN.  Any other return without a reply becomes the
 * Hub's error for that code (hfm_reply_error).  A request the transport
 * refuses (body too large, waited too long) is answered here too, in the
 * Hub's form.
 *
 * The handlers: h_files.c (resolve/raw), h_api.c (the JSON API), ui.c (the
 * web page), h_whoami.c (who the token is), h_git.c (git clients);
 * handlers.c identifies the caller (auth.h), dispatches and has the small
 * ones (OPTIONS, /healthz, /metrics).  They reach sources only through the
 * catalog.
 */
#ifndef HFM_HANDLERS_H
#define HFM_HANDLERS_H

#include "audit.h"
#include "auth.h"
#include "catalog.h"
#include "http.h"
#include "reply.h"
#include "route.h"

struct hfm_gitserve;

struct hfm_app {
	const struct hfm_catalog *catalog;   /* what is served; borrowed */
	const char *mode_label;              /* "model-bin", "mirror", ...: /healthz, the web page */
	struct hfm_auth *auth;               /* local identities; NULL = none (all anonymous) */
	struct hfm_audit *audit;             /* the download audit log; NULL = off */
	struct hfm_gitserve *git;            /* git clients' state (gitserve.h); NULL: none */
};

/* The transport's handle callback (hfm_server_opts): `app` is a struct hfm_app. */
int hfm_app_handle(struct hfm_req *r, void *app);

/* One run of the app over one request: what every handler gets. */
struct hfm_call {
	struct hfm_req *req;                 /* the transport's request */
	const struct hfm_app *app;
	struct hfm_route route;              /* parsed from the raw path */
	struct hfm_ctx ctx;                  /* for sources: the waiter, Authorization, who */
	/*
	 * Who asks (auth.h), parsed once before dispatch; ctx.who points here
	 * for a local user and is NULL for anonymous.  The catalog applies the
	 * rules by user and group through ctx, so a handler that asks the
	 * catalog with &c->ctx gets them for free; hfm_call_who() for others
	 * (the listing, the web page, git routes).
	 */
	struct hfm_ident who;
};

/* The caller's identity, or NULL for anonymous. */
static inline const struct hfm_ident *hfm_call_who(const struct hfm_call *c)
{
	return c->ctx.who;
}

/*
 * A file download is queued (GET, reply sent): have the audit log (if any)
 * record it with the bytes actually sent once it ends.  Strings are copied.
 * (h_audit.c)
 */
void hfm_call_audit(struct hfm_call *c, const struct hfm_repo_id *id, const char *rev,
		    const char *commit, const char *path);

int hfm_h_file(struct hfm_call *c);        /* /resolve/, /raw/ */
int hfm_h_api(struct hfm_call *c);         /* /api/... */
int hfm_h_ui(struct hfm_call *c);          /* /, /{repo}, /{repo}/tree/... */
int hfm_h_whoami(struct hfm_call *c);      /* /api/whoami-v2 (h_whoami.c) */
int hfm_h_git(struct hfm_call *c);         /* git smart HTTP and LFS (h_git.c) */

#endif
