/*
 * cli.c - the hfmirror command line (also answering to Olah's `olah-cli`).
 *
 *   hfmirror model-bin --path DIR [common options]
 *
 * Parsing fills one struct run_opts; build_sources() turns it into the
 * ordered source chain, then the server runs until SIGINT/SIGTERM.
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
#include "hfm/hasher.h"
#include "hfm/hashindex.h"
#include "hfm/http.h"
#include "hfm/src_git.h"
#include "hfm/src_modelbin.h"
#include "hfm/store.h"

#ifndef HFM_VERSION
#define HFM_VERSION "0.1.0"
#endif

struct run_opts {
	const char *cmd;
	const char *prog;
	char **modelbin;                 /* --path, repeatable */
	size_t nmodelbin;
	char **mirrors;                  /* -m/--mirrors-path, repeatable */
	size_t nmirrors;
	const char *repos_path;          /* the store (--repos-path) */
	const char *host;
	int port;
	const char *ssl_key, *ssl_cert;
	const char *access_log;          /* NULL = stdout, "off" */
	const char *index_path;          /* NULL = default */
	int threads;
	enum hfm_body_io body_io;
	double rescan;
	int prefetch;
	unsigned idle_timeout, max_connections, wait_timeout;
	const char *public_url;
};

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
		"\n"
		"Run '%s <command> --help' for the options of a command.\n"
		"'%s --version' prints the version.\n",
		prog, prog, prog);
}

static void usage_common(FILE *f)
{
	fprintf(f,
		"server options:\n"
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

static void usage_modelbin(FILE *f, const char *prog)
{
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
	usage_common(f);
}

static void usage_mirror(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s mirror -m DIR [-m DIR...] [options]\n"
		"\n"
		"Serve git clones with their real branches, tags, PR refs and commits:\n"
		"  DIR/{models,datasets,spaces}/<org>/<repo>[.git]   bare or non-bare\n"
		"LFS content comes from each clone's lfs/objects, then from the store.\n"
		"\n"
		"mirror options:\n"
		"  -m, --mirrors-path DIR  a folder of clones (repeatable)\n"
		"  --repos-path DIR        the store written by hfmirror-import; its\n"
		"                          mirrors/ and objects/ are served too\n"
		"\n",
		prog);
	usage_common(f);
}

static int HFM_PRINTF(3, 4) die_usage(const char *prog, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '%s %s --help' for usage.\n", prog, cmd ? cmd : "");
	return 2;
}

static int parse_uint(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum {
	O_HOST = 1000, O_PORT, O_SSL_KEY, O_SSL_CERT, O_ACCESS_LOG, O_INDEX, O_THREADS,
	O_BODY_IO, O_RESCAN, O_REPOS_PATH, O_NO_PREFETCH, O_IDLE, O_MAXCONN, O_WAIT, O_PUBLIC_URL, O_HELP,
};

static const struct option common_longopts[] = {
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
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_opts(struct run_opts *o, int argc, char **argv)
{
	int c;
	long v;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":p:m:h", common_longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->modelbin = hfm_realloc(o->modelbin, (o->nmodelbin + 1) * sizeof(char *));
			o->modelbin[o->nmodelbin++] = optarg;
			break;
		case 'm':
			o->mirrors = hfm_realloc(o->mirrors, (o->nmirrors + 1) * sizeof(char *));
			o->mirrors[o->nmirrors++] = optarg;
			break;
		case O_REPOS_PATH:
			o->repos_path = optarg;
			break;
		case O_HOST:
			o->host = optarg;
			break;
		case O_PORT:
			if (parse_uint(optarg, 0, 65535, &v))
				return die_usage(o->prog, o->cmd, "--port wants 0..65535, not '%s'", optarg);
			o->port = (int)v;
			break;
		case O_SSL_KEY:
			o->ssl_key = *optarg ? optarg : NULL;
			break;
		case O_SSL_CERT:
			o->ssl_cert = *optarg ? optarg : NULL;
			break;
		case O_ACCESS_LOG:
			o->access_log = optarg;
			break;
		case O_INDEX:
			o->index_path = optarg;
			break;
		case O_THREADS:
			if (parse_uint(optarg, 1, 1024, &v))
				return die_usage(o->prog, o->cmd, "--threads wants 1..1024, not '%s'", optarg);
			o->threads = (int)v;
			break;
		case O_BODY_IO:
			if (!strcmp(optarg, "pread"))
				o->body_io = HFM_IO_PREAD;
			else if (!strcmp(optarg, "sendfile"))
				o->body_io = HFM_IO_SENDFILE;
			else
				return die_usage(o->prog, o->cmd, "--body-io wants pread or sendfile, not '%s'",
						 optarg);
			break;
		case O_RESCAN: {
			char *end;
			double d = strtod(optarg, &end);
			if (*end || end == optarg || d < 0 || d > 86400 * 365)
				return die_usage(o->prog, o->cmd, "--rescan-interval wants seconds, not '%s'",
						 optarg);
			o->rescan = d;
			break;
		}
		case O_NO_PREFETCH:
			o->prefetch = 0;
			break;
		case O_IDLE:
			if (parse_uint(optarg, 1, 86400, &v))
				return die_usage(o->prog, o->cmd, "--idle-timeout wants 1..86400 seconds, not '%s'",
						 optarg);
			o->idle_timeout = (unsigned)v;
			break;
		case O_MAXCONN:
			if (parse_uint(optarg, 1, 1000000, &v))
				return die_usage(o->prog, o->cmd, "--max-connections wants 1..1000000, not '%s'",
						 optarg);
			o->max_connections = (unsigned)v;
			break;
		case O_WAIT:
			if (parse_uint(optarg, 1, 86400, &v))
				return die_usage(o->prog, o->cmd, "--wait-timeout wants 1..86400 seconds, not '%s'",
						 optarg);
			o->wait_timeout = (unsigned)v;
			break;
		case O_PUBLIC_URL:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
				return die_usage(o->prog, o->cmd, "--public-url wants http(s)://host[:port], not '%s'",
						 optarg);
			o->public_url = optarg;
			break;
		case 'h':
		case O_HELP:
			if (!strcmp(o->cmd, "mirror"))
				usage_mirror(stdout, o->prog);
			else
				usage_modelbin(stdout, o->prog);
			exit(0);
		case ':':
			return die_usage(o->prog, o->cmd, "%s needs a value", argv[optind - 1]);
		default:
			return die_usage(o->prog, o->cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return die_usage(o->prog, o->cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

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

static int run_server(struct run_opts *o)
{
	struct hfm_hashindex *idx = NULL;
	struct hfm_hasher *hasher = NULL;
	struct hfm_source **srcs = NULL;
	size_t nsrc = 0;
	struct hfm_server *srv = NULL;
	struct hfm_store *store = NULL;
	char *index_path = NULL;
	int log_fd = -1, rc = 1;
	sigset_t sigs;

	/* Every thread started from here on inherits the blocked signals;
	 * main() alone takes them with sigwait(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!o->access_log || !strcmp(o->access_log, "-")) {
		log_fd = STDOUT_FILENO;
	} else if (strcmp(o->access_log, "off")) {
		log_fd = open(o->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			fprintf(stderr, "%s: --access-log %s: %s\n", o->prog, o->access_log, strerror(errno));
			goto cleanup;
		}
	}

	index_path = o->index_path ? hfm_strdup(o->index_path) : default_index_path();
	const char *warn = NULL;
	hfm_hashindex_open(&idx, index_path, &warn);
	if (warn && *warn)
		fprintf(stderr, "%s: %s: %s\n", o->prog, index_path ? index_path : "(none)", warn);
	hasher = hfm_hasher_new(idx, 2, 1);

	if (o->repos_path && hfm_store_open(&store, o->repos_path, 1)) {
		fprintf(stderr, "%s: --repos-path %s: %s\n", o->prog, o->repos_path, hfm_error_last());
		goto cleanup;
	}
	srcs = hfm_calloc(o->nmodelbin + 2, sizeof(*srcs));
	for (size_t i = 0; i < o->nmodelbin; i++) {
		struct hfm_source *s;
		if (hfm_modelbin_new(&s, o->modelbin[i], hasher, o->rescan)) {
			fprintf(stderr, "%s: --path %s: %s\n", o->prog, o->modelbin[i], hfm_error_last());
			goto cleanup;
		}
		srcs[nsrc++] = s;
		if (o->prefetch)
			hfm_modelbin_prefetch_all(s);
	}

	/* Local sources answer first: model-bin trees, then git mirrors. */
	if (o->nmirrors || store) {
		struct hfm_source *g;
		if (hfm_gitsrc_new(&g, (const char *const *)o->mirrors, o->nmirrors, store)) {
			fprintf(stderr, "%s: mirrors: %s\n", o->prog, hfm_error_last());
			goto cleanup;
		}
		srcs[nsrc++] = g;
	}

	struct hfm_server_opts so = {
		.host = o->host,
		.port = o->port,
		.ssl_key = o->ssl_key,
		.ssl_cert = o->ssl_cert,
		.threads = o->threads,
		.body_io = o->body_io,
		.access_log_fd = log_fd,
		.public_url = o->public_url,
		.max_connections = o->max_connections,
		.idle_timeout = o->idle_timeout,
		.wait_timeout = o->wait_timeout,
		.sources = srcs,
		.nsources = nsrc,
		.mode_label = o->cmd,
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

static int cmd_modelbin(const char *prog, int argc, char **argv)
{
	struct run_opts o = {
		.cmd = "model-bin",
		.prog = prog,
		.host = "localhost",
		.port = 8090,
		.rescan = 5,
		.prefetch = 1,
	};
	int rc = parse_opts(&o, argc, argv);
	if (rc)
		goto out;
	if (!o.nmodelbin) {
		rc = die_usage(prog, o.cmd, "%s", "model-bin needs --path DIR (the folder that holds <org>/<repo>)");
		goto out;
	}
	rc = run_server(&o);
out:
	free(o.modelbin);
	free(o.mirrors);
	return rc;
}

static int cmd_mirror(const char *prog, int argc, char **argv)
{
	struct run_opts o = {
		.cmd = "mirror",
		.prog = prog,
		.host = "localhost",
		.port = 8090,
		.rescan = 5,
		.prefetch = 1,
	};
	int rc = parse_opts(&o, argc, argv);
	if (rc)
		goto out;
	if (!o.nmirrors && !o.repos_path) {
		rc = die_usage(prog, o.cmd, "%s",
			       "mirror needs -m DIR (a folder of <type>/<org>/<repo> clones) or --repos-path STORE");
		goto out;
	}
	rc = run_server(&o);
out:
	free(o.modelbin);
	free(o.mirrors);
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
		usage_main(argc < 2 ? stderr : stdout, prog);
		rc = argc < 2 ? 2 : 0;
	} else if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("hfmirror %s\n", HFM_VERSION);
		rc = 0;
	} else if (!strcmp(argv[1], "model-bin")) {
		rc = cmd_modelbin(prog, argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "mirror")) {
		rc = cmd_mirror(prog, argc - 1, argv + 1);
	} else {
		fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
		usage_main(stderr, prog);
		rc = 2;
	}
	free(argv0);
	return rc;
}
