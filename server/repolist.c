/* repolist.c - the repo listing of the API and the web UI (see repolist.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "hfm/repolist.h"

#define CARD_MAX (1u << 20)              /* a README read for its tags */
#define INFO_MAX (64u << 20)

/* ---- the query ---------------------------------------------------------------- */

static int add_filter(struct hfm_rl_query *q, const char *v)
{
	if (!*v)
		return 0;
	if (q->nfilters >= HFM_RL_FILTERS)
		return hfm_error_set(HFM_EINVAL, "\"filter\" takes at most %d values", HFM_RL_FILTERS);
	q->filters[q->nfilters++] = v;
	return 0;
}

int hfm_rl_query_parse(struct hfm_rl_query *q, hfm_rl_arg_fn arg, void *cls)
{
	const char *v;
	char *end;

	memset(q, 0, sizeof(*q));
	q->limit = HFM_RL_PAGE_MAX;
	q->search = arg(cls, "search", 0);
	if (q->search && !*q->search)
		q->search = NULL;
	q->author = arg(cls, "author", 0);
	if (q->author && !*q->author)
		q->author = NULL;
	/* filter=a&filter=b as huggingface_hub sends; a comma-separated value is
	 * one tag (tags such as "license:mit" have no commas) */
	for (size_t i = 0; (v = arg(cls, "filter", i)); i++)
		if (add_filter(q, v))
			return HFM_EINVAL;
	if ((v = arg(cls, "pipeline_tag", 0)) && add_filter(q, v))
		return HFM_EINVAL;

	int dflt_desc = 1;
	v = arg(cls, "sort", 0);
	if (!v || !*v || !strcmp(v, "id")) {
		q->sort = HFM_RL_ID;
		dflt_desc = 0;
	} else if (!strcmp(v, "lastModified") || !strcmp(v, "last_modified")) {
		q->sort = HFM_RL_MODIFIED;
	} else if (!strcmp(v, "createdAt") || !strcmp(v, "created_at")) {
		q->sort = HFM_RL_CREATED;
	} else if (!strcmp(v, "downloads") || !strcmp(v, "likes") || !strcmp(v, "trendingScore") ||
		   !strcmp(v, "trending_score") || !strcmp(v, "likes30d")) {
		q->sort = HFM_RL_UNRANKED;
		dflt_desc = 0;
	} else {
		return hfm_error_set(HFM_EINVAL, "\"sort\" must be one of id, lastModified, createdAt, "
				     "downloads, likes, trendingScore");
	}
	q->descending = dflt_desc;
	if ((v = arg(cls, "direction", 0)) && *v) {
		if (!strcmp(v, "-1"))
			q->descending = 1;
		else if (!strcmp(v, "1"))
			q->descending = 0;
		else
			return hfm_error_set(HFM_EINVAL, "\"direction\" must be 1 or -1");
	}
	if ((v = arg(cls, "limit", 0)) && *v) {
		long l = strtol(v, &end, 10);
		if (*end || end == v || l < 1)
			return hfm_error_set(HFM_EINVAL, "\"limit\" must be a positive integer");
		q->limit = l > HFM_RL_PAGE_MAX ? HFM_RL_PAGE_MAX : (size_t)l;
	}
	if ((v = arg(cls, "full", 0)) && hfm_parse_bool(v, 0))
		q->want |= HFM_RL_FILES;
	for (size_t i = 0; (v = arg(cls, "expand", i)) || (v = arg(cls, "expand[]", i)); i++)
		if (!strcmp(v, "siblings"))
			q->want |= HFM_RL_FILES;
	if ((v = arg(cls, "cursor", 0)) && *v) {
		char *dec = hfm_b64url_decode(v);
		char *sp = dec ? strchr(dec, ' ') : NULL;
		int bad = !sp;
		if (!bad) {
			*sp = '\0';
			long long k = strtoll(dec, &end, 10);
			bad = *end || end == dec || strlen(sp + 1) > HFM_REPO_NAME_MAX;
			if (!bad) {
				q->cur_key = (int64_t)k;
				memcpy(q->cur_name, sp + 1, strlen(sp + 1) + 1);
				q->has_cursor = 1;
			}
		}
		free(dec);
		if (bad)
			return hfm_error_set(HFM_EINVAL, "\"cursor\" is not a cursor this server gave");
	}
	return 0;
}

/* ---- describing one repo ------------------------------------------------------------ */

static void item_dispose(struct hfm_rl_item *it)
{
	free(it->name);
	for (size_t i = 0; i < it->ntags; i++)
		free(it->tags[i]);
	free(it->tags);
	for (size_t i = 0; i < it->nfiles; i++)
		free(it->files[i]);
	free(it->files);
	memset(it, 0, sizeof(*it));
}

static void add_tag(void *cls, const char *tag, size_t n)
{
	struct hfm_rl_item *it = cls;
	if (!n || it->ntags >= 256)
		return;
	for (size_t i = 0; i < it->ntags; i++)
		if (strlen(it->tags[i]) == n && !memcmp(it->tags[i], tag, n))
			return;
	it->tags = hfm_realloc(it->tags, (it->ntags + 1) * sizeof(*it->tags));
	char *t = hfm_malloc(n + 1);
	memcpy(t, tag, n);
	t[n] = '\0';
	it->tags[it->ntags++] = t;
}

/* One YAML scalar: quotes and spaces around it dropped. */
static void scalar(const char *s, const char *e, const char **ts, size_t *tn)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (e - s >= 2 && (*s == '"' || *s == '\'') && e[-1] == *s) {
		s++;
		e--;
	}
	*ts = s;
	*tn = (size_t)(e - s);
}

void hfm_rl_card_tags(const char *text, size_t len,
		      void (*cb)(void *cls, const char *tag, size_t n), void *cls)
{
	const char *p = text, *end = text + len;
	char key[32] = "";                       /* the list key we are under */

	if (len < 4 || strncmp(p, "---", 3) || (p[3] != '\n' && p[3] != '\r'))
		return;
	p = memchr(p, '\n', (size_t)(end - p));
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *ts;
		size_t tn;
		if (eol - p >= 3 && !strncmp(p, "---", 3))
			return;
		if (*p == ' ' || *p == '\t' || *p == '-') {          /* a list item */
			const char *q = p;
			while (q < eol && (*q == ' ' || *q == '\t'))
				q++;
			if (q < eol && *q == '-' && key[0]) {
				scalar(q + 1, eol, &ts, &tn);
				if (!strcmp(key, "tags") || !strcmp(key, "language"))
					cb(cls, ts, tn);
				else if (!strcmp(key, "license")) {
					char t[160];
					int k = snprintf(t, sizeof(t), "license:%.*s", (int)tn, ts);
					if (k > 0 && (size_t)k < sizeof(t) && tn)
						cb(cls, t, (size_t)k);
				}
			}
		} else {
			const char *colon = memchr(p, ':', (size_t)(eol - p));
			key[0] = '\0';
			if (colon && (size_t)(colon - p) < sizeof(key)) {
				memcpy(key, p, (size_t)(colon - p));
				key[colon - p] = '\0';
				scalar(colon + 1, eol, &ts, &tn);
				if (tn && *ts == '[') {                 /* [a, b] flow list */
					const char *s = ts + 1, *e = ts + tn;
					if (e > s && e[-1] == ']')
						e--;
					while (s < e) {
						const char *c = memchr(s, ',', (size_t)(e - s));
						const char *stop = c ? c : e;
						const char *vs;
						size_t vn;
						scalar(s, stop, &vs, &vn);
						if (!strcmp(key, "tags") || !strcmp(key, "language"))
							cb(cls, vs, vn);
						s = stop + 1;
					}
				} else if (tn && !strcmp(key, "license")) {
					char t[160];
					int k = snprintf(t, sizeof(t), "license:%.*s", (int)tn, ts);
					if (k > 0 && (size_t)k < sizeof(t))
						cb(cls, t, (size_t)k);
				} else if (tn && (!strcmp(key, "library_name") ||
						  !strcmp(key, "pipeline_tag") ||
						  !strcmp(key, "tags") || !strcmp(key, "language"))) {
					cb(cls, ts, tn);
				}
			}
		}
		p = eol;
	}
}

/* Tags, gated and createdAt from a source's own info JSON (the cache replays upstream's). */
static void info_tags(struct hfm_rl_item *it, const struct hfm_buf *info)
{
	cJSON *j = cJSON_ParseWithLength(hfm_buf_cstr(info), info->len), *x;
	if (!j)
		return;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(j, "tags"))
		if (cJSON_IsString(x))
			add_tag(it, x->valuestring, strlen(x->valuestring));
	static const char *const keys[] = { "pipeline_tag", "library_name" };
	for (size_t i = 0; i < 2; i++)
		if (cJSON_IsString(x = cJSON_GetObjectItemCaseSensitive(j, keys[i])))
			add_tag(it, x->valuestring, strlen(x->valuestring));
	x = cJSON_GetObjectItemCaseSensitive(j, "gated");
	it->gated = cJSON_IsTrue(x) || (cJSON_IsString(x) && strcmp(x->valuestring, "false"));
	cJSON_Delete(j);
}

/*
 * Describe `it` from its default branch.  1 = leave it out (the caller may
 * not read it), 0 = keep it (described as far as its source could), or
 * HFM_EAGAIN.
 */
static int describe(struct hfm_rl_item *it, const struct hfm_catalog *c, unsigned want,
		    struct hfm_ctx *ctx)
{
	struct hfm_repo_id id = { .type = it->type };
	struct hfm_found f;
	struct hfm_list *l = NULL;
	int rc;

	memcpy(id.name, it->name, strlen(it->name) + 1);
	rc = hfm_catalog_find(&f, c, &id, "HEAD", ctx);
	if (rc == HFM_EAGAIN)
		return rc;
	if (rc == HFM_ENOREV)
		return 0;                /* the repo is there, its default branch is not: no date */
	if (rc)
		return 1;                /* not for this caller, or not knowable now (a private
					  * repo's token cannot be checked): left out */
	const struct hfm_source_ops *ops = f.repo->src->ops;
	it->kind = ops->kind;
	memcpy(it->commit, f.rc.commit, sizeof(it->commit));
	it->modified_ms = f.rc.date_ms;
	it->created_ms = f.rc.created_ms ? f.rc.created_ms : f.rc.date_ms;

	if (ops->info) {
		struct hfm_buf info = HFM_BUF_INIT(INFO_MAX);
		rc = ops->info(&info, f.repo, &f.rc, 0, ctx);
		if (!rc)
			info_tags(it, &info);
		hfm_buf_dispose(&info);
	} else {
		struct hfm_buf card = HFM_BUF_INIT(CARD_MAX + 1);
		rc = hfm_catalog_read(&card, c, &f, "README.md", CARD_MAX, ctx);
		if (!rc)
			hfm_rl_card_tags(card.ptr, card.len, add_tag, it);
		hfm_buf_dispose(&card);
	}
	if (rc == HFM_EAGAIN)
		goto cleanup;
	rc = 0;
	if (want & (HFM_RL_SIZE | HFM_RL_FILES)) {
		rc = ops->list(&l, f.repo, f.rc.commit, "", HFM_LIST_RECURSIVE, ctx);
		if (rc == HFM_EAGAIN)
			goto cleanup;
		for (size_t i = 0; !rc && i < l->n; i++) {
			const struct hfm_entry *e = l->items[i];
			if (e->is_dir)
				continue;
			it->size += e->size;
			if (want & HFM_RL_FILES) {
				it->files = hfm_realloc(it->files, (it->nfiles + 1) * sizeof(*it->files));
				it->files[it->nfiles++] = hfm_strdup(e->path);
			}
		}
		rc = 0;
	}
cleanup:
	if (l)
		hfm_list_free(l);
	hfm_found_dispose(&f);
	return rc;
}

/* ---- filter, sort, page ------------------------------------------------------------ */

static int contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return 1;
	return n == 0;
}

static int name_matches(const char *name, const struct hfm_rl_query *q)
{
	if (q->search && !contains_nocase(name, q->search))
		return 0;
	if (q->author) {
		const char *slash = strchr(name, '/');
		size_t n = strlen(q->author);
		if (!slash || (size_t)(slash - name) != n || strncasecmp(name, q->author, n))
			return 0;
	}
	return 1;
}

static int tags_match(const struct hfm_rl_item *it, const struct hfm_rl_query *q)
{
	for (size_t f = 0; f < q->nfilters; f++) {
		int hit = 0;
		for (size_t i = 0; !hit && i < it->ntags; i++)
			hit = !strcmp(it->tags[i], q->filters[f]);
		if (!hit)
			return 0;
	}
	return 1;
}

static int64_t sort_key(const struct hfm_rl_item *it, const struct hfm_rl_query *q)
{
	return q->sort == HFM_RL_MODIFIED ? it->modified_ms :
	       q->sort == HFM_RL_CREATED ? it->created_ms : 0;
}

/* Order of (key, name) pairs under q: ties on the key go by name, ascending. */
static int cmp_pos(int64_t ka, const char *na, int64_t kb, const char *nb,
		   const struct hfm_rl_query *q)
{
	if (ka != kb)
		return (ka < kb ? -1 : 1) * (q->descending ? -1 : 1);
	int d = strcmp(na, nb);
	if (q->sort == HFM_RL_ID && q->descending)
		d = -d;
	return d;
}

static int cmp_items(const void *a, const void *b, void *cls)
{
	const struct hfm_rl_item *x = a, *y = b;
	const struct hfm_rl_query *q = cls;
	return cmp_pos(sort_key(x, q), x->name, sort_key(y, q), y->name, q);
}

int hfm_rl_run(struct hfm_rl_page *out, const struct hfm_catalog *c, enum hfm_repo_type t,
	       const struct hfm_rl_query *q, struct hfm_ctx *ctx)
{
	struct hfm_listed *names;
	size_t n, k = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	hfm_catalog_repos(&names, &n, c, t, ctx);
	struct hfm_rl_item *v = n ? hfm_calloc(n, sizeof(*v)) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (!name_matches(names[i].name, q) || (q->sources && !(names[i].sources & q->sources)))
			continue;
		struct hfm_rl_item *it = &v[k];
		it->name = names[i].name;
		names[i].name = NULL;
		it->type = t;
		it->sources = names[i].sources;
		rc = describe(it, c, q->want, ctx);
		if (rc == HFM_EAGAIN) {
			item_dispose(it);
			goto cleanup;
		}
		if (rc == 1 || !tags_match(it, q)) {
			item_dispose(it);
			continue;
		}
		k++;
	}
	rc = 0;
	if (k)
		qsort_r(v, k, sizeof(*v), cmp_items, (void *)q);
	size_t from = 0;
	if (q->has_cursor)
		while (from < k && cmp_pos(sort_key(&v[from], q), v[from].name, q->cur_key,
					   q->cur_name, q) <= 0)
			from++;
	size_t to = k - from > q->limit ? from + q->limit : k;
	for (size_t i = 0; i < k; i++)
		if (i < from || i >= to)
			item_dispose(&v[i]);
	if (from && to > from)
		memmove(v, v + from, (to - from) * sizeof(*v));
	out->v = v;
	out->n = to - from;
	out->total = k;
	out->more = to < k;
	v = NULL;
	k = 0;
cleanup:
	for (size_t i = 0; i < k; i++)
		item_dispose(&v[i]);
	free(v);
	hfm_listed_free(names, n);
	return rc;
}

void hfm_rl_page_dispose(struct hfm_rl_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		item_dispose(&p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

void hfm_rl_cursor(struct hfm_buf *out, const struct hfm_rl_query *q,
		   const struct hfm_rl_item *last)
{
	char s[HFM_REPO_NAME_MAX + 32];
	snprintf(s, sizeof(s), "%" PRId64 " %s", sort_key(last, q), last->name);
	hfm_buf_b64url(out, s);
}
