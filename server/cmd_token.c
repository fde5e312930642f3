/*
 * cmd_token.c - `hfmirror token` and `hfmirror grant`: the admin's side of
 * local users, their tokens and their offline grants (docs/access.md).
 *
 *   hfmirror token --tokens FILE add USER [--group G]... [--fullname NAME] [--hub NAME]
 *   hfmirror token --tokens FILE list
 *   hfmirror token --tokens FILE revoke ID
 *   hfmirror grant [--repos-path STORE | -c FILE] USER REPO
 *   hfmirror grant [--repos-path STORE | -c FILE] --revoke USER REPO
 *   hfmirror grant [--repos-path STORE | -c FILE] --list
 *
 * Each edit takes the file's lock, reads it, changes it and replaces it
 * whole (jsonl.h); a running server sees it on its next request.  A token
 * is printed once, on stdout, and kept nowhere.  Exit status: 0 done, 1 the
 * file could not be read or written, 2 usage.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cjson/cJSON.h>

#include "hfm/cli.h"
#include "hfm/config.h"
#include "hfm/grants.h"
#include "hfm/jsonl.h"
#include "hfm/store.h"
#include "hfm/tokens.h"

#define GROUPS_MAX 64

static void token_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s token --tokens FILE add USER [--group G]... [--fullname NAME]\n"
		"                 [--hub NAME]\n"
		"       %s token --tokens FILE list\n"
		"       %s token --tokens FILE revoke ID\n"
		"\n"
		"Local users of this mirror and their access tokens (docs/access.md).\n"
		"'add' prints a new token once (hf_..., for HF_TOKEN or 'hf auth login');\n"
		"the file keeps only its SHA-256.  --group sets the user's groups (repeat it;\n"
		"without it the groups stay); --hub is the user's name on the upstream hub\n"
		"(for upstream-tokens).  'list' shows users, groups, token ids, when\n"
		"each was created and last used.  'revoke' drops a token at once: a running\n"
		"server refuses it from its next request.\n",
		prog, prog, prog);
}

static int HFM_PRINTF(3, 4) usage_error(const char *prog, const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '%s %s --help' for usage.\n", prog, cmd);
	return 2;
}

/* "id -> last used" from FILE.used; unreadable lines are skipped (it is a hint). */
struct used {
	char **id, **when;
	size_t n;
};

static int read_used(void *cls, const cJSON *rec, const char *path, unsigned line,
		     struct hfm_buf *err)
{
	struct used *u = cls;
	const char *id = hfm_jsonl_str(rec, "token"), *when = hfm_jsonl_str(rec, "last_used");

	(void)path, (void)line, (void)err;
	if (id && when) {
		u->id = hfm_realloc(u->id, (u->n + 1) * sizeof(*u->id));
		u->when = hfm_realloc(u->when, (u->n + 1) * sizeof(*u->when));
		u->id[u->n] = hfm_strdup(id);
		u->when[u->n++] = hfm_strdup(when);
	}
	return 0;
}

static void list_tokens(const struct hfm_tokfile *f, const char *path)
{
	struct used u = { 0 };
	char *up = hfm_tokens_used_path(path);

	hfm_jsonl_read(up, read_used, &u, NULL);
	for (size_t i = 0; i < f->nusers; i++) {
		const struct hfm_user_rec *r = &f->users[i];
		printf("user %s", r->name);
		if (r->fullname)
			printf(" (%s)", r->fullname);
		if (r->hub)
			printf(" hub:%s", r->hub);
		printf("  groups:");
		for (size_t g = 0; g < r->ngroups; g++)
			printf("%s%s", g ? "," : " ", r->groups[g]);
		if (!r->ngroups)
			printf(" -");
		printf("\n");
		for (size_t t = 0; t < f->ntokens; t++) {
			if (strcmp(f->tokens[t].user, r->name))
				continue;
			const char *last = "never";
			for (size_t k = 0; k < u.n; k++)
				if (!strcmp(u.id[k], f->tokens[t].id))
					last = u.when[k];
			printf("  token %s  created %s  last used %s\n", f->tokens[t].id,
			       f->tokens[t].created ? f->tokens[t].created : "-", last);
		}
	}
	for (size_t k = 0; k < u.n; k++) {
		free(u.id[k]);
		free(u.when[k]);
	}
	free(u.id);
	free(u.when);
	free(up);
}

/* Read, change (add or revoke), replace: under the file's lock. */
static int edit_tokens(const char *prog, const char *path, const char *verb, char **args,
		       const char *const *groups, size_t ngroups, const char *fullname,
		       const char *hub)
{
	struct hfm_tokfile f;
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024), out = HFM_BUF_INIT(HFM_JSONL_MAX);
	char token[HFM_TOKEN_LEN + 1] = "", id[HFM_TOKEN_ID_LEN + 1];
	int lock = -1, rc = 1;

	if (strcmp(verb, "list") && (lock = hfm_jsonl_lock(path)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, hfm_error_last());
		return 1;
	}
	if (hfm_tokfile_read(&f, path, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
		goto cleanup;
	}
	if (!strcmp(verb, "list")) {
		list_tokens(&f, path);
		rc = 0;
		goto cleanup;
	}
	if (!strcmp(verb, "add") &&
	    (hfm_tokfile_add(&f, token, id, args[0], fullname, groups, ngroups) ||
	     (hub && hfm_tokfile_set_hub(&f, args[0], hub)))) {
		fprintf(stderr, "%s: %s\n", prog, hfm_error_last());
		rc = hfm_error_last()[0] && strstr(hfm_error_last(), "getrandom") ? 1 : 2;
		goto cleanup;
	}
	if (!strcmp(verb, "revoke") && hfm_tokfile_revoke(&f, args[0])) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, hfm_error_last());
		goto cleanup;
	}
	hfm_tokfile_format(&out, &f);
	if (out.err || hfm_jsonl_replace(path, hfm_buf_cstr(&out), out.len, 0600)) {
		fprintf(stderr, "%s: %s\n", prog, out.err ? "the tokens file is too large" :
			hfm_error_last());
		goto cleanup;
	}
	if (!strcmp(verb, "add")) {
		fprintf(stderr, "%s: token %s for %s (shown once; keep it like a password):\n",
			prog, id, args[0]);
		printf("%s\n", token);
	} else {
		fprintf(stderr, "%s: token %s revoked\n", prog, args[0]);
	}
	rc = 0;
cleanup:
	OPENSSL_cleanse(token, sizeof(token));
	hfm_tokfile_dispose(&f);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&out);
	hfm_jsonl_unlock(lock);
	return rc;
}

int hfm_token_main(const char *prog, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tokens", required_argument, NULL, 't' },
		{ "group", required_argument, NULL, 'g' },
		{ "fullname", required_argument, NULL, 'n' },
		{ "hub", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *fullname = NULL, *hub = NULL;
	const char *groups[GROUPS_MAX];
	size_t ngroups = 0;
	int c;

	opterr = 0;
	optind = 1;
	/* "+": options may come before the verb; the verb's own after it, reread below */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 't')
			path = optarg;
		else if (c == 'h')
			return token_usage(stdout, prog), 0;
		else if (c == 'g' || c == 'n' || c == 'u')
			return usage_error(prog, "token", "--group, --fullname and --hub go after "
					   "'add USER'");
		else
			return usage_error(prog, "token", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind >= argc)
		return usage_error(prog, "token", "add, list or revoke?");
	const char *verb = argv[optind];
	int vargc = argc - optind;
	char **vargv = argv + optind;
	optind = 1;
	char *pos[2];
	int npos = 0;
	while (optind < vargc) {
		c = getopt_long(vargc, vargv, "h", opts, NULL);
		if (c == -1) {
			if (npos < 2)
				pos[npos] = vargv[optind];
			npos++;
			optind++;
			continue;
		}
		if (c == 't')
			path = optarg;
		else if (c == 'g' && ngroups < GROUPS_MAX)
			groups[ngroups++] = optarg;
		else if (c == 'g')
			return usage_error(prog, "token", "at most %d groups", GROUPS_MAX);
		else if (c == 'n')
			fullname = optarg;
		else if (c == 'u')
			hub = optarg;
		else if (c == 'h')
			return token_usage(stdout, prog), 0;
		else
			return usage_error(prog, "token", "%s: unknown option or missing value",
					   vargv[optind - 1]);
	}
	if (!path)
		return usage_error(prog, "token", "--tokens FILE is needed");
	if (!strcmp(verb, "add") && npos != 1)
		return usage_error(prog, "token", "add takes one USER");
	if (!strcmp(verb, "revoke") && npos != 1)
		return usage_error(prog, "token", "revoke takes one token ID (see 'token list')");
	if (!strcmp(verb, "list") && npos)
		return usage_error(prog, "token", "list takes no arguments");
	if (strcmp(verb, "add") && strcmp(verb, "list") && strcmp(verb, "revoke"))
		return usage_error(prog, "token", "unknown action '%s': add, list or revoke", verb);
	if (strcmp(verb, "add") && (ngroups || fullname || hub))
		return usage_error(prog, "token", "--group, --fullname and --hub are for 'add'");
	return edit_tokens(prog, path, verb, pos, groups, ngroups, fullname, hub);
}

/* ---- grant ------------------------------------------------------------------------ */

static void grant_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s grant [--repos-path STORE | -c FILE] USER REPO\n"
		"       %s grant [--repos-path STORE | -c FILE] --revoke USER REPO\n"
		"       %s grant [--repos-path STORE | -c FILE] --list\n"
		"\n"
		"Let local USER read gated REPO (org/name, datasets/org/name, spaces/...) where\n"
		"no upstream can check their token: offline, air-gapped.  Kept in\n"
		"STORE/%s (default STORE: ./repos, or the config's repos-path).\n",
		prog, prog, prog, HFM_GRANTS_FILE);
}

int hfm_grant_main(const char *prog, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repos-path", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "revoke", no_argument, NULL, 'x' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store_path = NULL, *config = NULL;
	struct hfm_config *cfg = NULL;
	struct hfm_store *store = NULL;
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024), out = HFM_BUF_INIT(HFM_JSONL_MAX);
	struct hfm_repo_id id;
	char *path = NULL;
	int revoke = 0, list = 0, c, rc = 1;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': store_path = optarg; break;
		case 'c': config = optarg; break;
		case 'x': revoke = 1; break;
		case 'l': list = 1; break;
		case 'h': grant_usage(stdout, prog); return 0;
		default:
			return usage_error(prog, "grant", "%s: unknown option or missing value",
					   argv[optind - 1]);
		}
	}
	if (list ? optind != argc : optind + 2 != argc)
		return usage_error(prog, "grant", list ? "--list takes no arguments" :
				   "USER and REPO are needed");
	if (!list && hfm_grants_parse_repo(&id, argv[optind + 1]))
		return usage_error(prog, "grant", "%s", hfm_error_last());
	if (!list && !hfm_user_name_ok(argv[optind]))
		return usage_error(prog, "grant", "user \"%s\": letters, digits, '.', '_', '-'",
				   argv[optind]);
	hfm_config_new(&cfg);
	if (config && hfm_config_read(cfg, config, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
		goto cleanup;
	}
	if (store_path)
		hfm_config_set_str(&cfg->repos_path, store_path);
	if (hfm_store_open(&store, cfg->repos_path, 1) ||
	    hfm_store_mkdirs(store, "meta")) {
		fprintf(stderr, "%s: repos-path %s: %s\n", prog, cfg->repos_path, hfm_error_last());
		goto cleanup;
	}
	path = hfm_asprintf("%s/%s", cfg->repos_path, HFM_GRANTS_FILE);
	if (list) {
		if (hfm_grants_list(&out, path, &err)) {
			fprintf(stderr, "%s", err.len ? hfm_buf_cstr(&err) : hfm_error_last());
			goto cleanup;
		}
		fputs(hfm_buf_cstr(&out), stdout);
	} else if (hfm_grants_edit(path, argv[optind], &id, "admin", !revoke, &err)) {
		fprintf(stderr, "%s: %s\n", prog, err.len ? hfm_buf_cstr(&err) : hfm_error_last());
		goto cleanup;
	} else {
		char key[HFM_REPO_NAME_MAX + 16];
		hfm_grants_key(key, sizeof(key), &id);
		fprintf(stderr, "%s: %s %s %s\n", prog, argv[optind], revoke ? "may no longer read" :
			"may read", key);
	}
	rc = 0;
cleanup:
	free(path);
	if (store)
		hfm_store_free(store);
	hfm_config_free(cfg);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&out);
	return rc;
}
