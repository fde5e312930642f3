/* handlers.c - the app's entry point and dispatch (see handlers.h). */
#include <stdio.h>

#include "hfm/gitserve.h"
#include "hfm/handlers.h"
#include "hfm/metrics.h"

/* ---- small handlers ------------------------------------------------------------ */

static int h_options(struct hfm_req *r)
{
	struct hfm_buf b = HFM_BUF_INIT(0);
	hfm_req_add_header(r, "Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
	hfm_req_add_header(r, "Access-Control-Allow-Headers",
			   "Authorization, Content-Type, Range, If-None-Match, If-Range");
	hfm_req_add_header(r, "Access-Control-Max-Age", "86400");
	hfm_req_add_header(r, "Allow", "GET, HEAD, POST, OPTIONS");
	return hfm_reply_text(r, 204, NULL, &b);
}

static int h_health(struct hfm_call *c)
{
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_buf_puts(&b, "{\"status\":\"ok\",\"mode\":");
	hfm_buf_json_str(&b, c->app->mode_label ? c->app->mode_label : "");
	hfm_buf_puts(&b, "}");
	return hfm_reply_json(c->req, 200, &b);
}

/*
 * For a load balancer's health check: 200 when every source can answer
 * (the cache: its store writable, its upstream not held down), 503 when one
 * cannot or the node is draining (SIGTERM), so that the balancer sends new
 * requests elsewhere while the ones in flight finish here.
 */
static int h_ready(struct hfm_call *c)
{
	const struct hfm_catalog *cat = c->app->catalog;
	struct hfm_buf b = HFM_BUF_INIT(4096);
	const char *why = NULL;

	if (hfm_server_draining(hfm_req_server(c->req)))
		why = "draining";
	for (size_t i = 0; !why && i < cat->nsources; i++) {
		const struct hfm_source *s = cat->sources[i];
		if (s->ops->ready && s->ops->ready(cat->sources[i]))
			why = hfm_error_last();
	}
	hfm_buf_puts(&b, why ? "{\"status\":\"unavailable\",\"reason\":" : "{\"status\":\"ready\"");
	if (why)
		hfm_buf_json_str(&b, why);
	hfm_buf_puts(&b, "}");
	hfm_req_add_header(c->req, "Cache-Control", "no-store");
	return hfm_reply_json(c->req, why ? 503 : 200, &b);
}

/* Every module's series (metrics.h); docs/metrics.md lists them. */
static int h_metrics(struct hfm_call *c)
{
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);
	hfm_metrics_expose(&b);
	return hfm_reply_text(c->req, 200, HFM_METRICS_CONTENT_TYPE, &b);
}

static int method_not_allowed(struct hfm_req *r)
{
	hfm_req_add_header(r, "Allow", "GET, HEAD, POST, OPTIONS");
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_buf_puts(&b, "{\"error\":\"Method not allowed\"}");
	return hfm_reply_json(r, 405, &b);
}

/* The metrics' `route` label of a route. */
static enum hfm_m_route route_class(enum hfm_route_kind k)
{
	switch (k) {
	case HFM_R_NOTFOUND:
		return HFM_MR_OTHER;
	case HFM_R_UI_INDEX:
	case HFM_R_UI_REPO:
	case HFM_R_UI_STATUS:
	case HFM_R_UI_CSS:
		return HFM_MR_UI;
	case HFM_R_RESOLVE:
	case HFM_R_RAW:
		return HFM_MR_FILE;
	case HFM_R_HEALTH:
	case HFM_R_READY:
		return HFM_MR_HEALTH;
	case HFM_R_METRICS:
		return HFM_MR_METRICS;
	default:
		return HFM_MR_API;
	}
}

static int dispatch(struct hfm_call *c)
{
	const struct hfm_route *rt = &c->route;
	enum hfm_method m = hfm_req_method(c->req);

	if (m == HFM_M_OPTIONS)
		return h_options(c->req);
	if (m == HFM_M_OTHER)
		return method_not_allowed(c->req);
	if (hfm_route_is_git(rt->kind))
		return hfm_h_git(c);            /* git's methods are its own */
	if (m == HFM_M_POST && rt->kind != HFM_R_API_PATHS_INFO)
		return method_not_allowed(c->req);
	if (m != HFM_M_POST && rt->kind == HFM_R_API_PATHS_INFO)
		return method_not_allowed(c->req);

	switch (rt->kind) {
	case HFM_R_NOTFOUND:
		return hfm_reply_not_found(c->req);
	case HFM_R_UI_INDEX:
	case HFM_R_UI_REPO:
	case HFM_R_UI_STATUS:
	case HFM_R_UI_CSS:
		return hfm_h_ui(c);
	case HFM_R_RESOLVE:
	case HFM_R_RAW:
		return hfm_h_file(c);
	case HFM_R_HEALTH:
		return h_health(c);
	case HFM_R_READY:
		return h_ready(c);
	case HFM_R_METRICS:
		return h_metrics(c);
	case HFM_R_API_WHOAMI:
		return hfm_h_whoami(c);
	default:
		return hfm_h_api(c);
	}
}

/* Routes anyone may ask, token or not: health checks, CORS preflights. */
static int open_route(const struct hfm_call *c)
{
	return c->route.kind == HFM_R_HEALTH || c->route.kind == HFM_R_READY ||
	       hfm_req_method(c->req) == HFM_M_OPTIONS;
}

/*
 * Who asks (auth.h): c->who and ctx.who, and what Authorization goes
 * upstream.  With upstream-tokens, a token not ours may have to wait for
 * the upstream's whoami (HFM_EAGAIN: the request runs again from the top).
 */
static int identify(struct hfm_call *c)
{
	struct hfm_auth *a = c->app->auth;
	struct hfm_auth_result res;
	int rc;

	if (!a)
		return 0;
	rc = hfm_auth_identify(&c->who, &res, a, c->ctx.authorization, hfm_req_remote(c->req));
	if (!rc) {
		c->ctx.authorization = res.forward;
		if (res.ask_upstream && !open_route(c)) {
			struct hfm_buf name = HFM_BUF_INIT(1024);
			rc = hfm_catalog_whoami(&name, c->app->catalog, &c->ctx);
			if (rc != HFM_EAGAIN)
				rc = hfm_auth_upstream(&c->who, a, rc ? NULL : hfm_buf_cstr(&name));
			hfm_buf_dispose(&name);
		}
	}
	if (rc && rc != HFM_EAGAIN && open_route(c))
		return 0;
	if (rc)
		return rc;
	c->ctx.who = c->who.name ? &c->who : NULL;
	return 0;
}

/* 401 with the challenges git and browsers answer; 429 with Retry-After. */
static int refuse(struct hfm_call *c, int rc)
{
	char s[16];

	if (rc == HFM_EAUTH)
		hfm_req_add_header(c->req, "WWW-Authenticate", "Bearer realm=\"hfmirror\", "
				   "Basic realm=\"hfmirror\"");
	if (rc == HFM_ERATE) {
		snprintf(s, sizeof(s), "%u", hfm_auth_retry_after(c->app->auth));
		hfm_req_add_header(c->req, "Retry-After", s);
	}
	return hfm_reply_error(c->req, rc, NULL, NULL);
}

int hfm_app_handle(struct hfm_req *r, void *app)
{
	const char *why;
	int rc = hfm_req_refused(r, &why);
	if (rc)
		return hfm_reply_error(r, rc, why, NULL);

	struct hfm_call c = {
		.req = r,
		.app = app,
		.ctx = {
			.waiter = hfm_req_waiter(r),
			.authorization = hfm_req_header(r, "Authorization"),
			.arrived_ns = hfm_req_arrived_ns(r),
		},
	};
	if ((rc = hfm_route_parse(&c.route, hfm_req_path(r))) == 0)
		hfm_req_set_route(r, route_class(c.route.kind));   /* refusals count by route too */
	if (rc)
		rc = hfm_reply_error(r, HFM_EINVAL, hfm_error_last(), NULL);
	else if ((rc = identify(&c)))
		rc = rc == HFM_EAGAIN ? rc : refuse(&c, rc);
	else
		rc = dispatch(&c);
	if (rc != HFM_EAGAIN && !hfm_req_replied(r))
		rc = hfm_reply_error(r, rc ? rc : HFM_EIO, NULL, NULL);
	hfm_ident_dispose(&c.who);
	hfm_route_dispose(&c.route);
	return rc;
}
