/* probe.c - what kind of source a directory is. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "probe.h"

static int is_dir(const char *dir, const char *name)
{
	char *p = hfm_asprintf("%s/%s", dir, name);
	struct stat st;
	int r = stat(p, &st) == 0 && S_ISDIR(st.st_mode);

	free(p);
	return r;
}

static int cache_folder_name(const char *name)
{
	return !strncmp(name, "models--", 8) || !strncmp(name, "datasets--", 10) ||
	       !strncmp(name, "spaces--", 8);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hfm_imp_probe_cache_repos(char ***out, size_t *n, const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0;

	if (!d)
		return hfm_error_set(HFM_EIO, "%s: %s", root, strerror(errno));
	while ((de = readdir(d))) {
		if (!cache_folder_name(de->d_name) || !is_dir(root, de->d_name))
			continue;
		v = hfm_realloc(v, (cnt + 1) * sizeof(*v));
		v[cnt++] = hfm_asprintf("%s/%s", root, de->d_name);
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*out = v;
	*n = cnt;
	return 0;
}

int hfm_imp_probe(enum hfm_imp_kind *kind, int *cache_root, const char *path)
{
	git_repository *repo = NULL;
	struct stat st;
	char **list;
	size_t n, i;

	*cache_root = 0;
	if (stat(path, &st) < 0)
		return hfm_error_set(HFM_EINVAL, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return hfm_error_set(HFM_EINVAL, "%s: not a directory", path);
	/* NO_SEARCH: a plain directory inside some checkout is not that checkout */
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0) {
		git_repository_free(repo);
		*kind = HFM_IMP_SRC_CLONE;
		return 0;
	}
	if (is_dir(path, "snapshots") && is_dir(path, "blobs")) {
		*kind = HFM_IMP_SRC_HFCACHE;
		return 0;
	}
	if (hfm_imp_probe_cache_repos(&list, &n, path) == 0) {
		for (i = 0; i < n; i++)
			free(list[i]);
		free(list);
		if (n) {
			*kind = HFM_IMP_SRC_HFCACHE;
			*cache_root = 1;
			return 0;
		}
	}
	*kind = HFM_IMP_SRC_PLAIN;
	return 0;
}
