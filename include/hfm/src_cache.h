/*
 * src_cache.h - the online cache: an upstream hub, fetched on demand and
 * kept in the store so that it can be served again offline.
 *
 * Metadata: upstream's API answers are kept under <store>/meta, per repo:
 *
 *   meta/<type>/<org>/<name>/revs/<enc rev>           rev -> sha (mtime = fetched)
 *   meta/<type>/<org>/<name>/refs.json                refs (mtime = fetched)
 *   meta/<type>/<org>/<name>/commits/<sha>/info.json  info (blobs-info.json: ?blobs=true)
 *   meta/<type>/<org>/<name>/commits/<sha>/tree.json  full recursive tree, all pages
 *   meta/<type>/<org>/<name>/commits/<sha>/log-<n>.json   commits page
 *   meta/<type>/<org>/<name>/commits/<sha>/expand/<sha1(dir)>.json
 *                          one directory's tree?expand=true (lastCommit), all pages
 *
 * HFM_LIST_EXPAND (list, stat): last_commit comes from the expanded listing
 * of each directory the answer touches; where none is cached and upstream
 * cannot be asked (offline, down) last_commit stays NULL.
 *
 * Answers keyed by a commit never change and are never fetched again; a
 * branch or tag is asked upstream again when its mapping is older than
 * `metadata_ttl`.  Xet signals (xetHash, xetEnabled) are removed before
 * anything is stored.  Files are written to a temporary name and renamed.
 *
 * Soft offline: when upstream fails (network, 5xx) the cached mapping is
 * used whatever its age; only a repo or revision never seen is an error
 * (502/504).  With `offline` nothing is asked upstream at all.
 *
 * Files: a blob already under objects/ is answered as an fd (zero-copy);
 * otherwise as a stream (stream.h) filled through the blob cache from
 * `{upstream}/{prefix}{repo}/resolve/{sha}/{path}` with the client's
 * Authorization.  A Range answer never reads unverified bytes stored
 * before its request came, and fills the whole blob in the background
 * (range_fill_max, strict_ranges: stream.h).  When the cache rules deny a
 * repo, its files are relayed without being stored and its metadata is not
 * written.
 *
 * Threading: all ops may run concurrently on server threads; upstream work
 * runs on the upstream thread (upstream.h) and wakes waiting requests.
 */
#ifndef HFM_SRC_CACHE_H
#define HFM_SRC_CACHE_H

#include <stdint.h>

#include "config.h"
#include "grants.h"
#include "log.h"
#include "rules.h"
#include "source.h"
#include "store.h"

struct hfm_cachesrc_opts {
	const char *upstream_url;        /* "https://huggingface.co": scheme://netloc, no '/' at the end */
	const char *lfs_netloc;          /* upstream's LFS/CDN host, NULL if none (informational) */
	struct hfm_store *store;         /* borrowed; must outlive the source */
	int offline;                     /* never contact upstream */
	unsigned metadata_ttl;           /* seconds a branch/tag mapping is reused */
	uint32_t block_size;             /* blob cache block, power of two; 0 = 1 MiB */
	const struct hfm_rules *cache_rules;  /* borrowed; NULL = cache every repo */
	int allow_gated_offline;         /* offline: serve gated/private repos without a check */
	/*
	 * Local users' grants (grants.h), borrowed, or NULL: a gated or private
	 * repo is served to a request whose ctx->who holds a grant for it
	 * without asking upstream (which could not check a local token).
	 */
	struct hfm_grants *grants;
	unsigned access_check_ttl;       /* seconds a token check holds; 0 = 300 */
	unsigned upstream_timeout;       /* seconds a transfer may stall; 0 = 30 */
	unsigned upstream_hold_down;     /* seconds the upstream counts as unreachable
					    after a failed DNS lookup or connect
					    (upstream.h); 0 = 30 */
	uint64_t range_fill_max;         /* bytes: a Range on a larger blob is relayed,
					    not stored nor filled; 0 = no limit */
	int strict_ranges;               /* a Range waits for the verified blob */
	/*
	 * Make each filled block durable at once (not after 8 MiB or 1 s of
	 * them), so that a crash costs at most the block under way: what
	 * `hfmirror sync` wants, whose reruns resume.
	 */
	int durable_blocks;
	const char *ca_file;             /* extra CA bundle for upstream TLS, or NULL */
	/*
	 * Eviction (evict.h): with a size_limit, a background evictor keeps the
	 * cache-written blobs and partial/ under it (down to 90 %, a pass every
	 * evict_interval_s, 0 = 60 s, and one at start).  0 = no limit.
	 * Never in offline mode: an air-gapped copy is not a cache.
	 */
	uint64_t size_limit;
	enum hfm_clean_strategy clean_strategy;
	unsigned evict_interval_s;
	/*
	 * Run the evictor without a limit (or offline) too, its passes only
	 * measuring the store for /metrics (the daemon; not `hfmirror sync`,
	 * whose exit would wait for a pass under way).
	 */
	int measure_store;
	hfm_log_fn log;
	void *log_cls;
};

/* Strings in `o` are copied.  HFM_EINVAL for a missing store or URL. */
int hfm_cachesrc_new(struct hfm_source **out, const struct hfm_cachesrc_opts *o);

/*
 * 1 if the upstream said the repo is gated or private when the cache last
 * fetched its info (the repo's meta mark), else 0.  Any thread.
 */
int hfm_cachesrc_restricted(struct hfm_source *cache, const struct hfm_repo_id *id);

#endif
