/*
 * gitfetch.c - a repo's git history from the upstream hub into the store's
 * mirrors/ (gitfetch.h), for `hfmirror sync` with `git = true`.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "hfm/gitfetch.h"
#include "hfm/store.h"

/* What a Hub mirror carries: the refs the git source serves (src_git.h). */
static char *refspecs[] = {
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
	"+refs/pr/*:refs/pr/*",
	"+refs/convert/*:refs/convert/*",
};

struct fetch {
	const struct hfm_gitfetch_opts *o;
	int asked;                       /* the upstream asked for credentials */
	int refused;                     /* ... again after we gave them, or we had none */
};

/*
 * The Hub takes a token as HTTP Basic's password (the user name does not
 * matter).  A second request means the token was refused: stop there.
 */
static int credentials(git_credential **out, const char *url, const char *user,
		       unsigned int allowed, void *payload)
{
	struct fetch *f = payload;
	const char *auth = f->o->authorization;

	(void)url;
	(void)user;
	if (f->asked++ || !auth || !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
		f->refused = 1;
		git_error_set_str(GIT_ERROR_HTTP, auth ? "the upstream refused the token"
					: "the upstream asks for a token (HF_TOKEN or --token-file)");
		return GIT_EAUTH;
	}
	if (!strncmp(auth, "Bearer ", 7))
		auth += 7;
	return git_credential_userpass_plaintext_new(out, "hfmirror", auth);
}

static int transfer(const git_indexer_progress *st, void *payload)
{
	struct fetch *f = payload;

	(void)st;
	if (f->o->stop && atomic_load(f->o->stop)) {
		git_error_set_str(GIT_ERROR_NONE, "interrupted");
		return -1;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A failure of libgit2's, as one of ours. */
static int fetch_error(const struct fetch *f, int grc)
{
	const git_error *e = git_error_last();
	const char *m = e && e->message ? e->message : "unknown error";

	if (f->o->stop && atomic_load(f->o->stop))
		return hfm_error_set(HFM_ERROR, "interrupted");
	if (f->refused || grc == GIT_EAUTH)
		return hfm_error_set(HFM_EGATED, "git: %s", m);
	if (strstr(m, "status code: 404"))
		return hfm_error_set(HFM_ENOREPO, "git: the upstream has no such repository");
	return hfm_error_set(HFM_EUPSTREAM, "git: %s", m);
}

static int count_refs(size_t *n, git_repository *g)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;

	*n = 0;
	if (git_reference_iterator_glob_new(&it, g, "refs/*") < 0)
		return hfm_error_set(HFM_EIO, "git: refs: %s", git_error_last()->message);
	while (git_reference_next(&ref, it) == 0) {
		(*n)++;
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	git_error_clear();
	return 0;
}

/* HEAD as the upstream's (its default branch), else main. */
static void set_head(git_repository *g, git_remote *remote)
{
	git_buf head = { 0 };

	if (git_remote_default_branch(&head, remote) == 0 && head.ptr &&
	    !strncmp(head.ptr, "refs/heads/", 11))
		git_repository_set_head(g, head.ptr);
	else
		git_repository_set_head(g, "refs/heads/main");
	git_buf_dispose(&head);
	git_error_clear();
}

int hfm_gitfetch_mirror(struct hfm_gitfetch_result *out, const struct hfm_store *store,
			const struct hfm_repo_id *id, const struct hfm_gitfetch_opts *o)
{
	struct hfm_buf final = HFM_BUF_INIT(HFM_PATH_MAX), tmp = HFM_BUF_INIT(HFM_PATH_MAX);
	git_fetch_options fo;
	git_strarray specs = { refspecs, HFM_ARRAY_SIZE(refspecs) };
	git_repository *g = NULL;
	git_remote *remote = NULL;
	struct fetch f = { .o = o };
	struct stat st;
	char *url;
	int rc, grc, lock = -1;

	memset(out, 0, sizeof(*out));
	git_libgit2_init();
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	url = hfm_asprintf("%s/%s%s.git", o->upstream_url, hfm_repo_type_prefix(id->type), id->name);
	hfm_store_mirror_path(&final, store, id);
	if (final.err) {
		rc = hfm_error_set(HFM_ETOOBIG, "store path too long");
		goto cleanup;
	}
	if ((rc = hfm_store_mirror_lock(&lock, store, id, o->on_wait, o->cls)))
		goto cleanup;
	if (stat(final.ptr, &st) == 0) {
		if (git_repository_open_ext(&g, final.ptr, GIT_REPOSITORY_OPEN_NO_SEARCH |
					    GIT_REPOSITORY_OPEN_BARE, NULL) < 0) {
			rc = hfm_error_set(HFM_EIO, "git: %s: %s", final.ptr, git_error_last()->message);
			goto cleanup;
		}
	} else {
		git_repository_init_options io;

		git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
		/* fetched under tmp/, renamed into place once whole */
		io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
			   GIT_REPOSITORY_INIT_NO_REINIT;
		io.initial_head = "main";
		io.description = "hfmirror sync";
		hfm_buf_printf(&tmp, "%s/tmp/gitfetch-%ld-%llx", store->root, (long)getpid(),
			       (unsigned long long)hfm_mono_ns());
		if (git_repository_init_ext(&g, tmp.ptr, &io) < 0) {
			rc = hfm_error_set(HFM_EIO, "git: %s: %s", tmp.ptr, git_error_last()->message);
			goto cleanup;
		}
		out->created = 1;
	}
	if (git_remote_create_anonymous(&remote, g, url) < 0) {
		rc = hfm_error_set(HFM_EINVAL, "git: %s: %s", url, git_error_last()->message);
		goto cleanup;
	}
	fo.callbacks.credentials = credentials;
	fo.callbacks.transfer_progress = transfer;
	fo.callbacks.payload = &f;
	fo.prune = GIT_FETCH_PRUNE;
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;    /* the refspecs have them */
	fo.proxy_opts.type = GIT_PROXY_AUTO;                   /* as git and curl: the env's proxy */
	if ((grc = git_remote_fetch(remote, &specs, &fo, "hfmirror sync")) < 0) {
		rc = fetch_error(&f, grc);
		goto cleanup;
	}
	{
		const git_indexer_progress *st2 = git_remote_stats(remote);
		out->received_objects = st2->received_objects;
		out->received_bytes = st2->received_bytes;
	}
	set_head(g, remote);
	if ((rc = count_refs(&out->refs, g)))
		goto cleanup;
	if (out->created) {
		const char *rel = final.ptr + strlen(store->root) + 1;
		char *parent = hfm_strdup(rel);

		*strrchr(parent, '/') = '\0';
		git_repository_free(g);
		g = NULL;
		rc = hfm_store_mkdirs(store, parent);
		free(parent);
		if (rc)
			goto cleanup;
		if (rename(tmp.ptr, final.ptr) < 0) {
			rc = hfm_error_set(HFM_EIO, "git: rename to %s: %s", final.ptr, strerror(errno));
			goto cleanup;
		}
		hfm_buf_reset(&tmp);
	}
	out->path = hfm_buf_detach(&final);
cleanup:
	git_remote_free(remote);
	git_repository_free(g);
	if (tmp.len)
		nftw(tmp.ptr, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (lock >= 0)
		close(lock);
	hfm_buf_dispose(&final);
	hfm_buf_dispose(&tmp);
	free(url);
	git_error_clear();
	git_libgit2_shutdown();
	return rc;
}

void hfm_gitfetch_result_dispose(struct hfm_gitfetch_result *r)
{
	free(r->path);
	memset(r, 0, sizeof(*r));
}
