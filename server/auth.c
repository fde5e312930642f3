/* auth.c - a request's identity from its token (see auth.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "hfm/auth.h"
#include "hfm/buf.h"
#include "hfm/hash.h"
#include "hfm/ttlmap.h"

struct hfm_auth {
	struct hfm_tokens *tokens;
	int anonymous;
	unsigned fail_limit;
	unsigned fail_window_s;
	int upstream_tokens;
	struct hfm_ttlmap *fails;        /* address -> failures in the window */
	struct hfm_ttlmap *bad;          /* sha256 of a token that failed -> seen */
};

struct hfm_auth *hfm_auth_new(const struct hfm_auth_opts *o)
{
	struct hfm_auth *a = hfm_calloc(1, sizeof(*a));

	a->tokens = o->tokens;
	a->anonymous = o->anonymous;
	a->fail_limit = o->fail_limit ? o->fail_limit : 20;
	a->fail_window_s = o->fail_window_s ? o->fail_window_s : 60;
	a->upstream_tokens = o->upstream_tokens;
	a->fails = hfm_ttlmap_new(HFM_AUTH_SLOTS);
	a->bad = hfm_ttlmap_new(HFM_AUTH_SLOTS);
	return a;
}

void hfm_auth_free(struct hfm_auth *a)
{
	if (!a)
		return;
	hfm_ttlmap_free(a->fails);
	hfm_ttlmap_free(a->bad);
	free(a);
}

unsigned hfm_auth_retry_after(const struct hfm_auth *a)
{
	return a->fail_window_s;
}

int hfm_auth_token_of(char *out, size_t cap, const char *h)
{
	struct hfm_buf dec = HFM_BUF_INIT(2 * HFM_AUTH_TOKEN_MAX + 1);    /* user:password */
	const char *colon, *tok;
	size_t n, len;
	int rc = HFM_EINVAL;

	while (*h == ' ')
		h++;
	if (!strncasecmp(h, "Bearer ", 7)) {
		h += 7;
		while (*h == ' ')
			h++;
		n = strcspn(h, " \t\r\n");
		if (!n || n >= cap || n > HFM_AUTH_TOKEN_MAX || h[n])
			return HFM_EINVAL;
		memcpy(out, h, n);
		out[n] = '\0';
		return 0;
	}
	if (strncasecmp(h, "Basic ", 6))
		return HFM_EINVAL;
	h += 6;
	while (*h == ' ')
		h++;
	n = strcspn(h, " \t\r\n");
	/* all the room at once: no copy of a password left behind by a realloc */
	if (!n || h[n] || n > 4 * (dec.max / 3 + 1) || !hfm_buf_reserve(&dec, dec.max) ||
	    hfm_buf_b64_decode(&dec, h, n))
		goto cleanup;
	/*
	 * The password; when it is empty (git's https://TOKEN@host) or there is
	 * no colon, the user name is the token.
	 */
	colon = memchr(dec.ptr, ':', dec.len);
	tok = colon && colon + 1 < dec.ptr + dec.len ? colon + 1 : dec.ptr;
	len = colon && tok == dec.ptr ? (size_t)(colon - dec.ptr) : (size_t)(dec.ptr + dec.len - tok);
	if (len && len < cap && len <= HFM_AUTH_TOKEN_MAX && !memchr(tok, '\0', len)) {
		memcpy(out, tok, len);
		out[len] = '\0';
		rc = 0;
	}
cleanup:
	if (dec.ptr)
		OPENSSL_cleanse(dec.ptr, dec.cap);
	hfm_buf_dispose(&dec);
	return rc;
}

char *hfm_auth_bearer_of(const char *authorization)
{
	char token[HFM_AUTH_TOKEN_MAX + 1];
	char *out;

	if (!authorization)
		return NULL;
	while (*authorization == ' ')
		authorization++;
	if (strncasecmp(authorization, "Basic ", 6))
		return NULL;
	if (hfm_auth_token_of(token, sizeof(token), authorization))
		return hfm_strdup("Bearer -");    /* a credential that is not one */
	out = hfm_asprintf("Bearer %s", token);
	OPENSSL_cleanse(token, sizeof(token));
	return out;
}

/* One more failure for `remote`; its window starts again. */
static void count_failure(struct hfm_auth *a, const char *remote)
{
	int n = 0;

	hfm_ttlmap_get(a->fails, remote, &n, NULL, 0);
	hfm_ttlmap_put(a->fails, remote, n + 1, NULL, (uint64_t)a->fail_window_s * 1000000000ull);
}

static int limited(struct hfm_auth *a, const char *remote)
{
	int n = 0;
	return hfm_ttlmap_get(a->fails, remote, &n, NULL, 0) && (unsigned)n >= a->fail_limit;
}

static int unknown_token(struct hfm_auth *a)
{
	if (a->anonymous)
		return 0;
	return hfm_error_set(HFM_EAUTH, "Invalid credentials in Authorization header");
}

int hfm_auth_upstream(struct hfm_ident *who, struct hfm_auth *a, const char *hub_name)
{
	memset(who, 0, sizeof(*who));
	if (hub_name && a->tokens && !hfm_tokens_hub_user(who, a->tokens, hub_name))
		return 0;
	return unknown_token(a);
}

int hfm_auth_identify(struct hfm_ident *who, struct hfm_auth_result *res, struct hfm_auth *a,
		      const char *authorization, const char *remote)
{
	char token[HFM_AUTH_TOKEN_MAX + 1];
	char key[HFM_SHA256_HEX + 1];
	int seen = 0, rc;

	memset(who, 0, sizeof(*who));
	memset(res, 0, sizeof(*res));
	res->forward = authorization;
	if (!authorization || !*authorization) {
		if (a->anonymous)
			return 0;
		return hfm_error_set(HFM_EAUTH, "This mirror needs a token: set HF_TOKEN or run "
				     "`hf auth login` with a token its admin gave you");
	}
	if (!a->tokens)
		return 0;                    /* no local users: everything as before */
	if (hfm_auth_token_of(token, sizeof(token), authorization)) {
		res->token_failed = 1;
		return unknown_token(a);
	}
	hfm_sha256_hex(key, token, strlen(token));
	seen = hfm_ttlmap_get(a->bad, key, &rc, NULL, 0);
	if (!seen && limited(a, remote ? remote : "-")) {
		OPENSSL_cleanse(token, sizeof(token));
		return hfm_error_set(HFM_ERATE, "Too many failed token checks from this address; "
				     "retry in %u seconds", a->fail_window_s);
	}
	rc = seen ? HFM_ENOENT : hfm_tokens_check(who, a->tokens, token);
	OPENSSL_cleanse(token, sizeof(token));
	if (!rc) {
		res->forward = NULL;         /* ours: never sent upstream */
		return 0;
	}
	res->token_failed = 1;
	if (!seen) {
		hfm_ttlmap_put(a->bad, key, 1, NULL, (uint64_t)a->fail_window_s * 1000000000ull);
		count_failure(a, remote ? remote : "-");
	}
	if (a->upstream_tokens) {
		res->ask_upstream = 1;       /* the verdict is hfm_auth_upstream()'s */
		return 0;
	}
	return unknown_token(a);
}
