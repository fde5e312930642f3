/*
 * The importer's job record (job.h): what the steps write into it, what it
 * counts as missing, the libgit2 error helper, and that dispose frees it all
 * (the sanitizer build checks the last).
 */
#include "import_fixture.h"

static const char *const OID_A =
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void oid_of(git_oid *out, char c)
{
	char hex[GIT_OID_HEXSZ + 1];

	memset(hex, c, GIT_OID_HEXSZ);
	hex[GIT_OID_HEXSZ] = '\0';
	git_oid_fromstr(out, hex);
}

static void test_init(void)
{
	struct fx_job x;

	fx_job_start(&x, "/src/tiny", "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	TAP_OK(x.job.opts == &x.opts && x.job.store == x.store && x.job.progress == x.progress,
	       "init keeps the shared options, store and progress");
	TAP_OK(!x.job.nrefs && !x.job.ncorrupt && !x.job.lfs.n && !x.job.mirror && !x.job.head,
	       "init: nothing recorded yet");
	TAP_IS_INT(hfm_imp_job_missing(&x.job), 0, "an empty job misses nothing");
	fx_job_end(&x);
}

static void test_refs(void)
{
	struct fx_job x;
	git_oid one, two, three;
	char name[64];

	oid_of(&one, '1');
	oid_of(&two, '2');
	oid_of(&three, '3');
	fx_job_start(&x, NULL, "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	snprintf(name, sizeof(name), "refs/heads/main");
	hfm_imp_job_add_ref(&x.job, name, &one);
	memset(name, 'x', sizeof(name) - 1);   /* the record keeps its own copy */
	hfm_imp_job_add_ref(&x.job, "refs/pr/1", &two);
	TAP_IS_INT(x.job.nrefs, 2, "two refs recorded");
	TAP_IS_STR(x.job.refs[0].name, "refs/heads/main", "the name is copied");
	TAP_OK(git_oid_equal(&x.job.refs[0].target, &one), "main's target");
	hfm_imp_job_add_ref(&x.job, "refs/heads/main", &three);
	TAP_IS_INT(x.job.nrefs, 2, "a second add of a name replaces it");
	TAP_OK(git_oid_equal(&x.job.refs[0].target, &three), "main now names the later target");
	TAP_OK(git_oid_equal(&x.job.refs[1].target, &two), "the other ref is untouched");
	fx_job_end(&x);
}

static void test_corrupt(void)
{
	struct fx_job x;
	char *path = hfm_strdup("/clone/.git/lfs/objects/aa/aa/x"), *why = hfm_strdup("3 bytes");
	const char *said;

	fx_job_start(&x, NULL, "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	hfm_imp_job_add_corrupt(&x.job, OID_A, path, why);
	free(path);
	free(why);
	hfm_imp_job_add_corrupt(&x.job, "short", "/b", "bad");
	TAP_IS_INT(x.job.ncorrupt, 2, "two corrupt candidates recorded");
	TAP_IS_STR(x.job.corrupt[0].oid, OID_A, "the oid");
	TAP_IS_STR(x.job.corrupt[0].path, "/clone/.git/lfs/objects/aa/aa/x", "the path, copied");
	TAP_IS_STR(x.job.corrupt[0].reason, "3 bytes", "the reason, copied");
	TAP_IS_STR(x.job.corrupt[1].oid, "short", "an oid is kept as given");
	said = fx_capture_new(&x.said);
	TAP_OK(strstr(said, "hfmirror-import: corrupt: /clone/.git/lfs/objects/aa/aa/x (object "
			    "aaaaaaaaaaaa") != NULL, "each one is said as it is found");
	TAP_OK(strstr(said, "): 3 bytes\n") != NULL, "with its reason");
	fx_job_end(&x);
}

static void test_missing(void)
{
	static const enum hfm_imp_lfs_state states[] = {
		HFM_IMP_LFS_PENDING, HFM_IMP_LFS_PRESENT, HFM_IMP_LFS_LINKED,
		HFM_IMP_LFS_COPIED, HFM_IMP_LFS_MISSING,
	};
	struct fx_job x;
	struct hfm_imp_lfs *e;
	char oid[HFM_SHA256_HEX + 1];
	size_t i;

	fx_job_start(&x, NULL, "acme/tiny", HFM_IMP_SRC_PLAIN, 0);
	for (i = 0; i < HFM_ARRAY_SIZE(states); i++) {
		memset(oid, (int)('0' + i), HFM_SHA256_HEX);
		oid[HFM_SHA256_HEX] = '\0';
		TAP_IS_INT(hfm_imp_lfsset_add(&e, &x.job.lfs, oid, 10 + i, "main:f"), 0,
			   "LFS object %zu listed", i);
		e->state = states[i];
	}
	TAP_IS_INT(hfm_imp_job_missing(&x.job), 2,
		   "missing: the ones no step brought in (pending) and the ones none could");
	fx_job_end(&x);
}

static void test_git_error(void)
{
	git_repository *repo = NULL;
	char *nowhere = fx_path("no-such-repo");
	int rc;

	TAP_OK(git_repository_open_ext(&repo, nowhere, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0,
	       "libgit2 fails to open a missing repo");
	rc = hfm_imp_git_error("open");
	TAP_IS_INT(rc, HFM_ERROR, "the helper returns HFM_ERROR");
	TAP_OK(!strncmp(hfm_error_last(), "open: ", 6) && strlen(hfm_error_last()) > 6,
	       "its message is `what: libgit2's reason` (%s)", hfm_error_last());
	git_error_clear();
	hfm_imp_git_error("tree");
	TAP_IS_STR(hfm_error_last(), "tree: unknown libgit2 error",
		   "without a libgit2 error it says so");
	free(nowhere);
}

static void test_dispose(void)
{
	struct fx_job x;
	struct hfm_imp_lfs *e;
	git_oid one;

	oid_of(&one, '1');
	fx_job_start(&x, "/src", "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	hfm_imp_job_add_ref(&x.job, "refs/heads/main", &one);
	hfm_imp_job_add_corrupt(&x.job, OID_A, "/p", "r");
	hfm_imp_lfsset_add(&e, &x.job.lfs, OID_A, 1, "main:f");
	hfm_imp_lfs_add_cand(e, "/p", HFM_IMP_CAND_LFS, NULL);
	x.job.head = hfm_strdup("main");
	x.job.shallow = hfm_malloc(sizeof(char *));
	x.job.shallow[0] = hfm_strdup("1111111111111111111111111111111111111111");
	x.job.nshallow = 1;
	x.job.mirror_path = hfm_strdup("/store/mirrors/models/acme/tiny.git");
	hfm_imp_job_dispose(&x.job);
	TAP_OK(!x.job.nrefs && !x.job.refs && !x.job.ncorrupt && !x.job.head && !x.job.source &&
	       !x.job.nshallow && !x.job.lfs.n, "dispose frees everything and clears the record");
	hfm_imp_job_dispose(&x.job);
	TAP_OK(1, "a disposed record may be disposed again");
	fx_job_end(&x);
}

int main(void)
{
	fx_init("import-record");
	test_init();
	test_refs();
	test_corrupt();
	test_missing();
	test_git_error();
	test_dispose();
	return fx_done();
}
