/*
 * auth.h - who a request is: its token, checked once per request.
 *
 * The app calls hfm_auth_identify() at the start of every request with the
 * Authorization header: `Bearer <token>`, or HTTP Basic whose password is
 * the token (git asks for a user and a password; the user is ignored).
 *
 *  - A local token (tokens.h) gives the request an identity and is never
 *    passed on: the upstream hub does not see it.
 *  - Any other token: with `anonymous` the request is anonymous and its
 *    Authorization goes upstream as before (a Hub token for the cache's
 *    gated repos); without, it is 401.
 *  - No token: anonymous, or 401 without `anonymous`.
 *  - With `upstream_tokens` (off by default), a token that is not ours is
 *    first shown to the upstream hub (GET /api/whoami-v2, through the
 *    cache): if the upstream names a user that a local user's `hub` field
 *    names (tokens.h), the request is that local user, and its token still
 *    goes upstream (so the upstream's auth-check of a gated repo can be
 *    kept as that user's grant, grants.h).  The upstream thus sees every
 *    such token once per access-check-ttl, and learns nothing else.
 *
 * Brute force: each token that fails the check counts against the
 * client's address; after `fail_limit` failures within `fail_window_s` of
 * the last one, requests from that address that carry a token not seen to
 * fail before get 429 (Retry-After) without being checked, until the
 * window passes.  A token that already failed is remembered (its hash, for
 * the window) and counts once, so a Hub token sent again and again through
 * an `anonymous` mirror is not an attack.  Addresses are kept in a fixed
 * table (HFM_AUTH_SLOTS), the oldest forgotten first.
 *
 * Threading: any thread, concurrently.
 */
#ifndef HFM_AUTH_H
#define HFM_AUTH_H

#include "ident.h"
#include "tokens.h"

#define HFM_AUTH_SLOTS 4096

struct hfm_auth_opts {
	struct hfm_tokens *tokens;       /* borrowed; NULL = no local users */
	int anonymous;                   /* serve requests without a valid token */
	unsigned fail_limit;             /* 0 = 20 */
	unsigned fail_window_s;          /* 0 = 60 */
	int upstream_tokens;             /* ask the upstream whose an unknown token is */
};

/* What hfm_auth_identify() says beside the identity. */
struct hfm_auth_result {
	const char *forward;             /* the Authorization to pass upstream, or NULL */
	int token_failed;                /* a token was sent that is not ours */
	/*
	 * upstream_tokens and a token not ours: ask the upstream whose it is
	 * (hfm_catalog_whoami()) and decide with hfm_auth_upstream().
	 */
	int ask_upstream;
};

struct hfm_auth;

struct hfm_auth *hfm_auth_new(const struct hfm_auth_opts *o);
void hfm_auth_free(struct hfm_auth *a);

/*
 * The identity of a request from `remote` that sent `authorization` (may be
 * NULL).  0: *who is filled (who->name NULL: anonymous; dispose it either
 * way) and *res says what goes upstream and what else to do.  HFM_EAUTH
 * (401) or HFM_ERATE (429) with a message.
 */
int hfm_auth_identify(struct hfm_ident *who, struct hfm_auth_result *res, struct hfm_auth *a,
		      const char *authorization, const char *remote);

/*
 * After res->ask_upstream: `hub_name` is the upstream's name for the token,
 * or NULL (refused, or no upstream to ask).  0 with *who the local user
 * whose `hub` it is, or anonymous when anonymous requests are served;
 * else HFM_EAUTH.
 */
int hfm_auth_upstream(struct hfm_ident *who, struct hfm_auth *a, const char *hub_name);

/* The window of the brute-force limit, for Retry-After. */
unsigned hfm_auth_retry_after(const struct hfm_auth *a);

/* Longer is no token of ours nor the Hub's. */
#define HFM_AUTH_TOKEN_MAX 512

/*
 * The token in an Authorization value: after "Bearer ", or the password of
 * "Basic base64(user:password)" (the user name when the password is empty
 * or there is no colon: git's https://TOKEN@host).  Copies it into
 * out[cap]; 0, or HFM_EINVAL (no token in it, or longer than cap - 1 or
 * HFM_AUTH_TOKEN_MAX).
 */
int hfm_auth_token_of(char *out, size_t cap, const char *authorization);

/*
 * What a source sends upstream for an HTTP Basic Authorization (git's
 * credential helpers): "Bearer <token>" with hfm_auth_token_of's token, as
 * the Hub takes tokens; a Basic value with no token in it becomes
 * "Bearer -", a credential the upstream refuses rather than an anonymous
 * request.  NULL for any other value (send it as it is).  The caller frees
 * the string.
 */
char *hfm_auth_bearer_of(const char *authorization);

#endif
