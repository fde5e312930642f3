/* grants.c - offline read grants of gated repos per local user (see grants.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hfm/grants.h"
#include "hfm/jsonl.h"
#include "hfm/tokens.h"

void hfm_grants_key(char *key, size_t cap, const struct hfm_repo_id *id)
{
	snprintf(key, cap, "%s/%s", hfm_repo_type_plural(id->type), id->name);
}

int hfm_grants_parse_repo(struct hfm_repo_id *id, const char *s)
{
	static const struct { const char *prefix; enum hfm_repo_type t; } types[] = {
		{ "models/", HFM_MODEL }, { "datasets/", HFM_DATASET }, { "spaces/", HFM_SPACE },
	};
	enum hfm_repo_type t = HFM_MODEL;
	char buf[HFM_REPO_NAME_MAX + 1];

	for (size_t i = 0; i < HFM_ARRAY_SIZE(types); i++)
		if (!strncmp(s, types[i].prefix, strlen(types[i].prefix))) {
			t = types[i].t;
			s += strlen(types[i].prefix);
		}
	if (strlen(s) >= sizeof(buf))
		return hfm_error_set(HFM_EINVAL, "repo \"%s\": too long", s);
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (hfm_repo_id_set(id, t, slash ? buf : NULL, slash ? slash + 1 : buf))
		return hfm_error_set(HFM_EINVAL, "repo \"%s\": not a repo id such as org/name or "
				     "datasets/org/name", s);
	return 0;
}

/* ---- the file ------------------------------------------------------------------ */

struct grant {
	char *user, *repo, *via, *time;
};

struct grant_list {
	struct grant *v;
	size_t n;
};

static void list_dispose(struct grant_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].user);
		free(l->v[i].repo);
		free(l->v[i].via);
		free(l->v[i].time);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int read_grant(void *cls, const cJSON *rec, const char *path, unsigned line,
		      struct hfm_buf *err)
{
	struct grant_list *l = cls;
	const char *user = hfm_jsonl_str(rec, "user");
	const char *repo = hfm_jsonl_str(rec, "repo");
	const char *via = hfm_jsonl_str(rec, "via");
	const char *time = hfm_jsonl_str(rec, "time");
	struct hfm_repo_id id;

	for (const cJSON *it = rec->child; it; it = it->next)
		if (strcmp(it->string, "user") && strcmp(it->string, "repo") &&
		    strcmp(it->string, "via") && strcmp(it->string, "time"))
			return hfm_jsonl_bad(err, path, line, it->string, "unknown key");
	if (!user || !hfm_tokens_name_ok(user))
		return hfm_jsonl_bad(err, path, line, "user", "a user name is needed");
	if (!repo || (strncmp(repo, "models/", 7) && strncmp(repo, "datasets/", 9) &&
		      strncmp(repo, "spaces/", 7)))
		return hfm_jsonl_bad(err, path, line, "repo",
				     "\"models/…\", \"datasets/…\" or \"spaces/…\" is needed");
	if (hfm_grants_parse_repo(&id, repo))
		return hfm_jsonl_bad(err, path, line, "repo", "%s", hfm_error_last());
	l->v = hfm_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct grant *g = &l->v[l->n++];
	g->user = hfm_strdup(user);
	g->repo = hfm_strdup(repo);
	g->via = hfm_strdup(via ? via : "admin");
	g->time = time ? hfm_strdup(time) : NULL;
	return 0;
}

static int read_list(struct grant_list *l, const char *path, struct hfm_buf *err)
{
	memset(l, 0, sizeof(*l));
	int rc = hfm_jsonl_read(path, read_grant, l, err);
	return rc == HFM_ENOENT ? 0 : rc;
}

static ssize_t find(const struct grant_list *l, const char *user, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].user, user) && !strcasecmp(l->v[i].repo, key))
			return (ssize_t)i;
	return -1;
}

int hfm_grants_edit(const char *path, const char *user, const struct hfm_repo_id *id,
		    const char *via, int add, struct hfm_buf *err)
{
	struct grant_list l;
	struct hfm_buf out = HFM_BUF_INIT(HFM_JSONL_MAX);
	char key[HFM_REPO_NAME_MAX + 16], now[HFM_ISO_DATE_LEN + 1];
	int fd, rc;

	if (!hfm_tokens_name_ok(user))
		return hfm_error_set(HFM_EINVAL, "user \"%s\": use letters, digits, '.', '_' and '-'",
				     user);
	if ((fd = hfm_jsonl_lock(path)) < 0)
		return HFM_EIO;
	hfm_grants_key(key, sizeof(key), id);
	if ((rc = read_list(&l, path, err)))
		goto cleanup;
	ssize_t at = find(&l, user, key);
	if (add && at >= 0)
		goto cleanup;
	if (!add && at < 0) {
		rc = hfm_error_set(HFM_ENOENT, "%s has no grant for %s", user, key);
		goto cleanup;
	}
	if (add) {
		l.v = hfm_realloc(l.v, (l.n + 1) * sizeof(*l.v));
		hfm_iso_date(now, hfm_now_ms());
		l.v[l.n++] = (struct grant){ hfm_strdup(user), hfm_strdup(key), hfm_strdup(via),
					     hfm_strdup(now) };
	}
	for (size_t i = 0; i < l.n; i++) {
		if ((ssize_t)i == at)
			continue;
		hfm_buf_puts(&out, "{\"user\":");
		hfm_buf_json_str(&out, l.v[i].user);
		hfm_buf_puts(&out, ",\"repo\":");
		hfm_buf_json_str(&out, l.v[i].repo);
		hfm_buf_puts(&out, ",\"via\":");
		hfm_buf_json_str(&out, l.v[i].via);
		if (l.v[i].time) {
			hfm_buf_puts(&out, ",\"time\":");
			hfm_buf_json_str(&out, l.v[i].time);
		}
		hfm_buf_puts(&out, "}\n");
	}
	rc = out.err ? hfm_error_set(HFM_ETOOBIG, "%s: too many grants", path) :
	     hfm_jsonl_replace(path, hfm_buf_cstr(&out), out.len, 0644);
cleanup:
	list_dispose(&l);
	hfm_buf_dispose(&out);
	hfm_jsonl_unlock(fd);
	return rc;
}

int hfm_grants_list(struct hfm_buf *out, const char *path, struct hfm_buf *err)
{
	struct grant_list l;
	int rc = read_list(&l, path, err);

	for (size_t i = 0; !rc && i < l.n; i++)
		hfm_buf_printf(out, "%s %s %s %s\n", l.v[i].user, l.v[i].repo, l.v[i].via,
			       l.v[i].time ? l.v[i].time : "-");
	list_dispose(&l);
	return rc;
}

/* ---- the server's view ----------------------------------------------------------- */

struct hfm_grants {
	char *path;
	hfm_log_fn log;
	void *log_cls;
	pthread_mutex_t lock;
	struct hfm_filesig sig;          /* under lock, with l */
	struct grant_list l;
	int loaded;
};

struct hfm_grants *hfm_grants_new(const char *path, hfm_log_fn log, void *log_cls)
{
	struct hfm_grants *g = hfm_calloc(1, sizeof(*g));

	g->path = hfm_strdup(path);
	g->log = log;
	g->log_cls = log_cls;
	pthread_mutex_init(&g->lock, NULL);
	return g;
}

void hfm_grants_free(struct hfm_grants *g)
{
	if (!g)
		return;
	list_dispose(&g->l);
	pthread_mutex_destroy(&g->lock);
	free(g->path);
	free(g);
}

int hfm_grants_has(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id)
{
	struct hfm_filesig sig;
	char key[HFM_REPO_NAME_MAX + 16];
	int has;

	hfm_grants_key(key, sizeof(key), id);
	hfm_filesig_get(&sig, g->path);
	pthread_mutex_lock(&g->lock);
	if (!g->loaded || !hfm_filesig_same(&sig, &g->sig)) {
		struct hfm_buf err = HFM_BUF_INIT(16384);
		list_dispose(&g->l);
		if (read_list(&g->l, g->path, &err)) {
			list_dispose(&g->l);     /* fail closed */
			hfm_log(g->log, g->log_cls, HFM_LOG_ERROR,
				"grants: no grant holds until the file reads again: %s",
				hfm_buf_cstr(&err));
		}
		hfm_buf_dispose(&err);
		g->sig = sig;
		g->loaded = 1;
	}
	has = find(&g->l, user, key) >= 0;
	pthread_mutex_unlock(&g->lock);
	return has;
}

int hfm_grants_record(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id,
		      const char *via, struct hfm_buf *err)
{
	return hfm_grants_edit(g->path, user, id, via, 1, err);
}
