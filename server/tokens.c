/* tokens.c - local users, groups and hashed tokens (see tokens.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cjson/cJSON.h>

#include "hfm/hash.h"
#include "hfm/jsonl.h"
#include "hfm/tokens.h"

#define USED_EVERY_MS 60000              /* FILE.used is written at most this often */

/* ---- identities ------------------------------------------------------------ */

void hfm_ident_dispose(struct hfm_ident *who)
{
	if (!who)
		return;
	free(who->name);
	free(who->fullname);
	for (size_t i = 0; i < who->ngroups; i++)
		free(who->groups[i]);
	free(who->groups);
	free(who->token_id);
	free(who->token_created);
	memset(who, 0, sizeof(*who));
}

int hfm_ident_in_group(const struct hfm_ident *who, const char *g)
{
	for (size_t i = 0; who && i < who->ngroups; i++)
		if (!strcmp(who->groups[i], g))
			return 1;
	return 0;
}

/* ---- the file as records ----------------------------------------------------- */

static int id_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static struct hfm_user_rec *find_user(const struct hfm_tokfile *f, const char *name)
{
	for (size_t i = 0; i < f->nusers; i++)
		if (!strcmp(f->users[i].name, name))
			return &f->users[i];
	return NULL;
}

static int only_keys(const cJSON *rec, const char *path, unsigned line, struct hfm_buf *err,
		     const char *const *keys)
{
	int rc = 0;
	for (const cJSON *it = rec->child; it; it = it->next) {
		size_t k = 0;
		while (keys[k] && strcmp(keys[k], it->string))
			k++;
		if (!keys[k])
			rc = hfm_jsonl_bad(err, path, line, it->string, "unknown key");
	}
	return rc;
}

struct reading {
	struct hfm_tokfile *f;
	unsigned *token_lines;           /* the line of each token record */
};

static int read_user(struct hfm_tokfile *f, const cJSON *rec, const char *path, unsigned line,
		     struct hfm_buf *err)
{
	static const char *const keys[] = { "user", "groups", "fullname", "hub", NULL };
	const char *name = hfm_jsonl_str(rec, "user");
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(rec, "groups");
	const cJSON *full = cJSON_GetObjectItemCaseSensitive(rec, "fullname");
	const cJSON *hub = cJSON_GetObjectItemCaseSensitive(rec, "hub");
	int rc = only_keys(rec, path, line, err, keys);

	if (!name || !hfm_user_name_ok(name))
		return hfm_jsonl_bad(err, path, line, "user",
				     "a name of letters, digits, '.', '_' and '-' is needed");
	if (find_user(f, name))
		return hfm_jsonl_bad(err, path, line, "user", "\"%s\" is declared twice", name);
	if (groups && !cJSON_IsArray(groups))
		return hfm_jsonl_bad(err, path, line, "groups", "must be an array of names");
	if (full && !cJSON_IsString(full))
		return hfm_jsonl_bad(err, path, line, "fullname", "must be a string");
	if (hub && (!cJSON_IsString(hub) || !hfm_user_name_ok(hub->valuestring)))
		return hfm_jsonl_bad(err, path, line, "hub", "must be a user name on the hub");
	for (size_t i = 0; hub && i < f->nusers; i++)
		if (f->users[i].hub && !strcmp(f->users[i].hub, hub->valuestring))
			return hfm_jsonl_bad(err, path, line, "hub", "\"%s\" is %s's already",
					     hub->valuestring, f->users[i].name);
	const cJSON *g;
	cJSON_ArrayForEach(g, groups)
		if (!cJSON_IsString(g) || !hfm_user_name_ok(g->valuestring))
			return hfm_jsonl_bad(err, path, line, "groups",
					     "a group is a name of letters, digits, '.', '_' and '-'");
	if (rc)
		return rc;
	f->users = hfm_realloc(f->users, (f->nusers + 1) * sizeof(*f->users));
	struct hfm_user_rec *u = &f->users[f->nusers++];
	memset(u, 0, sizeof(*u));
	u->name = hfm_strdup(name);
	u->fullname = full ? hfm_strdup(full->valuestring) : NULL;
	u->hub = hub ? hfm_strdup(hub->valuestring) : NULL;
	cJSON_ArrayForEach(g, groups) {
		u->groups = hfm_realloc(u->groups, (u->ngroups + 1) * sizeof(*u->groups));
		u->groups[u->ngroups++] = hfm_strdup(g->valuestring);
	}
	return 0;
}

static int read_token(struct reading *rd, const cJSON *rec, const char *path, unsigned line,
		      struct hfm_buf *err)
{
	static const char *const keys[] = { "token", "user", "sha256", "created", NULL };
	struct hfm_tokfile *f = rd->f;
	const char *id = hfm_jsonl_str(rec, "token");
	const char *user = hfm_jsonl_str(rec, "user");
	const char *sha = hfm_jsonl_str(rec, "sha256");
	const char *created = hfm_jsonl_str(rec, "created");
	int rc = only_keys(rec, path, line, err, keys);

	if (!id || !id_ok(id))
		return hfm_jsonl_bad(err, path, line, "token",
				     "an id of letters, digits, '_' and '-' is needed");
	if (!user)
		return hfm_jsonl_bad(err, path, line, "user", "a token needs its user");
	if (!sha || strlen(sha) != HFM_SHA256_HEX || !hfm_is_hex(sha, HFM_SHA256_HEX))
		return hfm_jsonl_bad(err, path, line, "sha256",
				     "must be the token's SHA-256 in 64 lowercase hex digits");
	for (const char *p = sha; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			return hfm_jsonl_bad(err, path, line, "sha256", "must be lowercase hex");
	if (cJSON_GetObjectItemCaseSensitive(rec, "created") && !created)
		return hfm_jsonl_bad(err, path, line, "created", "must be a date string");
	for (size_t i = 0; i < f->ntokens; i++) {
		if (!strcmp(f->tokens[i].id, id))
			return hfm_jsonl_bad(err, path, line, "token", "id \"%s\" is used twice", id);
		if (!strcmp(f->tokens[i].sha256, sha))
			return hfm_jsonl_bad(err, path, line, "sha256",
					     "the same token as line %u", rd->token_lines[i]);
	}
	if (rc)
		return rc;
	f->tokens = hfm_realloc(f->tokens, (f->ntokens + 1) * sizeof(*f->tokens));
	rd->token_lines = hfm_realloc(rd->token_lines, (f->ntokens + 1) * sizeof(unsigned));
	rd->token_lines[f->ntokens] = line;
	struct hfm_token_rec *t = &f->tokens[f->ntokens++];
	t->id = hfm_strdup(id);
	t->user = hfm_strdup(user);
	t->sha256 = hfm_strdup(sha);
	t->created = created ? hfm_strdup(created) : NULL;
	return 0;
}

static int read_rec(void *cls, const cJSON *rec, const char *path, unsigned line,
		    struct hfm_buf *err)
{
	struct reading *rd = cls;

	if (cJSON_GetObjectItemCaseSensitive(rec, "token"))
		return read_token(rd, rec, path, line, err);
	if (cJSON_GetObjectItemCaseSensitive(rec, "user"))
		return read_user(rd->f, rec, path, line, err);
	return hfm_jsonl_bad(err, path, line, "record",
			     "neither a user (\"user\") nor a token (\"token\")");
}

int hfm_tokfile_read(struct hfm_tokfile *f, const char *path, struct hfm_buf *err)
{
	struct reading rd = { .f = f };
	int rc;

	memset(f, 0, sizeof(*f));
	rc = hfm_jsonl_read(path, read_rec, &rd, err);
	if (rc == HFM_ENOENT)
		rc = 0;
	/* A user may be declared after its tokens: check once all are read. */
	for (size_t i = 0; i < f->ntokens; i++)
		if (!find_user(f, f->tokens[i].user))
			rc = hfm_jsonl_bad(err, path, rd.token_lines[i], "user",
					   "\"%s\" is not declared by a user record",
					   f->tokens[i].user);
	free(rd.token_lines);
	return rc;
}

void hfm_tokfile_dispose(struct hfm_tokfile *f)
{
	for (size_t i = 0; i < f->nusers; i++) {
		struct hfm_ident tmp = { .name = f->users[i].name, .fullname = f->users[i].fullname,
					 .groups = f->users[i].groups, .ngroups = f->users[i].ngroups };
		hfm_ident_dispose(&tmp);
		free(f->users[i].hub);
	}
	free(f->users);
	for (size_t i = 0; i < f->ntokens; i++) {
		free(f->tokens[i].id);
		free(f->tokens[i].user);
		free(f->tokens[i].sha256);
		free(f->tokens[i].created);
	}
	free(f->tokens);
	memset(f, 0, sizeof(*f));
}

void hfm_tokfile_format(struct hfm_buf *out, const struct hfm_tokfile *f)
{
	for (size_t i = 0; i < f->nusers; i++) {
		const struct hfm_user_rec *u = &f->users[i];
		hfm_buf_puts(out, "{\"user\":");
		hfm_buf_json_str(out, u->name);
		hfm_buf_puts(out, ",\"groups\":[");
		for (size_t g = 0; g < u->ngroups; g++) {
			if (g)
				hfm_buf_putc(out, ',');
			hfm_buf_json_str(out, u->groups[g]);
		}
		hfm_buf_putc(out, ']');
		if (u->fullname) {
			hfm_buf_puts(out, ",\"fullname\":");
			hfm_buf_json_str(out, u->fullname);
		}
		if (u->hub) {
			hfm_buf_puts(out, ",\"hub\":");
			hfm_buf_json_str(out, u->hub);
		}
		hfm_buf_puts(out, "}\n");
	}
	for (size_t i = 0; i < f->ntokens; i++) {
		const struct hfm_token_rec *t = &f->tokens[i];
		hfm_buf_puts(out, "{\"token\":");
		hfm_buf_json_str(out, t->id);
		hfm_buf_puts(out, ",\"user\":");
		hfm_buf_json_str(out, t->user);
		hfm_buf_printf(out, ",\"sha256\":\"%s\"", t->sha256);
		if (t->created) {
			hfm_buf_puts(out, ",\"created\":");
			hfm_buf_json_str(out, t->created);
		}
		hfm_buf_puts(out, "}\n");
	}
}

static int random_bytes(unsigned char *p, size_t n)
{
	while (n) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return hfm_error_set(HFM_EIO, "getrandom: %s", strerror(errno));
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/* "hf_" + letters drawn without bias (a byte >= 208 = 4 * 52 is drawn again). */
static int new_token(char token[HFM_TOKEN_LEN + 1])
{
	static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned char pool[64];
	size_t n = 0, used = sizeof(pool);

	memcpy(token, "hf_", 3);
	while (n < HFM_TOKEN_LETTERS) {
		if (used == sizeof(pool)) {
			if (random_bytes(pool, sizeof(pool)))
				return HFM_EIO;
			used = 0;
		}
		unsigned char b = pool[used++];
		if (b < 208)
			token[3 + n++] = letters[b % 52];
	}
	token[HFM_TOKEN_LEN] = '\0';
	OPENSSL_cleanse(pool, sizeof(pool));
	return 0;
}

int hfm_tokfile_add(struct hfm_tokfile *f, char token[HFM_TOKEN_LEN + 1],
		    char id[HFM_TOKEN_ID_LEN + 1], const char *user, const char *fullname,
		    const char *const *groups, size_t ngroups)
{
	unsigned char r[6];
	char now[HFM_ISO_DATE_LEN + 1];

	if (!hfm_user_name_ok(user))
		return hfm_error_set(HFM_EINVAL, "user \"%s\": use letters, digits, '.', '_' and '-'",
				     user);
	for (size_t i = 0; i < ngroups; i++)
		if (!hfm_user_name_ok(groups[i]))
			return hfm_error_set(HFM_EINVAL, "group \"%s\": use letters, digits, '.', "
					     "'_' and '-'", groups[i]);
	if (new_token(token) || random_bytes(r, sizeof(r)))
		return HFM_EIO;
	snprintf(id, HFM_TOKEN_ID_LEN + 1, "tk_%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
		 r[4], r[5]);
	struct hfm_user_rec *u = find_user(f, user);
	if (!u) {
		f->users = hfm_realloc(f->users, (f->nusers + 1) * sizeof(*f->users));
		u = &f->users[f->nusers++];
		memset(u, 0, sizeof(*u));
		u->name = hfm_strdup(user);
	}
	if (fullname) {
		free(u->fullname);
		u->fullname = hfm_strdup(fullname);
	}
	if (ngroups) {
		for (size_t i = 0; i < u->ngroups; i++)
			free(u->groups[i]);
		u->groups = hfm_realloc(u->groups, ngroups * sizeof(*u->groups));
		for (size_t i = 0; i < ngroups; i++)
			u->groups[i] = hfm_strdup(groups[i]);
		u->ngroups = ngroups;
	}
	f->tokens = hfm_realloc(f->tokens, (f->ntokens + 1) * sizeof(*f->tokens));
	struct hfm_token_rec *t = &f->tokens[f->ntokens++];
	char sha[HFM_SHA256_HEX + 1];
	hfm_sha256_hex(sha, token, HFM_TOKEN_LEN);
	hfm_iso_date(now, hfm_now_ms());
	t->id = hfm_strdup(id);
	t->user = hfm_strdup(user);
	t->sha256 = hfm_strdup(sha);
	t->created = hfm_strdup(now);
	return 0;
}

int hfm_tokfile_set_hub(struct hfm_tokfile *f, const char *user, const char *hub)
{
	struct hfm_user_rec *u = find_user(f, user);

	if (!u)
		return hfm_error_set(HFM_ENOENT, "no user %s", user);
	if (hub && !hfm_user_name_ok(hub))
		return hfm_error_set(HFM_EINVAL, "hub name \"%s\": use letters, digits, '.', '_' "
				     "and '-'", hub);
	for (size_t i = 0; hub && i < f->nusers; i++)
		if (&f->users[i] != u && f->users[i].hub && !strcmp(f->users[i].hub, hub))
			return hfm_error_set(HFM_EINVAL, "hub name \"%s\" is %s's already", hub,
					     f->users[i].name);
	free(u->hub);
	u->hub = hub ? hfm_strdup(hub) : NULL;
	return 0;
}

int hfm_tokfile_revoke(struct hfm_tokfile *f, const char *id)
{
	for (size_t i = 0; i < f->ntokens; i++) {
		if (strcmp(f->tokens[i].id, id))
			continue;
		free(f->tokens[i].id);
		free(f->tokens[i].user);
		free(f->tokens[i].sha256);
		free(f->tokens[i].created);
		memmove(&f->tokens[i], &f->tokens[i + 1], (f->ntokens - i - 1) * sizeof(*f->tokens));
		f->ntokens--;
		return 0;
	}
	return hfm_error_set(HFM_ENOENT, "no token %s", id);
}

char *hfm_tokens_used_path(const char *path)
{
	return hfm_asprintf("%s.used", path);
}

/* ---- the server's view ---------------------------------------------------------- */

struct live_tok {
	unsigned char sha[SHA256_DIGEST_LENGTH];
	size_t user;                     /* index into f.users */
	int64_t last_used_ms;            /* 0: not since the server started */
};

struct hfm_tokens {
	char *path;
	hfm_log_fn log;
	void *log_cls;
	pthread_mutex_t lock;
	/* under lock */
	struct hfm_filesig sig;
	struct hfm_tokfile f;            /* empty while the file does not read */
	struct live_tok *live;           /* parallel to f.tokens */
	int64_t used_written_ms;
	int used_dirty;
	unsigned long long compares;
};

static void hex_to_bin(unsigned char *out, const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
}

/* Replace the table with the file's records (under lock).  Last-used times survive by id. */
static int load(struct hfm_tokens *t, struct hfm_buf *err)
{
	struct hfm_tokfile f;
	struct hfm_filesig sig;
	int rc;

	hfm_filesig_get(&sig, t->path);
	rc = hfm_tokfile_read(&f, t->path, err);
	if (rc) {
		hfm_tokfile_dispose(&f);     /* fail closed: no token is valid */
		memset(&f, 0, sizeof(f));
	}
	struct live_tok *live = hfm_calloc(f.ntokens ? f.ntokens : 1, sizeof(*live));
	for (size_t i = 0; i < f.ntokens; i++) {
		hex_to_bin(live[i].sha, f.tokens[i].sha256, SHA256_DIGEST_LENGTH);
		for (size_t u = 0; u < f.nusers; u++)
			if (!strcmp(f.users[u].name, f.tokens[i].user))
				live[i].user = u;
		for (size_t k = 0; k < t->f.ntokens; k++)
			if (!strcmp(t->f.tokens[k].id, f.tokens[i].id))
				live[i].last_used_ms = t->live[k].last_used_ms;
	}
	hfm_tokfile_dispose(&t->f);
	free(t->live);
	t->f = f;
	t->live = live;
	t->sig = sig;
	return rc;
}

int hfm_tokens_open(struct hfm_tokens **out, const char *path, hfm_log_fn log, void *log_cls,
		    struct hfm_buf *err)
{
	struct hfm_tokens *t = hfm_calloc(1, sizeof(*t));
	int rc;

	t->path = hfm_strdup(path);
	t->log = log;
	t->log_cls = log_cls;
	pthread_mutex_init(&t->lock, NULL);
	if ((rc = load(t, err))) {
		hfm_tokens_free(t);
		*out = NULL;
		return rc;
	}
	*out = t;
	return 0;
}

/* FILE.used (under lock): every id with a known last use, at most once a minute. */
static void write_used(struct hfm_tokens *t, int64_t now)
{
	struct hfm_buf b = HFM_BUF_INIT(HFM_JSONL_MAX);
	struct hfm_tokfile old;
	char d[HFM_ISO_DATE_LEN + 1];
	char *up = hfm_tokens_used_path(t->path);

	if (!t->used_dirty || now - t->used_written_ms < USED_EVERY_MS)
		goto cleanup;
	memset(&old, 0, sizeof(old));
	for (size_t i = 0; i < t->f.ntokens; i++) {
		if (!t->live[i].last_used_ms)
			continue;
		hfm_iso_date(d, t->live[i].last_used_ms);
		hfm_buf_puts(&b, "{\"token\":");
		hfm_buf_json_str(&b, t->f.tokens[i].id);
		hfm_buf_printf(&b, ",\"last_used\":\"%s\"}\n", d);
	}
	if (hfm_jsonl_replace(up, hfm_buf_cstr(&b), b.len, 0600))
		hfm_log(t->log, t->log_cls, HFM_LOG_WARN, "tokens: %s", hfm_error_last());
	t->used_written_ms = now;
	t->used_dirty = 0;
cleanup:
	free(up);
	hfm_buf_dispose(&b);
}

/* Under lock: the file again if its signature is not the one loaded. */
static void reload_if_changed(struct hfm_tokens *t, const struct hfm_filesig *sig)
{
	struct hfm_buf err = HFM_BUF_INIT(16384);

	if (hfm_filesig_same(sig, &t->sig))
		goto cleanup;
	if (load(t, &err))
		hfm_log(t->log, t->log_cls, HFM_LOG_ERROR,
			"tokens: %s: no token is valid until it reads again: %s", t->path,
			hfm_buf_cstr(&err));
	else
		hfm_log(t->log, t->log_cls, HFM_LOG_INFO, "tokens: %s: reloaded, %zu tokens",
			t->path, t->f.ntokens);
cleanup:
	hfm_buf_dispose(&err);
}

static void fill_ident(struct hfm_ident *who, const struct hfm_user_rec *u)
{
	who->name = hfm_strdup(u->name);
	who->fullname = u->fullname ? hfm_strdup(u->fullname) : NULL;
	who->ngroups = u->ngroups;
	who->groups = hfm_calloc(u->ngroups ? u->ngroups : 1, sizeof(*who->groups));
	for (size_t g = 0; g < u->ngroups; g++)
		who->groups[g] = hfm_strdup(u->groups[g]);
}

int hfm_tokens_hub_user(struct hfm_ident *who, struct hfm_tokens *t, const char *hub_name)
{
	struct hfm_filesig sig;
	int rc = HFM_ENOENT;

	memset(who, 0, sizeof(*who));
	hfm_filesig_get(&sig, t->path);
	pthread_mutex_lock(&t->lock);
	reload_if_changed(t, &sig);
	for (size_t i = 0; i < t->f.nusers; i++)
		if (t->f.users[i].hub && !strcmp(t->f.users[i].hub, hub_name)) {
			fill_ident(who, &t->f.users[i]);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int hfm_tokens_check(struct hfm_ident *who, struct hfm_tokens *t, const char *token)
{
	unsigned char sha[SHA256_DIGEST_LENGTH];
	struct hfm_filesig sig;
	size_t hit = 0;
	int found = 0;

	memset(who, 0, sizeof(*who));
	SHA256((const unsigned char *)token, strlen(token), sha);
	hfm_filesig_get(&sig, t->path);
	pthread_mutex_lock(&t->lock);
	reload_if_changed(t, &sig);
	/* Every record, whatever matched: the time taken says nothing of where. */
	for (size_t i = 0; i < t->f.ntokens; i++) {
		int eq = CRYPTO_memcmp(sha, t->live[i].sha, sizeof(sha)) == 0;
		hit = eq ? i : hit;
		found |= eq;
		t->compares++;
	}
	if (found) {
		int64_t now = hfm_now_ms();
		fill_ident(who, &t->f.users[t->live[hit].user]);
		who->token_id = hfm_strdup(t->f.tokens[hit].id);
		if (t->f.tokens[hit].created)
			who->token_created = hfm_strdup(t->f.tokens[hit].created);
		t->live[hit].last_used_ms = now;
		t->used_dirty = 1;
		write_used(t, now);
	}
	pthread_mutex_unlock(&t->lock);
	OPENSSL_cleanse(sha, sizeof(sha));
	return found ? 0 : HFM_ENOENT;
}

unsigned long long hfm_tokens_compares(struct hfm_tokens *t)
{
	pthread_mutex_lock(&t->lock);
	unsigned long long n = t->compares;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void hfm_tokens_free(struct hfm_tokens *t)
{
	if (!t)
		return;
	hfm_tokfile_dispose(&t->f);
	free(t->live);
	pthread_mutex_destroy(&t->lock);
	free(t->path);
	free(t);
}
