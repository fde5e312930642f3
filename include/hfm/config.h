/*
 * config.h - the daemon's settings: Olah's configs.toml plus our own keys.
 *
 * A struct hfm_config is plain data that the rest of the code reads.  It is
 * filled in three steps, each of which may be skipped:
 *
 *   1. hfm_config_new()    built-in defaults (Olah's where Olah has the key);
 *   2. hfm_config_read()   a configs.toml on top (hfm_config_load() = 1 + 2 + 3);
 *   3. command-line flags  assign fields directly, strings with
 *                          hfm_config_set_str() / hfm_config_push_str();
 *   4. hfm_config_finish() cross-field checks, derived values (mirror_url),
 *                          compiled rule lists.  Call it again after changing
 *                          fields; it recomputes everything it derives.
 *
 * Ownership: the struct owns every string, string array and rule list it
 * points to; hfm_config_free() releases them all.  Replace a string field
 * only through hfm_config_set_str() (or free() the old value yourself).
 * After hfm_config_finish() the struct is read-only and may be shared by any
 * number of threads (the compiled rule lists are thread-safe).  The one
 * exception is `proxy` and `cache`: the handles stay, but a SIGHUP reload
 * (cli.c) swaps the lists behind them with hfm_rules_replace().
 *
 * Errors from the file name the place: "FILE:LINE: key: what is wrong", one
 * line per problem, each ending in '\n', in file order (all problems are
 * reported, not only the first).  Keys
 * that Olah knows but hfmirror does not act on are accepted and reported in
 * `warnings` in the same form ("FILE:LINE: key: ignored: why").  The full
 * key reference is docs/config.md.
 */
#ifndef HFM_CONFIG_H
#define HFM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "rules.h"

#ifdef __cplusplus
extern "C" {
#endif

enum hfm_clean_strategy {
	HFM_CLEAN_LRU = 0,
	HFM_CLEAN_FIFO,
	HFM_CLEAN_LARGE_FIRST,
};

/* How file bodies are written to sockets (the CLI maps it to http.h's hfm_body_io). */
enum hfm_cfg_body_io {
	HFM_CFG_IO_PREAD = 0,
	HFM_CFG_IO_SENDFILE = 1,
};

#define HFM_CONFIG_DEFAULT_PORT 8090
#define HFM_CONFIG_DEFAULT_BLOCK_SIZE (16u << 20)
#define HFM_CONFIG_MIN_BLOCK_SIZE (64u << 10)
#define HFM_CONFIG_MAX_BLOCK_SIZE (1u << 30)
#define HFM_CONFIG_MAX_FILE_SIZE (1u << 20)    /* a config file larger is refused */
#define HFM_CONFIG_DEFAULT_RANGE_FILL_MAX (64ull << 30)

struct hfm_config {
	char *path;                  /* the file read last, NULL if none */

	/* [basic] (Olah) */
	char *host;                  /* bind address; "localhost" */
	int port;                    /* 8090; 0 = any free port */
	char *ssl_key;               /* PEM paths; NULL (or "" in the file) = plain HTTP */
	char *ssl_cert;
	char *repos_path;            /* the store / cache root; "./repos" */
	uint64_t cache_size_limit;   /* bytes; 0 = no limit */
	enum hfm_clean_strategy cache_clean_strategy;   /* LRU */
	uint64_t cache_block_size;   /* bytes; HFM_CONFIG_DEFAULT_BLOCK_SIZE */
	char *hf_scheme;             /* "https" */
	char *hf_netloc;             /* "huggingface.co" */
	char *hf_lfs_netloc;         /* "cdn-lfs.huggingface.co" */
	char *mirror_scheme;         /* NULL = derived (see mirror_url) */
	char *mirror_netloc;         /* NULL = derived */
	char *mirror_lfs_netloc;     /* NULL = derived */
	char **mirrors_path;         /* git mirror roots, tried in order; none by default */
	size_t n_mirrors_path;

	/* [accessibility] (Olah) */
	int offline;                 /* 0 */
	struct hfm_rule *proxy_rules;    /* as written; Olah's defaults if the file has none */
	size_t n_proxy_rules;
	struct hfm_rule_who *proxy_who;  /* users/groups of each proxy rule (n_proxy_rules), or NULL */
	struct hfm_rule *cache_rules;
	size_t n_cache_rules;

	/* [model-bin] (Olah fork; `path` may also be a list here) */
	int model_bin;               /* enable; 0 */
	char **model_bin_paths;      /* directory trees served as repos */
	size_t n_model_bin_paths;

	/* [hfmirror] (ours) */
	int threads;                 /* HTTP worker threads; 0 = one per CPU */
	int hash_threads;            /* hashing threads requests may wait for; 2 */
	enum hfm_cfg_body_io body_io;    /* PREAD */
	char *access_log;            /* path; "-" = standard output (default); NULL = off */
	char *hash_index;            /* path; NULL = the default place (the CLI's) */
	unsigned metadata_ttl;       /* seconds a branch/tag answer from upstream is reused; 60 */
	unsigned wait_timeout;       /* seconds a request may wait for bytes; 600 */
	unsigned idle_timeout;       /* seconds an idle connection is kept; 120 */
	unsigned head_timeout;       /* seconds a request's head (and body) may take; 10 */
	unsigned max_connections;    /* 16384 */
	unsigned model_bin_rescan;   /* seconds a model-bin listing is trusted; 5 */
	int model_bin_prefetch;      /* hash every model-bin file in the background; 1 */
	int allow_gated_offline;     /* offline: serve cached gated repos without a token check; 0 */
	unsigned access_check_ttl;   /* seconds an upstream token check of a gated repo holds; 300 */
	unsigned upstream_timeout;   /* seconds an upstream transfer may stall before it fails; 30 */
	unsigned evict_interval;     /* seconds between eviction passes (and one after publishes); 60 */
	uint64_t range_fill_max_size;   /* bytes: a Range on a larger cold blob is relayed, not
					   stored; 0 = no limit; HFM_CONFIG_DEFAULT_RANGE_FILL_MAX */
	int verify_ranges_strict;    /* verify-ranges = "strict": Range answers wait for the
					verified blob; 0 ("live") */
	unsigned upstream_hold_down; /* seconds the upstream counts as unreachable after a
					failed DNS lookup or connect; 30 */
	int read_only_store;         /* never write the store: serve what is published, relay
					the rest (docs/scale-out.md); 0 */
	unsigned drain_timeout;      /* seconds SIGTERM lets requests in flight finish; 30 */

	/* [auth] (ours; docs/access.md) */
	char *tokens;                /* the tokens file (tokens.h); NULL = no local users */
	int anonymous;               /* serve requests without a valid local token; 1 */
	char *audit_log;             /* the download audit log (audit.h); NULL = off */
	uint64_t audit_log_max_size; /* bytes: rotate past it; 0 = only on SIGHUP (outside) */
	unsigned auth_fail_limit;    /* failed token checks per address in the window; 20 */
	unsigned auth_fail_window;   /* seconds; 60 */
	int upstream_tokens;         /* ask the upstream whose an unknown token is (auth.h); 0 */

	/* Filled by hfm_config_finish(); never set these yourself. */
	char *mirror_url;            /* "<mirror-scheme>://<mirror-netloc>" */
	char *mirror_lfs_url;        /* "<mirror-scheme>://<mirror-lfs-netloc>" */
	struct hfm_rules *proxy;     /* compiled proxy_rules */
	struct hfm_rules *cache;     /* compiled cache_rules */

	/* "FILE:LINE: key: ignored: why\n" lines from reading; NULL if none. */
	char *warnings;
};

/* A config holding the defaults above (rules: Olah's defaults). */
int hfm_config_new(struct hfm_config **out);

/*
 * Read the TOML file at `path` into `cfg`: keys present replace the current
 * values, absent keys keep them.  A rule list present in the file replaces
 * the current list entirely (Olah's rule).  On any error returns HFM_EINVAL
 * (HFM_EIO when the file cannot be read), appends one line per problem to
 * `err` (may be NULL), and leaves `cfg` partly updated: free it.
 */
int hfm_config_read(struct hfm_config *cfg, const char *path, struct hfm_buf *err);

/*
 * Check what involves several fields (ssl-key and ssl-cert come together),
 * derive mirror_url / mirror_lfs_url and compile the rule lists.  Errors
 * (HFM_EINVAL) say which keys disagree; they carry no file position because
 * a command-line flag may be the cause.
 */
int hfm_config_finish(struct hfm_config *cfg, struct hfm_buf *err);

/* hfm_config_new() + hfm_config_read() + hfm_config_finish(). */
int hfm_config_load(struct hfm_config **out, const char *path, struct hfm_buf *err);

void hfm_config_free(struct hfm_config *cfg);

/* Replace an owned string field with a copy of `value` (NULL clears it). */
void hfm_config_set_str(char **field, const char *value);
/* Free n users/groups entries and the array (proxy_who). */
void hfm_rule_who_free(struct hfm_rule_who *w, size_t n);
/* Append a copy of `value` to an owned string array (mirrors_path, ...). */
void hfm_config_push_str(char ***list, size_t *n, const char *value);

/*
 * Sizes as Olah's convert_to_bytes() reads them: an optional unit K, M, G,
 * T, KB, MB, GB or TB (any case, all binary: K = 1024) after a whole number
 * as Python's int() reads it (surrounding blanks, a sign, '_' between
 * digits).  "" means no limit and gives 0.  Unlike Olah, a value Olah would
 * silently turn into "no limit" ("500B", "abc") is an error, as are values
 * Olah crashes on ("1.5GB"), negative values, 0 and overflow.  On error
 * returns HFM_EINVAL and appends the reason to `err` (may be NULL).
 */
int hfm_parse_size(uint64_t *out, const char *s, struct hfm_buf *err);

/*
 * Durations for our own keys: whole seconds, or a whole number followed by
 * s, m, h or d ("90", "90s", "15m", "2h", "1d").  HFM_EINVAL and a reason on
 * anything else or above UINT_MAX seconds.
 */
int hfm_parse_duration(unsigned *out, const char *s, struct hfm_buf *err);

/*
 * Checks shared by the file reader, hfm_config_finish() and command-line
 * parsing, so a value means the same wherever it comes from: NULL if the
 * value is fine, else a static reason ("must be http or https").
 */
const char *hfm_config_check_port(long long port);
const char *hfm_config_check_host(const char *host);
const char *hfm_config_check_scheme(const char *scheme);
const char *hfm_config_check_netloc(const char *netloc);
const char *hfm_config_check_block_size(uint64_t size);

#ifdef __cplusplus
}
#endif

#endif
