/*
 * main.c - hfmirror-import: the command line.  Each SOURCE becomes one job
 * (job.h, run by run.h), or one per repo for a whole Hugging Face cache.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundlesrc.h"
#include "infer.h"
#include "probe.h"
#include "report.h"
#include "run.h"
#include "sources.h"

#define EXIT_INCOMPLETE 2

static const char usage[] =
	"usage: hfmirror-import [options] SOURCE...\n"
	"\n"
	"Import what you already have into an hfmirror store: a bare mirror of the\n"
	"repo under <store>/mirrors/ and its LFS files, verified, under <store>/objects/.\n"
	"\n"
	"SOURCE is one of:\n"
	"  a git clone, bare or not, LFS files smudged or not\n"
	"  a Hugging Face cache folder (models--org--name, datasets--..., spaces--...)\n"
	"  a whole Hugging Face cache (~/.cache/huggingface/hub): every repo in it\n"
	"  a plain directory of files (needs --name): one commit of those files\n"
	"  a bundle written by hfmirror export (a directory, a .tar, or - for stdin):\n"
	"    verified whole, then published (docs/airgap.md)\n"
	"\n"
	"Options:\n"
	"  --store DIR       the store (default: $HFMIRROR_STORE, else ./hfmirror-store)\n"
	"  --name ORG/NAME   the repo, when the source does not say (plain directories,\n"
	"                    clones whose remote is not a Hub URL)\n"
	"  --type TYPE       model, dataset or space (default: from the source, else model)\n"
	"  --copy            copy LFS files into the store, never hard-link them\n"
	"  --json            print one JSON summary line per repo on stdout\n"
	"  --trust PUB.pem   bundles: accept only a manifest signed by this Ed25519\n"
	"                    key (repeatable: any of them)\n"
	"  --jobs N          bundles: verifying threads (default: one per CPU but one)\n"
	"  --grant-users MAP bundles: the outside's user names in grants, as this\n"
	"                    site's (lines \"OUTSIDE INSIDE\", INSIDE - to drop; a\n"
	"                    user not in MAP is dropped); default: names as they are\n"
	"  --no-grants       bundles: do not merge the bundle's grants of gated repos\n"
	"  -q, --quiet       no progress and no summary, only errors\n"
	"  -h, --help        show this help\n"
	"  --version         show the version\n"
	"\n"
	"Running it again adds only what is new; an interrupted run is resumed by\n"
	"running it again.  See docs/importer.md.\n"
	"\n"
	"Exit status: 0 complete; 2 some LFS objects are missing (listed; the rest\n"
	"was imported); 1 error (a refused bundle: nothing of it was published).\n";

static void die_usage(const char *msg)
{
	fprintf(stderr, "hfmirror-import: %s\n(see hfmirror-import --help)\n", msg);
	exit(1);
}

static int parse_args(struct hfm_imp_opts *o, int argc, char **argv)
{
	enum { OPT_STORE = 256, OPT_NAME, OPT_TYPE, OPT_COPY, OPT_JSON, OPT_VERSION, OPT_TRUST,
	       OPT_JOBS, OPT_GRANT_USERS, OPT_NO_GRANTS };
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, OPT_STORE },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "copy", no_argument, NULL, OPT_COPY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "trust", required_argument, NULL, OPT_TRUST },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ "grant-users", required_argument, NULL, OPT_GRANT_USERS },
		{ "no-grants", no_argument, NULL, OPT_NO_GRANTS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, quiet = 0;

	memset(o, 0, sizeof(*o));
	o->type = -1;
	o->store = getenv("HFMIRROR_STORE");
	if (!o->store || !o->store[0])
		o->store = "hfmirror-store";
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		enum hfm_repo_type t;

		switch (c) {
		case OPT_STORE:
			o->store = optarg;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_TYPE:
			if (hfm_repo_type_parse(&t, optarg))
				die_usage("--type must be model, dataset or space");
			o->type = (int)t;
			break;
		case OPT_COPY:
			o->copy = 1;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_TRUST:
			o->trust = hfm_realloc(o->trust, (o->ntrust + 1) * sizeof(*o->trust));
			o->trust[o->ntrust++] = optarg;
			break;
		case OPT_JOBS: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !*optarg || v < 1 || v > 256)
				die_usage("--jobs wants 1..256");
			o->jobs = (unsigned)v;
			break;
		}
		case OPT_GRANT_USERS:
			o->grant_users = optarg;
			break;
		case OPT_NO_GRANTS:
			o->no_grants = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case OPT_VERSION:
			printf("hfmirror-import %s\n", HFM_VERSION);
			exit(0);
		default:
			die_usage("unknown option");
		}
	}
	if (optind == argc)
		die_usage("no SOURCE given");
	if (o->grant_users && o->no_grants)
		die_usage("--grant-users and --no-grants: one or the other");
	o->display = hfm_display_for(stderr, quiet);
	return optind;
}

static const char *name_hint(void)
{
	return "pass --name org/name (and --type dataset or --type space if it is not a model)";
}

/* Set job->id from --name/--type or from the source itself. */
static int resolve_id(struct hfm_imp_job *job)
{
	const struct hfm_imp_opts *o = job->opts;
	const char *base = strrchr(job->source, '/');
	int rc = 0;

	base = base ? base + 1 : job->source;
	if (o->name) {
		enum hfm_repo_type t = o->type >= 0 ? (enum hfm_repo_type)o->type : HFM_MODEL;
		struct hfm_repo_id from_dir;

		/* a cache folder knows its type even when the name is given */
		if (o->type < 0 && job->kind == HFM_IMP_SRC_HFCACHE &&
		    hfm_imp_id_from_cache_dir(&from_dir, base) == 0)
			t = from_dir.type;
		if (hfm_repo_id_parse(&job->id, t, o->name))
			return hfm_error_set(HFM_EINVAL, "--name %s: not a repo name (org/name, "
					     "or name alone for canonical repos)", o->name);
		return 0;
	}
	switch (job->kind) {
	case HFM_IMP_SRC_CLONE:
		if ((rc = hfm_imp_clone_infer(&job->id, job->source))) {
			char *why = hfm_strdup(hfm_error_last());

			rc = hfm_error_set(rc, "cannot tell which repo %s is: %s;\n  %s",
					   job->source, why, name_hint());
			free(why);
			return rc;
		}
		break;
	case HFM_IMP_SRC_HFCACHE:
		if (hfm_imp_id_from_cache_dir(&job->id, base))
			return hfm_error_set(HFM_EINVAL, "cannot tell which repo %s is: the "
					     "folder is not named models--org--name;\n  %s",
					     job->source, name_hint());
		break;
	case HFM_IMP_SRC_PLAIN:
		return hfm_error_set(HFM_EINVAL, "%s is a plain directory (no git, not a Hugging "
				     "Face cache), which does not say which repo it is;\n  %s",
				     job->source, name_hint());
	}
	if (o->type >= 0)
		job->id.type = (enum hfm_repo_type)o->type;
	return 0;
}

struct run {
	struct hfm_imp_opts opts;
	struct hfm_store *store;
	struct hfm_hashindex *hashes;
	struct hfm_progress *progress;
	int errors, incomplete;
};

/* The hash index, opened when the first source that hashes files needs it. */
static struct hfm_hashindex *hashes(struct run *r)
{
	const char *warning = NULL;
	char *path;

	if (r->hashes)
		return r->hashes;
	path = hfm_asprintf("%s/meta/hashindex", r->store->root);
	if (hfm_hashindex_open(&r->hashes, path, &warning) == 0 && warning && warning[0])
		hfm_progress_say(r->progress, "hash index %s: %s", path, warning);
	free(path);
	return r->hashes;
}

static void run_bundle(struct run *r, const char *path)
{
	struct hfm_buf line = HFM_BUF_INIT((size_t)1 << 30);
	int rc;

	hfm_error_clear();
	rc = hfm_imp_bundle_run(&r->opts, r->store, r->progress, path, r->opts.json ? &line : NULL);
	if (rc) {
		fprintf(stderr, "hfmirror-import: %s\n", hfm_error_last()[0] ? hfm_error_last()
									   : hfm_strerror(rc));
		r->errors++;
	}
	if (r->opts.json) {
		printf("%s\n", hfm_buf_cstr(&line));
		fflush(stdout);
	}
	hfm_buf_dispose(&line);
}

static void run_one(struct run *r, const char *path, enum hfm_imp_kind kind)
{
	struct hfm_imp_job job;
	char real[PATH_MAX];
	int rc;

	hfm_imp_job_init(&job, &r->opts, r->store, r->progress, hashes(r));
	job.kind = kind;
	job.source = hfm_strdup(realpath(path, real) ? real : path);
	hfm_error_clear();
	rc = resolve_id(&job);
	if (!rc)
		rc = hfm_imp_run(&job);
	if (rc) {
		fprintf(stderr, "hfmirror-import: %s\n", hfm_error_last()[0] ? hfm_error_last()
									   : hfm_strerror(rc));
		r->errors++;
	} else {
		if (r->opts.display != HFM_SHOW_QUIET)
			hfm_imp_report_text(stderr, &job, 0);
		if (hfm_imp_job_missing(&job))
			r->incomplete++;
	}
	if (r->opts.json) {
		struct hfm_buf line = HFM_BUF_INIT((size_t)1 << 30);

		hfm_imp_report_json(&line, &job, rc ? hfm_error_last() : NULL);
		printf("%s\n", hfm_buf_cstr(&line));
		fflush(stdout);
		hfm_buf_dispose(&line);
	}
	hfm_imp_job_dispose(&job);
}

static void run_source(struct run *r, const char *path)
{
	enum hfm_imp_kind kind;
	int cache_root;
	char **repos;
	size_t n, i;

	if (hfm_imp_bundle_probe(path)) {
		run_bundle(r, path);
		return;
	}
	if (hfm_imp_probe(&kind, &cache_root, path)) {
		fprintf(stderr, "hfmirror-import: %s\n", hfm_error_last());
		r->errors++;
		return;
	}
	if (!cache_root) {
		run_one(r, path, kind);
		return;
	}
	if (hfm_imp_probe_cache_repos(&repos, &n, path)) {
		fprintf(stderr, "hfmirror-import: %s\n", hfm_error_last());
		r->errors++;
		return;
	}
	if (r->opts.name && n > 1) {
		fprintf(stderr, "hfmirror-import: %s is a whole Hugging Face cache with %zu repos; "
			"--name names one: pass one of its folders instead\n", path, n);
		r->errors++;
	} else {
		for (i = 0; i < n; i++)
			run_one(r, repos[i], HFM_IMP_SRC_HFCACHE);
	}
	for (i = 0; i < n; i++)
		free(repos[i]);
	free(repos);
}

int main(int argc, char **argv)
{
	struct run r;
	int first, i, code;

	memset(&r, 0, sizeof(r));
	first = parse_args(&r.opts, argc, argv);
	git_libgit2_init();
	/*
	 * libgit2 never runs programs named by a repository's config, so reading
	 * a clone owned by another user is safe; the check would only stop an
	 * administrator importing users' clones.
	 */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	if (hfm_store_open(&r.store, r.opts.store, 1)) {
		fprintf(stderr, "hfmirror-import: %s\n", hfm_error_last());
		git_libgit2_shutdown();
		return 1;
	}
	r.progress = hfm_progress_new(r.opts.display, stderr, "hfmirror-import");

	for (i = first; i < argc; i++)
		run_source(&r, argv[i]);

	code = r.errors ? 1 : r.incomplete ? EXIT_INCOMPLETE : 0;
	hfm_hashindex_free(r.hashes);
	hfm_progress_free(r.progress);
	hfm_store_free(r.store);
	free(r.opts.trust);
	git_libgit2_shutdown();
	return code;
}
