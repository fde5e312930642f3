/*
 * fuzz_sync_manifest: the sync manifest reader (hfm_sync_manifest_read():
 * toml++ and config.cpp's manifest walk) on any file, then the include and
 * exclude patterns of what it read on a few paths.
 *
 * The input is written to a memfd and read through /proc/self/fd/N, so the
 * real file path is exercised without touching the disk.
 *
 * Promises checked (sync.h): no C++ exception escapes (HFM_ERROR) and a bad
 * file is HFM_EINVAL, a file over the size cap HFM_EIO; every message line
 * is "FILE:LINE: ..." and ends in '\n'; a manifest that reads has repos,
 * each with a valid id and at least one valid revision.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/config.h"
#include "hfm/path.h"
#include "hfm/sync.h"
#include "fuzz.h"

static int memfd = -1;
static char path[64];

static const char *const paths[] = {
	"config.json", "original/params.json", "data/train/x.parquet", "a/b/c/d.bin",
	"\xc3\xa9t\xc3\xa9.txt",
};

static int lines_name_file(const char *s)
{
	return fuzz_lines_name_file(path, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 20);
	struct hfm_sync_manifest *m = NULL;
	int rc;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-sync.toml", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	rc = hfm_sync_manifest_read(&m, path, &err);
	if (size > HFM_CONFIG_MAX_FILE_SIZE) {
		FUZZ_CHECK(rc == HFM_EIO && !m);
		goto out;
	}
	if (rc == HFM_ERROR)
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
	FUZZ_CHECK(rc == 0 || rc == HFM_EINVAL);
	if (rc) {
		if (!lines_name_file(hfm_buf_cstr(&err)))
			fprintf(stderr, "errors:\n%s", hfm_buf_cstr(&err));
		FUZZ_CHECK(!m && lines_name_file(hfm_buf_cstr(&err)));
		goto out;
	}
	FUZZ_CHECK(m && m->n > 0 && err.len == 0);
	for (size_t i = 0; i < m->n; i++) {
		const struct hfm_sync_want *w = &m->repos[i];

		FUZZ_CHECK(w->id.name[0] && w->n_revisions > 0);
		for (size_t k = 0; k < w->n_revisions; k++)
			FUZZ_CHECK(hfm_rev_valid(w->revisions[k]));
		for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
			int yes = hfm_sync_wants(w, paths[k]);
			FUZZ_CHECK(yes == 0 || yes == 1);
		}
	}
out:
	hfm_sync_manifest_free(m);
	hfm_buf_dispose(&err);
	return 0;
}
