/* The importer's repo name and type inference from URLs and folder names. */
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "tap.h"

static void url_is(const char *url, enum hfm_repo_type type, const char *name)
{
	struct hfm_repo_id id;
	int rc;

	memset(&id, 0, sizeof(id));
	rc = hfm_imp_id_from_url(&id, url);
	TAP_IS_INT(rc, 0, "%s parses", url);
	TAP_IS_STR(id.name, name, "%s names %s", url, name);
	TAP_IS_INT(id.type, type, "%s is a %s", url, hfm_repo_type_name(type));
}

static void url_bad(const char *url)
{
	struct hfm_repo_id id;

	TAP_IS_INT(hfm_imp_id_from_url(&id, url), HFM_EINVAL, "'%s' names no repo", url);
}

static void cache_is(const char *dir, enum hfm_repo_type type, const char *name)
{
	struct hfm_repo_id id;

	memset(&id, 0, sizeof(id));
	TAP_IS_INT(hfm_imp_id_from_cache_dir(&id, dir), 0, "%s parses", dir);
	TAP_IS_STR(id.name, name, "%s names %s", dir, name);
	TAP_IS_INT(id.type, type, "%s type", dir);
}

static void redact_is(const char *url, const char *want)
{
	char out[256];

	hfm_imp_url_redact(out, sizeof(out), url);
	TAP_IS_STR(out, want, "redact %s", want);
}

int main(void)
{
	struct hfm_repo_id id;
	char *path = NULL;

	url_is("https://huggingface.co/acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("https://huggingface.co/acme/tiny.git", HFM_MODEL, "acme/tiny");
	url_is("https://huggingface.co/acme/tiny/", HFM_MODEL, "acme/tiny");
	url_is("https://hf.co/acme/tiny.git/", HFM_MODEL, "acme/tiny");
	url_is("https://huggingface.co/datasets/acme/ds", HFM_DATASET, "acme/ds");
	url_is("https://huggingface.co/spaces/acme/demo", HFM_SPACE, "acme/demo");
	url_is("https://huggingface.co/models/acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("https://huggingface.co/gpt2", HFM_MODEL, "gpt2");
	url_is("https://huggingface.co/datasets/squad", HFM_DATASET, "squad");
	url_is("https://user:hf_secret@huggingface.co/acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("https://hf_token@huggingface.co/datasets/acme/ds.git", HFM_DATASET, "acme/ds");
	url_is("http://10.0.0.5:8090/acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("http://mirror.lan:8090/datasets/acme/ds", HFM_DATASET, "acme/ds");
	url_is("http://mirror.lan/hf/acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("http://mirror.lan/hf/spaces/acme/demo?x=1#frag", HFM_SPACE, "acme/demo");
	url_is("ssh://git@hf.co/acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("ssh://git@hf.co:22/datasets/acme/ds.git", HFM_DATASET, "acme/ds");
	url_is("git@hf.co:acme/tiny", HFM_MODEL, "acme/tiny");
	url_is("git@hf.co:spaces/acme/demo.git", HFM_SPACE, "acme/demo");
	url_is("https://huggingface.co/acme/Tiny-Model_v1.5", HFM_MODEL, "acme/Tiny-Model_v1.5");

	url_bad("https://huggingface.co/");
	url_bad("https://huggingface.co");
	url_bad("https://huggingface.co/datasets");
	url_bad("https://huggingface.co/acme/bad..name");
	url_bad("https://huggingface.co/acme/-x");
	url_bad("/srv/git/acme/tiny");
	url_bad("../tiny");
	url_bad("file:///srv/git/acme/tiny");
	url_bad("");

	TAP_IS_INT(hfm_imp_url_local_path(&path, "file:///srv/x"), 0, "file URL is local");
	TAP_IS_STR(path, "/srv/x", "file URL path");
	free(path);
	TAP_IS_INT(hfm_imp_url_local_path(&path, "../up/tiny"), 0, "relative path is local");
	TAP_IS_STR(path, "../up/tiny", "relative path kept");
	free(path);
	TAP_IS_INT(hfm_imp_url_local_path(&path, "https://hf.co/a/b"), HFM_EINVAL,
		   "https is not local");
	TAP_IS_INT(hfm_imp_url_local_path(&path, "git@hf.co:a/b"), HFM_EINVAL,
		   "scp-like is not local");

	cache_is("models--acme--tiny", HFM_MODEL, "acme/tiny");
	cache_is("datasets--acme--my-ds", HFM_DATASET, "acme/my-ds");
	cache_is("spaces--acme--demo", HFM_SPACE, "acme/demo");
	cache_is("models--gpt2", HFM_MODEL, "gpt2");
	TAP_IS_INT(hfm_imp_id_from_cache_dir(&id, "tiny"), HFM_EINVAL, "plain folder name");
	TAP_IS_INT(hfm_imp_id_from_cache_dir(&id, "models--"), HFM_EINVAL, "empty name");
	TAP_IS_INT(hfm_imp_id_from_cache_dir(&id, "models--a--b--c"), HFM_EINVAL,
		   "a name with -- is not the Hub's");

	TAP_IS_INT(hfm_repo_id_parse(&id, HFM_DATASET, "acme/tiny"), 0, "--name org/name");
	TAP_IS_STR(id.name, "acme/tiny", "--name kept");
	TAP_IS_INT(id.type, HFM_DATASET, "--name takes the type given");
	TAP_IS_INT(hfm_repo_id_parse(&id, HFM_MODEL, "gpt2"), 0, "--name canonical");
	TAP_IS_INT(hfm_repo_id_parse(&id, HFM_MODEL, "a/b/c"), HFM_EINVAL, "three segments");
	TAP_IS_INT(hfm_repo_id_parse(&id, HFM_MODEL, "a/"), HFM_EINVAL, "empty name");

	redact_is("https://user:hf_secret@huggingface.co/acme/tiny",
		  "https://user:***@huggingface.co/acme/tiny");
	redact_is("https://hf_token@huggingface.co/acme/tiny", "https://***@huggingface.co/acme/tiny");
	redact_is("ssh://git@hf.co/acme/tiny", "ssh://git@hf.co/acme/tiny");
	redact_is("https://huggingface.co/a@b", "https://huggingface.co/a@b");
	redact_is("git@hf.co:acme/tiny", "git@hf.co:acme/tiny");
	return tap_done();
}
