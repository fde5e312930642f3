/*
 * What a SOURCE is before any job runs: its kind (probe.h) and, for a
 * clone, the repo its remote names (hfm_imp_clone_infer in sources.h), on
 * directories and clones made here with git.
 */
#include "import_fixture.h"
#include "probe.h"
#include "sources.h"

static void kind_is(const char *rel, enum hfm_imp_kind want, int want_root, const char *what)
{
	enum hfm_imp_kind kind = (enum hfm_imp_kind)-1;
	int root = -1;
	char *p = fx_path(rel);

	TAP_IS_INT(hfm_imp_probe(&kind, &root, p), 0, "%s: probed", what);
	TAP_IS_INT(kind, want, "%s: its kind", what);
	TAP_IS_INT(root, want_root, "%s: %s", what, want_root ? "a whole cache" : "one source");
	free(p);
}

static void test_probe(void)
{
	enum hfm_imp_kind kind;
	char **repos = NULL, *p;
	size_t n = 0, i;
	int root;

	fx_sh("cd '%s' && git init -q clone && git init -q --bare bare.git && "
	      "mkdir -p clone/sub plain/x hub/models--acme--tiny hub/datasets--acme--ds "
	      "hub/other one/snapshots one/blobs && touch hub/models--not-a-dir plain/x/f",
	      fx_dir);
	kind_is("clone", HFM_IMP_SRC_CLONE, 0, "a clone");
	kind_is("bare.git", HFM_IMP_SRC_CLONE, 0, "a bare clone");
	kind_is("clone/sub", HFM_IMP_SRC_PLAIN, 0, "a directory inside a clone");
	kind_is("plain", HFM_IMP_SRC_PLAIN, 0, "a plain directory");
	kind_is("one", HFM_IMP_SRC_HFCACHE, 0, "a cache folder (snapshots/ and blobs/)");
	kind_is("hub", HFM_IMP_SRC_HFCACHE, 1, "a directory of cache folders");

	p = fx_path("hub");
	TAP_IS_INT(hfm_imp_probe_cache_repos(&repos, &n, p), 0, "list a whole cache");
	TAP_IS_INT(n, 2, "its repo folders only");
	if (n == 2) {
		TAP_OK(strstr(repos[0], "/hub/datasets--acme--ds") != NULL, "sorted: datasets first");
		TAP_OK(strstr(repos[1], "/hub/models--acme--tiny") != NULL, "then models");
	}
	for (i = 0; i < n; i++)
		free(repos[i]);
	free(repos);
	free(p);

	p = fx_path("plain/x/f");
	TAP_IS_INT(hfm_imp_probe(&kind, &root, p), HFM_EINVAL, "a file is no source");
	TAP_OK(strstr(hfm_error_last(), "not a directory") != NULL, "and it says so");
	free(p);
	p = fx_path("nothing");
	TAP_IS_INT(hfm_imp_probe(&kind, &root, p), HFM_EINVAL, "a missing path is no source");
	free(p);
}

static void infer_is(const char *rel, int want_rc, const char *want_name,
		     enum hfm_repo_type want_type, const char *what)
{
	struct hfm_repo_id id;
	char *p = fx_path(rel);

	memset(&id, 0, sizeof(id));
	TAP_IS_INT(hfm_imp_clone_infer(&id, p), want_rc, "%s", what);
	if (!want_rc) {
		TAP_IS_STR(id.name, want_name, "%s: the name", what);
		TAP_IS_INT(id.type, want_type, "%s: the type", what);
	}
	free(p);
}

static void test_infer(void)
{
	fx_sh("cd '%s' && git init -q hubclone && "
	      "git -C hubclone remote add origin https://huggingface.co/datasets/acme/ds && "
	      "git init -q two && git -C two remote add upstream https://hf.co/acme/tiny.git && "
	      "git -C two remote add fork https://example.com/x && "
	      "git init -q only && git -C only remote add mirror http://10.0.0.5:8090/acme/one && "
	      "git init -q copy && git -C copy remote add origin ../hubclone && "
	      "git init -q none && git init -q local && git -C local remote add origin /srv/x",
	      fx_dir);
	infer_is("hubclone", 0, "acme/ds", HFM_DATASET, "origin names a Hub dataset");
	infer_is("only", 0, "acme/one", HFM_MODEL, "the only remote, though not origin");
	infer_is("copy", 0, "acme/ds", HFM_DATASET, "a clone of a clone asks the first");
	infer_is("two", HFM_EINVAL, NULL, HFM_MODEL, "two remotes, none origin: no answer");
	TAP_OK(strstr(hfm_error_last(), "no remote \"origin\"") != NULL, "and it says why (%s)",
	       hfm_error_last());
	infer_is("none", HFM_EINVAL, NULL, HFM_MODEL, "no remote: no answer");
	infer_is("local", HFM_EINVAL, NULL, HFM_MODEL, "a remote path that is no clone");
	TAP_OK(strstr(hfm_error_last(), "/srv/x, which names no Hub repo") != NULL,
	       "the message shows the URL (%s)", hfm_error_last());
}

int main(void)
{
	fx_init("import-probe");
	test_probe();
	test_infer();
	return fx_done();
}
