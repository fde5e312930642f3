/*
 * fuzz_repolist: the listing's outside inputs on any bytes -- the query
 * (split as a form, then hfm_rl_query_parse()) and a model card's front
 * matter (hfm_rl_card_tags()).
 *
 * Promises checked (repolist.h): the query is refused with a message, or
 * its limit is 1..HFM_RL_PAGE_MAX, at most HFM_RL_FILTERS filters, a
 * cursor's name fits a repo id; every tag is a slice of the input (nothing
 * read past its length: the buffer has no NUL after it).
 */
#include <stdlib.h>
#include <string.h>

#include "hfm/http.h"
#include "hfm/repolist.h"
#include "fuzz.h"

struct args {
	char *k[64], *v[64];
	size_t n;
};

static void add(void *cls, char *k, char *v)
{
	struct args *a = cls;
	if (a->n < 64) {
		a->k[a->n] = k;
		a->v[a->n++] = v;
	} else {
		free(k);
		free(v);
	}
}

static const char *arg(void *cls, const char *name, size_t n)
{
	struct args *a = cls;
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->k[i], name) && n-- == 0)
			return a->v[i];
	return NULL;
}

static const uint8_t *lo, *hi;

static void tag(void *cls, const char *t, size_t n)
{
	(void)cls;
	FUZZ_CHECK(n == 0 || ((const uint8_t *)t >= lo && (const uint8_t *)t + n <= hi) ||
		   !strncmp(t, "license:", 8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct args a = { .n = 0 };
	struct hfm_rl_query q;

	hfm_form_parse((const char *)data, size, add, &a);
	hfm_error_clear();
	if (hfm_rl_query_parse(&q, arg, &a)) {
		FUZZ_CHECK(hfm_error_last()[0] != '\0');
	} else {
		FUZZ_CHECK(q.limit >= 1 && q.limit <= HFM_RL_PAGE_MAX);
		FUZZ_CHECK(q.nfilters <= HFM_RL_FILTERS);
		FUZZ_CHECK(!q.has_cursor || strlen(q.cur_name) <= HFM_REPO_NAME_MAX);
		FUZZ_CHECK(q.sort <= HFM_RL_UNRANKED);
	}
	for (size_t i = 0; i < a.n; i++) {
		free(a.k[i]);
		free(a.v[i]);
	}
	lo = data;
	hi = data + size;
	hfm_rl_card_tags((const char *)data, size, tag, NULL);
	return 0;
}
