/* infer.c - repo names and types from remote URLs and cache folder names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "infer.h"

#define MAX_SEGMENTS 64

static int type_segment(enum hfm_repo_type *t, const char *seg)
{
	if (!strcmp(seg, "datasets"))
		*t = HFM_DATASET;
	else if (!strcmp(seg, "spaces"))
		*t = HFM_SPACE;
	else if (!strcmp(seg, "models"))
		*t = HFM_MODEL;
	else
		return 0;
	return 1;
}

/* "scheme://" at the start: its length, else 0. */
static size_t scheme_len(const char *url)
{
	const char *p = url;

	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	       (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')
		p++;
	return p > url && !strncmp(p, "://", 3) ? (size_t)(p - url) + 3 : 0;
}

/* scp-like "[user@]host:path": a ':' before any '/'. */
static const char *scp_path(const char *url)
{
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/');

	if (!colon || colon == url || (slash && slash < colon))
		return NULL;
	return colon + 1;
}

int hfm_imp_url_local_path(char **path, const char *url)
{
	size_t sl = scheme_len(url);

	if (sl) {
		if (sl != 7 || strncmp(url, "file://", 7))
			return HFM_EINVAL;
		/* file:///abs and file://localhost/abs */
		url += 7;
		if (!strncmp(url, "localhost/", 10))
			url += 9;
		if (url[0] != '/')
			return HFM_EINVAL;
		*path = hfm_strdup(url);
		return 0;
	}
	if (url[0] != '/' && scp_path(url))
		return HFM_EINVAL;
	if (!url[0])
		return HFM_EINVAL;
	*path = hfm_strdup(url);
	return 0;
}

int hfm_imp_id_from_url(struct hfm_repo_id *out, const char *url)
{
	char *path, *seg[MAX_SEGMENTS], *p, *save = NULL;
	enum hfm_repo_type type = HFM_MODEL;
	size_t sl = scheme_len(url), n = 0, len;
	const char *rest;
	int rc = HFM_EINVAL;

	if (sl) {
		if (sl == 7 && !strncmp(url, "file://", 7))
			return HFM_EINVAL;
		rest = strchr(url + sl, '/');   /* the path after [user@]host[:port] */
		if (!rest)
			return HFM_EINVAL;
	} else if (url[0] != '/' && (rest = scp_path(url))) {
		/* git@hf.co:org/name */
	} else {
		return HFM_EINVAL;
	}
	path = hfm_strdup(rest);
	path[strcspn(path, "?#")] = '\0';
	for (p = strtok_r(path, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGMENTS)
			goto out;
		if (hfm_pct_decode(p, p, strlen(p), 0) < 0)
			goto out;
		seg[n++] = p;
	}
	if (n == 0)
		goto out;
	len = strlen(seg[n - 1]);
	if (len > 4 && !strcmp(seg[n - 1] + len - 4, ".git"))
		seg[n - 1][len - 4] = '\0';

	if (n >= 3 && type_segment(&type, seg[n - 3]))
		rc = hfm_repo_id_set(out, type, seg[n - 2], seg[n - 1]);
	else if (n >= 2 && type_segment(&type, seg[n - 2]))
		rc = hfm_repo_id_set(out, type, NULL, seg[n - 1]);
	else if (n >= 2)
		rc = hfm_repo_id_set(out, HFM_MODEL, seg[n - 2], seg[n - 1]);
	else if (!type_segment(&type, seg[0]))
		rc = hfm_repo_id_set(out, HFM_MODEL, NULL, seg[0]);
out:
	free(path);
	return rc;
}

int hfm_imp_id_from_cache_dir(struct hfm_repo_id *out, const char *dirname)
{
	static const struct { const char *prefix; enum hfm_repo_type type; } kinds[] = {
		{ "models--", HFM_MODEL },
		{ "datasets--", HFM_DATASET },
		{ "spaces--", HFM_SPACE },
	};
	size_t i;

	for (i = 0; i < HFM_ARRAY_SIZE(kinds); i++) {
		size_t pl = strlen(kinds[i].prefix);
		const char *rest = dirname + pl, *sep;
		char *org;
		int rc;

		if (strncmp(dirname, kinds[i].prefix, pl))
			continue;
		/* the Hub allows no "--" inside a name, so the first one splits */
		sep = strstr(rest, "--");
		if (!sep)
			return hfm_repo_id_set(out, kinds[i].type, NULL, rest);
		if (strstr(sep + 2, "--"))
			return HFM_EINVAL;
		org = hfm_strndup(rest, (size_t)(sep - rest));
		rc = hfm_repo_id_set(out, kinds[i].type, org, sep + 2);
		free(org);
		return rc;
	}
	return HFM_EINVAL;
}

void hfm_imp_url_redact(char *out, size_t n, const char *url)
{
	size_t sl = scheme_len(url);
	const char *host = url + sl, *at, *colon, *end;

	end = host + strcspn(host, "/");
	at = memchr(host, '@', (size_t)(end - host));
	colon = at ? memchr(host, ':', (size_t)(at - host)) : NULL;
	if (!sl || !at) {
		snprintf(out, n, "%s", url);
		return;
	}
	if (colon)
		snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
	else if (!strncmp(url, "http", 4))
		/* a bare token as user name ("https://hf_xxx@host/...") */
		snprintf(out, n, "%.*s***%s", (int)sl, url, at);
	else
		snprintf(out, n, "%s", url);   /* ssh://git@host: a user, not a secret */
}
