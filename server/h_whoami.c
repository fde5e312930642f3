/*
 * h_whoami.c - GET /api/whoami-v2: who the request's local token is, in the
 * Hub's shape, so that `hf auth login`, `hf auth whoami` and the npm
 * client's whoAmI work against the mirror.
 *
 * The keys clients read: `type`, `name`, `fullname`, `orgs[].name` (the
 * user's groups), `auth.accessToken.displayName` and `.role` (Python's
 * login stores the token under that name and prints the role).  Ids are
 * 24 hex digits as the Hub's, derived from the names so they stay stable.
 * Without a local token it is 401, as the Hub answers a bad token.
 */
#include <string.h>

#include "hfm/handlers.h"
#include "hfm/hash.h"

static void put_id(struct hfm_buf *b, const char *kind, const char *name)
{
	char h[HFM_SHA1_HEX + 1];
	struct hfm_buf in = HFM_BUF_INIT(4096);

	hfm_buf_printf(&in, "%s:%s", kind, name);
	hfm_sha1_hex(h, hfm_buf_cstr(&in), in.len);
	hfm_buf_printf(b, "\"%.24s\"", h);
	hfm_buf_dispose(&in);
}

int hfm_h_whoami(struct hfm_call *c)
{
	const struct hfm_ident *who = hfm_call_who(c);
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);

	if (!who)
		return hfm_reply_error(c->req, HFM_EAUTH, NULL, NULL);
	hfm_buf_puts(&b, "{\"type\":\"user\",\"id\":");
	put_id(&b, "user", who->name);
	hfm_buf_puts(&b, ",\"name\":");
	hfm_buf_json_str(&b, who->name);
	hfm_buf_puts(&b, ",\"fullname\":");
	hfm_buf_json_str(&b, who->fullname ? who->fullname : who->name);
	hfm_buf_puts(&b, ",\"email\":null,\"emailVerified\":false,\"canPay\":false,"
		     "\"periodEnd\":null,\"isPro\":false,\"avatarUrl\":\"\",\"orgs\":[");
	for (size_t i = 0; i < who->ngroups; i++) {
		hfm_buf_puts(&b, i ? ",{\"type\":\"org\",\"id\":" : "{\"type\":\"org\",\"id\":");
		put_id(&b, "group", who->groups[i]);
		hfm_buf_puts(&b, ",\"name\":");
		hfm_buf_json_str(&b, who->groups[i]);
		hfm_buf_puts(&b, ",\"fullname\":");
		hfm_buf_json_str(&b, who->groups[i]);
		hfm_buf_puts(&b, ",\"email\":null,\"canPay\":false,\"periodEnd\":null,"
			     "\"avatarUrl\":\"\",\"roleInOrg\":\"read\",\"isEnterprise\":false}");
	}
	hfm_buf_puts(&b, "],\"auth\":{\"type\":\"access_token\",\"accessToken\":{\"displayName\":");
	hfm_buf_json_str(&b, who->token_id ? who->token_id : "");
	hfm_buf_puts(&b, ",\"role\":\"read\"");
	if (who->token_created) {
		hfm_buf_puts(&b, ",\"createdAt\":");
		hfm_buf_json_str(&b, who->token_created);
	}
	hfm_buf_puts(&b, "}}}");
	return hfm_reply_json(c->req, 200, &b);
}
