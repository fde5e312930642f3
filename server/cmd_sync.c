/*
 * cmd_sync.c - the `hfmirror sync` command (docs/sync.md): the command line,
 * the store and the cache it drives, Ctrl-C, the progress display and the
 * report.  The work itself is sync.c's.
 *
 *   hfmirror sync -m sync.toml --repos-path STORE [--dry-run] [--jobs N]
 *
 * Exit status: 0 all done, 1 something failed (named in the report) or the
 * run was interrupted, 2 a usage or manifest error.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/config.h"
#include "hfm/progress.h"
#include "hfm/src_cache.h"
#include "hfm/store.h"
#include "hfm/sync.h"

#define TOKEN_MAX 4096

struct cmd {
	const char *prog;
	const char *manifest_path;
	const char *config_path;
	const char *token_file;
	int dry_run, json, quiet, allow_stale;
	unsigned jobs;
	struct hfm_config *cfg;
	struct hfm_progress *progress;
	struct hfm_sync *sync;
	size_t json_next;                /* the next repo whose JSON line is due */
	char *auth;
	/* log lines from other threads, printed by the display's thread */
	pthread_mutex_t log_lock;
	struct hfm_buf log_lines;
	int bar;                         /* the fetch's bar is up: queue log lines */
};

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s sync -m MANIFEST [--repos-path STORE] [options]\n"
		"\n"
		"Fetch the repos, revisions and files MANIFEST lists from the upstream hub into\n"
		"the store, so that `%s proxy --offline --repos-path STORE` serves them.\n"
		"Running it again fetches only what changed.  See docs/sync.md.\n"
		"\n"
		"options:\n"
		"  -m, --manifest FILE    what to fetch (TOML: [[repo]] id, type, revisions,\n"
		"                         include, exclude, git)\n"
		"  --repos-path DIR       the store (default: ./repos)\n"
		"  -c, --config FILE      an Olah-style configs.toml: the upstream, the store,\n"
		"                         the rules, [hfmirror] keys; flags win\n"
		"  --hf-scheme S          upstream scheme (default: https)\n"
		"  --hf-netloc HOST       upstream hub (default: huggingface.co)\n"
		"  --token-file FILE      the token for gated and private repos (default:\n"
		"                         $HF_TOKEN)\n"
		"  --dry-run              print what would be fetched and its size, fetch nothing\n"
		"  --jobs N               files fetched at once (default: 4)\n"
		"  --allow-stale          a branch or tag the upstream cannot answer for keeps\n"
		"                         the store's commit with a warning (default: fails)\n"
		"  --json                 one JSON line per repo on stdout instead of the report\n"
		"  -q, --quiet            no progress display\n"
		"\n"
		"exit status: 0 all done, 1 something failed or interrupted, 2 usage or\n"
		"manifest error\n",
		prog, prog);
}

static int HFM_PRINTF(2, 3) die_usage(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s sync: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '%s sync --help' for usage.\n", prog);
	return 2;
}

enum {
	O_REPOS_PATH = 1000, O_HF_SCHEME, O_HF_NETLOC, O_TOKEN_FILE, O_DRY_RUN, O_JOBS, O_JSON,
	O_ALLOW_STALE, O_HELP,
};

static const struct option longopts[] = {
	{ "manifest", required_argument, NULL, 'm' },
	{ "config", required_argument, NULL, 'c' },
	{ "repos-path", required_argument, NULL, O_REPOS_PATH },
	{ "hf-scheme", required_argument, NULL, O_HF_SCHEME },
	{ "hf-netloc", required_argument, NULL, O_HF_NETLOC },
	{ "token-file", required_argument, NULL, O_TOKEN_FILE },
	{ "dry-run", no_argument, NULL, O_DRY_RUN },
	{ "jobs", required_argument, NULL, O_JOBS },
	{ "json", no_argument, NULL, O_JSON },
	{ "allow-stale", no_argument, NULL, O_ALLOW_STALE },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

/* The flags; the config file (-c) is read first, so flags that set it win. */
static int parse(struct cmd *c, int argc, char **argv)
{
	const char *repos = NULL, *scheme = NULL, *netloc = NULL, *why;
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024);
	int o, rc = 0;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, ":m:c:qh", longopts, NULL)) != -1) {
		const char *flag = argv[optind - 1];
		switch (o) {
		case 'm':
			c->manifest_path = optarg;
			break;
		case 'c':
			c->config_path = optarg;
			break;
		case O_REPOS_PATH:
			repos = optarg;
			break;
		case O_HF_SCHEME:
			scheme = optarg;
			break;
		case O_HF_NETLOC:
			netloc = optarg;
			break;
		case O_TOKEN_FILE:
			c->token_file = optarg;
			break;
		case O_DRY_RUN:
			c->dry_run = 1;
			break;
		case O_JOBS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 256)
				return die_usage(c->prog, "--jobs wants 1..256, not '%s'", optarg);
			c->jobs = (unsigned)v;
			break;
		}
		case O_JSON:
			c->json = 1;
			break;
		case O_ALLOW_STALE:
			c->allow_stale = 1;
			break;
		case 'q':
			c->quiet = 1;
			break;
		case 'h':
		case O_HELP:
			usage(stdout, c->prog);
			exit(0);
		case ':':
			return die_usage(c->prog, "%s needs a value", flag);
		default:
			return die_usage(c->prog, "unknown option '%s'", flag);
		}
	}
	if (optind < argc)
		return die_usage(c->prog, "unexpected argument '%s'", argv[optind]);
	if (!c->manifest_path)
		return die_usage(c->prog, "no manifest: give -m FILE (see docs/sync.md)");

	hfm_config_new(&c->cfg);
	if (c->config_path && hfm_config_read(c->cfg, c->config_path, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
		rc = 2;
		goto out;
	}
	if (c->cfg->warnings)
		fprintf(stderr, "%s", c->cfg->warnings);
	if (repos)
		hfm_config_set_str(&c->cfg->repos_path, repos);
	if (scheme && (why = hfm_config_check_scheme(scheme))) {
		rc = die_usage(c->prog, "--hf-scheme '%s': %s", scheme, why);
		goto out;
	}
	if (netloc && (why = hfm_config_check_netloc(netloc))) {
		rc = die_usage(c->prog, "--hf-netloc '%s': %s", netloc, why);
		goto out;
	}
	if (scheme)
		hfm_config_set_str(&c->cfg->hf_scheme, scheme);
	if (netloc)
		hfm_config_set_str(&c->cfg->hf_netloc, netloc);
	hfm_buf_reset(&err);
	if (hfm_config_finish(c->cfg, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
		rc = 2;
		goto out;
	}
	if (c->cfg->offline)
		rc = die_usage(c->prog, "%s says offline = true: sync fetches from the upstream",
			       c->config_path ? c->config_path : "the config");
out:
	hfm_buf_dispose(&err);
	return rc;
}

/* "Bearer <token>" from --token-file or HF_TOKEN, or NULL; 2 on a bad file. */
static int read_token(struct cmd *c)
{
	char buf[TOKEN_MAX + 2];
	const char *t = getenv("HF_TOKEN");
	size_t n;

	if (c->token_file) {
		FILE *f = fopen(c->token_file, "r");
		if (!f)
			return die_usage(c->prog, "--token-file %s: %s", c->token_file, strerror(errno));
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		t = buf;
		while (*t == ' ' || *t == '\t')
			t++;
		if (!*t || strlen(t) > TOKEN_MAX)
			return die_usage(c->prog, "--token-file %s: no token on its first line",
					 c->token_file);
	}
	if (t && *t) {
		if (strpbrk(t, "\r\n"))
			return die_usage(c->prog, "the token holds a line break");
		c->auth = hfm_asprintf("Bearer %s", t);
	}
	return 0;
}

/* ---- Ctrl-C --------------------------------------------------------------------- */

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hfm_sync *sig_sync;      /* the run a signal stops */
static atomic_int sig_seen;
static const char *sig_prog = "hfmirror";

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig))
			continue;
		if (atomic_fetch_add(&sig_seen, 1)) {
			/* a second one: leave now; the store is safe (partial/, renames) */
			fprintf(stderr, "\n%s: %s again, quitting\n", sig_prog, strsignal(sig));
			_exit(1);
		}
		fprintf(stderr, "\n%s: %s: stopping (what arrived is kept; "
			"run sync again to go on)\n", sig_prog, strsignal(sig));
		pthread_mutex_lock(&sig_lock);
		if (sig_sync)
			hfm_sync_stop(sig_sync);
		pthread_mutex_unlock(&sig_lock);
	}
	return NULL;
}

/* ---- output ----------------------------------------------------------------------- */

static void cache_log(void *cls, enum hfm_log_level level, const char *msg)
{
	struct cmd *c = cls;

	if (level > HFM_LOG_WARN)
		return;
	pthread_mutex_lock(&c->log_lock);
	if (c->bar) {
		hfm_buf_puts(&c->log_lines, msg);
		hfm_buf_putc(&c->log_lines, '\n');
	} else {
		fprintf(stderr, "%s: %s\n", c->prog, msg);
	}
	pthread_mutex_unlock(&c->log_lock);
}

/* Print the queued log lines above the bar (display thread only). */
static void flush_log(struct cmd *c)
{
	char *lines, *p, *nl;

	pthread_mutex_lock(&c->log_lock);
	lines = c->log_lines.len ? hfm_buf_detach(&c->log_lines) : NULL;
	hfm_buf_init(&c->log_lines, 1 << 20);
	pthread_mutex_unlock(&c->log_lock);
	for (p = lines; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		*nl = '\0';
		hfm_progress_say(c->progress, "%s", p);
	}
	free(lines);
}

static void say_line(void *cls, const char *line)
{
	struct cmd *c = cls;

	hfm_progress_say(c->progress, "%s", line);
}

/* The JSON lines of the repos finished by now, in manifest order. */
static void emit_json(struct cmd *c)
{
	struct hfm_buf b = HFM_BUF_INIT(64u << 20);

	while (c->json && c->json_next < hfm_sync_nrepos(c->sync) &&
	       hfm_sync_repo_finished(c->sync, c->json_next)) {
		hfm_buf_reset(&b);
		hfm_sync_report_json(&b, c->sync, c->json_next++);
		printf("%s\n", hfm_buf_cstr(&b));
		fflush(stdout);
	}
	hfm_buf_dispose(&b);
}

static void tick(void *cls)
{
	struct cmd *c = cls;
	struct hfm_sync_totals t;
	char label[HFM_PATH_MAX + 64];

	flush_log(c);
	emit_json(c);
	hfm_sync_totals(c->sync, &t);
	if (t.running > 1)
		snprintf(label, sizeof(label), "%u files: %s", t.running, t.current ? t.current : "");
	else
		snprintf(label, sizeof(label), "%s", t.current ? t.current : "");
	hfm_progress_set(c->progress, t.files_done, t.bytes_done, label);
}

/* The revisions the upstream could not answer for, on stderr after the report. */
static void stale_lines(struct cmd *c)
{
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s sync: %s: ", c->prog,
		 c->allow_stale ? "warning" : "error");
	hfm_sync_report_stale(&b, c->sync, prefix);
	fputs(hfm_buf_cstr(&b), stderr);
	if (b.len && !c->allow_stale)
		fprintf(stderr, "%s sync: run it again once the upstream answers, or pass "
			"--allow-stale to keep the store's commits\n", c->prog);
	hfm_buf_dispose(&b);
}

/* ---- the command ---------------------------------------------------------------------- */

static int run(struct cmd *c, struct hfm_sync_manifest *m)
{
	struct hfm_store *store = NULL;
	struct hfm_source *cache = NULL;
	struct hfm_buf report = HFM_BUF_INIT(64u << 20);
	char *up = NULL;
	int rc = 1;

	if (hfm_store_open(&store, c->cfg->repos_path, 1)) {
		fprintf(stderr, "%s: repos-path %s: %s\n", c->prog, c->cfg->repos_path,
			hfm_error_last());
		goto out;
	}
	up = hfm_asprintf("%s://%s", c->cfg->hf_scheme, c->cfg->hf_netloc);
	struct hfm_cachesrc_opts co = {
		.upstream_url = up,
		.store = store,
		.metadata_ttl = 0,               /* every branch and tag is asked again */
		.block_size = (uint32_t)c->cfg->cache_block_size,
		.cache_rules = c->cfg->cache,
		.access_check_ttl = c->cfg->access_check_ttl,
		.upstream_timeout = c->cfg->upstream_timeout,
		.upstream_hold_down = c->cfg->upstream_hold_down,
		.durable_blocks = 1,             /* a kill -9 costs at most the block under way */
		.log = cache_log,
		.log_cls = c,
	};
	if (hfm_cachesrc_new(&cache, &co)) {
		fprintf(stderr, "%s: cache: %s\n", c->prog, hfm_error_last());
		goto out;
	}
	struct hfm_sync_opts so = {
		.cache = cache,
		.store = store,
		.proxy_rules = c->cfg->proxy,
		.cache_rules = c->cfg->cache,
		.authorization = c->auth,
		.upstream_url = up,
		.restricted = hfm_cachesrc_restricted,
		.jobs = c->jobs,
		.allow_stale = c->allow_stale,
		.say = c->quiet ? NULL : say_line,
		.say_cls = c,
	};
	if (hfm_sync_new(&c->sync, m, &so)) {
		fprintf(stderr, "%s: %s\n", c->prog, hfm_error_last());
		goto out;
	}
	pthread_mutex_lock(&sig_lock);
	sig_sync = c->sync;
	if (atomic_load(&sig_seen))
		hfm_sync_stop(c->sync);
	pthread_mutex_unlock(&sig_lock);

	hfm_progress_say(c->progress, "sync %s from %s into %s%s", m->path, up,
			 c->cfg->repos_path, c->dry_run ? " (dry run)" : "");
	hfm_sync_plan(c->sync, c->dry_run);
	struct hfm_sync_totals t;
	hfm_sync_totals(c->sync, &t);
	if (!c->dry_run && !hfm_sync_stopped(c->sync) && t.files) {
		pthread_mutex_lock(&c->log_lock);
		c->bar = 1;
		pthread_mutex_unlock(&c->log_lock);
		hfm_progress_phase(c->progress, "fetching", t.files, t.bytes);
		hfm_sync_fetch(c->sync, tick, c, 100);
		hfm_progress_phase_done(c->progress);
		pthread_mutex_lock(&c->log_lock);
		c->bar = 0;
		pthread_mutex_unlock(&c->log_lock);
		flush_log(c);
	}
	if (!c->dry_run && !hfm_sync_stopped(c->sync)) {
		hfm_sync_git(c->sync);
		flush_log(c);
	}
	if (c->json) {
		emit_json(c);
		/* stopped while planning: the rest as they are */
		while (c->json_next < hfm_sync_nrepos(c->sync)) {
			hfm_buf_reset(&report);
			hfm_sync_report_json(&report, c->sync, c->json_next++);
			printf("%s\n", hfm_buf_cstr(&report));
		}
	} else {
		hfm_sync_report_text(&report, c->sync);
		fputs(hfm_buf_cstr(&report), stdout);
	}
	fflush(stdout);
	stale_lines(c);
	rc = hfm_sync_failed(c->sync) ? 1 : 0;
out:
	pthread_mutex_lock(&sig_lock);
	sig_sync = NULL;
	pthread_mutex_unlock(&sig_lock);
	hfm_sync_free(c->sync);
	c->sync = NULL;
	if (cache)
		cache->ops->free(cache);     /* ends the transfers; partial blocks made durable */
	if (store)
		hfm_store_free(store);
	free(up);
	hfm_buf_dispose(&report);
	return rc;
}

int hfm_sync_main(const char *prog, int argc, char **argv)
{
	struct cmd c = { .prog = prog };
	struct hfm_sync_manifest *m = NULL;
	struct hfm_buf err = HFM_BUF_INIT(64 * 1024);
	static sigset_t sigs;
	pthread_t sig_thread;
	int rc;

	pthread_mutex_init(&c.log_lock, NULL);
	hfm_buf_init(&c.log_lines, 1 << 20);
	if ((rc = parse(&c, argc, argv)) || (rc = read_token(&c)))
		goto out;
	if (hfm_sync_manifest_read(&m, c.manifest_path, &err)) {
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
		rc = 2;
		goto out;
	}
	/* Every thread from here on leaves SIGINT/SIGTERM to the signal thread. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sig_prog = prog;
	if (pthread_create(&sig_thread, NULL, signal_thread, &sigs) == 0)
		pthread_detach(sig_thread);
	c.progress = hfm_progress_new(hfm_display_for(stderr, c.quiet), stderr, prog);
	rc = run(&c, m);
	if (atomic_load(&sig_seen))
		rc = 1;
out:
	hfm_progress_free(c.progress);
	hfm_sync_manifest_free(m);
	hfm_config_free(c.cfg);
	hfm_buf_dispose(&err);
	hfm_buf_dispose(&c.log_lines);
	pthread_mutex_destroy(&c.log_lock);
	free(c.auth);
	return rc;
}
