/*
 * gitclone.c - step 1 for a clone made by git: bare or not, LFS smudged or not.
 *
 * Every object the selected refs reach is walked once (a set of seen oids),
 * in the source repository.  Objects the mirror lacks go into one pack,
 * written through the mirror's odb (the indexer renames the finished pack
 * into place, so a killed run leaves no half pack).  Blobs small enough to be
 * LFS pointers are read and parsed on the way.  The walk is complete every
 * run, not only over new commits: a pointer whose object was missing last
 * time must be found again when its content has been fetched since.
 *
 * The walk stops at the commits a shallow clone lists in its `shallow` file
 * (their parents are not there); the mirror gets the same list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "keyset.h"
#include "sources.h"

#define POINTER_MAX 1024
#define INFER_DEPTH 4

/* Step 1 for one clone: the walk over everything its refs reach. */
struct clone_walk {
	struct hfm_imp_job *job;
	git_repository *repo;
	git_odb *odb;                   /* the source's */
	git_odb *modb;                  /* the mirror's */
	git_packbuilder *pb;
	struct hfm_imp_keyset seen;     /* raw oids walked */
	struct hfm_imp_keyset shallow;  /* raw oids whose parents are absent */
	git_oid *stack;                 /* commits still to walk */
	size_t nstack, capstack;
	char *lfsdir;                   /* git-lfs's objects directory */
	const char *ref;                /* the ref being walked, for messages */
	struct hfm_buf path;            /* the tree path being walked */
	size_t commits;
};

/* ---- which repo ---------------------------------------------------------- */

/* "origin", else the only remote; NULL if neither. */
static char *pick_remote(git_repository *repo)
{
	git_strarray names = { 0 };
	char *out = NULL;
	size_t i;

	if (git_remote_list(&names, repo) < 0)
		return NULL;
	for (i = 0; i < names.count; i++)
		if (!strcmp(names.strings[i], "origin"))
			out = hfm_strdup("origin");
	if (!out && names.count == 1)
		out = hfm_strdup(names.strings[0]);
	git_strarray_dispose(&names);
	return out;
}

static int infer_at(struct hfm_repo_id *out, const char *path, int depth)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	char *name = NULL, *local = NULL, *next = NULL, shown[1024];
	const char *url;
	int rc;

	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return hfm_imp_git_error(path);
	if (!(name = pick_remote(repo))) {
		rc = hfm_error_set(HFM_EINVAL, "it has no remote \"origin\" (nor a single "
				   "remote) whose URL would name its repo");
		goto cleanup;
	}
	if (git_remote_lookup(&remote, repo, name) < 0 || !(url = git_remote_url(remote))) {
		rc = hfm_imp_git_error(path);
		goto cleanup;
	}
	if ((rc = hfm_imp_id_from_url(out, url)) == 0)
		goto cleanup;
	hfm_imp_url_redact(shown, sizeof(shown), url);
	if (hfm_imp_url_local_path(&local, url) == 0 && depth < INFER_DEPTH) {
		/* a clone of a clone: ask the one it was cloned from */
		const char *base = git_repository_workdir(repo);

		if (local[0] != '/')
			next = hfm_asprintf("%s/%s", base ? base : git_repository_path(repo), local);
		else
			next = hfm_strdup(local);
		if ((rc = infer_at(out, next, depth + 1)) == 0)
			goto cleanup;
	}
	rc = hfm_error_set(HFM_EINVAL, "its remote \"%s\" is %s, which names no Hub repo",
			   name, shown);
cleanup:
	free(next);
	free(local);
	free(name);
	git_remote_free(remote);
	git_repository_free(repo);
	return rc;
}

int hfm_imp_clone_infer(struct hfm_repo_id *out, const char *path)
{
	return infer_at(out, path, 0);
}

/* ---- which refs ---------------------------------------------------------- */

static int has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

/* Does any ref other than <prefix>HEAD exist below `prefix`? */
static int has_tracking_refs(git_repository *repo, const char *prefix)
{
	git_reference_iterator *it = NULL;
	const char *name;
	char *glob = hfm_asprintf("%s*", prefix);
	int found = 0;

	if (git_reference_iterator_glob_new(&it, repo, glob) == 0) {
		while (!found && git_reference_next_name(&name, it) == 0)
			found = strcmp(name + strlen(prefix), "HEAD") != 0;
		git_reference_iterator_free(it);
	}
	free(glob);
	return found;
}

/* The branch a symbolic ref names, relative to `prefix`, or NULL. */
static char *symbolic_branch(git_repository *repo, const char *ref, const char *prefix)
{
	git_reference *r = NULL;
	char *out = NULL;

	if (git_reference_lookup(&r, repo, ref) == 0 &&
	    git_reference_type(r) == GIT_REFERENCE_SYMBOLIC &&
	    has_prefix(git_reference_symbolic_target(r), prefix))
		out = hfm_strdup(git_reference_symbolic_target(r) + strlen(prefix));
	git_reference_free(r);
	return out;
}

/* Does local branch `name` match its remote-tracking ref below `prefix`? */
static int same_as_tracking(git_repository *repo, const char *prefix, const char *name,
			    const git_oid *target)
{
	char *tracking = hfm_asprintf("%s%s", prefix, name + strlen("refs/heads/"));
	git_oid id;
	int same = git_reference_name_to_id(&id, repo, tracking) == 0 && git_oid_equal(&id, target);

	free(tracking);
	return same;
}

static int job_has_ref(const struct hfm_imp_job *job, const char *name)
{
	size_t i;

	for (i = 0; i < job->nrefs; i++)
		if (!strcmp(job->refs[i].name, name))
			return 1;
	return 0;
}

/*
 * The refs the mirror gets: the Hub's branches, tags, refs/pr/N and
 * refs/convert/NAME.  In a clone with remote-tracking branches those are
 * the Hub's branches (local branches may carry unpublished work, or lag);
 * in a bare or mirror clone, and in a repo without a remote, the local
 * branches are.
 */
static int select_refs(struct clone_walk *g)
{
	struct hfm_imp_job *job = g->job;
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	char *remote = pick_remote(g->repo), *prefix = NULL, *head = NULL;
	struct hfm_buf unpublished = HFM_BUF_INIT(4096);
	int tracking = 0, rc = 0;

	if (remote) {
		prefix = hfm_asprintf("refs/remotes/%s/", remote);
		tracking = has_tracking_refs(g->repo, prefix);
	}
	if (git_reference_iterator_new(&it, g->repo) < 0)
		return hfm_imp_git_error("list refs");
	while (git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);
		const git_oid *target = git_reference_target(ref);
		char *mapped = NULL;

		if (git_reference_type(ref) != GIT_REFERENCE_DIRECT || !target) {
			git_reference_free(ref);
			continue;
		}
		if (has_prefix(name, "refs/heads/")) {
			if (!tracking)
				mapped = hfm_strdup(name);
			else if (!same_as_tracking(g->repo, prefix, name, target))
				hfm_buf_printf(&unpublished, " %s", name + strlen("refs/heads/"));
		} else if (tracking && has_prefix(name, prefix)) {
			mapped = hfm_asprintf("refs/heads/%s", name + strlen(prefix));
		} else if (has_prefix(name, "refs/tags/") || has_prefix(name, "refs/pr/") ||
			   has_prefix(name, "refs/convert/")) {
			mapped = hfm_strdup(name);
		}
		if (mapped) {
			hfm_imp_job_add_ref(job, mapped, target);
			free(mapped);
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);

	if (tracking) {
		char *ref_head = hfm_asprintf("%sHEAD", prefix);

		head = symbolic_branch(g->repo, ref_head, prefix);
		free(ref_head);
		if (unpublished.len)
			hfm_progress_say(job->progress,
					     "%s: local branches differ from remote \"%s\":%s; the "
					     "mirror takes the remote's (%s*)", job->source, remote,
					     unpublished.ptr, prefix);
	}
	if (!head)
		head = symbolic_branch(g->repo, "HEAD", tracking ? prefix : "refs/heads/");
	if (!head)
		head = symbolic_branch(g->repo, "HEAD", "refs/heads/");
	if (head) {
		char *full = hfm_asprintf("refs/heads/%s", head);

		if (job_has_ref(job, full)) {
			job->head = head;
			head = NULL;
		}
		free(full);
	}
	free(head);
	if (!job->nrefs)
		rc = hfm_error_set(HFM_EINVAL, "%s has no branches, tags or refs/pr/* to import",
				   job->source);
	hfm_buf_dispose(&unpublished);
	free(prefix);
	free(remote);
	return rc;
}

/* ---- the walk ------------------------------------------------------------ */

/*
 * The mirror is locked, so nobody else adds packs while we walk: a miss
 * need not make libgit2 rescan the pack directory, which it would do for
 * every object of a first import.
 */
static int mirror_has(git_odb *modb, const git_oid *id)
{
	return git_odb_exists_ext(modb, id, GIT_ODB_LOOKUP_NO_REFRESH);
}

/*
 * Mark `id` seen; *fresh says whether it was new.  A new object the mirror
 * lacks goes into the pack (`name`, a path's base name, helps delta search).
 */
static int visit(int *fresh, struct clone_walk *g, const git_oid *id, const char *name)
{
	hfm_imp_keyset_put(&g->seen, id->id, fresh);
	if (!*fresh || mirror_has(g->modb, id))
		return 0;
	if (git_packbuilder_insert(g->pb, id, name) < 0) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), id);
		return hfm_error_set(HFM_ERROR, "%s: cannot read object %s (%s): a partial "
				     "or damaged clone?", g->job->source, hex,
				     git_error_last() ? git_error_last()->message : "");
	}
	g->job->git_objects++;
	return 0;
}

static void lfs_dir_candidate(struct clone_walk *g, struct hfm_imp_lfs *e)
{
	char *p = hfm_asprintf("%s/%.2s/%.2s/%s", g->lfsdir, e->oid, e->oid + 2, e->oid);

	hfm_imp_lfs_add_cand(e, p, HFM_IMP_CAND_LFS, NULL);
	free(p);
}

/* A blob small enough to be a pointer is read; a pointer is listed. */
static int check_blob(struct clone_walk *g, const git_oid *id)
{
	struct hfm_imp_lfs *e;
	git_odb_object *obj = NULL;
	git_object_t type;
	char oid[HFM_SHA256_HEX + 1], *where;
	uint64_t size;
	size_t len;
	int rc = 0;

	if (git_odb_read_header(&len, &type, g->odb, id) < 0)
		return hfm_imp_git_error(g->job->source);
	if (len > POINTER_MAX)
		return 0;
	if (git_odb_read(&obj, g->odb, id) < 0)
		return hfm_imp_git_error(g->job->source);
	if (hfm_lfs_pointer_parse(oid, &size, git_odb_object_data(obj),
				  git_odb_object_size(obj)) == 0) {
		where = hfm_asprintf("%s:%s", g->ref, hfm_buf_cstr(&g->path));
		if (hfm_imp_lfsset_add(&e, &g->job->lfs, oid, size, where) == 0)
			lfs_dir_candidate(g, e);
		else
			hfm_progress_say(g->job->progress, "warning: %s", hfm_error_last());
		free(where);
	}
	git_odb_object_free(obj);
	return rc;
}

static int walk_tree(struct clone_walk *g, const git_oid *id)
{
	git_tree *tree = NULL;
	size_t i, n, plen = g->path.len;
	int rc = 0, fresh;

	if (git_tree_lookup(&tree, g->repo, id) < 0)
		return hfm_imp_git_error(g->job->source);
	n = git_tree_entrycount(tree);
	for (i = 0; i < n && !rc; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		const git_oid *eid = git_tree_entry_id(te);
		const char *name = git_tree_entry_name(te);

		if (git_tree_entry_filemode(te) == GIT_FILEMODE_COMMIT)
			continue;   /* a submodule: another repo's commit */
		if ((rc = visit(&fresh, g, eid, name)) || !fresh)
			continue;
		hfm_buf_truncate(&g->path, plen);
		if (plen)
			hfm_buf_putc(&g->path, '/');
		hfm_buf_puts(&g->path, name);
		if (g->path.err) {
			rc = hfm_error_set(HFM_ETOOBIG, "%s: path too long", g->job->source);
			break;
		}
		if (git_tree_entry_type(te) == GIT_OBJECT_TREE)
			rc = walk_tree(g, eid);
		else if (git_tree_entry_type(te) == GIT_OBJECT_BLOB)
			rc = check_blob(g, eid);
	}
	hfm_buf_truncate(&g->path, plen);
	git_tree_free(tree);
	return rc;
}

static void push_commit(struct clone_walk *g, const git_oid *id)
{
	if (g->nstack == g->capstack) {
		g->capstack = g->capstack ? g->capstack * 2 : 256;
		g->stack = hfm_realloc(g->stack, g->capstack * sizeof(*g->stack));
	}
	git_oid_cpy(&g->stack[g->nstack++], id);
}

/* Walk the commits on the stack and everything they reach. */
static int walk_commits(struct clone_walk *g)
{
	int rc = 0, fresh;

	while (g->nstack && !rc) {
		git_oid id = g->stack[--g->nstack];
		git_commit *c = NULL;
		unsigned i, np;

		if (git_commit_lookup(&c, g->repo, &id) < 0)
			return hfm_imp_git_error(g->job->source);
		g->commits++;
		hfm_buf_reset(&g->path);
		if (!(rc = visit(&fresh, g, git_commit_tree_id(c), NULL)) && fresh)
			rc = walk_tree(g, git_commit_tree_id(c));
		np = hfm_imp_keyset_find(&g->shallow, id.id) >= 0 ? 0 : git_commit_parentcount(c);
		for (i = 0; i < np && !rc; i++) {
			const git_oid *pid = git_commit_parent_id(c, i);

			if (!(rc = visit(&fresh, g, pid, NULL)) && fresh)
				push_commit(g, pid);
		}
		git_commit_free(c);
	}
	return rc;
}

/* Everything `target` reaches, peeling tags. */
static int walk_ref(struct clone_walk *g, const char *refname, const git_oid *target)
{
	git_oid id = *target;
	int rc, fresh;

	g->ref = refname;
	for (;;) {
		size_t len;
		git_object_t type;

		if ((rc = visit(&fresh, g, &id, NULL)) || !fresh)
			return rc;
		if (git_odb_read_header(&len, &type, g->odb, &id) < 0)
			return hfm_imp_git_error(refname);
		hfm_buf_reset(&g->path);
		switch (type) {
		case GIT_OBJECT_TAG: {
			git_tag *tag = NULL;

			if (git_tag_lookup(&tag, g->repo, &id) < 0)
				return hfm_imp_git_error(refname);
			id = *git_tag_target_id(tag);
			git_tag_free(tag);
			continue;
		}
		case GIT_OBJECT_COMMIT:
			push_commit(g, &id);
			return walk_commits(g);
		case GIT_OBJECT_TREE:
			return walk_tree(g, &id);
		case GIT_OBJECT_BLOB:
			return check_blob(g, &id);
		default:
			return 0;
		}
	}
}

/* ---- writing the pack ---------------------------------------------------- */

/*
 * The pack goes to the mirror's indexer in chunks of PACK_CHUNK bytes: the
 * packbuilder hands out one small piece per object, and the indexer maps
 * and unmaps its window for every append, which made a first import of
 * 36 000 objects spend seconds in munmap.
 */
#define PACK_CHUNK ((size_t)8 << 20)

struct pack_sink {
	git_odb_writepack *wp;
	git_indexer_progress stats;
	char *buf;
	size_t len;
};

static int pack_flush(struct pack_sink *sink)
{
	int rc = sink->len ? sink->wp->append(sink->wp, sink->buf, sink->len, &sink->stats) : 0;

	sink->len = 0;
	return rc;
}

static int pack_chunk(void *data, size_t size, void *payload)
{
	struct pack_sink *sink = payload;

	if (sink->len + size > PACK_CHUNK && pack_flush(sink) < 0)
		return -1;
	if (size >= PACK_CHUNK)
		return sink->wp->append(sink->wp, data, size, &sink->stats);
	memcpy(sink->buf + sink->len, data, size);
	sink->len += size;
	return 0;
}

static int write_pack(struct clone_walk *g)
{
	struct pack_sink sink;
	int rc = 0;

	if (!git_packbuilder_object_count(g->pb))
		return 0;
	hfm_progress_say(g->job->progress, "%s: writing %zu new git objects",
			     g->job->id.name, git_packbuilder_object_count(g->pb));
	memset(&sink, 0, sizeof(sink));
	if (git_odb_write_pack(&sink.wp, g->modb, NULL, NULL) < 0)
		return hfm_imp_git_error("write pack");
	sink.buf = hfm_malloc(PACK_CHUNK);
	if (git_packbuilder_foreach(g->pb, pack_chunk, &sink) < 0 || pack_flush(&sink) < 0 ||
	    sink.wp->commit(sink.wp, &sink.stats) < 0)
		rc = hfm_imp_git_error("write pack");
	sink.wp->free(sink.wp);
	free(sink.buf);
	return rc;
}

/* ---- shallow clones, git-lfs's store, the working tree ------------------- */

static int read_shallow(struct clone_walk *g)
{
	char *path = hfm_asprintf("%sshallow", git_repository_commondir(g->repo));
	FILE *f = fopen(path, "r");
	char line[128];
	git_oid id;

	free(path);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (git_oid_fromstr(&id, line) < 0)
			continue;
		hfm_imp_keyset_put(&g->shallow, id.id, NULL);
		g->job->shallow = hfm_realloc(g->job->shallow,
					      (g->job->nshallow + 1) * sizeof(char *));
		g->job->shallow[g->job->nshallow++] = hfm_strdup(line);
	}
	fclose(f);
	if (g->job->nshallow)
		hfm_progress_say(g->job->progress, "%s is a shallow clone: the mirror gets "
				     "its history only as deep as the clone has it",
				     g->job->source);
	return 0;
}

/* git-lfs keeps objects in <gitdir>/lfs/objects unless lfs.storage moves them. */
static void find_lfs_dir(struct clone_walk *g)
{
	const char *common = git_repository_commondir(g->repo);
	git_config *cfg = NULL;
	const char *storage = NULL;

	if (git_repository_config_snapshot(&cfg, g->repo) == 0 &&
	    git_config_get_string(&storage, cfg, "lfs.storage") == 0 && storage[0]) {
		if (storage[0] == '/')
			g->lfsdir = hfm_asprintf("%s/objects", storage);
		else
			g->lfsdir = hfm_asprintf("%s%s/objects", common, storage);
	} else {
		g->lfsdir = hfm_asprintf("%slfs/objects", common);
	}
	git_config_free(cfg);
}

/*
 * A checked-out LFS file may hold the content when git-lfs's store does not
 * (after `git lfs prune`, or a copy of a working tree).  Only the files of
 * the checked-out commit are candidates; they are verified like any other.
 */
static int worktree_tree(struct clone_walk *g, const git_oid *id, const char *workdir)
{
	git_tree *tree = NULL;
	size_t i, n, plen = g->path.len;
	int rc = 0;

	if (git_tree_lookup(&tree, g->repo, id) < 0)
		return 0;
	n = git_tree_entrycount(tree);
	for (i = 0; i < n && !rc; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		git_odb_object *obj = NULL;
		char oid[HFM_SHA256_HEX + 1];
		uint64_t size;

		hfm_buf_truncate(&g->path, plen);
		if (plen)
			hfm_buf_putc(&g->path, '/');
		hfm_buf_puts(&g->path, git_tree_entry_name(te));
		if (git_tree_entry_type(te) == GIT_OBJECT_TREE) {
			rc = worktree_tree(g, git_tree_entry_id(te), workdir);
			continue;
		}
		if (git_tree_entry_type(te) != GIT_OBJECT_BLOB ||
		    git_odb_read(&obj, g->odb, git_tree_entry_id(te)) < 0)
			continue;
		if (git_odb_object_size(obj) <= POINTER_MAX &&
		    hfm_lfs_pointer_parse(oid, &size, git_odb_object_data(obj),
					  git_odb_object_size(obj)) == 0) {
			struct hfm_imp_lfs *e = hfm_imp_lfsset_find(&g->job->lfs, oid);

			if (e) {
				char *p = hfm_asprintf("%s%s", workdir, g->path.ptr);

				hfm_imp_lfs_add_cand(e, p, HFM_IMP_CAND_WORKTREE, NULL);
				free(p);
			}
		}
		git_odb_object_free(obj);
	}
	hfm_buf_truncate(&g->path, plen);
	git_tree_free(tree);
	return rc;
}

static void worktree_candidates(struct clone_walk *g)
{
	const char *workdir = git_repository_workdir(g->repo);
	git_object *head = NULL;

	if (!workdir || git_revparse_single(&head, g->repo, "HEAD^{tree}") < 0)
		return;
	hfm_buf_reset(&g->path);
	worktree_tree(g, git_object_id(head), workdir);
	git_object_free(head);
}

/* ---- step 1 --------------------------------------------------------------- */

int hfm_imp_clone_collect(struct hfm_imp_job *job)
{
	struct clone_walk g;
	size_t i;
	int rc = 0;

	memset(&g, 0, sizeof(g));
	g.job = job;
	hfm_imp_keyset_init(&g.seen, GIT_OID_RAWSZ);
	hfm_imp_keyset_init(&g.shallow, GIT_OID_RAWSZ);
	hfm_buf_init(&g.path, HFM_PATH_MAX);
	if (git_repository_open_ext(&g.repo, job->source, GIT_REPOSITORY_OPEN_NO_SEARCH,
				    NULL) < 0) {
		rc = hfm_imp_git_error(job->source);
		goto cleanup;
	}
	if (git_repository_odb(&g.odb, g.repo) < 0 || git_repository_odb(&g.modb, job->mirror) < 0 ||
	    git_packbuilder_new(&g.pb, g.repo) < 0) {
		rc = hfm_imp_git_error(job->source);
		goto cleanup;
	}
	git_packbuilder_set_threads(g.pb, 0);
	find_lfs_dir(&g);
	if ((rc = read_shallow(&g)) || (rc = select_refs(&g)))
		goto cleanup;

	/* the default branch first, so messages name the files as it has them */
	for (i = 0; i < job->nrefs && job->head && !rc; i++) {
		char *full = hfm_asprintf("refs/heads/%s", job->head);

		if (!strcmp(job->refs[i].name, full))
			rc = walk_ref(&g, job->refs[i].name, &job->refs[i].target);
		free(full);
	}
	for (i = 0; i < job->nrefs && !rc; i++)
		rc = walk_ref(&g, job->refs[i].name, &job->refs[i].target);
	if (rc)
		goto cleanup;
	hfm_progress_say(job->progress, "%s: %zu refs, %zu commits, %zu LFS objects",
			     job->id.name, job->nrefs, g.commits, job->lfs.n);
	if ((rc = write_pack(&g)))
		goto cleanup;
	worktree_candidates(&g);
cleanup:
	git_packbuilder_free(g.pb);
	git_odb_free(g.odb);
	git_odb_free(g.modb);
	git_repository_free(g.repo);
	hfm_imp_keyset_dispose(&g.seen);
	hfm_imp_keyset_dispose(&g.shallow);
	hfm_buf_dispose(&g.path);
	free(g.stack);
	free(g.lfsdir);
	return rc;
}
