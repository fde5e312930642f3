/* jsonl_read.c - the records of a JSON-lines file as cJSON objects (jsonl.h; server only). */
#include <cjson/cJSON.h>

#include "hfm/jsonl.h"

struct read_ctx {
	hfm_jsonl_fn fn;
	void *cls;
};

static int read_line(void *cls, const char *s, size_t n, const char *path, unsigned line,
		     struct hfm_buf *err)
{
	struct read_ctx *c = cls;
	cJSON *rec = cJSON_ParseWithLength(s, n);
	int rc;

	if (!cJSON_IsObject(rec))
		rc = hfm_jsonl_bad(err, path, line, "record", "not a JSON object");
	else
		rc = c->fn(c->cls, rec, path, line, err);
	cJSON_Delete(rec);
	return rc;
}

int hfm_jsonl_read(const char *path, hfm_jsonl_fn fn, void *cls, struct hfm_buf *err)
{
	struct read_ctx c = { fn, cls };

	return hfm_jsonl_lines(path, read_line, &c, err);
}

const char *hfm_jsonl_str(const struct cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}
