/*
 * Local tokens: the file's records and its errors (FILE:LINE: key: why),
 * add and revoke, the server's view (every record compared on every check,
 * a revoke in force at the next check), the Authorization forms, the
 * brute-force limit, offline grants and the audit line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/audit.h"
#include "hfm/auth.h"
#include "hfm/grants.h"
#include "hfm/hash.h"
#include "hfm/jsonl.h"
#include "hfm/tokens.h"
#include "tap.h"

static char dir[] = "/tmp/hfm-tokens.XXXXXX";

static char *path_of(const char *name)
{
	return hfm_asprintf("%s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* The errors of reading `text` as a tokens file, with the path cut to "F". */
static char *errors_of(const char *text)
{
	char *p = path_of("bad.jsonl");
	struct hfm_tokfile f;
	struct hfm_buf err = HFM_BUF_INIT(1 << 16), out = HFM_BUF_INIT(1 << 16);

	write_file(p, text);
	hfm_tokfile_read(&f, p, &err);
	hfm_tokfile_dispose(&f);
	const char *s = hfm_buf_cstr(&err);
	for (const char *at; (at = strstr(s, p)); s = at + strlen(p)) {
		hfm_buf_put(&out, s, (size_t)(at - s));
		hfm_buf_puts(&out, "F");
	}
	hfm_buf_puts(&out, s);
	hfm_buf_dispose(&err);
	free(p);
	return hfm_buf_detach(&out);
}

static const char *SHA_A = "1111111111111111111111111111111111111111111111111111111111111111";

/* The file `text` is refused with exactly `want` (the path shown as "F"). */
static void refused(const char *text, const char *want, const char *what)
{
	char *e = errors_of(text);
	TAP_IS_STR(e, want, "%s", what);
	free(e);
}

static void test_parse_errors(void)
{
	char *e;
	char line[512];

	refused("{\"user\":\"alice\",\"groups\":[\"a\"]}\n# a comment\n\n{\"user\":\"alice\"}\n",
		"F:4: user: \"alice\" is declared twice\n", "a user declared twice names its line");
	refused("{\"user\":\"alice\"\n", "F:1: record: not a JSON object\n", "broken JSON is named");
	refused("{\"user\":\"al ice\"}\n",
		"F:1: user: a name of letters, digits, '.', '_' and '-' is needed\n", "a bad user name");
	snprintf(line, sizeof(line), "{\"user\":\"alice\"}\n{\"token\":\"tk_1\",\"user\":\"bob\",\"sha256\":\"%s\"}\n", SHA_A);
	refused(line, "F:2: user: \"bob\" is not declared by a user record\n", "a token's user must exist");
	refused("{\"user\":\"alice\"}\n{\"token\":\"tk_1\",\"user\":\"alice\",\"sha256\":\"abc\"}\n",
		"F:2: sha256: must be the token's SHA-256 in 64 lowercase hex digits\n",
		"a short hash is refused");
	snprintf(line, sizeof(line), "{\"user\":\"alice\"}\n{\"token\":\"tk_1\",\"user\":\"alice\",\"sha256\":\"%s\"}\n"
		 "{\"token\":\"tk_2\",\"user\":\"alice\",\"sha256\":\"%s\"}\n", SHA_A, SHA_A);
	refused(line, "F:3: sha256: the same token as line 2\n", "one token twice is refused");
	refused("{\"user\":\"alice\",\"group\":[\"a\"]}\n", "F:1: group: unknown key\n",
		"a misspelt key is refused");
	refused("{\"user\":\"alice\",\"groups\":\"a\"}\n", "F:1: groups: must be an array of names\n",
		"groups must be a list");
	refused("{\"who\":1}\n", "F:1: record: neither a user (\"user\") nor a token (\"token\")\n",
		"a record of no kind");
	refused("{\"user\":\"a\",\"hub\":\"x\"}\n{\"user\":\"b\",\"hub\":\"x\"}\n",
		"F:2: hub: \"x\" is a's already\n", "one hub name for two users is refused");
	refused("{\"user\":\"a\",\"k\\ney\":1}\n", "F:1: k?ey: unknown key\n",
		"a key with a newline stays on one line");
	e = errors_of("{\"user\":\"a\"}\n{\"user\":\"a\"}\n{\"x\":1}\n");
	TAP_OK(strstr(e, "F:2:") && strstr(e, "F:3:"), "every problem is reported");
	free(e);
}

static void test_add_revoke(void)
{
	struct hfm_tokfile f, g;
	struct hfm_buf out = HFM_BUF_INIT(1 << 16), err = HFM_BUF_INIT(1 << 16);
	char tok[HFM_TOKEN_LEN + 1], tok2[HFM_TOKEN_LEN + 1], id[HFM_TOKEN_ID_LEN + 1], id2[HFM_TOKEN_ID_LEN + 1];
	const char *groups[] = { "vision", "nlp" };
	char *p = path_of("t.jsonl");
	char sha[HFM_SHA256_HEX + 1];

	memset(&f, 0, sizeof(f));
	TAP_IS_INT(hfm_tokfile_add(&f, tok, id, "alice", "Alice", groups, 2), 0, "add alice");
	TAP_IS_INT(hfm_tokfile_add(&f, tok2, id2, "alice", NULL, NULL, 0), 0, "a second token, groups kept");
	TAP_OK(!strncmp(tok, "hf_", 3) && strlen(tok) == HFM_TOKEN_LEN, "a token is hf_ and %d letters", HFM_TOKEN_LETTERS);
	int letters = 1;
	for (const char *c = tok + 3; *c; c++)
		letters &= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z');
	TAP_OK(letters, "after hf_ only letters");
	TAP_OK(strcmp(tok, tok2) && strcmp(id, id2), "two tokens, two ids");
	TAP_IS_INT(hfm_tokfile_add(&f, tok2, id2, "bad user", NULL, NULL, 0), HFM_EINVAL, "a bad name is refused");
	hfm_tokfile_format(&out, &f);
	TAP_OK(!strstr(hfm_buf_cstr(&out), tok) && !strstr(hfm_buf_cstr(&out), tok2), "the file never holds a token");
	hfm_sha256_hex(sha, tok, strlen(tok));
	TAP_OK(strstr(hfm_buf_cstr(&out), sha) != NULL, "it holds its SHA-256");
	TAP_IS_INT(hfm_jsonl_replace(p, hfm_buf_cstr(&out), out.len, 0600), 0, "written");
	TAP_IS_INT(hfm_tokfile_read(&g, p, &err), 0, "read back: %s", hfm_buf_cstr(&err));
	TAP_IS_INT(g.nusers, 1, "one user");
	TAP_IS_INT(g.ntokens, 2, "two tokens");
	TAP_IS_INT(g.users[0].ngroups, 2, "with two groups");
	TAP_IS_STR(g.users[0].fullname, "Alice", "and the full name");
	TAP_IS_INT(hfm_tokfile_revoke(&g, id), 0, "revoke the first");
	TAP_IS_INT(hfm_tokfile_revoke(&g, id), HFM_ENOENT, "revoking it again: no such token");
	TAP_IS_INT(g.ntokens, 1, "one left");
	TAP_IS_STR(g.tokens[0].id, id2, "the other one");
	hfm_tokfile_dispose(&f);
	hfm_tokfile_dispose(&g);
	hfm_buf_dispose(&out);
	hfm_buf_dispose(&err);
	free(p);
}

/* The server's view: every record compared on every check; a change is seen at once. */
static void test_live(void)
{
	struct hfm_tokfile f;
	struct hfm_buf out = HFM_BUF_INIT(1 << 16), err = HFM_BUF_INIT(1 << 16);
	char tok[5][HFM_TOKEN_LEN + 1], id[5][HFM_TOKEN_ID_LEN + 1];
	const char *g[] = { "lab" };
	char *p = path_of("live.jsonl");
	struct hfm_tokens *t = NULL;
	struct hfm_ident who;

	memset(&f, 0, sizeof(f));
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "u%d", i);
		hfm_tokfile_add(&f, tok[i], id[i], name, NULL, g, 1);
	}
	hfm_tokfile_format(&out, &f);
	hfm_jsonl_replace(p, hfm_buf_cstr(&out), out.len, 0600);
	TAP_IS_INT(hfm_tokens_open(&t, p, NULL, NULL, &err), 0, "open");
	unsigned long long c0 = hfm_tokens_compares(t);
	TAP_IS_INT(hfm_tokens_check(&who, t, tok[0]), 0, "the first record's token");
	TAP_IS_STR(who.name, "u0", "is u0");
	TAP_OK(who.ngroups == 1 && !strcmp(who.groups[0], "lab"), "in group lab");
	TAP_IS_STR(who.token_id, id[0], "with its id");
	hfm_ident_dispose(&who);
	unsigned long long c1 = hfm_tokens_compares(t);
	TAP_IS_INT(hfm_tokens_check(&who, t, tok[4]), 0, "the last record's token");
	hfm_ident_dispose(&who);
	unsigned long long c2 = hfm_tokens_compares(t);
	char wrong[HFM_TOKEN_LEN + 1];
	memcpy(wrong, tok[2], sizeof(wrong));
	wrong[HFM_TOKEN_LEN - 1] ^= 1;
	TAP_IS_INT(hfm_tokens_check(&who, t, wrong), HFM_ENOENT, "a token off by one bit is unknown");
	TAP_OK(who.name == NULL, "and has no identity");
	unsigned long long c3 = hfm_tokens_compares(t);
	TAP_IS_INT(c1 - c0, 5, "a hit on the first record still compares all 5");
	TAP_IS_INT(c2 - c1, 5, "a hit on the last compares 5");
	TAP_IS_INT(c3 - c2, 5, "a miss compares 5");

	/* revoke u0 the way the CLI does: a new file renamed into place */
	TAP_IS_INT(hfm_tokfile_revoke(&f, id[0]), 0, "revoke u0's token");
	hfm_buf_reset(&out);
	hfm_tokfile_format(&out, &f);
	hfm_jsonl_replace(p, hfm_buf_cstr(&out), out.len, 0600);
	TAP_IS_INT(hfm_tokens_check(&who, t, tok[0]), HFM_ENOENT, "the next check refuses it");
	TAP_IS_INT(hfm_tokens_check(&who, t, tok[1]), 0, "the others stay");
	hfm_ident_dispose(&who);

	/* a broken edit: no token is valid until the file reads again */
	write_file(p, "{\"user\":\n");
	TAP_IS_INT(hfm_tokens_check(&who, t, tok[1]), HFM_ENOENT, "a broken file fails closed");
	hfm_jsonl_replace(p, hfm_buf_cstr(&out), out.len, 0600);
	TAP_IS_INT(hfm_tokens_check(&who, t, tok[1]), 0, "and is in force again once fixed");
	hfm_ident_dispose(&who);
	hfm_tokens_free(t);

	write_file(p, "{\"user\":\n");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_tokens_open(&t, p, NULL, NULL, &err), HFM_EINVAL, "a broken file at start is an error");
	TAP_OK(strstr(hfm_buf_cstr(&err), ":1: record: not a JSON object") != NULL, "naming the line");
	hfm_tokfile_dispose(&f);
	hfm_buf_dispose(&out);
	hfm_buf_dispose(&err);
	free(p);
}

static void test_authorization_forms(void)
{
	char tok[600];

	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Bearer hf_abc"), 0, "Bearer");
	TAP_IS_STR(tok, "hf_abc", "its token");
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "bearer   hf_abc"), 0, "any case, more blanks");
	/* "git:hf_abc" */
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Basic Z2l0OmhmX2FiYw=="), 0, "Basic");
	TAP_IS_STR(tok, "hf_abc", "the password is the token");
	/* ":hf_ab" -> "OmhmX2Fi" (no padding) */
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Basic OmhmX2Fi"), 0, "Basic, no user");
	TAP_IS_STR(tok, "hf_ab", "its token");
	/* git's https://TOKEN@host: "hf_abc:" or "git" (no colon) */
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Basic aGZfYWJjOg=="), 0, "Basic, no password");
	TAP_IS_STR(tok, "hf_abc", "the user name is the token");
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Basic Z2l0"), 0, "Basic without a colon");
	TAP_IS_STR(tok, "git", "the whole is the token");
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Basic Og=="), HFM_EINVAL, "Basic of a lone colon");
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Basic !!!!"), HFM_EINVAL, "Basic that is no base64");
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Bearer "), HFM_EINVAL, "Bearer and nothing");
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), "Token x"), HFM_EINVAL, "another scheme");
	TAP_IS_INT(hfm_auth_token_of(tok, 4, "Bearer hf_abc"), HFM_EINVAL, "too long for the buffer");
	TAP_IS_INT(hfm_auth_token_of(tok, 4, "Basic Z2l0OmhmX2FiYw=="), HFM_EINVAL, "Basic too long for the buffer");
}

/* "Bearer " + n x 'a', or "Basic " + base64(user + ":" + n x 'a'). */
static char *long_authorization(const char *basic_user, size_t n)
{
	struct hfm_buf raw = HFM_BUF_INIT(1 << 16), out = HFM_BUF_INIT(1 << 16);
	size_t i;

	if (basic_user)
		hfm_buf_printf(&raw, "%s:", basic_user);
	for (i = 0; i < n; i++)
		hfm_buf_putc(&raw, 'a');
	hfm_buf_puts(&out, basic_user ? "Basic " : "Bearer ");
	if (basic_user)
		hfm_buf_b64url(&out, hfm_buf_cstr(&raw));    /* the reader takes either alphabet */
	else
		hfm_buf_puts(&out, hfm_buf_cstr(&raw));
	hfm_buf_dispose(&raw);
	return hfm_buf_detach(&out);
}

/* One limit, HFM_AUTH_TOKEN_MAX, however the token comes and whatever the buffer. */
static void test_token_length(void)
{
	char tok[HFM_AUTH_TOKEN_MAX * 4], user[HFM_AUTH_TOKEN_MAX + 1];
	char *h;

	memset(user, 'u', HFM_AUTH_TOKEN_MAX);
	user[HFM_AUTH_TOKEN_MAX] = '\0';
	h = long_authorization(NULL, HFM_AUTH_TOKEN_MAX);
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), h), 0, "Bearer of HFM_AUTH_TOKEN_MAX bytes");
	free(h);
	h = long_authorization(NULL, HFM_AUTH_TOKEN_MAX + 1);
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), h), HFM_EINVAL, "one more: no token");
	free(h);
	h = long_authorization(user, HFM_AUTH_TOKEN_MAX);
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), h), 0,
		   "Basic: a user name and a password of HFM_AUTH_TOKEN_MAX bytes each");
	TAP_IS_INT((int)strlen(tok), HFM_AUTH_TOKEN_MAX, "the whole password");
	free(h);
	h = long_authorization("git", HFM_AUTH_TOKEN_MAX + 1);
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), h), HFM_EINVAL, "a password one longer: no token");
	free(h);
	h = long_authorization(user, 0);
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), h), 0, "a user name of HFM_AUTH_TOKEN_MAX bytes, no password");
	TAP_IS_STR(tok, user, "the user name is the token");
	free(h);
	h = long_authorization("git", 8 * HFM_AUTH_TOKEN_MAX);
	TAP_IS_INT(hfm_auth_token_of(tok, sizeof(tok), h), HFM_EINVAL, "far longer: no token");
	free(h);
}

/* What h_git.c sends upstream for git's credentials. */
static void test_bearer_of(void)
{
	static const struct { const char *in, *out, *what; } cases[] = {
		{ "Basic Z2l0OmhmX2FiYw==", "Bearer hf_abc", "Basic: the password as a Bearer token" },
		{ " basic  aGZfYWJjOg==", "Bearer hf_abc", "any case, blanks, no password: the user name" },
		{ "Basic !!!!", "Bearer -", "Basic that is no base64: a credential that is none" },
		{ "Basic Og==", "Bearer -", "a lone colon: the same" },
	};
	char *s, *h;
	size_t i;

	TAP_OK(hfm_auth_bearer_of(NULL) == NULL, "no header: none");
	TAP_OK(hfm_auth_bearer_of("Bearer hf_abc") == NULL, "Bearer: sent as it is");
	TAP_OK(hfm_auth_bearer_of("Token x") == NULL, "another scheme: sent as it is");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = hfm_auth_bearer_of(cases[i].in);
		TAP_IS_STR(s, cases[i].out, "%s", cases[i].what);
		free(s);
	}
	h = long_authorization("git", HFM_AUTH_TOKEN_MAX + 1);
	s = hfm_auth_bearer_of(h);
	TAP_IS_STR(s, "Bearer -", "a password too long for a token: the same");
	free(s);
	free(h);
}

static void test_limit(void)
{
	struct hfm_tokfile f;
	struct hfm_buf out = HFM_BUF_INIT(1 << 16), err = HFM_BUF_INIT(1 << 16);
	char tok[HFM_TOKEN_LEN + 1], id[HFM_TOKEN_ID_LEN + 1];
	char *p = path_of("limit.jsonl");
	struct hfm_tokens *t = NULL;
	struct hfm_ident who;
	struct hfm_auth_result res;
	int rc, n401 = 0, n429 = 0;
	char hdr[128];

	memset(&f, 0, sizeof(f));
	hfm_tokfile_add(&f, tok, id, "alice", NULL, NULL, 0);
	hfm_tokfile_format(&out, &f);
	hfm_jsonl_replace(p, hfm_buf_cstr(&out), out.len, 0600);
	hfm_tokens_open(&t, p, NULL, NULL, &err);
	struct hfm_auth_opts o = { .tokens = t, .anonymous = 0, .fail_limit = 5, .fail_window_s = 60 };
	struct hfm_auth *a = hfm_auth_new(&o);

	TAP_IS_INT(hfm_auth_identify(&who, &res, a, NULL, "10.0.0.1"), HFM_EAUTH,
		   "anonymous off: no token is 401");
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	TAP_IS_INT(hfm_auth_identify(&who, &res, a, hdr, "10.0.0.1"), 0, "a local token");
	TAP_IS_STR(who.name, "alice", "is alice");
	TAP_OK(res.forward == NULL, "and is not passed upstream");
	hfm_ident_dispose(&who);
	for (int i = 0; i < 100; i++) {
		snprintf(hdr, sizeof(hdr), "Bearer hf_wrong%d", i);
		rc = hfm_auth_identify(&who, &res, a, hdr, "10.0.0.1");
		n401 += rc == HFM_EAUTH;
		n429 += rc == HFM_ERATE;
	}
	TAP_IS_INT(n401, 5, "5 wrong tokens are checked (401)");
	TAP_IS_INT(n429, 95, "the other 95 are 429 unchecked");
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	TAP_IS_INT(hfm_auth_identify(&who, &res, a, hdr, "10.0.0.1"), HFM_ERATE,
		   "while limited, even a good token waits");
	TAP_IS_INT(hfm_auth_identify(&who, &res, a, hdr, "10.0.0.2"), 0,
		   "another address is not limited");
	hfm_ident_dispose(&who);
	TAP_IS_INT(hfm_auth_identify(&who, &res, a, "Bearer hf_wrong0", "10.0.0.1"), HFM_EAUTH,
		   "a token seen failing before is 401, not counted again");
	hfm_auth_free(a);

	/* anonymous on: an unknown token is a Hub token for upstream, sent again and again */
	o.anonymous = 1;
	a = hfm_auth_new(&o);
	int fails = 0;
	for (int i = 0; i < 50; i++) {
		rc = hfm_auth_identify(&who, &res, a, "Bearer hf_someHubToken", "10.0.0.3");
		fails += rc != 0 || !res.token_failed || !res.forward ||
			 strcmp(res.forward, "Bearer hf_someHubToken") || res.ask_upstream;
	}
	TAP_IS_INT(fails, 0, "anonymous on: a repeated unknown token is anonymous and goes upstream, never 429");
	TAP_IS_INT(hfm_auth_identify(&who, &res, a, NULL, "10.0.0.3"), 0, "no token: anonymous");
	hfm_auth_free(a);

	/* upstream-tokens: a token not ours is the upstream's to name */
	hfm_tokfile_set_hub(&f, "alice", "alice-hf");
	hfm_buf_reset(&out);
	hfm_tokfile_format(&out, &f);
	hfm_jsonl_replace(p, hfm_buf_cstr(&out), out.len, 0600);
	o.anonymous = 0;
	o.upstream_tokens = 1;
	a = hfm_auth_new(&o);
	TAP_IS_INT(hfm_auth_identify(&who, &res, a, "Bearer hf_hubtoken", "10.0.0.4"), 0,
		   "upstream-tokens: an unknown token is no verdict yet");
	TAP_OK(res.ask_upstream && res.forward, "ask the upstream, with the token");
	TAP_IS_INT(hfm_auth_upstream(&who, a, "alice-hf"), 0, "the upstream's alice-hf");
	TAP_IS_STR(who.name, "alice", "is local alice");
	hfm_ident_dispose(&who);
	TAP_IS_INT(hfm_auth_upstream(&who, a, "mallory"), HFM_EAUTH, "a hub user nobody maps: 401");
	TAP_IS_INT(hfm_auth_upstream(&who, a, NULL), HFM_EAUTH, "refused upstream: 401");
	hfm_auth_free(a);
	hfm_tokens_free(t);
	hfm_tokfile_dispose(&f);
	hfm_buf_dispose(&out);
	hfm_buf_dispose(&err);
	free(p);
}

static void test_grants(void)
{
	char *p = path_of("grants.jsonl");
	struct hfm_repo_id id, other, ds;
	struct hfm_buf err = HFM_BUF_INIT(1 << 16), out = HFM_BUF_INIT(1 << 16);

	TAP_IS_INT(hfm_grants_parse_repo(&id, "meta/llama"), 0, "org/name is a model");
	TAP_IS_INT(hfm_grants_parse_repo(&ds, "datasets/acme/ds"), 0, "datasets/org/name");
	TAP_IS_INT(ds.type, HFM_DATASET, "is a dataset");
	TAP_IS_INT(hfm_grants_parse_repo(&other, "meta/../x"), HFM_EINVAL, "a bad id is refused");
	hfm_grants_parse_repo(&other, "meta/other");
	struct hfm_grants *g = hfm_grants_new(p, NULL, NULL);
	TAP_IS_INT(hfm_grants_has(g, "alice", &id), 0, "no file: no grant");
	TAP_IS_INT(hfm_grants_edit(p, "alice", &id, "admin", 1, &err), 0, "grant alice meta/llama");
	TAP_IS_INT(hfm_grants_has(g, "alice", &id), 1, "seen at the next check");
	TAP_IS_INT(hfm_grants_has(g, "bob", &id), 0, "not bob's");
	TAP_IS_INT(hfm_grants_has(g, "alice", &other), 0, "not another repo");
	hfm_grants_parse_repo(&other, "META/Llama");
	TAP_IS_INT(hfm_grants_has(g, "alice", &other), 1, "repo ids ignore case");
	TAP_IS_INT(hfm_grants_edit(p, "alice", &id, "admin", 1, &err), 0, "granting twice is fine");
	hfm_grants_list(&out, p, &err);
	TAP_OK(!strncmp(hfm_buf_cstr(&out), "alice models/meta/llama admin ", 30) &&
	       !strchr(hfm_buf_cstr(&out), '\n')[1], "one grant listed");
	TAP_IS_INT(hfm_grants_edit(p, "alice", &id, "admin", 0, &err), 0, "revoke it");
	TAP_IS_INT(hfm_grants_has(g, "alice", &id), 0, "gone at the next check");
	TAP_IS_INT(hfm_grants_edit(p, "alice", &id, "admin", 0, &err), HFM_ENOENT, "revoking again");
	write_file(p, "{\"user\":\"alice\",\"repo\":\"meta/llama\"}\n");
	hfm_buf_reset(&err);
	TAP_IS_INT(hfm_grants_list(&out, p, &err), HFM_EINVAL, "a repo without its type is refused");
	TAP_OK(strstr(hfm_buf_cstr(&err), "grants.jsonl:1: repo: ") != NULL, "named as FILE:LINE: key");
	hfm_grants_free(g);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&out);
	free(p);
}

static void test_audit(void)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);
	struct hfm_audit_rec r = { .user = NULL, .repo = "models/acme/tiny", .revision = "main",
				   .commit = "c0ffee", .path = "a \"b\".bin", .bytes = 42,
				   .complete = 0, .status = 200, .client = "::1" };
	char *p = path_of("audit.log");
	struct hfm_audit *a = NULL;

	hfm_audit_format(&b, &r, 0);
	TAP_IS_STR(hfm_buf_cstr(&b), "{\"time\":\"1970-01-01T00:00:00.000Z\",\"user\":\"anonymous\","
		   "\"repo\":\"models/acme/tiny\",\"revision\":\"main\",\"commit\":\"c0ffee\","
		   "\"path\":\"a \\\"b\\\".bin\",\"bytes\":42,\"complete\":false,\"status\":200,"
		   "\"client\":\"::1\"}", "the audit line");
	TAP_IS_INT(hfm_audit_open(&a, p, 300, 2), 0, "open with a 300-byte limit");
	for (int i = 0; i < 6; i++)
		hfm_audit_write(a, &r);
	hfm_audit_free(a);
	char *p1 = path_of("audit.log.1"), *p2 = path_of("audit.log.2"), *p3 = path_of("audit.log.3");
	TAP_OK(!access(p, F_OK) && !access(p1, F_OK) && !access(p2, F_OK) && access(p3, F_OK),
	       "rotated by size into .1 and .2, keeping 2");
	free(p1);
	free(p2);
	free(p3);
	free(p);
	hfm_buf_dispose(&b);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_parse_errors();
	test_add_revoke();
	test_live();
	test_authorization_forms();
	test_token_length();
	test_bearer_of();
	test_limit();
	test_grants();
	test_audit();
	char *cmd = hfm_asprintf("rm -rf %s", dir);
	if (system(cmd))
		printf("# could not remove %s\n", dir);
	free(cmd);
	return tap_done();
}
