/*
 * fuzz_config: the config loader (hfm_config_read(): toml++ and the reader
 * of config.cpp, size and duration parsing; then hfm_config_finish(): the
 * cross checks and the rule compiler) on any file, and the compiled rules
 * on a few repo names.
 *
 * The input is written to a memfd and read through /proc/self/fd/N, so the
 * real file path is exercised without touching the disk.
 *
 * Promises checked (config.h): no C++ exception escapes and a bad file is
 * HFM_EINVAL (never HFM_ERROR, the code for "an exception reached the
 * catch-all"); every error and warning line of a file names it as
 * "FILE:LINE: " and ends in '\n'; a config that finishes has its URLs and
 * both rule lists.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/config.h"
#include "fuzz.h"

static int memfd = -1;
static char path[64];

static const char *const names[] = {
	"gpt2", "openai-community/gpt2", "mistralai/Mistral-7B-v0.1",
	"cais/mmlu", "adept/fuyu-8b", "a", "org/\xc3\xa9t\xc3\xa9",
};

static int lines_name_file(const char *s)
{
	return fuzz_lines_name_file(path, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hfm_buf err = HFM_BUF_INIT(1 << 20);
	struct hfm_config *cfg = NULL;
	size_t i;
	int rc;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-config.toml", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	FUZZ_CHECK(hfm_config_new(&cfg) == 0);
	rc = hfm_config_read(cfg, path, &err);
	if (size > HFM_CONFIG_MAX_FILE_SIZE) {
		FUZZ_CHECK(rc == HFM_EIO);
		goto out;
	}
	if (rc == HFM_ERROR)
		fprintf(stderr, "%s", hfm_buf_cstr(&err));
	FUZZ_CHECK(rc == 0 || rc == HFM_EINVAL);
	if (cfg->warnings && !lines_name_file(cfg->warnings))
		fprintf(stderr, "warnings:\n%s", cfg->warnings);
	FUZZ_CHECK(!cfg->warnings || lines_name_file(cfg->warnings));
	if (rc && !lines_name_file(hfm_buf_cstr(&err)))
		fprintf(stderr, "errors:\n%s", hfm_buf_cstr(&err));
	if (rc) {
		FUZZ_CHECK(lines_name_file(hfm_buf_cstr(&err)));
		goto out;
	}
	FUZZ_CHECK(err.len == 0);
	rc = hfm_config_finish(cfg, &err);
	if (rc) {
		FUZZ_CHECK(rc == HFM_EINVAL);
		FUZZ_CHECK(err.len > 0 && err.ptr[err.len - 1] == '\n');
		goto out;
	}
	FUZZ_CHECK(cfg->mirror_url && cfg->mirror_lfs_url && cfg->proxy && cfg->cache);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int a = hfm_rules_allow(cfg->proxy, names[i]);
		int b = hfm_rules_allow(cfg->cache, names[i]);

		FUZZ_CHECK((a == 0 || a == 1) && (b == 0 || b == 1));
	}
out:
	hfm_config_free(cfg);
	hfm_buf_dispose(&err);
	return 0;
}
