/*
 * fuzz_route: hfm_route_parse() on any request path.
 *
 * Promises checked (route.h, path.h): an error leaves nothing allocated; a
 * route that names a revision has a valid one, a file path is a valid repo
 * path, and a repo route carries a valid repo name of one or two segments.
 */
#include "hfm/common.h"
#include "hfm/route.h"
#include "fuzz.h"

static int repo_valid(const struct hfm_repo_id *id)
{
	const char *slash = strchr(id->name, '/');
	size_t n = strlen(id->name);

	if (n == 0 || n > HFM_REPO_NAME_MAX)
		return 0;
	if (!slash)
		return hfm_repo_segment_valid(id->name, n);
	return strchr(slash + 1, '/') == NULL &&
	       hfm_repo_segment_valid(id->name, (size_t)(slash - id->name)) &&
	       hfm_repo_segment_valid(slash + 1, n - (size_t)(slash - id->name) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *raw = fuzz_cstr(data, size);
	struct hfm_route r;
	int rc = hfm_route_parse(&r, raw);

	if (rc) {
		FUZZ_CHECK(rc == HFM_EINVAL);
		FUZZ_CHECK(!r.rev && !r.path);
		free(raw);
		return 0;
	}
	FUZZ_CHECK(r.kind >= HFM_R_NOTFOUND && r.kind <= HFM_R_GIT_LFS_OBJECT);
	if (r.rev)
		FUZZ_CHECK(hfm_rev_valid(r.rev));
	if (r.path)
		FUZZ_CHECK(hfm_path_valid(r.path));
	switch (r.kind) {
	case HFM_R_RESOLVE:
	case HFM_R_RAW:
		FUZZ_CHECK(r.rev && r.path && r.path[0]);
		FUZZ_CHECK(repo_valid(&r.repo));
		break;
	case HFM_R_API_REVISION:
	case HFM_R_API_PATHS_INFO:
	case HFM_R_API_COMMITS:
		FUZZ_CHECK(r.rev);
		FUZZ_CHECK(repo_valid(&r.repo));
		break;
	case HFM_R_API_TREE:
		FUZZ_CHECK(r.rev && r.path);
		FUZZ_CHECK(repo_valid(&r.repo));
		break;
	case HFM_R_API_INFO:
	case HFM_R_API_REFS:
	case HFM_R_API_AUTH_CHECK:
		FUZZ_CHECK(repo_valid(&r.repo));
		break;
	case HFM_R_UI_REPO:
		FUZZ_CHECK(r.path);
		FUZZ_CHECK(repo_valid(&r.repo));
		FUZZ_CHECK(!r.rev_given == !r.rev);
		break;
	case HFM_R_GIT_INFO_REFS:
	case HFM_R_GIT_UPLOAD_PACK:
	case HFM_R_GIT_RECEIVE_PACK:
	case HFM_R_GIT_LFS_BATCH:
		FUZZ_CHECK(!r.rev && !r.path);
		FUZZ_CHECK(repo_valid(&r.repo));
		break;
	case HFM_R_GIT_LFS_OBJECT:
		/* "<64 hex>/<digits>": what h_git.c reads without checking again */
		FUZZ_CHECK(r.path && strlen(r.path) > 65 && r.path[64] == '/');
		FUZZ_CHECK(strspn(r.path, "0123456789abcdef") == 64);
		FUZZ_CHECK(strspn(r.path + 65, "0123456789") == strlen(r.path + 65));
		FUZZ_CHECK(repo_valid(&r.repo));
		break;
	default:
		break;
	}
	FUZZ_CHECK(r.repo.type == HFM_MODEL || r.repo.type == HFM_DATASET ||
		   r.repo.type == HFM_SPACE);
	hfm_route_dispose(&r);
	FUZZ_CHECK(!r.rev && !r.path);
	free(raw);
	return 0;
}
