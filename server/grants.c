/* grants.c - offline read grants of gated repos per local user (see grants.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hfm/grants.h"
#include "hfm/jsonl.h"

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

/* ---- records ---------------------------------------------------------------------- */

void hfm_grant_dispose(struct hfm_grant *g)
{
	free(g->user);
	free(g->repo);
	free(g->via);
	free(g->time);
	memset(g, 0, sizeof(*g));
}

void hfm_grant_list_dispose(struct hfm_grant_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		hfm_grant_dispose(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void hfm_grant_list_add(struct hfm_grant_list *l, const char *user, const char *repo,
			const char *via, const char *time, int revoked)
{
	struct hfm_grant *g = hfm_array_push(&l->v, &l->n, sizeof(*g));

	g->user = hfm_strdup(user);
	g->repo = hfm_strdup(repo);
	g->via = hfm_strdup(via);
	g->time = hfm_strdup(time ? time : "");
	g->revoked = revoked;
}

/*
 * The record is a flat JSON object of strings and one boolean: parsed here
 * rather than with cJSON so that the importer (no cJSON) shares it.
 */
struct rec_parse {
	const char *p, *end;
};

static void skip_ws(struct rec_parse *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
		r->p++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return 0;
}

static void put_utf8(struct hfm_buf *out, unsigned cp)
{
	if (cp < 0x80) {
		hfm_buf_putc(out, (char)cp);
	} else if (cp < 0x800) {
		hfm_buf_putc(out, (char)(0xc0 | (cp >> 6)));
		hfm_buf_putc(out, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		hfm_buf_putc(out, (char)(0xe0 | (cp >> 12)));
		hfm_buf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		hfm_buf_putc(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		hfm_buf_putc(out, (char)(0xf0 | (cp >> 18)));
		hfm_buf_putc(out, (char)(0x80 | ((cp >> 12) & 0x3f)));
		hfm_buf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		hfm_buf_putc(out, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A JSON string at r->p (its opening quote) into out; NULL on success, else why not. */
static const char *json_string(struct rec_parse *r, struct hfm_buf *out)
{
	if (r->p >= r->end || *r->p != '"')
		return "a string is expected";
	for (r->p++; r->p < r->end; r->p++) {
		unsigned char c = (unsigned char)*r->p;
		unsigned cp, lo;

		if (c == '"') {
			r->p++;
			return memchr(out->ptr ? out->ptr : "", '\0', out->len) ? "a NUL in a string" :
			       out->err ? "a string too long" : NULL;
		}
		if (c < 0x20)
			return "a control character in a string";
		if (c != '\\') {
			hfm_buf_putc(out, (char)c);
			continue;
		}
		if (++r->p >= r->end)
			break;
		switch (*r->p) {
		case '"': case '\\': case '/': hfm_buf_putc(out, *r->p); break;
		case 'b': hfm_buf_putc(out, '\b'); break;
		case 'f': hfm_buf_putc(out, '\f'); break;
		case 'n': hfm_buf_putc(out, '\n'); break;
		case 'r': hfm_buf_putc(out, '\r'); break;
		case 't': hfm_buf_putc(out, '\t'); break;
		case 'u':
			if (r->end - r->p < 5 || hex4(r->p + 1, &cp))
				return "a bad \\u escape";
			r->p += 4;
			if (cp >= 0xdc00 && cp < 0xe000)
				return "a lone low surrogate";
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (r->end - r->p < 7 || r->p[1] != '\\' || r->p[2] != 'u' ||
				    hex4(r->p + 3, &lo) || lo < 0xdc00 || lo >= 0xe000)
					return "a lone high surrogate";
				r->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(out, cp);
			break;
		default:
			return "a bad escape";
		}
	}
	return "an unterminated string";
}

static int bad(struct hfm_buf *err, const char *path, unsigned line, const char *key,
	       const char *why)
{
	return hfm_jsonl_bad(err, path, line, key, "%s", why);
}

int hfm_grants_parse_record(struct hfm_grant *out, const char *s, size_t n, const char *path,
			    unsigned line, struct hfm_buf *err)
{
	static const char *const keys[] = { "user", "repo", "via", "time", "revoked" };
	struct rec_parse r = { s, s + n };
	char *val[4] = { NULL, NULL, NULL, NULL };
	int revoked = -1, rc = 0;
	struct hfm_repo_id id;
	const char *why;
	size_t k;

	memset(out, 0, sizeof(*out));
	skip_ws(&r);
	if (r.p >= r.end || *r.p++ != '{') {
		rc = bad(err, path, line, "record", "not a JSON object");
		goto cleanup;
	}
	skip_ws(&r);
	if (r.p < r.end && *r.p == '}') {
		r.p++;
		goto members_done;
	}
	for (;;) {
		struct hfm_buf key = HFM_BUF_INIT(64), v = HFM_BUF_INIT(4096);

		skip_ws(&r);
		if ((why = json_string(&r, &key))) {
			hfm_buf_dispose(&key);
			hfm_buf_dispose(&v);
			rc = bad(err, path, line, "record", "not a JSON object (a key is expected)");
			goto cleanup;
		}
		for (k = 0; k < HFM_ARRAY_SIZE(keys) && strcmp(keys[k], hfm_buf_cstr(&key)); k++)
			;
		if (k == HFM_ARRAY_SIZE(keys)) {
			rc = bad(err, path, line, hfm_buf_cstr(&key), "unknown key");
		} else if (k < 4 ? val[k] != NULL : revoked >= 0) {
			rc = bad(err, path, line, keys[k], "given twice");
		} else {
			skip_ws(&r);
			if (r.p >= r.end || *r.p++ != ':') {
				rc = bad(err, path, line, keys[k], "':' is expected");
			} else {
				skip_ws(&r);
				if (k < 4) {
					if ((why = json_string(&r, &v)))
						rc = bad(err, path, line, keys[k], why);
					else
						val[k] = hfm_buf_detach(&v);
				} else if (r.end - r.p >= 4 && !memcmp(r.p, "true", 4)) {
					revoked = 1, r.p += 4;
				} else if (r.end - r.p >= 5 && !memcmp(r.p, "false", 5)) {
					revoked = 0, r.p += 5;
				} else {
					rc = bad(err, path, line, keys[k], "true or false is expected");
				}
			}
		}
		hfm_buf_dispose(&key);
		hfm_buf_dispose(&v);
		if (rc)
			goto cleanup;
		skip_ws(&r);
		if (r.p < r.end && *r.p == ',') {
			r.p++;
			continue;
		}
		if (r.p < r.end && *r.p == '}') {
			r.p++;
			break;
		}
		rc = bad(err, path, line, "record", "not a JSON object (',' or '}' is expected)");
		goto cleanup;
	}
members_done:
	skip_ws(&r);
	if (r.p != r.end)
		rc = bad(err, path, line, "record", "text after the object");
	else if (!val[0] || !hfm_user_name_ok(val[0]))
		rc = bad(err, path, line, "user", "a user name is needed");
	else if (!val[1] || (strncmp(val[1], "models/", 7) && strncmp(val[1], "datasets/", 9) &&
			     strncmp(val[1], "spaces/", 7)))
		rc = bad(err, path, line, "repo",
			 "\"models/…\", \"datasets/…\" or \"spaces/…\" is needed");
	else if (hfm_grants_parse_repo(&id, val[1]))
		rc = bad(err, path, line, "repo", hfm_error_last());
	else if (val[2] && !hfm_user_name_ok(val[2]))
		rc = bad(err, path, line, "via", "a word such as \"admin\" or \"upstream\" is needed");
	else if (val[3] && !hfm_iso_date_valid(val[3], strlen(val[3])))
		rc = bad(err, path, line, "time", "YYYY-MM-DDTHH:MM:SS.mmmZ is needed");
	if (rc)
		goto cleanup;
	out->user = val[0];
	out->repo = val[1];
	out->via = val[2] ? val[2] : hfm_strdup("admin");
	out->time = val[3] ? val[3] : hfm_strdup("");
	out->revoked = revoked == 1;
	return 0;
cleanup:
	for (k = 0; k < 4; k++)
		free(val[k]);
	return rc;
}

void hfm_grants_format_record(struct hfm_buf *out, const struct hfm_grant *g)
{
	hfm_buf_puts(out, "{\"user\":");
	hfm_buf_json_str(out, g->user);
	hfm_buf_puts(out, ",\"repo\":");
	hfm_buf_json_str(out, g->repo);
	hfm_buf_puts(out, ",\"via\":");
	hfm_buf_json_str(out, g->via);
	if (g->time[0]) {
		hfm_buf_puts(out, ",\"time\":");
		hfm_buf_json_str(out, g->time);
	}
	if (g->revoked)
		hfm_buf_puts(out, ",\"revoked\":true");
	hfm_buf_puts(out, "}\n");
}

/* ---- the file ------------------------------------------------------------------ */

/* The record of user for key (a tombstone too), or -1. */
static ssize_t find(const struct hfm_grant_list *l, const char *user, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].user, user) && !strcasecmp(l->v[i].repo, key))
			return (ssize_t)i;
	return -1;
}

/* Does record a replace record b of the same user and repo? */
static int later(const struct hfm_grant *a, const struct hfm_grant *b)
{
	int c = strcmp(a->time, b->time);

	return c > 0 || (c == 0 && a->revoked && !b->revoked);
}

static int read_line(void *cls, const char *s, size_t n, const char *path, unsigned line,
		     struct hfm_buf *err)
{
	struct hfm_grant_list *l = cls;
	struct hfm_grant g;
	int rc = hfm_grants_parse_record(&g, s, n, path, line, err);
	ssize_t at;

	if (rc)
		return rc;
	/* two records of one user and repo (a hand edit): the later one, as a merge would */
	if ((at = find(l, g.user, g.repo)) < 0) {
		*(struct hfm_grant *)hfm_array_push(&l->v, &l->n, sizeof(g)) = g;
	} else if (later(&g, &l->v[at])) {
		hfm_grant_dispose(&l->v[at]);
		l->v[at] = g;
	} else {
		hfm_grant_dispose(&g);
	}
	return 0;
}

int hfm_grants_read(struct hfm_grant_list *out, const char *path, struct hfm_buf *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = hfm_jsonl_lines(path, read_line, out, err);
	if (rc == HFM_ENOENT)
		rc = 0;
	if (rc)
		hfm_grant_list_dispose(out);
	return rc;
}

static int write_list(const char *path, const struct hfm_grant_list *l)
{
	struct hfm_buf out = HFM_BUF_INIT(HFM_JSONL_MAX);
	int rc;

	for (size_t i = 0; i < l->n; i++)
		hfm_grants_format_record(&out, &l->v[i]);
	rc = out.err ? hfm_error_set(HFM_ETOOBIG, "%s: too many grants", path) :
	     hfm_jsonl_replace(path, hfm_buf_cstr(&out), out.len, 0644);
	hfm_buf_dispose(&out);
	return rc;
}

static void set_record(struct hfm_grant *g, const char *via, const char *time, int revoked)
{
	free(g->via);
	free(g->time);
	g->via = hfm_strdup(via);
	g->time = hfm_strdup(time);
	g->revoked = revoked;
}

int hfm_grants_edit(const char *path, const char *user, const struct hfm_repo_id *id,
		    const char *via, int add, struct hfm_buf *err)
{
	struct hfm_grant_list l = { 0 };
	char key[HFM_GRANTS_KEY_MAX], now[HFM_ISO_DATE_LEN + 1];
	int fd, rc;

	if (!hfm_user_name_ok(user))
		return hfm_error_set(HFM_EINVAL, "user \"%s\": use letters, digits, '.', '_' and '-'",
				     user);
	if ((fd = hfm_jsonl_lock(path)) < 0)
		return HFM_EIO;
	hfm_grants_key(key, sizeof(key), id);
	if ((rc = hfm_grants_read(&l, path, err)))
		goto cleanup;
	ssize_t at = find(&l, user, key);
	int live = at >= 0 && !l.v[at].revoked;
	if (add && live)
		goto cleanup;
	if (!add && !live) {
		rc = hfm_error_set(HFM_ENOENT, "%s has no grant for %s", user, key);
		goto cleanup;
	}
	hfm_iso_date(now, hfm_now_ms());
	if (at >= 0)
		set_record(&l.v[at], via, now, !add);
	else
		hfm_grant_list_add(&l, user, key, via, now, 0);
	rc = write_list(path, &l);
cleanup:
	hfm_grant_list_dispose(&l);
	hfm_jsonl_unlock(fd);
	return rc;
}

int hfm_grants_merge(struct hfm_grants_merged *out, const char *path,
		     const struct hfm_grant_list *in, struct hfm_buf *err)
{
	struct hfm_grants_merged m = { 0 };
	struct hfm_grant_list l = { 0 };
	int fd, rc;

	if ((fd = hfm_jsonl_lock(path)) < 0)
		return HFM_EIO;
	if ((rc = hfm_grants_read(&l, path, err)))
		goto cleanup;
	for (size_t i = 0; i < in->n; i++) {
		const struct hfm_grant *g = &in->v[i];
		ssize_t at = find(&l, g->user, g->repo);

		if (at < 0) {
			hfm_grant_list_add(&l, g->user, g->repo, g->via, g->time, g->revoked);
			if (g->revoked)
				m.changed++;         /* a tombstone: nobody's access changes */
			else
				m.granted++;
		} else if (later(g, &l.v[at])) {
			int was = !l.v[at].revoked;

			set_record(&l.v[at], g->via, g->time, g->revoked);
			if (was == !g->revoked)
				m.changed++;
			else if (g->revoked)
				m.revoked++;
			else
				m.granted++;
		} else {
			m.unchanged++;
		}
	}
	if (m.granted || m.revoked || m.changed)
		rc = write_list(path, &l);
cleanup:
	if (!rc && out)
		*out = m;
	hfm_grant_list_dispose(&l);
	hfm_jsonl_unlock(fd);
	return rc;
}

int hfm_grants_list(struct hfm_buf *out, const char *path, struct hfm_buf *err)
{
	struct hfm_grant_list l;
	int rc = hfm_grants_read(&l, path, err);

	for (size_t i = 0; !rc && i < l.n; i++)
		if (!l.v[i].revoked)
			hfm_buf_printf(out, "%s %s %s %s\n", l.v[i].user, l.v[i].repo, l.v[i].via,
				       l.v[i].time[0] ? l.v[i].time : "-");
	hfm_grant_list_dispose(&l);
	return rc;
}

/* ---- the server's view ----------------------------------------------------------- */

struct hfm_grants {
	char *path;
	hfm_log_fn log;
	void *log_cls;
	pthread_mutex_t lock;
	struct hfm_filesig sig;          /* under lock, with l */
	struct hfm_grant_list l;
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
	hfm_grant_list_dispose(&g->l);
	pthread_mutex_destroy(&g->lock);
	free(g->path);
	free(g);
}

int hfm_grants_has(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id)
{
	struct hfm_filesig sig;
	char key[HFM_GRANTS_KEY_MAX];
	ssize_t at;
	int has;

	hfm_grants_key(key, sizeof(key), id);
	hfm_filesig_get(&sig, g->path);
	pthread_mutex_lock(&g->lock);
	if (!g->loaded || !hfm_filesig_same(&sig, &g->sig)) {
		struct hfm_buf err = HFM_BUF_INIT(16384);
		hfm_grant_list_dispose(&g->l);
		if (hfm_grants_read(&g->l, g->path, &err))      /* fail closed: none */
			hfm_log(g->log, g->log_cls, HFM_LOG_ERROR,
				"grants: no grant holds until the file reads again: %s",
				hfm_buf_cstr(&err));
		hfm_buf_dispose(&err);
		g->sig = sig;
		g->loaded = 1;
	}
	at = find(&g->l, user, key);
	has = at >= 0 && !g->l.v[at].revoked;
	pthread_mutex_unlock(&g->lock);
	return has;
}

int hfm_grants_record(struct hfm_grants *g, const char *user, const struct hfm_repo_id *id,
		      const char *via, struct hfm_buf *err)
{
	return hfm_grants_edit(g->path, user, id, via, 1, err);
}
