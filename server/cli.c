/*
 * cli.c - the hfmirror command line (also answering to Olah's `olah-cli`).
 *
 *   hfmirror model-bin --path DIR        a directory tree, offline
 *   hfmirror mirror -m DIR               git clones (+ the cache behind them)
 *   hfmirror proxy [--hf-netloc …]       the online cache of an upstream hub
 *   hfmirror serve -c configs.toml       everything the file says
 *   olah-cli [-c FILE] [flags]           Olah's upstream CLI: proxy
 *
 * Every command fills one struct hfm_config: the file first (-c), then the
 * flags on top, then hfm_config_finish() checks the whole.  run_server()
 * builds the source chain from the config: model-bin trees, git mirrors,
 * then the online cache, and serves until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/cli.h"
#include "hfm/config.h"
#include "hfm/hasher.h"
#include "hfm/handlers.h"
#include "hfm/hashindex.h"
#include "hfm/http.h"
#include "hfm/src_cache.h"
#include "hfm/src_git.h"
#include "hfm/src_modelbin.h"
#include "hfm/store.h"
#include "hfm/sync.h"

#ifndef HFM_VERSION
#define HFM_VERSION "0.1.0"
#endif

enum cmd { CMD_MODELBIN, CMD_MIRROR, CMD_PROXY, CMD_SERVE };
static const char *const cmd_names[] = { "model-bin", "mirror", "proxy", "serve" };

/* What the flags say beyond struct hfm_config. */
struct run {
	enum cmd cmd;
	const char *prog;
	const char *config_file;
	struct hfm_config *cfg;
	const char *public_url;
	double rescan;                   /* < 0: the config's */
	int no_prefetch;
	int repos_path_given;
};

/* ---- help ------------------------------------------------------------------ */

static void usage_main(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s <command> [options]\n"
		"\n"
		"A Hugging Face Hub mirror. Clients set HF_ENDPOINT=http://HOST:PORT.\n"
		"\n"
		"commands:\n"
		"  model-bin --path DIR   serve a directory of downloaded repos, offline\n"
		"  mirror -m DIR          serve git clones (bare or not, with LFS objects)\n"
		"  proxy                  cache an upstream hub (huggingface.co) on disk\n"
		"  serve -c FILE          run what an Olah-style configs.toml describes\n"
		"  sync -m MANIFEST       fetch what MANIFEST lists into the store (for offline)\n"
		"\n"
		"Run '%s <command> --help' for the options of a command.\n"
		"'%s --version' prints the version.\n",
		prog, prog, prog);
}

static void usage_common(FILE *f)
{
	fprintf(f,
		"server options:\n"
		"  -c, --config FILE      read an Olah-style configs.toml first; flags win\n"
		"  --host HOST            address or name to listen on (default: localhost;\n"
		"                         0.0.0.0 or :: for every interface)\n"
		"  --port PORT            TCP port (default: 8090; 0 picks a free port)\n"
		"  --ssl-key FILE         PEM private key; with --ssl-cert serves HTTPS\n"
		"  --ssl-cert FILE        PEM certificate (chain)\n"
		"  --public-url URL       base URL clients use, for pagination links\n"
		"                         (default: from the request's Host header)\n"
		"  --access-log FILE      one JSON line per request; '-' = stdout (default),\n"
		"                         'off' = none\n"
		"  --threads N            HTTP worker threads (default: one per CPU)\n"
		"  --body-io pread|sendfile  how file bodies are sent (default: pread)\n"
		"  --idle-timeout SEC     close idle connections after SEC (default: 120)\n"
		"  --max-connections N    concurrent connections (default: 4096)\n"
		"  --wait-timeout SEC     longest a request waits for hashing or upstream\n"
		"                         before 503 (default: 600)\n");
}

static void usage_upstream(FILE *f)
{
	fprintf(f,
		"cache options (Olah's names):\n"
		"  --repos-path DIR       the store: cached and imported repos (default: ./repos)\n"
		"  --hf-scheme S          upstream scheme (default: https)\n"
		"  --hf-netloc HOST       upstream hub (default: huggingface.co)\n"
		"  --hf-lfs-netloc HOST   upstream LFS host (default: cdn-lfs.huggingface.co)\n"
		"  --mirror-scheme S, --mirror-netloc HOST, --mirror-lfs-netloc HOST\n"
		"                         how clients reach this server (for rewritten URLs)\n"
		"  --cache-size-limit SIZE  e.g. 500G; evict beyond it (default: no limit)\n"
		"  --cache-clean-strategy LRU|FIFO|LARGE_FIRST\n"
		"  --offline              never contact the upstream; serve what is cached\n"
		"\n");
}

static void usage_cmd(FILE *f, enum cmd c, const char *prog)
{
	switch (c) {
	case CMD_MODELBIN:
		fprintf(f,
			"usage: %s model-bin --path DIR [options]\n"
			"\n"
			"Serve DIR as a read-only Hub, fully offline:\n"
			"  DIR/<org>/<repo>/...            models\n"
			"  DIR/datasets/<org>/<repo>/...   datasets\n"
			"  DIR/spaces/<org>/<repo>/...     spaces\n"
			"The only branch is 'main'; its commit id changes when files change.\n"
			"\n"
			"model-bin options:\n"
			"  -p, --path DIR         the tree to serve (repeatable: several trees)\n"
			"  --index FILE           persistent hash index (default:\n"
			"                         $XDG_CACHE_HOME/hfmirror/hashindex.bin)\n"
			"  --rescan-interval SEC  re-list a repo older than SEC (default: 5)\n"
			"  --no-prefetch          do not hash every file in the background at start\n"
			"\n",
			prog);
		break;
	case CMD_MIRROR:
		fprintf(f,
			"usage: %s mirror -m DIR [-m DIR...] [options]\n"
			"\n"
			"Serve git clones with their real branches, tags, PR refs and commits:\n"
			"  DIR/{models,datasets,spaces}/<org>/<repo>[.git]   bare or non-bare\n"
			"LFS content comes from each clone's lfs/objects, then from the store.\n"
			"What the clones lack is fetched through the cache unless\n"
			"--no-fallback-proxy or --offline.\n"
			"\n"
			"mirror options:\n"
			"  -m, --mirrors-path DIR  a folder of clones (repeatable)\n"
			"  --no-fallback-proxy     do not reach the upstream for what is missing\n"
			"\n",
			prog);
		usage_upstream(f);
		break;
	case CMD_PROXY:
		fprintf(f,
			"usage: %s proxy [options]\n"
			"\n"
			"Serve an upstream hub through a disk cache: the first download of a file\n"
			"comes from upstream while it is stored; later ones from disk, also offline.\n"
			"\n",
			prog);
		usage_upstream(f);
		break;
	case CMD_SERVE:
		fprintf(f,
			"usage: %s serve -c FILE [options]\n"
			"\n"
			"Run what FILE (Olah's configs.toml, plus [hfmirror] keys) describes:\n"
			"[model-bin] trees, mirrors-path clones and the cache, in that order.\n"
			"See docs/config.md.\n"
			"\n",
			prog);
		usage_upstream(f);
		break;
	}
	usage_common(f);
}

static int HFM_PRINTF(3, 4) die_usage(struct run *o, int show_cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", o->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '%s %s%s--help' for usage.\n", o->prog,
		show_cmd ? cmd_names[o->cmd] : "", show_cmd ? " " : "");
	return 2;
}

/* ---- flags ---------------------------------------------------------------- */

enum {
	O_HOST = 1000, O_PORT, O_SSL_KEY, O_SSL_CERT, O_ACCESS_LOG, O_INDEX, O_THREADS,
	O_BODY_IO, O_RESCAN, O_REPOS_PATH, O_NO_PREFETCH, O_IDLE, O_MAXCONN, O_WAIT,
	O_PUBLIC_URL, O_HELP, O_HF_SCHEME, O_HF_NETLOC, O_HF_LFS_NETLOC, O_MIRROR_SCHEME,
	O_MIRROR_NETLOC, O_MIRROR_LFS_NETLOC, O_CACHE_LIMIT, O_CACHE_STRATEGY, O_OFFLINE,
	O_FALLBACK, O_NO_FALLBACK, O_IGNORED_ARG, O_IGNORED_FLAG,
};

static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "path", required_argument, NULL, 'p' },
	{ "mirrors-path", required_argument, NULL, 'm' },
	{ "repos-path", required_argument, NULL, O_REPOS_PATH },
	{ "host", required_argument, NULL, O_HOST },
	{ "port", required_argument, NULL, O_PORT },
	{ "ssl-key", required_argument, NULL, O_SSL_KEY },
	{ "ssl-cert", required_argument, NULL, O_SSL_CERT },
	{ "access-log", required_argument, NULL, O_ACCESS_LOG },
	{ "index", required_argument, NULL, O_INDEX },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "body-io", required_argument, NULL, O_BODY_IO },
	{ "rescan-interval", required_argument, NULL, O_RESCAN },
	{ "no-prefetch", no_argument, NULL, O_NO_PREFETCH },
	{ "idle-timeout", required_argument, NULL, O_IDLE },
	{ "max-connections", required_argument, NULL, O_MAXCONN },
	{ "wait-timeout", required_argument, NULL, O_WAIT },
	{ "public-url", required_argument, NULL, O_PUBLIC_URL },
	{ "hf-scheme", required_argument, NULL, O_HF_SCHEME },
	{ "hf-netloc", required_argument, NULL, O_HF_NETLOC },
	{ "hf-lfs-netloc", required_argument, NULL, O_HF_LFS_NETLOC },
	{ "mirror-scheme", required_argument, NULL, O_MIRROR_SCHEME },
	{ "mirror-netloc", required_argument, NULL, O_MIRROR_NETLOC },
	{ "mirror-lfs-netloc", required_argument, NULL, O_MIRROR_LFS_NETLOC },
	{ "cache-size-limit", required_argument, NULL, O_CACHE_LIMIT },
	{ "cache-clean-strategy", required_argument, NULL, O_CACHE_STRATEGY },
	{ "offline", no_argument, NULL, O_OFFLINE },
	{ "fallback-proxy", no_argument, NULL, O_FALLBACK },
	{ "no-fallback-proxy", no_argument, NULL, O_NO_FALLBACK },
	/* Olah flags that change nothing here (see docs/migrating-from-olah.md) */
	{ "log-path", required_argument, NULL, O_IGNORED_ARG },
	{ "workers", required_argument, NULL, O_IGNORED_ARG },
	{ "cache-compression", required_argument, NULL, O_IGNORED_ARG },
	{ "has-lfs-site", no_argument, NULL, O_IGNORED_FLAG },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* First pass: only -c/--config and --help, so the file is read before flags. */
static int find_config(struct run *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage_cmd(stdout, o->cmd, o->prog);
			exit(0);
		}
		if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc)
			o->config_file = argv[++i];
		else if (!strncmp(a, "--config=", 9))
			o->config_file = a + 9;
	}
	return 0;
}

static int flag_str(struct run *o, const char *(*check)(const char *), const char *flag,
		    char **field, const char *v)
{
	const char *why = check ? check(v) : NULL;
	if (why)
		return die_usage(o, 1, "%s '%s': %s", flag, v, why);
	hfm_config_set_str(field, v);
	return 0;
}

static int parse_flags(struct run *o, int argc, char **argv)
{
	struct hfm_config *cfg = o->cfg;
	struct hfm_buf err = HFM_BUF_INIT(1024);
	int c, rc = 0;
	long v;

	opterr = 0;
	optind = 1;
	while (!rc && (c = getopt_long(argc, argv, ":c:p:m:h", longopts, NULL)) != -1) {
		const char *flag = argv[optind - 1];
		switch (c) {
		case 'c':
			break;                        /* read in find_config() */
		case 'p':
			hfm_config_push_str(&cfg->model_bin_paths, &cfg->n_model_bin_paths, optarg);
			cfg->model_bin = 1;
			break;
		case 'm':
			hfm_config_push_str(&cfg->mirrors_path, &cfg->n_mirrors_path, optarg);
			break;
		case O_REPOS_PATH:
			hfm_config_set_str(&cfg->repos_path, optarg);
			o->repos_path_given = 1;
			break;
		case O_HOST:
			rc = flag_str(o, hfm_config_check_host, "--host", &cfg->host, optarg);
			break;
		case O_PORT:
			if (parse_long(optarg, 0, 65535, &v))
				rc = die_usage(o, 1, "--port wants 0..65535, not '%s'", optarg);
			cfg->port = (int)v;
			break;
		case O_SSL_KEY:
			hfm_config_set_str(&cfg->ssl_key, *optarg ? optarg : NULL);
			break;
		case O_SSL_CERT:
			hfm_config_set_str(&cfg->ssl_cert, *optarg ? optarg : NULL);
			break;
		case O_ACCESS_LOG:
			hfm_config_set_str(&cfg->access_log, strcmp(optarg, "off") ? optarg : NULL);
			break;
		case O_INDEX:
			hfm_config_set_str(&cfg->hash_index, optarg);
			break;
		case O_THREADS:
			if (parse_long(optarg, 1, 1024, &v))
				rc = die_usage(o, 1, "--threads wants 1..1024, not '%s'", optarg);
			cfg->threads = (int)v;
			break;
		case O_BODY_IO:
			if (!strcmp(optarg, "pread"))
				cfg->body_io = HFM_CFG_IO_PREAD;
			else if (!strcmp(optarg, "sendfile"))
				cfg->body_io = HFM_CFG_IO_SENDFILE;
			else
				rc = die_usage(o, 1, "--body-io wants pread or sendfile, not '%s'", optarg);
			break;
		case O_RESCAN: {
			char *end;
			double d = strtod(optarg, &end);
			if (*end || end == optarg || d < 0 || d > 86400 * 365)
				rc = die_usage(o, 1, "--rescan-interval wants seconds, not '%s'", optarg);
			o->rescan = d;
			break;
		}
		case O_NO_PREFETCH:
			o->no_prefetch = 1;
			break;
		case O_IDLE:
			if (parse_long(optarg, 1, 86400, &v))
				rc = die_usage(o, 1, "--idle-timeout wants 1..86400 seconds, not '%s'", optarg);
			cfg->idle_timeout = (unsigned)v;
			break;
		case O_MAXCONN:
			if (parse_long(optarg, 1, 1000000, &v))
				rc = die_usage(o, 1, "--max-connections wants 1..1000000, not '%s'", optarg);
			cfg->max_connections = (unsigned)v;
			break;
		case O_WAIT:
			if (parse_long(optarg, 1, 86400, &v))
				rc = die_usage(o, 1, "--wait-timeout wants 1..86400 seconds, not '%s'", optarg);
			cfg->wait_timeout = (unsigned)v;
			break;
		case O_PUBLIC_URL:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
				rc = die_usage(o, 1, "--public-url wants http(s)://host[:port], not '%s'",
					       optarg);
			o->public_url = optarg;
			break;
		case O_HF_SCHEME:
			rc = flag_str(o, hfm_config_check_scheme, flag, &cfg->hf_scheme, optarg);
			break;
		case O_HF_NETLOC:
			rc = flag_str(o, hfm_config_check_netloc, flag, &cfg->hf_netloc, optarg);
			break;
		case O_HF_LFS_NETLOC:
			rc = flag_str(o, hfm_config_check_netloc, flag, &cfg->hf_lfs_netloc, optarg);
			break;
		case O_MIRROR_SCHEME:
			rc = flag_str(o, hfm_config_check_scheme, flag, &cfg->mirror_scheme, optarg);
			break;
		case O_MIRROR_NETLOC:
			rc = flag_str(o, hfm_config_check_netloc, flag, &cfg->mirror_netloc, optarg);
			break;
		case O_MIRROR_LFS_NETLOC:
			rc = flag_str(o, hfm_config_check_netloc, flag, &cfg->mirror_lfs_netloc, optarg);
			break;
		case O_CACHE_LIMIT:
			hfm_buf_reset(&err);
			if (hfm_parse_size(&cfg->cache_size_limit, optarg, &err))
				rc = die_usage(o, 1, "--cache-size-limit '%s': %s", optarg, hfm_buf_cstr(&err));
			break;
		case O_CACHE_STRATEGY:
			if (hfm_strieq(optarg, "LRU"))
				cfg->cache_clean_strategy = HFM_CLEAN_LRU;
			else if (hfm_strieq(optarg, "FIFO"))
				cfg->cache_clean_strategy = HFM_CLEAN_FIFO;
			else if (hfm_strieq(optarg, "LARGE_FIRST"))
				cfg->cache_clean_strategy = HFM_CLEAN_LARGE_FIRST;
			else
				rc = die_usage(o, 1, "--cache-clean-strategy wants LRU, FIFO or LARGE_FIRST, "
					       "not '%s'", optarg);
			break;
		case O_OFFLINE:
		case O_NO_FALLBACK:          /* Olah: --no-fallback-proxy sets offline */
			cfg->offline = 1;
			break;
		case O_FALLBACK:
			break;
		case O_IGNORED_ARG:
		case O_IGNORED_FLAG:
			fprintf(stderr, "%s: %s: ignored (see docs/migrating-from-olah.md)\n", o->prog, flag);
			break;
		case 'h':
		case O_HELP:
			usage_cmd(stdout, o->cmd, o->prog);
			exit(0);
		case ':':
			rc = die_usage(o, 1, "%s needs a value", flag);
			break;
		default:
			rc = die_usage(o, 1, "unknown option '%s'", flag);
			break;
		}
	}
	if (!rc && optind < argc)
		rc = die_usage(o, 1, "unexpected argument '%s'", argv[optind]);
	hfm_buf_dispose(&err);
	return rc;
}

/* ---- running ----------------------------------------------------------------- */

static char *default_index_path(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		return hfm_asprintf("%s/hfmirror/hashindex.bin", xdg);
	if (home && *home)
		return hfm_asprintf("%s/.cache/hfmirror/hashindex.bin", home);
	return NULL;
}

/* Cache and upstream events go to stderr with the program's name. */
static void cache_log(void *cls, enum hfm_log_level level, const char *msg)
{
	if (level <= HFM_LOG_WARN)
		fprintf(stderr, "%s: %s\n", (const char *)cls, msg);
}

static int run_server(struct run *o)
{
	struct hfm_config *cfg = o->cfg;
	struct hfm_hashindex *idx = NULL;
	struct hfm_hasher *hasher = NULL;
	struct hfm_source **srcs = NULL;
	size_t nsrc = 0;
	struct hfm_server *srv = NULL;
	struct hfm_store *store = NULL;
	char *index_path = NULL;
	int log_fd = -1, rc = 1;
	int use_cache = o->cmd != CMD_MODELBIN;
	sigset_t sigs;

	/* Every thread started from here on inherits the blocked signals;
	 * main() alone takes them with sigwait(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cfg->access_log && !strcmp(cfg->access_log, "-")) {
		log_fd = STDOUT_FILENO;
	} else if (cfg->access_log) {
		log_fd = open(cfg->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			fprintf(stderr, "%s: access log %s: %s\n", o->prog, cfg->access_log, strerror(errno));
			goto cleanup;
		}
	}

	/* The store: the cache's root, and where imported mirrors live. */
	if (use_cache) {
		if (hfm_store_open(&store, cfg->repos_path, 1)) {
			fprintf(stderr, "%s: repos-path %s: %s\n", o->prog, cfg->repos_path, hfm_error_last());
			goto cleanup;
		}
	}

	srcs = hfm_calloc(cfg->n_model_bin_paths + 3, sizeof(*srcs));
	/* 1. model-bin trees */
	if (cfg->n_model_bin_paths) {
		index_path = cfg->hash_index ? hfm_strdup(cfg->hash_index) : default_index_path();
		const char *warn = NULL;
		hfm_hashindex_open(&idx, index_path, &warn);
		if (warn && *warn)
			fprintf(stderr, "%s: %s: %s\n", o->prog, index_path ? index_path : "(none)", warn);
		hasher = hfm_hasher_new(idx, cfg->hash_threads > 0 ? cfg->hash_threads : 2, 1);
		double rescan = o->rescan >= 0 ? o->rescan : (double)cfg->model_bin_rescan;
		for (size_t i = 0; i < cfg->n_model_bin_paths; i++) {
			struct hfm_source *s;
			if (hfm_modelbin_new(&s, cfg->model_bin_paths[i], hasher, rescan)) {
				fprintf(stderr, "%s: model-bin path %s: %s\n", o->prog, cfg->model_bin_paths[i],
					hfm_error_last());
				goto cleanup;
			}
			srcs[nsrc++] = s;
			if (cfg->model_bin_prefetch && !o->no_prefetch)
				hfm_modelbin_prefetch_all(s);
		}
	}
	/* 2. git mirrors: mirrors-path clones and the store's imported mirrors */
	if (cfg->n_mirrors_path || store) {
		struct hfm_source *g;
		if (hfm_gitsrc_new(&g, (const char *const *)cfg->mirrors_path, cfg->n_mirrors_path, store)) {
			fprintf(stderr, "%s: mirrors: %s\n", o->prog, hfm_error_last());
			goto cleanup;
		}
		srcs[nsrc++] = g;
	}
	/* 3. the online cache, last: it asks upstream for what nobody else has */
	if (use_cache) {
		struct hfm_source *c;
		char *up = hfm_asprintf("%s://%s", cfg->hf_scheme, cfg->hf_netloc);
		struct hfm_cachesrc_opts co = {
			.upstream_url = up,
			.lfs_netloc = cfg->hf_lfs_netloc,
			.store = store,
			.offline = cfg->offline,
			.metadata_ttl = cfg->metadata_ttl,
			.block_size = (uint32_t)cfg->cache_block_size,
			.cache_rules = cfg->cache,
			.allow_gated_offline = cfg->allow_gated_offline,
			.access_check_ttl = cfg->access_check_ttl,
			.upstream_timeout = cfg->upstream_timeout,
			.upstream_hold_down = cfg->upstream_hold_down,
			.range_fill_max = cfg->range_fill_max_size,
			.strict_ranges = cfg->verify_ranges_strict,
			.evict_interval_s = cfg->evict_interval,
			.size_limit = cfg->cache_size_limit,
			.clean_strategy = cfg->cache_clean_strategy,
			.log = cache_log,
			.log_cls = (void *)o->prog,
		};
		int crc = hfm_cachesrc_new(&c, &co);
		free(up);
		if (crc) {
			fprintf(stderr, "%s: cache: %s\n", o->prog, hfm_error_last());
			goto cleanup;
		}
		srcs[nsrc++] = c;
	}

	struct hfm_catalog catalog = {
		.sources = srcs,
		.nsources = nsrc,
		.proxy_rules = cfg->proxy,
	};
	/* The app answers what the catalog holds; the server only carries it. */
	struct hfm_app app = {
		.catalog = &catalog,
		.mode_label = cmd_names[o->cmd],
	};
	struct hfm_server_opts so = {
		.host = cfg->host,
		.port = cfg->port,
		.ssl_key = cfg->ssl_key,
		.ssl_cert = cfg->ssl_cert,
		.threads = cfg->threads,
		.body_io = cfg->body_io == HFM_CFG_IO_SENDFILE ? HFM_IO_SENDFILE : HFM_IO_PREAD,
		.access_log_fd = log_fd,
		.public_url = o->public_url ? o->public_url
					    : (cfg->mirror_netloc ? cfg->mirror_url : NULL),
		.max_connections = cfg->max_connections,
		.idle_timeout = cfg->idle_timeout,
		.wait_timeout = cfg->wait_timeout,
		.handle = hfm_app_handle,
		.app = &app,
	};
	if (hfm_server_start(&srv, &so)) {
		fprintf(stderr, "%s: %s\n", o->prog, hfm_error_last());
		goto cleanup;
	}
	for (size_t i = 0; i < nsrc; i++)
		fprintf(stderr, "%s: serving %s %s\n", o->prog, srcs[i]->ops->kind, srcs[i]->label);
	fprintf(stderr, "%s: listening on %s\n", o->prog, hfm_server_url(srv));

	int sig = 0;
	sigwait(&sigs, &sig);
	fprintf(stderr, "%s: %s, stopping\n", o->prog, strsignal(sig));
	hfm_server_stop(srv);
	rc = 0;

cleanup:
	for (size_t i = 0; i < nsrc; i++)
		srcs[i]->ops->free(srcs[i]);
	free(srcs);
	if (store)
		hfm_store_free(store);
	if (hasher)
		hfm_hasher_free(hasher);
	if (idx)
		hfm_hashindex_free(idx);
	free(index_path);
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	return rc;
}

static int run_cmd(enum cmd c, const char *prog, int argc, char **argv)
{
	struct run o = { .cmd = c, .prog = prog, .rescan = -1 };
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024);
	int rc = 2;

	find_config(&o, argc, argv);
	hfm_config_new(&o.cfg);
	if (o.config_file) {
		if (hfm_config_read(o.cfg, o.config_file, &err)) {
			fprintf(stderr, "%s", hfm_buf_cstr(&err));
			fprintf(stderr, "%s: %s: not started\n", prog, o.config_file);
			goto out;
		}
		if (o.cfg->warnings)
			fprintf(stderr, "%s", o.cfg->warnings);
	}
	if (c == CMD_SERVE && !o.config_file) {
		rc = die_usage(&o, 1, "%s", "serve needs -c FILE (an Olah-style configs.toml)");
		goto out;
	}
	if ((rc = parse_flags(&o, argc, argv)))
		goto out;
	rc = 2;
	if (!o.cfg->model_bin) {              /* [model-bin] enable = false */
		for (size_t i = 0; i < o.cfg->n_model_bin_paths; i++)
			free(o.cfg->model_bin_paths[i]);
		o.cfg->n_model_bin_paths = 0;
	}
	if (c == CMD_MODELBIN) {
		if (!o.cfg->n_model_bin_paths) {
			rc = die_usage(&o, 1, "%s",
				       "model-bin needs --path DIR (the folder that holds <org>/<repo>)");
			goto out;
		}
		o.cfg->offline = 1;                /* as Olah: model-bin never goes upstream */
	}
	if (c == CMD_MIRROR && !o.cfg->n_mirrors_path && !o.repos_path_given) {
		rc = die_usage(&o, 1, "%s", "mirror needs -m DIR (a folder of <type>/<org>/<repo> clones) "
			       "or --repos-path STORE");
		goto out;
	}
	hfm_buf_reset(&err);
	if (hfm_config_finish(o.cfg, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
		fprintf(stderr, "%s: not started\n", prog);
		goto out;
	}
	rc = run_server(&o);
out:
	hfm_buf_dispose(&err);
	hfm_config_free(o.cfg);
	return rc;
}

int hfm_cli_main(int argc, char **argv)
{
	char *argv0 = hfm_strdup(argv[0]);
	const char *base = basename(argv0);
	const char *prog = strcmp(base, "olah-cli") ? "hfmirror" : "olah-cli";
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage_main(argc < 2 && strcmp(prog, "olah-cli") ? stderr : stdout, prog);
		rc = argc < 2 && strcmp(prog, "olah-cli") ? 2 : 0;
		if (argc < 2 && !strcmp(prog, "olah-cli"))
			rc = run_cmd(CMD_PROXY, prog, argc, argv);   /* bare `olah-cli` = proxy */
	} else if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("hfmirror %s\n", HFM_VERSION);
		rc = 0;
	} else if (!strcmp(argv[1], "sync")) {
		rc = hfm_sync_main(prog, argc - 1, argv + 1);
	} else if (argv[1][0] == '-') {
		/* Olah's upstream CLI: `olah-cli -c configs.toml`, `olah-cli --port …` */
		int has_config = 0;
		for (int i = 1; i < argc; i++)
			has_config |= !strcmp(argv[i], "-c") || !strncmp(argv[i], "--config", 8);
		rc = run_cmd(has_config ? CMD_SERVE : CMD_PROXY, prog, argc, argv);
	} else {
		int found = 0;
		rc = 2;
		for (int c = 0; c < (int)HFM_ARRAY_SIZE(cmd_names); c++)
			if (!strcmp(argv[1], cmd_names[c])) {
				rc = run_cmd((enum cmd)c, prog, argc - 1, argv + 1);
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
			usage_main(stderr, prog);
		}
	}
	free(argv0);
	return rc;
}
