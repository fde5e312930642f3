/*
 * export.h - `hfmirror export` and `hfmirror receipt`: the two ends of an
 * air-gapped transfer that run where a store is (docs/airgap.md).
 *
 *   export    outside: write a bundle (bundle.h, bundleio.h) of repos of a
 *             store: their revisions, metadata, git packs and objects,
 *             leaving out what a receipt says the inside holds;
 *   receipt   inside: write what a store holds (receipt.h).
 *
 * Both read the store only.  They run as commands of the hfmirror binary,
 * on the calling thread, and return the process exit status: 0 done, 1 an
 * error (with a message on stderr), 2 a usage error.
 */
#ifndef HFM_EXPORT_H
#define HFM_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "path.h"

/* What to export of one repo. */
struct hfm_export_repo {
	struct hfm_repo_id id;
	char **revs;                     /* none: every revision the store has */
	size_t nrevs;
	/*
	 * Files to carry (fnmatch(3) without FNM_PATHNAME: '*' crosses '/', as
	 * huggingface_hub's allow_patterns); none: every file.  A file that is
	 * not carried stays in the listing, marked absent.
	 */
	char **include;
	size_t ninclude;
	char **exclude;
	size_t nexclude;
};

struct hfm_export_opts {
	const char *store;               /* the store to read */
	const char *out;                 /* a new directory, "-" (stdout) or FILE.tar */
	struct hfm_export_repo *repos;   /* borrowed */
	size_t nrepos;
	int all;                         /* every repo of the store */
	const char *since;               /* a receipt file, or NULL */
	uint64_t split;                  /* directory volumes at most this big; 0 = one */
	const char *sign_key;            /* Ed25519 private key PEM, or NULL */
	int allow_missing;               /* export revisions whose content the store lacks */
	int quiet;
	const char *prog;                /* for messages */
};

/* Write the bundle; 0 or 1 (message on stderr). */
int hfm_export_run(const struct hfm_export_opts *o);

/* The commands: argv[0] is the command name ("export", "receipt"). */
int hfm_export_main(const char *prog, int argc, char **argv);
int hfm_receipt_main(const char *prog, int argc, char **argv);

#endif
