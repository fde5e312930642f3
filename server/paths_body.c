/* paths_body.c - the paths-info request body: a form or JSON. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hfm/common.h"
#include "hfm/http.h"
#include "hfm/path.h"
#include "hfm/paths_body.h"

struct parse {
	struct hfm_paths_body *out;
	int too_many;
};

static void add(struct parse *p, char *s)
{
	struct hfm_paths_body *b = p->out;

	if (b->n >= HFM_PATHS_BODY_MAX) {
		p->too_many = 1;
		free(s);
		return;
	}
	b->v = hfm_realloc(b->v, (b->n + 1) * sizeof(*b->v));
	b->v[b->n++] = s;
}

static void form_cb(void *cls, char *key, char *val)
{
	struct parse *p = cls;

	if (!strcmp(key, "paths") || !strcmp(key, "paths[]"))
		add(p, val);
	else {
		if (!strcmp(key, "expand"))
			p->out->expand = hfm_parse_bool(val, 0);
		free(val);
	}
	free(key);
}

static int parse_json(struct parse *p, const char *body, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	cJSON *paths, *expand;
	int rc = 0;

	if (!root)
		return hfm_error_set(HFM_EINVAL, "The body is not valid JSON");
	paths = cJSON_GetObjectItemCaseSensitive(root, "paths");
	expand = cJSON_GetObjectItemCaseSensitive(root, "expand");
	if (cJSON_IsString(paths)) {
		add(p, hfm_strdup(paths->valuestring));
	} else if (cJSON_IsArray(paths)) {
		cJSON *it;
		cJSON_ArrayForEach(it, paths) {
			if (!cJSON_IsString(it)) {
				rc = hfm_error_set(HFM_EINVAL, "\"paths\" must be a list of strings");
				break;
			}
			add(p, hfm_strdup(it->valuestring));
		}
	} else {
		rc = hfm_error_set(HFM_EINVAL, "The body needs \"paths\": a list of strings");
	}
	if (cJSON_IsBool(expand))
		p->out->expand = cJSON_IsTrue(expand);
	else if (cJSON_IsString(expand))
		p->out->expand = hfm_parse_bool(expand->valuestring, 0);
	cJSON_Delete(root);
	return rc;
}

/* Trim slashes and drop what no repo can hold, keeping the order. */
static void keep_valid(struct hfm_paths_body *b)
{
	size_t i, k = 0;

	for (i = 0; i < b->n; i++) {
		char *q = b->v[i];
		size_t n;

		while (*q == '/')
			q++;
		n = strlen(q);
		while (n > 0 && q[n - 1] == '/')
			q[--n] = '\0';
		if (*q && hfm_path_valid(q)) {
			memmove(b->v[i], q, n + 1);
			b->v[k++] = b->v[i];
		} else {
			free(b->v[i]);
		}
	}
	b->n = k;
}

int hfm_paths_body_parse(struct hfm_paths_body *out, const char *content_type,
			 const char *body, size_t len)
{
	struct parse p = { out, 0 };
	size_t i = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' ||
			   body[i] == '\t'))
		i++;
	if ((content_type && strstr(content_type, "json")) ||
	    (!content_type && i < len && body[i] == '{'))
		rc = parse_json(&p, body, len);
	else
		hfm_form_parse(body, len, form_cb, &p);
	if (!rc && p.too_many)
		rc = hfm_error_set(HFM_EINVAL, "Too many paths (at most %d)", HFM_PATHS_BODY_MAX);
	if (!rc)
		keep_valid(out);
	return rc;
}

void hfm_paths_body_dispose(struct hfm_paths_body *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}
