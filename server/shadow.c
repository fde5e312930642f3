/* shadow.c - shadow git repositories of model-bin repos (see shadow.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "hfm/fsutil.h"
#include "hfm/hash.h"
#include "hfm/shadow.h"

#define KNOWN_MAX 256                   /* (repo, listing) pairs remembered */
#define FILE_MAX (64ull << 20)          /* a non-LFS file read into a blob */

struct known {
	enum hfm_repo_type type;
	char name[HFM_REPO_NAME_MAX + 1];
	char listing[HFM_SHA1_HEX + 1];      /* the model-bin commit it is up to date with */
	uint64_t used;
};

struct hfm_shadows {
	char *dir;
	pthread_mutex_t build;               /* one build at a time */
	pthread_mutex_t lock;                /* known[] */
	struct known known[KNOWN_MAX];
	uint64_t tick;
};

static int git_fail(const char *what)
{
	const git_error *e = git_error_last();

	return hfm_error_set(HFM_EIO, "shadow repository: %s: %s", what,
			     e && e->message ? e->message : "libgit2 error");
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char *p = hfm_strdup(path), *s;
	int rc = 0;

	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = hfm_error_set(HFM_EIO, "%s: %s", p, strerror(errno));
		*s = '/';
		if (rc)
			break;
	}
	if (!rc && mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = hfm_error_set(HFM_EIO, "%s: %s", p, strerror(errno));
	free(p);
	return rc;
}

int hfm_shadows_new(struct hfm_shadows **out, const char *dir)
{
	struct hfm_shadows *s;
	int rc;

	if ((rc = make_dirs(dir)))
		return rc;
	s = hfm_calloc(1, sizeof(*s));
	s->dir = hfm_strdup(dir);
	pthread_mutex_init(&s->build, NULL);
	pthread_mutex_init(&s->lock, NULL);
	git_libgit2_init();
	*out = s;
	return 0;
}

void hfm_shadows_free(struct hfm_shadows *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->build);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
	git_libgit2_shutdown();
}

static struct known *known_find(struct hfm_shadows *s, const struct hfm_repo_id *id)
{
	int i;

	for (i = 0; i < KNOWN_MAX; i++)
		if (s->known[i].name[0] && s->known[i].type == id->type &&
		    !strcmp(s->known[i].name, id->name))
			return &s->known[i];
	return NULL;
}

static int is_known(struct hfm_shadows *s, const struct hfm_repo_id *id, const char *listing)
{
	struct known *k;
	int yes;

	pthread_mutex_lock(&s->lock);
	k = known_find(s, id);
	yes = k && !strcmp(k->listing, listing);
	if (yes)
		k->used = ++s->tick;
	pthread_mutex_unlock(&s->lock);
	return yes;
}

static void remember(struct hfm_shadows *s, const struct hfm_repo_id *id, const char *listing)
{
	struct known *k;
	int i;

	pthread_mutex_lock(&s->lock);
	if (!(k = known_find(s, id))) {
		k = &s->known[0];
		for (i = 0; i < KNOWN_MAX; i++) {
			if (!s->known[i].name[0]) {
				k = &s->known[i];
				break;
			}
			if (s->known[i].used < k->used)
				k = &s->known[i];
		}
		k->type = id->type;
		snprintf(k->name, sizeof(k->name), "%s", id->name);
	}
	snprintf(k->listing, sizeof(k->listing), "%s", listing);
	k->used = ++s->tick;
	pthread_mutex_unlock(&s->lock);
}

/* ---- building ------------------------------------------------------------------ */

struct build {
	git_repository *g;
	git_odb *odb;
	const struct hfm_found *f;
	struct hfm_ctx *ctx;
	const struct hfm_entry **files;      /* sorted by path */
	git_oid *blobs;
	size_t n;
};

/* The content of a non-LFS file, as the source opens it. */
static int read_body(char **data, size_t *len, struct build *b, const struct hfm_entry *e)
{
	struct hfm_body body;
	const struct hfm_source_ops *ops = b->f->repo->src->ops;
	int rc;

	if ((rc = ops->open(&body, b->f->repo, b->f->rc.commit, e, 0, b->ctx)))
		return rc;
	*len = (size_t)body.size;
	if (body.size > FILE_MAX) {
		rc = hfm_error_set(HFM_ETOOBIG, "%s is too large for a git blob here", e->path);
	} else if (body.kind == HFM_BODY_MEM) {
		*data = hfm_malloc(*len ? *len : 1);
		memcpy(*data, body.mem, *len);
	} else if (body.kind == HFM_BODY_FD) {
		size_t off = 0;

		*data = hfm_malloc(*len ? *len : 1);
		while (off < *len && !rc) {
			ssize_t k = pread(body.fd, *data + off, *len - off, (off_t)(body.offset + off));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				rc = hfm_error_set(HFM_EIO, "%s: %s", e->path,
						   k < 0 ? strerror(errno) : "the file shrank");
			else
				off += (size_t)k;
		}
		if (rc)
			free(*data);
	} else {
		rc = hfm_error_set(HFM_EUNAVAIL, "%s is not on disk yet", e->path);
	}
	hfm_body_dispose(&body);
	return rc;
}

/* The blob of file e, written unless the shadow has it. */
static int file_blob(git_oid *out, struct build *b, const struct hfm_entry *e)
{
	struct hfm_buf ptr = HFM_BUF_INIT(1024);
	git_oid want;
	char *data = NULL;
	size_t len = 0;
	int rc = 0;

	if (git_oid_fromstr(&want, e->oid) == 0 && git_odb_exists(b->odb, &want)) {
		git_oid_cpy(out, &want);
		return 0;
	}
	if (e->is_lfs) {
		hfm_lfs_pointer(&ptr, e->lfs_oid, e->size);
		if (git_blob_create_from_buffer(out, b->g, ptr.ptr, ptr.len) < 0)
			rc = git_fail(e->path);
		hfm_buf_dispose(&ptr);
	} else if ((rc = read_body(&data, &len, b, e)) == 0) {
		if (git_blob_create_from_buffer(out, b->g, data, len) < 0)
			rc = git_fail(e->path);
		free(data);
	}
	if (!rc && !git_oid_equal(out, &want))
		rc = hfm_error_set(HFM_EIO, "%s changed while its shadow was built", e->path);
	return rc;
}

/*
 * The tree of files [lo, hi), all below the directory whose path is the
 * first `plen` bytes of theirs (sorted paths keep each directory in one run).
 */
static int write_tree(git_oid *out, struct build *b, size_t lo, size_t hi, size_t plen)
{
	git_treebuilder *tb = NULL;
	size_t i = lo;
	int rc = 0;

	if (git_treebuilder_new(&tb, b->g, NULL) < 0)
		return git_fail("tree");
	while (i < hi && !rc) {
		const char *name = b->files[i]->path + plen, *slash = strchr(name, '/');

		if (!slash) {
			if (git_treebuilder_insert(NULL, tb, name, &b->blobs[i], GIT_FILEMODE_BLOB) < 0)
				rc = git_fail(b->files[i]->path);
			i++;
		} else {
			size_t dlen = (size_t)(slash - name), j = i;
			git_oid sub;
			char *dname;

			while (j < hi && !strncmp(b->files[j]->path + plen, name, dlen + 1))
				j++;
			if ((rc = write_tree(&sub, b, i, j, plen + dlen + 1)))
				break;
			dname = hfm_strndup(name, dlen);
			if (git_treebuilder_insert(NULL, tb, dname, &sub, GIT_FILEMODE_TREE) < 0)
				rc = git_fail(b->files[i]->path);
			free(dname);
			i = j;
		}
	}
	if (!rc && git_treebuilder_write(out, tb) < 0)
		rc = git_fail("tree");
	git_treebuilder_free(tb);
	return rc;
}

static int open_or_init(git_repository **g, const char *path)
{
	git_repository_init_options o;

	git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	if (git_repository_open_ext(g, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) == 0)
		return 0;
	o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
	o.initial_head = "main";
	o.description = "hfmirror: the files of a model-bin repo, for git clients";
	if (git_repository_init_ext(g, path, &o) < 0)
		return git_fail(path);
	return 0;
}

/* Commit `tree` on main unless main already has it. */
static int commit_tree(struct build *b, const git_oid *tree)
{
	const struct hfm_found *f = b->f;
	git_commit *parent = NULL;
	git_tree *t = NULL;
	git_signature *sig = NULL;
	git_oid head, made;
	char *msg = NULL;
	int rc = 0, has = git_reference_name_to_id(&head, b->g, "refs/heads/main") == 0;

	if (has && git_commit_lookup(&parent, b->g, &head) < 0) {
		rc = git_fail("main");
		goto cleanup;
	}
	if (parent && git_oid_equal(git_commit_tree_id(parent), tree))
		goto cleanup;
	msg = hfm_asprintf("Files of %s\n\nhfmirror model-bin listing %s\n", f->repo->id.name,
			   f->rc.commit);
	if (git_signature_new(&sig, "hfmirror", "hfmirror@localhost",
			      (git_time_t)(f->rc.date_ms / 1000), 0) < 0 ||
	    git_tree_lookup(&t, b->g, tree) < 0) {
		rc = git_fail("commit");
		goto cleanup;
	}
	{
		const git_commit *parents[1] = { parent };

		if (git_commit_create(&made, b->g, "refs/heads/main", sig, sig, NULL, msg, t,
				      parent ? 1 : 0, parents) < 0)
			rc = git_fail("commit");
	}
cleanup:
	free(msg);
	git_signature_free(sig);
	git_tree_free(t);
	git_commit_free(parent);
	git_error_clear();
	return rc;
}

static int build(struct build *b, const char *path)
{
	const struct hfm_found *f = b->f;
	const struct hfm_source_ops *ops = f->repo->src->ops;
	struct hfm_list *l = NULL;
	git_oid tree;
	size_t i;
	int rc;

	rc = ops->list(&l, f->repo, f->rc.commit, "", HFM_LIST_RECURSIVE | HFM_LIST_IDS, b->ctx);
	if (rc == HFM_ENOENT)
		rc = 0;                          /* an empty repo */
	if (rc)
		return rc;
	if ((rc = open_or_init(&b->g, path)))
		goto cleanup;
	if (git_repository_odb(&b->odb, b->g) < 0) {
		rc = git_fail(path);
		goto cleanup;
	}
	b->files = hfm_malloc((l && l->n ? l->n : 1) * sizeof(*b->files));
	for (i = 0; l && i < l->n; i++)
		if (!l->items[i]->is_dir)
			b->files[b->n++] = l->items[i];
	b->blobs = hfm_calloc(b->n ? b->n : 1, sizeof(*b->blobs));
	for (i = 0; i < b->n && !rc; i++)
		rc = file_blob(&b->blobs[i], b, b->files[i]);
	if (!rc)
		rc = write_tree(&tree, b, 0, b->n, 0);
	if (!rc)
		rc = commit_tree(b, &tree);
cleanup:
	free(b->files);
	free(b->blobs);
	git_odb_free(b->odb);
	git_repository_free(b->g);
	if (l)
		hfm_list_free(l);
	return rc;
}

int hfm_shadow_get(char **path, struct hfm_shadows *s, const struct hfm_found *f,
		   struct hfm_ctx *ctx)
{
	const struct hfm_repo_id *id = &f->repo->id;
	char *p = hfm_asprintf("%s/%s/%s.git", s->dir, hfm_repo_type_plural(id->type), id->name);
	struct build b;
	int rc = 0;

	if (!is_known(s, id, f->rc.commit)) {
		pthread_mutex_lock(&s->build);
		if (!is_known(s, id, f->rc.commit)) {
			memset(&b, 0, sizeof(b));
			b.f = f;
			b.ctx = ctx;
			if ((rc = build(&b, p)) == 0)
				remember(s, id, f->rc.commit);
		}
		pthread_mutex_unlock(&s->build);
	}
	if (rc) {
		free(p);
		return rc;
	}
	*path = p;
	return 0;
}
