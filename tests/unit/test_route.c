/* The raw-path router: every URL shape the clients send, and hostile ones. */
#include <stdlib.h>

#include "hfm/route.h"
#include "hfm/common.h"
#include "tap.h"

static void expect(const char *url, enum hfm_route_kind kind, enum hfm_repo_type type,
		   const char *repo, const char *rev, const char *path)
{
	struct hfm_route r;
	int rc = hfm_route_parse(&r, url);

	TAP_OK(rc == 0 && r.kind == kind, "%s -> kind %d (rc %d kind %d)", url, kind, rc,
	       rc ? -1 : (int)r.kind);
	if (rc == 0 && repo) {
		TAP_IS_STR(r.repo.name, repo, "%s repo", url);
		TAP_IS_INT(r.repo.type, type, "%s type", url);
	}
	if (rc == 0 && kind != HFM_R_NOTFOUND) {
		TAP_IS_STR(r.rev, rev, "%s rev", url);
		TAP_IS_STR(r.path, path, "%s path", url);
	}
	if (rc == 0)
		hfm_route_dispose(&r);
}

static void bad(const char *url)
{
	struct hfm_route r;
	int rc = hfm_route_parse(&r, url);

	TAP_OK(rc == HFM_EINVAL, "%s rejected (rc %d)", url, rc);
	if (rc == 0)
		hfm_route_dispose(&r);
}

int main(void)
{
	expect("/", HFM_R_UI_INDEX, 0, NULL, NULL, NULL);
	expect("/acme/tiny/resolve/main/config.json", HFM_R_RESOLVE, HFM_MODEL, "acme/tiny",
	       "main", "config.json");
	expect("//acme/tiny/resolve/main/config.json", HFM_R_RESOLVE, HFM_MODEL, "acme/tiny",
	       "main", "config.json");
	expect("/acme/tiny/resolve/main/sub/dir/nested%20file.txt", HFM_R_RESOLVE, HFM_MODEL,
	       "acme/tiny", "main", "sub/dir/nested file.txt");
	expect("/acme/tiny/resolve/refs%2Fpr%2F1/pr.txt", HFM_R_RESOLVE, HFM_MODEL, "acme/tiny",
	       "refs/pr/1", "pr.txt");
	expect("/acme/tiny/resolve/refs/pr/1/pr.txt", HFM_R_RESOLVE, HFM_MODEL, "acme/tiny",
	       "refs/pr/1", "pr.txt");
	expect("/acme/tiny/resolve/refs%2Fconvert%2Fparquet/a/b.parquet", HFM_R_RESOLVE,
	       HFM_MODEL, "acme/tiny", "refs/convert/parquet", "a/b.parquet");
	expect("/datasets/acme/ds/resolve/main/data/train.csv", HFM_R_RESOLVE, HFM_DATASET,
	       "acme/ds", "main", "data/train.csv");
	expect("/spaces/acme/sp/raw/main/app.py", HFM_R_RAW, HFM_SPACE, "acme/sp", "main",
	       "app.py");
	expect("/gpt2/resolve/main/config.json", HFM_R_RESOLVE, HFM_MODEL, "gpt2", "main",
	       "config.json");
	/* a clone URL's ".git" names the same repo, for the rules too */
	expect("/acme/tiny.git/resolve/main/config.json", HFM_R_RESOLVE, HFM_MODEL, "acme/tiny",
	       "main", "config.json");
	expect("/gpt2.git/resolve/main/config.json", HFM_R_RESOLVE, HFM_MODEL, "gpt2", "main",
	       "config.json");
	expect("/api/models/acme/tiny.git/revision/main", HFM_R_API_REVISION, HFM_MODEL, "acme/tiny",
	       "main", NULL);
	expect("/api/datasets/acme/ds.git", HFM_R_API_INFO, HFM_DATASET, "acme/ds", NULL, NULL);
	expect("/acme.git/tiny/resolve/main/a", HFM_R_RESOLVE, HFM_MODEL, "acme.git/tiny", "main",
	       "a");
	bad("/acme/.git/resolve/main/a");
	expect("/acme/tiny/resolve/0123456789abcdef0123456789abcdef01234567/a%2Fb", HFM_R_RESOLVE,
	       HFM_MODEL, "acme/tiny", "0123456789abcdef0123456789abcdef01234567", "a/b");

	expect("/api/models/acme/tiny", HFM_R_API_INFO, HFM_MODEL, "acme/tiny", NULL, NULL);
	expect("/api/models/gpt2", HFM_R_API_INFO, HFM_MODEL, "gpt2", NULL, NULL);
	expect("/api/models/acme/tree", HFM_R_API_INFO, HFM_MODEL, "acme/tree", NULL, NULL);
	expect("/api/models/acme/tree/tree/main", HFM_R_API_TREE, HFM_MODEL, "acme/tree", "main", "");
	expect("/api/models/acme/commits/revision/main", HFM_R_API_REVISION, HFM_MODEL, "acme/commits",
	       "main", NULL);
	expect("/api/models/gpt2/refs", HFM_R_API_REFS, HFM_MODEL, "gpt2", NULL, NULL);
	expect("/api/models/gpt2/auth-check", HFM_R_API_AUTH_CHECK, HFM_MODEL, "gpt2", NULL, NULL);
	expect("/api/models/acme/tiny/auth-check", HFM_R_API_AUTH_CHECK, HFM_MODEL, "acme/tiny",
	       NULL, NULL);
	expect("/api/datasets/acme/ds/auth-check/", HFM_R_API_AUTH_CHECK, HFM_DATASET, "acme/ds",
	       NULL, NULL);
	expect("/api/datasets/acme/ds/revision/main", HFM_R_API_REVISION, HFM_DATASET, "acme/ds",
	       "main", NULL);
	expect("/api/models/acme/tiny/revision/refs%2Fpr%2F1", HFM_R_API_REVISION, HFM_MODEL,
	       "acme/tiny", "refs/pr/1", NULL);
	expect("/api/models/acme/tiny/revision/refs/pr/1", HFM_R_API_REVISION, HFM_MODEL,
	       "acme/tiny", "refs/pr/1", NULL);
	expect("/api/models/gpt2/revision/HEAD", HFM_R_API_REVISION, HFM_MODEL, "gpt2", "HEAD",
	       NULL);
	expect("/api/models/acme/tiny/tree/main", HFM_R_API_TREE, HFM_MODEL, "acme/tiny", "main",
	       "");
	expect("/api/models/acme/tiny/tree/main/", HFM_R_API_TREE, HFM_MODEL, "acme/tiny", "main",
	       "");
	expect("/api/models/acme/tiny/tree/refs%2Fpr%2F1/sub%2Fdir", HFM_R_API_TREE, HFM_MODEL,
	       "acme/tiny", "refs/pr/1", "sub/dir");
	expect("/api/models/acme/tiny/tree/refs/pr/1/sub/dir", HFM_R_API_TREE, HFM_MODEL,
	       "acme/tiny", "refs/pr/1", "sub/dir");
	expect("/api/spaces/acme/sp/paths-info/main", HFM_R_API_PATHS_INFO, HFM_SPACE, "acme/sp",
	       "main", NULL);
	expect("/api/models/acme/tiny/refs", HFM_R_API_REFS, HFM_MODEL, "acme/tiny", NULL, NULL);
	expect("/api/models/acme/tiny/commits/main", HFM_R_API_COMMITS, HFM_MODEL, "acme/tiny",
	       "main", NULL);
	expect("/api/models", HFM_R_API_LIST, HFM_MODEL, NULL, NULL, NULL);
	expect("/api/whoami-v2", HFM_R_API_WHOAMI, HFM_MODEL, NULL, NULL, NULL);
	expect("/api/agent-harnesses", HFM_R_NOTFOUND, 0, NULL, NULL, NULL);
	expect("/api/models/acme/tiny/bogus", HFM_R_NOTFOUND, 0, NULL, NULL, NULL);
	expect("/acme/tiny", HFM_R_UI_REPO, HFM_MODEL, "acme/tiny", NULL, "");
	expect("/acme/tiny/tree/main/sub", HFM_R_UI_REPO, HFM_MODEL, "acme/tiny", "main", "sub");
	expect("/healthz", HFM_R_HEALTH, 0, NULL, NULL, NULL);
	expect("/favicon.ico", HFM_R_NOTFOUND, 0, NULL, NULL, NULL);
	expect("/acme/tiny/resolve/main", HFM_R_NOTFOUND, 0, NULL, NULL, NULL);

	/* traversal and malformed input */
	bad("/acme/tiny/resolve/main/../../etc/passwd");
	bad("/acme/tiny/resolve/main/%2e%2e/%2e%2e/etc/passwd");
	bad("/acme/tiny/resolve/main/a%2F..%2Fb");
	bad("/acme/tiny/resolve/main/a%5C..%5Cb");
	bad("/acme/tiny/resolve/main/a%00b");
	bad("/acme/tiny/resolve/main/a%zz");
	bad("/acme/tiny/resolve/main/a%2");
	bad("/acme/tiny/resolve/main/./x");
	bad("/acme/tiny/resolve/main/a//b");
	bad("/acme/tiny/resolve/..%2F..%2Fx/file");
	bad("/../x/resolve/main/file");
	bad("/%2e%2e/x/resolve/main/file");
	bad("/api/models/../../etc");
	bad("/api/models/acme/..");
	bad("/api/models/acme/tiny/tree/main/%2E%2E");
	bad("/api/models/acme/ti%0any");
	bad("relative/path");

	/* git smart HTTP and LFS: with or without .git, every repo type, canonical repos */
	expect("/acme/tiny.git/info/refs", HFM_R_GIT_INFO_REFS, HFM_MODEL, "acme/tiny", NULL, NULL);
	expect("/acme/tiny/info/refs", HFM_R_GIT_INFO_REFS, HFM_MODEL, "acme/tiny", NULL, NULL);
	expect("/acme/tiny.git/git-upload-pack", HFM_R_GIT_UPLOAD_PACK, HFM_MODEL, "acme/tiny",
	       NULL, NULL);
	expect("/datasets/acme/ds/git-upload-pack", HFM_R_GIT_UPLOAD_PACK, HFM_DATASET,
	       "acme/ds", NULL, NULL);
	expect("/spaces/acme/sp.git/git-receive-pack", HFM_R_GIT_RECEIVE_PACK, HFM_SPACE,
	       "acme/sp", NULL, NULL);
	expect("/gpt2.git/info/refs", HFM_R_GIT_INFO_REFS, HFM_MODEL, "gpt2", NULL, NULL);
	expect("/datasets/squad/info/refs", HFM_R_GIT_INFO_REFS, HFM_DATASET, "squad", NULL, NULL);
	expect("/acme/tiny.git/info/lfs/objects/batch", HFM_R_GIT_LFS_BATCH, HFM_MODEL,
	       "acme/tiny", NULL, NULL);
	expect("/acme/tiny.git/info/lfs/objects/"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/42",
	       HFM_R_GIT_LFS_OBJECT, HFM_MODEL, "acme/tiny", NULL,
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/42");
	/* not git routes: longer paths, bad ids, bad names */
	expect("/acme/tiny/resolve/main/info/refs", HFM_R_RESOLVE, HFM_MODEL, "acme/tiny",
	       "main", "info/refs");
	expect("/a/b/c/info/refs", HFM_R_NOTFOUND, 0, NULL, NULL, NULL);
	expect("/acme/tiny.git/info/lfs/objects/0123/42", HFM_R_NOTFOUND, 0, NULL, NULL, NULL);
	expect("/acme/tiny.git/info/lfs/objects/"
	       "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef/42",
	       HFM_R_NOTFOUND, 0, NULL, NULL, NULL);
	bad("/acme/..git/info/refs");
	expect("/info/refs", HFM_R_UI_REPO, HFM_MODEL, "info/refs", NULL, "");
	return tap_done();
}
