/*
 * cli.c - the hfmirror command line (also answering to Olah's `olah-cli`).
 *
 *   hfmirror model-bin --path DIR        a directory tree, offline
 *   hfmirror mirror -m DIR               git clones (+ the cache behind them)
 *   hfmirror proxy [--hf-netloc …]       the online cache of an upstream hub
 *   hfmirror serve -c configs.toml       everything the file says
 *   olah-cli [-c FILE] [flags]           Olah's upstream CLI: proxy
 *   hfmirror sync -m sync.toml           fetch a declared manifest (sync.h)
 *   hfmirror export / receipt            bundles for an air gap (export.h)
 *
 * Every command fills one struct hfm_config: the file first (-c), then the
 * flags on top, then hfm_config_finish() checks the whole.  run_server()
 * builds the source chain from the config: model-bin trees, git mirrors,
 * then the online cache, and serves until SIGINT/SIGTERM.  SIGHUP reopens
 * the access log and rereads the config's rules (on_sighup()).
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

#include "hfm/audit.h"
#include "hfm/auth.h"
#include "hfm/cli.h"
#include "hfm/config.h"
#include "hfm/export.h"
#include "hfm/grants.h"
#include "hfm/gitserve.h"
#include "hfm/hasher.h"
#include "hfm/handlers.h"
#include "hfm/hashindex.h"
#include "hfm/http.h"
#include "hfm/metrics.h"
#include "hfm/notify.h"
#include "hfm/src_cache.h"
#include "hfm/src_git.h"
#include "hfm/src_modelbin.h"
#include "hfm/store.h"
#include "hfm/sync.h"
#include "hfm/tokens.h"

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
	int argc;                        /* the command's arguments, read again on SIGHUP */
	char **argv;
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
		"  token --tokens FILE add|list|revoke   local users' access tokens\n"
		"  grant USER REPO        let a local user read a gated repo offline\n"
		"  export -o OUT ...      write a bundle of repos for another store (air gap)\n"
		"  receipt -o FILE        write what a store holds, for the next export --since\n"
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
		"  --idle-timeout SEC     close kept-alive connections idle for SEC (default: 120)\n"
		"  --head-timeout SEC     a request's head (and body) must arrive within SEC,\n"
		"                         else the connection is closed (default: 10)\n"
		"  --max-connections N    open connections; at the limit the slowest make room\n"
		"                         or new ones get 503 (default: 16384)\n"
		"  --wait-timeout SEC     longest a request waits for hashing or upstream\n"
		"                         before 503 (default: 600)\n"
		"  --drain-timeout SEC    on SIGTERM, stop accepting and let requests in flight\n"
		"                         finish for up to SEC (default: 30; 0 = stop at once)\n"
		"\n"
		"access (docs/access.md):\n"
		"  --tokens FILE          local users and their tokens ('hfmirror token')\n"
		"  --no-anonymous         answer 401 to requests without a valid local token\n"
		"  --audit-log FILE       one JSON line per file download (who, what, bytes)\n"
		"  --upstream-tokens      ask the upstream whose an unknown token is (online)\n");
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
		"  --read-only-store      never write the store: serve published blobs, relay\n"
		"                         the rest uncached (a shared store, docs/scale-out.md)\n"
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
	O_BODY_IO, O_RESCAN, O_REPOS_PATH, O_NO_PREFETCH, O_IDLE, O_HEAD_TIMEOUT, O_MAXCONN, O_WAIT,
	O_PUBLIC_URL, O_HELP, O_HF_SCHEME, O_HF_NETLOC, O_HF_LFS_NETLOC, O_MIRROR_SCHEME,
	O_MIRROR_NETLOC, O_MIRROR_LFS_NETLOC, O_CACHE_LIMIT, O_CACHE_STRATEGY, O_OFFLINE,
	O_FALLBACK, O_NO_FALLBACK, O_IGNORED_ARG, O_IGNORED_FLAG, O_TOKENS, O_NO_ANONYMOUS,
	O_AUDIT_LOG, O_UPSTREAM_TOKENS, O_READ_ONLY_STORE, O_DRAIN,
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
	{ "head-timeout", required_argument, NULL, O_HEAD_TIMEOUT },
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
	{ "tokens", required_argument, NULL, O_TOKENS },
	{ "no-anonymous", no_argument, NULL, O_NO_ANONYMOUS },
	{ "audit-log", required_argument, NULL, O_AUDIT_LOG },
	{ "upstream-tokens", no_argument, NULL, O_UPSTREAM_TOKENS },
	{ "read-only-store", no_argument, NULL, O_READ_ONLY_STORE },
	{ "drain-timeout", required_argument, NULL, O_DRAIN },
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
	int li;
	while (!rc && (li = -1, c = getopt_long(argc, argv, ":c:p:m:h", longopts, &li)) != -1) {
		/* The flag's name: argv[optind - 1] is its value when given apart. */
		char name[64];
		const char *flag = argv[optind - 1];
		if (li >= 0) {
			snprintf(name, sizeof(name), "--%s", longopts[li].name);
			flag = name;
		}
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
		case O_HEAD_TIMEOUT:
			if (parse_long(optarg, 1, 3600, &v))
				rc = die_usage(o, 1, "--head-timeout wants 1..3600 seconds, not '%s'", optarg);
			cfg->head_timeout = (unsigned)v;
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
		case O_TOKENS:
			hfm_config_set_str(&cfg->tokens, optarg);
			break;
		case O_NO_ANONYMOUS:
			cfg->anonymous = 0;
			break;
		case O_AUDIT_LOG:
			hfm_config_set_str(&cfg->audit_log, optarg);
			break;
		case O_UPSTREAM_TOKENS:
			cfg->upstream_tokens = 1;
			break;
		case O_READ_ONLY_STORE:
			cfg->read_only_store = 1;
			break;
		case O_DRAIN:
			if (parse_long(optarg, 0, 86400, &v))
				rc = die_usage(o, 1, "--drain-timeout wants 0..86400 seconds, not '%s'", optarg);
			cfg->drain_timeout = (unsigned)v;
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

/* ---- SIGHUP: reopen the access log, reload the rules ------------------------- */

static void print_lines(const char *prog, const char *text);
static void command_implies(struct run *o);

/*
 * The same file at a new descriptor, moved onto the old number with dup3():
 * the server writes every line to that number, and dup3() replaces the file
 * behind it atomically, so each line goes whole to the old file or the new
 * one.  After a rotation (mv access.log access.log.1) the new one is a
 * fresh access.log.
 */
static void reopen_access_log(const char *prog, const char *path, int log_fd)
{
	int fd;

	if (log_fd <= STDERR_FILENO)                   /* stdout or off: nothing to reopen */
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || dup3(fd, log_fd, O_CLOEXEC) < 0)
		fprintf(stderr, "%s: SIGHUP: access log %s: %s; still writing to the old file\n",
			prog, path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The keys a reload does not apply: said, so that nobody waits for them. */
static void say_restart_keys(const char *prog, const struct hfm_config *a,
			     const struct hfm_config *b)
{
	static const struct { const char *key; size_t off; } strs[] = {
		{ "host", offsetof(struct hfm_config, host) },
		{ "ssl-key", offsetof(struct hfm_config, ssl_key) },
		{ "ssl-cert", offsetof(struct hfm_config, ssl_cert) },
		{ "repos-path", offsetof(struct hfm_config, repos_path) },
		{ "hf-netloc", offsetof(struct hfm_config, hf_netloc) },
		{ "access-log", offsetof(struct hfm_config, access_log) },
		{ "mirror-url", offsetof(struct hfm_config, mirror_url) },
		{ "auth.tokens", offsetof(struct hfm_config, tokens) },
		{ "auth.audit-log", offsetof(struct hfm_config, audit_log) },
	};
	struct hfm_buf keys = HFM_BUF_INIT(1024);

	for (size_t i = 0; i < HFM_ARRAY_SIZE(strs); i++) {
		const char *x = *(char *const *)((const char *)a + strs[i].off);
		const char *y = *(char *const *)((const char *)b + strs[i].off);
		if ((x || y) && (!x || !y || strcmp(x, y)))
			hfm_buf_printf(&keys, "%s%s", keys.len ? ", " : "", strs[i].key);
	}
	if (a->port != b->port)
		hfm_buf_printf(&keys, "%s%s", keys.len ? ", " : "", "port");
	if (a->offline != b->offline)
		hfm_buf_printf(&keys, "%s%s", keys.len ? ", " : "", "offline");
	if (a->anonymous != b->anonymous || a->upstream_tokens != b->upstream_tokens)
		hfm_buf_printf(&keys, "%s%s", keys.len ? ", " : "", "auth");
	if (a->n_model_bin_paths != b->n_model_bin_paths || a->n_mirrors_path != b->n_mirrors_path)
		hfm_buf_printf(&keys, "%s%s", keys.len ? ", " : "", "the sources");
	if (keys.len)
		fprintf(stderr, "%s: SIGHUP: changed but applied at the next start only: %s\n", prog,
			hfm_buf_cstr(&keys));
	hfm_buf_dispose(&keys);
}

/*
 * Read the config file again the way run_cmd() read it at start (the file,
 * then the same flags on top, then hfm_config_finish()), and on success
 * move its proxy and cache rules into the running config's rule handles,
 * which the catalog and the cache source borrow (hfm_rules_replace(): a
 * request deciding meanwhile uses the old rules or the new ones, whole).
 * A file that does not load changes nothing: its errors are printed as at
 * start (FILE:LINE: key: why) and the running rules stay.
 */
static void reload_rules(struct run *o)
{
	struct run again = *o;
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024);
	struct hfm_config *fresh = NULL;
	int bad = 1;

	hfm_config_new(&fresh);
	again.cfg = fresh;
	if (hfm_config_read(fresh, o->config_file, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
	} else if (!parse_flags(&again, o->argc, o->argv)) {
		/* (the flags parsed at start: only a changed file fails here) */
		command_implies(&again);
		if (hfm_config_finish(fresh, &err))
			print_lines(o->prog, hfm_buf_cstr(&err));
		else
			bad = 0;
	}
	if (bad) {
		fprintf(stderr, "%s: SIGHUP: %s: not reloaded, the running rules stay\n", o->prog,
			o->config_file);
		goto cleanup;
	}
	if (fresh->warnings)
		fprintf(stderr, "%s", fresh->warnings);
	say_restart_keys(o->prog, o->cfg, fresh);
	hfm_rules_replace(o->cfg->proxy, fresh->proxy);
	hfm_rules_replace(o->cfg->cache, fresh->cache);
	/* Only the compiled handles change: the rest of the running config
	 * (the rules as written among it) stays read-only, as config.h
	 * promises the threads that read it. */
	fresh->proxy = fresh->cache = NULL;
	fprintf(stderr, "%s: SIGHUP: %s: reloaded %zu proxy and %zu cache rules\n", o->prog,
		o->config_file, hfm_rules_count(o->cfg->proxy), hfm_rules_count(o->cfg->cache));
cleanup:
	hfm_config_free(fresh);
	hfm_buf_dispose(&err);
}

static void on_sighup(struct run *o, int log_fd, const char *url, struct hfm_audit *audit)
{
	hfm_notify_reloading();
	if (o->cfg->access_log)
		reopen_access_log(o->prog, o->cfg->access_log, log_fd);
	if (audit && hfm_audit_reopen(audit))
		fprintf(stderr, "%s: SIGHUP: %s; still writing to the old file\n", o->prog,
			hfm_error_last());
	if (o->config_file)
		reload_rules(o);
	else
		fprintf(stderr, "%s: SIGHUP: access log reopened; no config file (-c) to reload\n",
			o->prog);
	hfm_notify("READY=1\nSTATUS=listening on %s", url);
}

/*
 * Local identities (--tokens), offline grants (in the store) and the audit
 * log: what the app consults for who may read what (docs/access.md).
 */
static int open_access(struct run *o, struct hfm_store *store, struct hfm_tokens **tokens,
		       struct hfm_auth **auth, struct hfm_grants **grants, struct hfm_audit **audit)
{
	struct hfm_config *cfg = o->cfg;
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024);
	int rc = 0;

	if (cfg->tokens && hfm_tokens_open(tokens, cfg->tokens, cache_log, (void *)o->prog, &err)) {
		print_lines(o->prog, err.len ? hfm_buf_cstr(&err) : hfm_error_last());
		fprintf(stderr, "%s: tokens %s: not started\n", o->prog, cfg->tokens);
		rc = 1;
		goto cleanup;
	}
	if (cfg->tokens || !cfg->anonymous) {
		struct hfm_auth_opts ao = {
			.tokens = *tokens,
			.anonymous = cfg->anonymous,
			.fail_limit = cfg->auth_fail_limit,
			.fail_window_s = cfg->auth_fail_window,
			.upstream_tokens = cfg->upstream_tokens && !cfg->offline,
		};
		*auth = hfm_auth_new(&ao);
	}
	if (store && cfg->tokens) {
		char *gp = hfm_asprintf("%s/%s", cfg->repos_path, HFM_GRANTS_FILE);
		*grants = hfm_grants_new(gp, cache_log, (void *)o->prog);
		free(gp);
	}
	if (cfg->audit_log && hfm_audit_open(audit, cfg->audit_log, cfg->audit_log_max_size, 0)) {
		fprintf(stderr, "%s: %s\n", o->prog, hfm_error_last());
		rc = 1;
	}
cleanup:
	hfm_buf_dispose(&err);
	return rc;
}

/* The hash index's size, for /metrics. */
static void hashindex_probe(void *idx)
{
	hfm_metrics_set(HFM_M_HASHINDEX_ENTRIES, (int64_t)hfm_hashindex_count(idx));
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
	struct hfm_tokens *tokens = NULL;
	struct hfm_auth *auth = NULL;
	struct hfm_grants *grants = NULL;
	struct hfm_audit *audit = NULL;
	struct hfm_gitserve *git = NULL;
	char *shadow_dir = NULL;
	struct hfm_metrics_probe index_probe = { .read = hashindex_probe };
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
		if (hfm_store_open(&store, cfg->repos_path,
				   cfg->read_only_store ? HFM_STORE_READ_ONLY : HFM_STORE_CREATE)) {
			fprintf(stderr, "%s: repos-path %s: %s\n", o->prog, cfg->repos_path, hfm_error_last());
			goto cleanup;
		}
	}
	if (open_access(o, store, &tokens, &auth, &grants, &audit))
		goto cleanup;

	srcs = hfm_calloc(cfg->n_model_bin_paths + 3, sizeof(*srcs));
	/* 1. model-bin trees */
	if (cfg->n_model_bin_paths) {
		index_path = cfg->hash_index ? hfm_strdup(cfg->hash_index) : default_index_path();
		const char *warn = NULL;
		hfm_hashindex_open(&idx, index_path, &warn);
		if ((index_probe.cls = idx))
			hfm_metrics_probe_add(&index_probe);
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
			.grants = grants,
			.access_check_ttl = cfg->access_check_ttl,
			.upstream_timeout = cfg->upstream_timeout,
			.upstream_hold_down = cfg->upstream_hold_down,
			.range_fill_max = cfg->range_fill_max_size,
			.strict_ranges = cfg->verify_ranges_strict,
			.evict_interval_s = cfg->evict_interval,
			.size_limit = cfg->cache_size_limit,
			.clean_strategy = cfg->cache_clean_strategy,
			.measure_store = 1,              /* the store's gauges of /metrics */
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
	/*
	 * git clients: shadow repos of model-bin repos live in the store, else
	 * next to the hash index (docs/git-clone.md).
	 */
	if (store)
		shadow_dir = hfm_asprintf("%s/shadow", store->root);
	else if (index_path) {
		char *d = hfm_strdup(index_path);
		shadow_dir = hfm_asprintf("%s/shadow", dirname(d));
		free(d);
	}
	char *git_up = use_cache ? hfm_asprintf("%s://%s", cfg->hf_scheme, cfg->hf_netloc) : NULL;
	struct hfm_up_opts git_uo = {
		.low_speed_time = cfg->upstream_timeout,
		.log = cache_log,
		.log_cls = (void *)o->prog,
	};
	struct hfm_gitserve_opts go = {
		.shadow_dir = shadow_dir,
		.upstream_url = git_up,
		.up_opts = &git_uo,
		.offline = cfg->offline,
	};
	if (hfm_gitserve_new(&git, &go)) {
		fprintf(stderr, "%s: git shadow repos: %s (model-bin repos cannot be cloned)\n",
			o->prog, hfm_error_last());
		go.shadow_dir = NULL;
		hfm_gitserve_new(&git, &go);
	}
	free(git_up);
	/* The app answers what the catalog holds; the server only carries it. */
	struct hfm_app app = {
		.catalog = &catalog,
		.mode_label = cmd_names[o->cmd],
		.auth = auth,
		.audit = audit,
		.git = git,
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
		.head_timeout = cfg->head_timeout,
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
	hfm_notify("READY=1\nSTATUS=listening on %s", hfm_server_url(srv));

	int sig = 0;
	while (!sigwait(&sigs, &sig) && sig == SIGHUP)
		on_sighup(o, log_fd, hfm_server_url(srv), audit);
	fprintf(stderr, "%s: %s, stopping\n", o->prog, strsignal(sig));
	hfm_notify("STOPPING=1\nSTATUS=stopping (%s)", strsignal(sig));
	/* SIGTERM drains (a balancer's node going away); Ctrl-C stops at once */
	if (sig == SIGTERM && cfg->drain_timeout) {
		int left = hfm_server_drain(srv, cfg->drain_timeout * 1000u);
		fprintf(stderr, "%s: drained%s", o->prog, left ? "" : "\n");
		if (left)
			fprintf(stderr, " for %us; %d requests still in flight are cut off\n",
				cfg->drain_timeout, left);
	}
	hfm_server_stop(srv);
	rc = 0;

cleanup:
	hfm_gitserve_free(git);          /* its pack workers read the sources */
	free(shadow_dir);
	for (size_t i = 0; i < nsrc; i++)
		srcs[i]->ops->free(srcs[i]);
	free(srcs);
	if (store)
		hfm_store_free(store);
	hfm_auth_free(auth);
	hfm_tokens_free(tokens);
	hfm_grants_free(grants);
	hfm_audit_free(audit);
	if (hasher)
		hfm_hasher_free(hasher);
	hfm_metrics_probe_remove(&index_probe);
	if (idx)
		hfm_hashindex_free(idx);
	free(index_path);
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	return rc;
}

/* Each line of `text` on stderr after "prog: ". */
static void print_lines(const char *prog, const char *text)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);
		fprintf(stderr, "%s: %.*s\n", prog, (int)n, text);
		text += n + (nl != NULL);
	}
}

/* What the command means beyond its flags (at start and on a reload alike). */
static void command_implies(struct run *o)
{
	if (!o->cfg->model_bin) {             /* [model-bin] enable = false */
		for (size_t i = 0; i < o->cfg->n_model_bin_paths; i++)
			free(o->cfg->model_bin_paths[i]);
		o->cfg->n_model_bin_paths = 0;
	}
	if (o->cmd == CMD_MODELBIN)
		o->cfg->offline = 1;              /* as Olah: model-bin never goes upstream */
}

static int run_cmd(enum cmd c, const char *prog, int argc, char **argv)
{
	struct run o = { .cmd = c, .prog = prog, .rescan = -1, .argc = argc, .argv = argv };
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
	command_implies(&o);
	if (c == CMD_MODELBIN && !o.cfg->n_model_bin_paths) {
		rc = die_usage(&o, 1, "%s",
			       "model-bin needs --path DIR (the folder that holds <org>/<repo>)");
		goto out;
	}
	if (c == CMD_MIRROR && !o.cfg->n_mirrors_path && !o.repos_path_given) {
		rc = die_usage(&o, 1, "%s", "mirror needs -m DIR (a folder of <type>/<org>/<repo> clones) "
			       "or --repos-path STORE");
		goto out;
	}
	hfm_buf_reset(&err);
	if (hfm_config_finish(o.cfg, &err)) {
		/* "key: why" lines with no file position: flags may be the cause */
		print_lines(prog, hfm_buf_cstr(&err));
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
	} else if (!strcmp(argv[1], "token")) {
		rc = hfm_token_main(prog, argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "grant")) {
		rc = hfm_grant_main(prog, argc - 1, argv + 1);
	} else if (argv[1][0] == '-') {
		/* Olah's upstream CLI: `olah-cli -c configs.toml`, `olah-cli --port …` */
		int has_config = 0;
		for (int i = 1; i < argc; i++)
			has_config |= !strcmp(argv[i], "-c") || !strncmp(argv[i], "--config", 8);
		rc = run_cmd(has_config ? CMD_SERVE : CMD_PROXY, prog, argc, argv);
	} else if (!strcmp(argv[1], "export")) {
		rc = hfm_export_main(prog, argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "receipt")) {
		rc = hfm_receipt_main(prog, argc - 1, argv + 1);
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
