/*
 * gitwalk.h - what an upload-pack answer sends (gitpack.c's workers): the
 * client's wants and haves sorted out, the acknowledgement rule ("ready"),
 * the shallow boundary, and the objects to pack, found by walking commits
 * newest first (gitpack.h says what is sent and why).
 *
 * One walk belongs to one answer and runs on its worker's thread with the
 * worker's libgit2 handle; it checks `cancelled` between commits and trees
 * and then fails with HFM_ERROR.
 */
#ifndef HFM_GITWALK_H
#define HFM_GITWALK_H

#include <stdatomic.h>
#include <stdint.h>

#include <git2.h>

#include "gitproto.h"

/* A set of object ids, each with a byte of flags (open addressing). */
struct hfm_oidslot {
	git_oid id;
	uint8_t used, flags;
};
struct hfm_oidset {
	struct hfm_oidslot *v;
	size_t cap, n;                       /* cap: a power of two, or 0 */
};

/* An object to send, and the name libgit2 groups delta candidates by. */
struct hfm_gitobj {
	git_oid id;
	char name[24];                       /* libgit2 hashes the last 16 characters */
};

struct hfm_gitwalk {
	git_repository *g;                   /* borrowed */
	git_odb *odb;                        /* borrowed */
	const struct hfm_upload_req *q;      /* borrowed */
	const atomic_int *cancelled;         /* borrowed */

	/* hfm_gitwalk_classify() */
	struct hfm_oidv want_commits;        /* wants, tags peeled */
	struct hfm_oidv want_tags;           /* annotated tags wanted (and tags they point to) */
	struct hfm_oidv want_other;          /* trees and blobs wanted */
	struct hfm_oidv common;              /* haves this repository has, in request order */
	struct hfm_oidv have_commits;        /* ... peeled to commits */
	struct hfm_oidv shallows;            /* the client's shallow commits we have */
	struct hfm_oidv repo_shallow;        /* this repository's own (a shallow mirror) */

	/* hfm_gitwalk_objects(): what the pack holds, in the order found */
	struct hfm_gitobj *objects;
	size_t nobjects, nobj_cap;

	/* private */
	struct hfm_oidset commits, objs, rshallow;
	struct hfm_oidv edges, result, starts;
	int ready_known, ready;
	size_t ready_common;
};

void hfm_gitwalk_init(struct hfm_gitwalk *w, git_repository *g, git_odb *odb,
		      const struct hfm_upload_req *q, const atomic_int *cancelled);
void hfm_gitwalk_dispose(struct hfm_gitwalk *w);

/*
 * Sort the request's ids: a want that is not an object here is HFM_ENOENT
 * "upload-pack: not our ref <id>"; haves and shallows we lack are dropped.
 */
int hfm_gitwalk_classify(struct hfm_gitwalk *w);
/*
 * git's ok_to_give_up: every wanted commit descends from a common one, so
 * the pack can be made now.  Past a bound of reachability checks: 0.
 */
int hfm_gitwalk_ready(struct hfm_gitwalk *w);
/*
 * deepen / deepen-since / deepen-relative: the "shallow" and "unshallow"
 * pkt-lines into `out`, and the cuts the object walk then honours.  The
 * repository's own shallow commits are cuts too, and boundaries where the
 * walk reaches them; without a deepen, every one of them is a "shallow"
 * line (as git's server says them, so a clone of a shallow mirror is
 * shallow where the mirror is).
 */
int hfm_gitwalk_shallow(struct hfm_gitwalk *w, struct hfm_buf *out);
/* Walk and fill w->objects. */
int hfm_gitwalk_objects(struct hfm_gitwalk *w);
/*
 * The path of the repository's only pack file when it holds exactly
 * w->objects and nothing else is stored (it can be sent as it is), or NULL.
 */
char *hfm_gitwalk_whole_pack(struct hfm_gitwalk *w);

/*
 * The commits a shallow repository lists in its `shallow` file (it has
 * none of their parents: they are its roots), appended to `out`; none for
 * a complete one.  0, or HFM_EIO / HFM_ETOOBIG (over 1 000 000 lines).
 */
int hfm_gitwalk_repo_shallow(struct hfm_oidv *out, git_repository *g);

/* HFM_EIO with libgit2's message about `what`. */
int hfm_gitwalk_error(const char *what);

static inline void hfm_gitwalk_oid(git_oid *out, const struct hfm_git_oid *id)
{
	git_oid_fromraw(out, id->id);
}

#endif
