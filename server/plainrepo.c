/* plainrepo.c - the LFS rule and the skipped names of a plain repo directory. */
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/plainrepo.h"

/* One .gitattributes line that mentions the filter attribute. */
struct attr_rule {
	char *pattern;
	int lfs;
};

struct hfm_lfs_attrs {
	struct attr_rule *rules;
	size_t n;
};

struct hfm_lfs_attrs *hfm_lfs_attrs_parse(const char *text)
{
	struct hfm_lfs_attrs *a = hfm_calloc(1, sizeof(*a));
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char *l = hfm_strndup(line, n), *tok, *save = NULL, *pattern;
		int lfs = -1;

		line += n + (end ? 1 : 0);
		pattern = strtok_r(l, " \t\r", &save);
		if (!pattern || pattern[0] == '#') {
			free(l);
			continue;
		}
		while ((tok = strtok_r(NULL, " \t\r", &save))) {
			if (!strcmp(tok, "filter=lfs"))
				lfs = 1;
			else if (!strncmp(tok, "filter=", 7) || !strcmp(tok, "-filter") ||
				 !strcmp(tok, "!filter"))
				lfs = 0;
		}
		if (lfs >= 0) {
			a->rules = hfm_realloc(a->rules, (a->n + 1) * sizeof(*a->rules));
			a->rules[a->n].pattern = hfm_strdup(pattern[0] == '/' ? pattern + 1 : pattern);
			a->rules[a->n].lfs = lfs;
			a->n++;
		}
		free(l);
	}
	return a;
}

struct hfm_lfs_attrs *hfm_lfs_attrs_read(int repo_fd)
{
	int fd = openat(repo_fd, ".gitattributes", O_RDONLY | O_CLOEXEC);
	struct hfm_lfs_attrs *a;
	char *text;
	ssize_t n;

	if (fd < 0)
		return hfm_lfs_attrs_parse("");
	text = hfm_malloc(1 << 20);
	n = read(fd, text, (1 << 20) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	a = hfm_lfs_attrs_parse(text);
	free(text);
	return a;
}

void hfm_lfs_attrs_free(struct hfm_lfs_attrs *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->n; i++)
		free(a->rules[i].pattern);
	free(a->rules);
	free(a);
}

/* gitattributes matching: a pattern without '/' matches the base name. */
int hfm_lfs_attrs_match(const struct hfm_lfs_attrs *a, const char *path)
{
	const char *base = strrchr(path, '/');
	int lfs = 0;
	size_t i;

	if (!a)
		return 0;
	base = base ? base + 1 : path;
	for (i = 0; i < a->n; i++) {
		const char *p = a->rules[i].pattern;
		int m;

		if (!strchr(p, '/'))
			m = fnmatch(p, base, 0) == 0;
		else if (strstr(p, "**"))
			m = fnmatch(p, path, 0) == 0;
		else
			m = fnmatch(p, path, FNM_PATHNAME) == 0;
		if (m)
			lfs = a->rules[i].lfs;
	}
	return lfs;
}

int hfm_lfs_wanted(const struct hfm_lfs_attrs *a, const char *path, uint64_t size,
		   int binary)
{
	return size > HFM_LFS_SIZE_THRESHOLD || binary || hfm_lfs_attrs_match(a, path);
}

int hfm_plainrepo_skip(const char *rel_dir, const char *name)
{
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git"))
		return 1;
	if (!strncmp(name, ".hfmirror", 9))
		return 1;
	if (rel_dir[0] == '\0' && !strcmp(name, ".cache"))
		return 1;
	return 0;
}
