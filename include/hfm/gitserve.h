/*
 * gitserve.h - what the app keeps to serve git clients (h_git.c): the pack
 * workers' pool, the model-bin shadow repositories, the relay to the
 * upstream hub's git for repos only the online cache has.
 *
 * The CLI makes one before the server starts, hands it to the app
 * (struct hfm_app.git) and frees it after the server stopped: freeing
 * cancels the pack workers still running and waits for them.
 * docs/git-clone.md describes what git clients get from each kind of repo.
 */
#ifndef HFM_GITSERVE_H
#define HFM_GITSERVE_H

#include "buf.h"
#include "upstream.h"

struct hfm_gitserve_opts {
	/*
	 * Where shadow repositories of model-bin repos are kept (a directory
	 * that is created); NULL: model-bin repos cannot be cloned.
	 */
	const char *shadow_dir;
	/*
	 * The upstream hub ("https://huggingface.co") whose git a clone of a
	 * repo that only the online cache has is relayed to; NULL: no relay.
	 */
	const char *upstream_url;
	const struct hfm_up_opts *up_opts;   /* for the relay's client; NULL = defaults */
	int offline;                          /* no relay */
	unsigned max_streams, max_busy;       /* the pack pool (gitpack.h); 0 = defaults */
};

struct hfm_gitserve;

int hfm_gitserve_new(struct hfm_gitserve **out, const struct hfm_gitserve_opts *o);
void hfm_gitserve_free(struct hfm_gitserve *g);

/* Its counters (packs, objects, whole packs, running) are /metrics series
 * (hfmirror_git_*, metrics.h), copied in by a probe while g lives. */

#endif
