/*
 * source.h - the one interface behind which every repo source sits.
 *
 * A source (model-bin directory tree, git mirrors, the online cache) is a
 * struct hfm_source with an ops table, like a libgit2 odb backend.  Handlers
 * only talk to this interface: they never know which source answered.
 * Adding a source (an S3 store, a peer mirror) is a new file, not a new
 * branch in the handlers.
 *
 * Threading: every op may be called concurrently from any server thread.
 *
 * Waiting: an op that needs work that is not done yet (hashing, upstream
 * bytes) may arm ctx->waiter on a wait queue (wait.h) and return HFM_EAGAIN;
 * the handler suspends the request and re-runs it from the top when woken.
 * Ops must therefore be idempotent, and must make progress between calls
 * (the work started by the first call is what the second call finds done).
 * When ctx->waiter is NULL the caller cannot wait: the op blocks until done.
 *
 * Errors: HFM_ENOREPO (source does not have the repo), HFM_ENOREV,
 * HFM_ENOENT, HFM_EAGAIN, HFM_EUNAVAIL (known entry, content missing), or
 * transport errors (HFM_EUPSTREAM, HFM_ETIMEOUT, HFM_EIO).  hfm_error_set()
 * may add a message for X-Error-Message.
 */
#ifndef HFM_SOURCE_H
#define HFM_SOURCE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "hash.h"
#include "metrics.h"
#include "path.h"
#include "wait.h"

struct hfm_source;
struct hfm_repo;
struct hfm_ident;                        /* ident.h */

/* What a request carries into a source. */
struct hfm_ctx {
	struct hfm_waiter *waiter;       /* arm to wait; NULL = block instead */
	/* the Authorization to pass upstream, or NULL (none, or a local token) */
	const char *authorization;
	const struct hfm_ident *who;     /* the local user asking; NULL = anonymous */
	/*
	 * hfm_mono_ns() when the request came, the same in every re-run of
	 * it; 0 = unknown.  The cache tells bytes stored before a request
	 * from bytes it sees arrive (stream.h).
	 */
	uint64_t arrived_ns;
};

/* A commit as the API shows it. Strings are owned (hfm_commit_dispose). */
struct hfm_commit {
	char id[HFM_SHA1_HEX + 1];
	int64_t date_ms;
	char *title;
	char *message;
	char *author;                    /* user name, or NULL */
};
void hfm_commit_dispose(struct hfm_commit *c);

/* The last commit that touched a path (tree/paths-info with expand). */
struct hfm_last_commit {
	char id[HFM_SHA1_HEX + 1];
	int64_t date_ms;
	char *title;
};

/* One file or directory at a commit. */
struct hfm_entry {
	const char *path;                /* repo-relative, owned by the snapshot/list */
	uint64_t size;                   /* content bytes (LFS object size); 0 for dirs */
	int64_t mtime_ms;                /* 0 if unknown */
	uint32_t pointer_size;           /* LFS pointer length when is_lfs */
	uint8_t is_dir;
	uint8_t is_lfs;
	atomic_uchar has_ids;            /* oid/lfs_oid/is_lfs are final (acquire) */
	char oid[HFM_SHA1_HEX + 1];      /* git blob id (of the pointer for LFS) or tree id */
	char lfs_oid[HFM_SHA256_HEX + 1];/* content sha256 when is_lfs */
	struct hfm_last_commit *last_commit; /* set by list/stat with HFM_LIST_EXPAND */
	void *priv;                      /* source-private */
};

/*
 * A snapshot: every entry of a repo at one commit, sorted by path in byte
 * order (so everything under "dir/" is one contiguous run).  Directories are
 * entries too; the root is not.  Snapshots are immutable once published,
 * except that an entry's ids may be filled in later (see has_ids), and are
 * shared by reference count.
 */
struct hfm_snapshot {
	atomic_int refs;
	char commit[HFM_SHA1_HEX + 1];
	int64_t date_ms;                 /* lastModified */
	int64_t created_ms;              /* createdAt (0 if unknown) */
	size_t n;
	struct hfm_entry *entries;
	void (*release)(struct hfm_snapshot *s);  /* frees everything */
	void *priv;
};
struct hfm_snapshot *hfm_snapshot_ref(struct hfm_snapshot *s);
void hfm_snapshot_unref(struct hfm_snapshot *s);
/* Index of `path` or -1.  "" (the root) is never found. */
ssize_t hfm_snapshot_find(const struct hfm_snapshot *s, const char *path);
/* [*from, *to) = the entries under directory `dir` ("" = whole repo). */
void hfm_snapshot_under(const struct hfm_snapshot *s, const char *dir,
			size_t *from, size_t *to);

/*
 * A list of entries answered to one request.  Items point into a snapshot
 * (held by the list) or into storage the list owns.  hfm_list_free()
 * releases both.
 */
struct hfm_list {
	size_t n, cap;
	const struct hfm_entry **items;
	struct hfm_snapshot *snap;       /* reference held, or NULL */
	void (*release)(struct hfm_list *l);  /* frees owned storage, may be NULL */
	void *priv;
};
struct hfm_list *hfm_list_new(struct hfm_snapshot *snap, size_t cap);
void hfm_list_push(struct hfm_list *l, const struct hfm_entry *e);
void hfm_list_free(struct hfm_list *l);

/*
 * Snapshot-backed list and stat, for sources that build snapshots.
 * hfm_snapshot_list(): entries under `path` (a directory; "" = root),
 * recursively or one level.  HFM_ENOENT if `path` is missing or a file.
 * hfm_snapshot_stat(): the entries for `paths` that exist, in request order.
 */
int hfm_snapshot_list(struct hfm_list **out, struct hfm_snapshot *s,
		      const char *path, int recursive);
int hfm_snapshot_stat(struct hfm_list **out, struct hfm_snapshot *s,
		      const char *const *paths, size_t n);

/* refs: name "main", ref "refs/heads/main", target 40-hex. */
struct hfm_ref {
	char *name;
	char *ref;
	char target[HFM_SHA1_HEX + 1];
};
struct hfm_refs {
	size_t n[4];
	struct hfm_ref *v[4];
};
enum { HFM_REFS_BRANCH, HFM_REFS_TAG, HFM_REFS_CONVERT, HFM_REFS_PR };
struct hfm_refs *hfm_refs_new(void);
void hfm_refs_add(struct hfm_refs *r, int kind, const char *name, const char *ref,
		  const char *target);
void hfm_refs_free(struct hfm_refs *r);

struct hfm_commits {
	size_t n;
	struct hfm_commit *v;
	int more;                        /* more commits follow this page */
};
void hfm_commits_free(struct hfm_commits *c);

/*
 * A body that is still arriving (HFM_BODY_STREAM; the online cache's are in
 * stream.h).  The HTTP layer asks for bytes at a content offset and gets
 * what is there now, or HFM_EAGAIN after the stream armed the request's
 * waiter (the connection is then suspended until the bytes come: nothing
 * polls).
 *
 * Ownership: whoever holds the body owns its stream and calls
 * hfm_stream_free() once (also when the response was never sent, e.g.
 * HEAD).  A stream starts no work before its first read or prime.
 *
 * Threading: one reader at a time per stream (MHD calls a response's reader
 * from one thread at a time); the wake may come from any thread.
 */
struct hfm_stream;
struct hfm_stream_ops {
	/* hfm_stream_read() with pos < end and max > 0 checked. */
	ssize_t (*read)(struct hfm_stream *s, uint64_t pos, uint64_t end, char *buf,
			size_t max, struct hfm_waiter *w);
	/* Optional (NULL: always ready): hfm_stream_prime() with start < end, w set. */
	int (*prime)(struct hfm_stream *s, uint64_t start, uint64_t end, struct hfm_waiter *w);
	void (*free)(struct hfm_stream *s);
};
/* Base of every stream (embed first). */
struct hfm_stream {
	const struct hfm_stream_ops *ops;
};

/*
 * Copy bytes at content offset `pos` (pos < end) into buf (max > 0); `end`
 * is where this response stops.  Returns the number of bytes (> 0),
 * HFM_EAGAIN with w armed, or a negative error: the response must end short.
 * A stream whose length is not known in advance (end is UINT64_MAX,
 * HFM_LEN_UNKNOWN in http.h) returns 0 once it has ended.
 */
ssize_t hfm_stream_read(struct hfm_stream *s, uint64_t pos, uint64_t end, char *buf,
			size_t max, struct hfm_waiter *w);
/*
 * Before the status line is sent: 0 when bytes at `start` are readable now
 * (or the stream cannot tell without starting its transfer, or w is NULL),
 * HFM_EAGAIN with w armed while the first bytes are on their way, or the
 * error that fetching them met.  So a dead upstream is a 502/504 answer,
 * not a 200 that breaks off.  The caller may free the stream after
 * HFM_EAGAIN: work started continues (the blob cache keeps fetching) for
 * the re-run.
 */
int hfm_stream_prime(struct hfm_stream *s, uint64_t start, uint64_t end, struct hfm_waiter *w);
/* NULL is fine. */
void hfm_stream_free(struct hfm_stream *s);

/* A file body: bytes from an fd, from memory, or from a stream (cache). */
enum hfm_body_kind { HFM_BODY_FD, HFM_BODY_MEM, HFM_BODY_STREAM };
struct hfm_body {
	enum hfm_body_kind kind;
	uint64_t size;                   /* total content bytes */
	int fd;                          /* FD: owned, closed by dispose */
	uint64_t offset;                 /* FD: content starts here in fd */
	const char *mem;                 /* MEM: size bytes */
	void (*mem_free)(void *cls);     /* MEM: called by dispose, may be NULL */
	void *mem_cls;
	struct hfm_stream *stream;       /* STREAM */
	const char *source_kind;         /* for the access log: "model-bin", ... */
	enum hfm_m_cache cache;          /* the cache's bodies: hit, miss or relay (metrics.h) */
};
void hfm_body_dispose(struct hfm_body *b);

/* Flags for list/stat/open. */
#define HFM_LIST_RECURSIVE 0x1u      /* list: descend */
#define HFM_LIST_EXPAND    0x2u      /* fill last_commit */
#define HFM_LIST_IDS       0x4u      /* oid/lfs fields must be final */
#define HFM_OPEN_RAW       0x8u      /* open the git blob (LFS pointer), not the content */

/* Resolution of a revision. */
struct hfm_resolved {
	char commit[HFM_SHA1_HEX + 1];
	int64_t date_ms;
	int64_t created_ms;              /* 0 if unknown */
	/* 1: a branch or tag the upstream could not answer for (down, held down,
	 * offline), answered with the store's last mapping (the online cache);
	 * sources without an upstream always say 0.  sync fails on it. */
	int unconfirmed;
};

/* A source's state for the status page (ops->status); strings borrowed from the source. */
enum hfm_upstream_state { HFM_UP_NONE, HFM_UP_REACHABLE, HFM_UP_UNREACHABLE, HFM_UP_OFFLINE };
struct hfm_source_status {
	const char *upstream;            /* its upstream's URL, or NULL */
	enum hfm_upstream_state state;
	const char *store;               /* the store it fills, or NULL */
	uint64_t fills, fill_failures;   /* blob fetches started, failed */
	uint64_t verified, bytes_written;/* blobs published, bytes written into partial/ */
	uint64_t open_blobs;             /* blobs in memory now (fills in flight or read) */
	uint64_t upstream_requests, upstream_bytes, upstream_unreachable;
};

struct hfm_source_ops {
	const char *kind;                /* "model-bin", "git", "cache": logs, headers */

	/* Find the repo; HFM_ENOREPO if this source does not have it. */
	int (*repo_open)(struct hfm_repo **out, struct hfm_source *src,
			 const struct hfm_repo_id *id, struct hfm_ctx *ctx);
	void (*repo_close)(struct hfm_repo *r);

	/* rev: branch, tag, full sha, "HEAD", "refs/pr/N", "refs/convert/x". */
	int (*resolve)(struct hfm_resolved *out, struct hfm_repo *r, const char *rev,
		       struct hfm_ctx *ctx);
	int (*list)(struct hfm_list **out, struct hfm_repo *r, const char *commit,
		    const char *path, unsigned flags, struct hfm_ctx *ctx);
	int (*stat)(struct hfm_list **out, struct hfm_repo *r, const char *commit,
		    const char *const *paths, size_t n, unsigned flags,
		    struct hfm_ctx *ctx);
	/*
	 * Optional: the whole info JSON for (commit, query) when the source has
	 * its own (the cache replays upstream's).  NULL = the API renders it from
	 * resolve + list.
	 */
	int (*info)(struct hfm_buf *out, struct hfm_repo *r, const struct hfm_resolved *rc,
		    unsigned flags, struct hfm_ctx *ctx);
	int (*refs)(struct hfm_refs **out, struct hfm_repo *r, struct hfm_ctx *ctx);
	/* Commits reachable from `commit`, newest first, skipping `skip`. */
	int (*commits)(struct hfm_commits **out, struct hfm_repo *r, const char *commit,
		       size_t skip, size_t limit, struct hfm_ctx *ctx);
	/* Open a file entry obtained from list/stat on the same repo+commit. */
	int (*open)(struct hfm_body *out, struct hfm_repo *r, const char *commit,
		    const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx);
	/*
	 * 1 if open() may also be given an entry another source listed for the
	 * same repo id and commit: it uses only the entry's path, size and ids,
	 * never e->priv.  hfm_lookup_open() turns to such a source for an LFS
	 * object the answering source lacks (the online cache fetches it).
	 */
	int opens_foreign;

	/*
	 * Optional: 0 if this request may read the file contents of r (resolved
	 * first), else the Hub's error (HFM_EGATED, HFM_ENOREPO) or HFM_EAGAIN.
	 * The cache asks its upstream for gated and private repos (auth-check).
	 * NULL = always allowed.
	 */
	int (*access)(struct hfm_repo *r, struct hfm_ctx *ctx);

	/* Optional: call cb for every repo of type t this source holds. */
	void (*list_repos)(struct hfm_source *src, enum hfm_repo_type t,
			   void (*cb)(void *cls, const char *name), void *cls);

	/*
	 * Optional: whose token ctx->authorization is, by the upstream's
	 * GET /api/whoami-v2: 0 with the user name in *name, HFM_EAUTH when the
	 * upstream refuses the token, HFM_EAGAIN (waiter armed), HFM_EOFFLINE,
	 * or a transport error.  The cache remembers answers for its
	 * access-check-ttl.  (`[auth] upstream-tokens`, auth.h.)
	 */
	int (*whoami)(struct hfm_buf *name, struct hfm_source *src, struct hfm_ctx *ctx);

	/*
	 * Optional: where libgit2 opens a repository that holds r's history with
	 * the ids this source answers, for git clients (smart HTTP, h_git.c).
	 * NULL (or no op) = none.  The string lives as long as r.
	 */
	const char *(*git_path)(struct hfm_repo *r);

	/* Optional: what the status page shows of this source (upstream, store, fills). */
	void (*status)(struct hfm_source *src, struct hfm_source_status *out);

	/*
	 * Optional: 0 if this source can answer now (/readyz, for a load
	 * balancer), else an error with a message (the cache: its store is not
	 * writable, or the upstream is held down as unreachable).  Cheap: a
	 * health check calls it every second or so.  NULL = always ready.
	 */
	int (*ready)(struct hfm_source *src);

	void (*free)(struct hfm_source *src);
};

struct hfm_source {
	const struct hfm_source_ops *ops;
	char *label;                     /* where it reads from, for logs */
};

/* Base of every source's repo handle (embed first). */
struct hfm_repo {
	struct hfm_source *src;
	struct hfm_repo_id id;
};

/* Info flags */
#define HFM_INFO_BLOBS 0x1u          /* ?blobs=true: size/blobId/lfs in siblings */

#endif
