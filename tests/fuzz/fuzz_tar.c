/*
 * fuzz_tar: hfm_tar_parse() and hfm_tar_pax() on any bytes, the tar framing
 * hfmirror-import reads from a bundle stream or its volumes.
 *
 * The input is a header block (the first 512 bytes, zero-padded) and pax
 * records (the rest).  Promises checked (bundleio.h): a header that parses
 * has a NUL-terminated name and a known type; a header hfm_tar_header()
 * writes for a name and size parses back to them, through its pax header
 * when it needs one; pax records that parse give a path without NUL.
 */
#include "hfm/bundleio.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char block[HFM_TAR_BLOCK] = { 0 };
	struct hfm_tar_hdr h;
	struct hfm_buf w = HFM_BUF_INIT(1 << 20);
	char *path = NULL;
	uint64_t psize = 0;
	int has = 0;

	memcpy(block, data, size < sizeof(block) ? size : sizeof(block));
	if (hfm_tar_parse(&h, block) == 0) {
		FUZZ_CHECK(memchr(h.name, '\0', sizeof(h.name)) != NULL);
		FUZZ_CHECK(h.type <= HFM_TAR_END);
	}
	if (size > sizeof(block) &&
	    hfm_tar_pax(&path, &psize, &has, (const char *)data + sizeof(block),
			size - sizeof(block)) == 0 && path)
		FUZZ_CHECK(strlen(path) > 0);
	free(path);
	path = NULL;

	/* what we write, we read: the input as a name (cut at a NUL) and its length as a size */
	char *name = fuzz_cstr(data, size > HFM_TAR_NAME_MAX ? HFM_TAR_NAME_MAX : size);
	uint64_t sz = size * 0x100000007ull;

	if (*name && hfm_tar_header(&w, name, sz, 0) == 0) {
		FUZZ_CHECK(hfm_tar_parse(&h, (unsigned char *)w.ptr) == 0);
		if (h.type == HFM_TAR_PAX) {
			FUZZ_CHECK(hfm_tar_pax(&path, &psize, &has, w.ptr + HFM_TAR_BLOCK, h.size) == 0);
			size_t data_blocks = (h.size + HFM_TAR_BLOCK - 1) / HFM_TAR_BLOCK;
			FUZZ_CHECK(hfm_tar_parse(&h, (unsigned char *)w.ptr +
						 (1 + data_blocks) * HFM_TAR_BLOCK) == 0);
			FUZZ_CHECK(!path || !strcmp(path, name));
			FUZZ_CHECK(has ? psize == sz : h.size == sz);
		} else {
			FUZZ_CHECK(!strcmp(h.name, name) && h.size == sz);
		}
		FUZZ_CHECK(h.type == HFM_TAR_FILE);
	}
	free(path);
	free(name);
	hfm_buf_dispose(&w);
	return 0;
}
