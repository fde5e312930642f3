/* path.c - decoding and validation of everything a URL names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "hfm/hash.h"
#include "hfm/path.h"

static const char *const plural[] = { "models", "datasets", "spaces" };
static const char *const singular[] = { "model", "dataset", "space" };
static const char *const prefix[] = { "", "datasets/", "spaces/" };

const char *hfm_repo_type_plural(enum hfm_repo_type t)
{
	return plural[t];
}

const char *hfm_repo_type_name(enum hfm_repo_type t)
{
	return singular[t];
}

const char *hfm_repo_type_prefix(enum hfm_repo_type t)
{
	return prefix[t];
}

int hfm_repo_type_parse(enum hfm_repo_type *out, const char *s)
{
	int i;

	for (i = 0; i < HFM_REPO_TYPES; i++) {
		if (!strcmp(s, plural[i]) || !strcmp(s, singular[i])) {
			*out = (enum hfm_repo_type)i;
			return 0;
		}
	}
	return HFM_EINVAL;
}

int hfm_repo_segment_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
		if (c == '.' && i + 1 < n && s[i + 1] == '.')
			return 0;
	}
	return 1;
}

int hfm_repo_id_set(struct hfm_repo_id *out, enum hfm_repo_type t,
		    const char *org, const char *name)
{
	if (!hfm_repo_segment_valid(name, strlen(name)))
		return HFM_EINVAL;
	if (org && !hfm_repo_segment_valid(org, strlen(org)))
		return HFM_EINVAL;
	out->type = t;
	if (org)
		snprintf(out->name, sizeof(out->name), "%s/%s", org, name);
	else
		snprintf(out->name, sizeof(out->name), "%s", name);
	return 0;
}

int hfm_repo_id_parse(struct hfm_repo_id *out, enum hfm_repo_type t, const char *name)
{
	const char *slash = strchr(name, '/');
	char *org;
	int rc;

	if (!slash)
		return hfm_repo_id_set(out, t, NULL, name);
	if (strchr(slash + 1, '/'))
		return HFM_EINVAL;
	org = hfm_strndup(name, (size_t)(slash - name));
	rc = hfm_repo_id_set(out, t, org, slash + 1);
	free(org);
	return rc;
}

long hfm_pct_decode(char *out, const char *in, size_t n, int plus_space)
{
	size_t i = 0, o = 0;

	while (i < n) {
		char c = in[i];

		if (c == '%') {
			unsigned char byte;
			if (i + 2 >= n || hfm_unhex(&byte, in + i + 1, 1))
				return -1;
			c = (char)byte;
			i += 3;
		} else {
			if (c == '+' && plus_space)
				c = ' ';
			i++;
		}
		if (c == '\0')
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

int hfm_path_valid(const char *p)
{
	const char *comp = p;
	size_t len = strlen(p);

	if (len > HFM_PATH_MAX)
		return 0;
	if (len == 0)
		return 1;
	for (;;) {
		const char *end = strchr(comp, '/');
		size_t n = end ? (size_t)(end - comp) : strlen(comp);
		size_t i;

		if (n == 0 || (n == 1 && comp[0] == '.') ||
		    (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return 0;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)comp[i];
			if (c < 0x20 || c == 0x7f || c == '\\')
				return 0;
		}
		if (!end)
			return 1;
		comp = end + 1;
	}
}

int hfm_user_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > HFM_USER_NAME_MAX || *s == '.' || *s == '-' || *s == '_')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int hfm_rev_valid(const char *r)
{
	size_t n = strlen(r), i;

	if (n == 0 || n > HFM_REV_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)r[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			return 0;
	}
	if (strstr(r, "..") || r[0] == '/' || r[n - 1] == '/')
		return 0;
	return 1;
}
