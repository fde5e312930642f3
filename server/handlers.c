/* handlers.c - the app's entry point and dispatch (see handlers.h). */
#include "hfm/gitserve.h"
#include "hfm/handlers.h"

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

/* The transport's counters, and the git clients' (gitserve.h). */
static int h_metrics(struct hfm_call *c)
{
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);
	hfm_server_metrics(hfm_req_server(c->req), &b);
	if (c->app->git)
		hfm_gitserve_metrics(c->app->git, &b);
	return hfm_reply_text(c->req, 200, "text/plain; version=0.0.4", &b);
}

static int method_not_allowed(struct hfm_req *r)
{
	hfm_req_add_header(r, "Allow", "GET, HEAD, POST, OPTIONS");
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_buf_puts(&b, "{\"error\":\"Method not allowed\"}");
	return hfm_reply_json(r, 405, &b);
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
		return hfm_h_ui(c);
	case HFM_R_RESOLVE:
	case HFM_R_RAW:
		return hfm_h_file(c);
	case HFM_R_HEALTH:
		return h_health(c);
	case HFM_R_METRICS:
		return h_metrics(c);
	default:
		return hfm_h_api(c);
	}
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
	if (hfm_route_parse(&c.route, hfm_req_path(r)))
		rc = hfm_reply_error(r, HFM_EINVAL, hfm_error_last(), NULL);
	else
		rc = dispatch(&c);
	if (rc != HFM_EAGAIN && !hfm_req_replied(r))
		rc = hfm_reply_error(r, rc ? rc : HFM_EIO, NULL, NULL);
	hfm_route_dispose(&c.route);
	return rc;
}
