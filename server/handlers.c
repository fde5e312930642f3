/* handlers.c - dispatch a routed request (see handlers.h). */
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

static int h_health(struct hfm_req *r)
{
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_buf_puts(&b, "{\"status\":\"ok\",\"mode\":");
	hfm_buf_json_str(&b, hfm_server_mode(hfm_req_server(r)));
	hfm_buf_puts(&b, "}");
	return hfm_reply_json(r, 200, &b);
}

static int h_metrics(struct hfm_req *r)
{
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);
	hfm_server_metrics(hfm_req_server(r), &b);
	return hfm_reply_text(r, 200, "text/plain; version=0.0.4", &b);
}

static int method_not_allowed(struct hfm_req *r)
{
	hfm_req_add_header(r, "Allow", "GET, HEAD, POST, OPTIONS");
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_buf_puts(&b, "{\"error\":\"Method not allowed\"}");
	return hfm_reply_json(r, 405, &b);
}

int hfm_handle(struct hfm_req *r)
{
	const struct hfm_route *rt = hfm_req_route(r);
	enum hfm_method m = hfm_req_method(r);

	if (m == HFM_M_OPTIONS)
		return h_options(r);
	if (m == HFM_M_OTHER)
		return method_not_allowed(r);
	if (m == HFM_M_POST && rt->kind != HFM_R_API_PATHS_INFO)
		return method_not_allowed(r);
	if (m != HFM_M_POST && rt->kind == HFM_R_API_PATHS_INFO)
		return method_not_allowed(r);

	switch (rt->kind) {
	case HFM_R_NOTFOUND:
		return hfm_reply_not_found(r);
	case HFM_R_UI_INDEX:
	case HFM_R_UI_REPO:
		return hfm_h_ui(r);
	case HFM_R_RESOLVE:
	case HFM_R_RAW:
		return hfm_h_file(r);
	case HFM_R_HEALTH:
		return h_health(r);
	case HFM_R_METRICS:
		return h_metrics(r);
	default:
		return hfm_h_api(r);
	}
}
