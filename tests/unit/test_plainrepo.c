/* The LFS rule and skipped names shared by model-bin and the importer. */
#include "hfm/plainrepo.h"
#include "tap.h"

int main(void)
{
	struct hfm_lfs_attrs *a = hfm_lfs_attrs_parse(
		"# comment\n"
		"*.bin filter=lfs diff=lfs merge=lfs -text\n"
		"/top.dat filter=lfs\n"
		"docs/*.pdf filter=lfs\n"
		"data/** filter=lfs\n"
		"keep.bin -filter\n");

	TAP_OK(hfm_lfs_attrs_match(a, "model.bin"), "*.bin matches at the top");
	TAP_OK(hfm_lfs_attrs_match(a, "sub dir/x.bin"), "*.bin matches the base name below");
	TAP_OK(!hfm_lfs_attrs_match(a, "keep.bin"), "a later -filter wins");
	TAP_OK(hfm_lfs_attrs_match(a, "top.dat"), "anchored pattern");
	TAP_OK(hfm_lfs_attrs_match(a, "docs/a.pdf"), "pattern with a slash");
	TAP_OK(!hfm_lfs_attrs_match(a, "docs/deep/a.pdf"), "a slash pattern's * stays in one dir");
	TAP_OK(hfm_lfs_attrs_match(a, "data/x/y/z.txt"), "** crosses directories");
	TAP_OK(!hfm_lfs_attrs_match(a, "README.md"), "other files are not LFS");

	TAP_OK(hfm_lfs_wanted(NULL, "a.txt", HFM_LFS_SIZE_THRESHOLD + 1, 0), "over 10 MiB is LFS");
	TAP_OK(!hfm_lfs_wanted(NULL, "a.txt", HFM_LFS_SIZE_THRESHOLD, 0), "exactly 10 MiB is not");
	TAP_OK(hfm_lfs_wanted(NULL, "a.txt", 10, 1), "binary is LFS");
	TAP_OK(hfm_lfs_wanted(a, "w.bin", 10, 0), "attributes make LFS");

	TAP_OK(hfm_plainrepo_skip("", ".git"), ".git skipped");
	TAP_OK(hfm_plainrepo_skip("", ".cache"), "top .cache skipped");
	TAP_OK(!hfm_plainrepo_skip("sub", ".cache"), "nested .cache kept");
	TAP_OK(hfm_plainrepo_skip("sub", ".hfmirror-x"), ".hfmirror* skipped");
	TAP_OK(!hfm_plainrepo_skip("", ".gitattributes"), ".gitattributes kept");
	hfm_lfs_attrs_free(a);
	return tap_done();
}
