/*
 * shadow.h - shadow git repositories of model-bin repos, so that git can
 * clone a plain directory tree.
 *
 *   <dir>/{models,datasets,spaces}/<org>/<name>.git     bare, one per repo
 *
 * A shadow holds one commit per listing the source answered: the files as
 * the importer makes them for a plain directory (hfmirror-import): mode
 * 100644 for every file, LFS files as their canonical pointer, so every
 * blob id is the id the API lists for the file.  Its branch `main` gets a
 * new commit (parent: the previous one, so `git fetch` fast-forwards) when
 * the listing's tree changes; the same tree again makes no commit.  The
 * commit is by "hfmirror", dated with the listing's date, and its message
 * names the model-bin commit it was made from.  Directories have real git
 * tree ids, which differ from the stand-in ids model-bin's API lists for
 * directories (docs/git-clone.md).
 *
 * Everything is built through the source ops (list with ids, open), never
 * by reading the directory behind the source's back, so it sees what the
 * API sees.  A file whose content no longer matches its listed id (it
 * changed while the shadow was built) fails the build; the next request
 * builds again.
 *
 * Threads: any thread may call hfm_shadow_get(); builds run one at a time
 * (other requests wait for the one under way); once built, a listing that
 * has not changed costs a lookup in memory.
 */
#ifndef HFM_SHADOW_H
#define HFM_SHADOW_H

#include "lookup.h"

struct hfm_shadows;

/* Keep shadows under `dir` (created if missing). */
int hfm_shadows_new(struct hfm_shadows **out, const char *dir);
void hfm_shadows_free(struct hfm_shadows *s);

/*
 * The path of the shadow of f's repo, up to date with f->rc.commit (built
 * or refreshed now).  *path is malloc'd.  HFM_EAGAIN (ctx->waiter armed)
 * while the source is still hashing files, or the source's errors.
 */
int hfm_shadow_get(char **path, struct hfm_shadows *s, const struct hfm_found *f,
		   struct hfm_ctx *ctx);

#endif
