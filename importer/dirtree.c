/* dirtree.c - list a directory and write it as git trees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirtree.h"
#include "hfm/path.h"
#include "hfm/plainrepo.h"
#include "job.h"

#define MAX_DEPTH 64

struct lister {
	struct hfm_imp_filelist *l;
	struct hfm_progress *progress;
	struct { dev_t dev; ino_t ino; } stack[MAX_DEPTH + 1];
	int depth;
};

static void add_file(struct lister *w, char *rel, char *abs, const struct stat *st, int is_link)
{
	struct hfm_imp_filelist *l = w->l;
	struct hfm_imp_file *f;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = hfm_realloc(l->v, l->cap * sizeof(*l->v));
	}
	f = &l->v[l->n++];
	memset(f, 0, sizeof(*f));
	f->rel = rel;
	f->abs = abs;
	f->st = *st;
	f->is_link = is_link;
}

static int list_dir(struct lister *w, const char *abs_dir, const char *rel_dir)
{
	DIR *d = opendir(abs_dir);
	struct dirent *de;

	if (!d)
		return hfm_error_set(HFM_EIO, "%s: %s", abs_dir, strerror(errno));
	while ((de = readdir(d))) {
		struct stat st, lst;
		char *rel, *abs;
		int i, loop = 0;

		if (hfm_plainrepo_skip(rel_dir, de->d_name))
			continue;
		abs = hfm_asprintf("%s/%s", abs_dir, de->d_name);
		rel = rel_dir[0] ? hfm_asprintf("%s/%s", rel_dir, de->d_name)
				 : hfm_strdup(de->d_name);
		if (lstat(abs, &lst) < 0 || stat(abs, &st) < 0) {
			hfm_progress_say(w->progress, "skipping %s: %s", abs, strerror(errno));
			goto skip;
		}
		if (!hfm_path_valid(rel)) {
			hfm_progress_say(w->progress, "skipping %s: not a valid repo path", abs);
			goto skip;
		}
		if (S_ISREG(st.st_mode)) {
			add_file(w, rel, abs, &st, S_ISLNK(lst.st_mode));
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			goto skip;
		for (i = 0; i <= w->depth; i++)
			loop |= w->stack[i].dev == st.st_dev && w->stack[i].ino == st.st_ino;
		if (loop || w->depth == MAX_DEPTH) {
			hfm_progress_say(w->progress, "skipping %s: %s", abs,
					     loop ? "a symlink loop" : "nested too deep");
			goto skip;
		}
		w->depth++;
		w->stack[w->depth].dev = st.st_dev;
		w->stack[w->depth].ino = st.st_ino;
		list_dir(w, abs, rel);
		w->depth--;
skip:
		free(rel);
		free(abs);
	}
	closedir(d);
	return 0;
}

static int cmp_rel(const void *a, const void *b)
{
	return strcmp(((const struct hfm_imp_file *)a)->rel, ((const struct hfm_imp_file *)b)->rel);
}

int hfm_imp_dir_list(struct hfm_imp_filelist *out, const char *root,
		     struct hfm_progress *progress)
{
	struct lister w;
	struct stat st;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.l = out;
	w.progress = progress;
	if (stat(root, &st) < 0)
		return hfm_error_set(HFM_EIO, "%s: %s", root, strerror(errno));
	w.stack[0].dev = st.st_dev;
	w.stack[0].ino = st.st_ino;
	rc = list_dir(&w, root, "");
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_rel);
	return rc;
}

void hfm_imp_filelist_dispose(struct hfm_imp_filelist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].rel);
		free(l->v[i].abs);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * The tree of files [lo, hi), all below the directory whose rel path is the
 * first `plen` bytes of theirs.  Sorted paths keep every directory's files
 * in one run: all strings that start with "dir/" sort together.
 */
static int write_tree(git_oid *out, int *empty, git_repository *repo,
		      const struct hfm_imp_file *v, size_t lo, size_t hi, size_t plen)
{
	git_treebuilder *tb = NULL;
	size_t i = lo;
	int rc = 0;

	*empty = 1;
	if (git_treebuilder_new(&tb, repo, NULL) < 0)
		return hfm_imp_git_error("tree");
	while (i < hi && !rc) {
		const char *name = v[i].rel + plen, *slash = strchr(name, '/');

		if (!slash) {
			if (v[i].keep) {
				if (git_treebuilder_insert(NULL, tb, name, &v[i].blob,
							   GIT_FILEMODE_BLOB) < 0)
					rc = hfm_imp_git_error(v[i].rel);
				*empty = 0;
			}
			i++;
		} else {
			size_t dlen = (size_t)(slash - name), j = i;
			git_oid sub;
			int sub_empty;
			char *dname;

			while (j < hi && !strncmp(v[j].rel + plen, name, dlen + 1))
				j++;
			if ((rc = write_tree(&sub, &sub_empty, repo, v, i, j, plen + dlen + 1)))
				break;
			if (!sub_empty) {
				dname = hfm_strndup(name, dlen);
				if (git_treebuilder_insert(NULL, tb, dname, &sub, GIT_FILEMODE_TREE) < 0)
					rc = hfm_imp_git_error(v[i].rel);
				free(dname);
				*empty = 0;
			}
			i = j;
		}
	}
	if (!rc && git_treebuilder_write(out, tb) < 0)
		rc = hfm_imp_git_error("write tree");
	git_treebuilder_free(tb);
	return rc;
}

int hfm_imp_dir_tree(git_oid *out, git_repository *repo, const struct hfm_imp_filelist *l)
{
	int empty;

	return write_tree(out, &empty, repo, l->v, 0, l->n, 0);
}

int hfm_imp_dir_commit(git_oid *out, git_repository *repo, const git_oid *tree,
		       const git_oid *parent, int64_t when, const char *message)
{
	git_signature *sig = NULL;
	git_tree *t = NULL;
	git_commit *p = NULL;
	const git_commit *parents[1];
	int rc = 0;

	if (git_signature_new(&sig, "hfmirror-import", "hfmirror-import@localhost",
			      (git_time_t)when, 0) < 0 ||
	    git_tree_lookup(&t, repo, tree) < 0 ||
	    (parent && git_commit_lookup(&p, repo, parent) < 0)) {
		rc = hfm_imp_git_error("commit");
		goto cleanup;
	}
	parents[0] = p;
	if (git_commit_create(out, repo, NULL, sig, sig, NULL, message, t, p ? 1 : 0,
			      parents) < 0)
		rc = hfm_imp_git_error("commit");
cleanup:
	git_commit_free(p);
	git_tree_free(t);
	git_signature_free(sig);
	return rc;
}
