/*
 * Step 2 of an import (lfsimport.h): LFS objects into the store from their
 * candidate files, verified.  A corrupt candidate is rejected (and reported
 * unless it is a checked-out file, which may just have been edited) and the
 * next one tried; what is in the store already is not read again unless its
 * size is wrong; hard link, or copy with --copy.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "hfm/hash.h"
#include "import_fixture.h"
#include "lfsimport.h"

struct object {
	char oid[HFM_SHA256_HEX + 1];
	char content[64];
	size_t size;
};

static void object(struct object *o, const char *content)
{
	snprintf(o->content, sizeof(o->content), "%s", content);
	o->size = strlen(content);
	hfm_sha256_hex(o->oid, o->content, o->size);
}

/* List `o` in the job with the candidates given as (rel path, kind) pairs. */
static struct hfm_imp_lfs *want(struct fx_job *x, const struct object *o, const char *where)
{
	struct hfm_imp_lfs *e;

	if (hfm_imp_lfsset_add(&e, &x->job.lfs, o->oid, o->size, where)) {
		printf("# %s\n", hfm_error_last());
		exit(1);
	}
	return e;
}

static void cand(struct hfm_imp_lfs *e, const char *rel, enum hfm_imp_cand_kind kind)
{
	char *p = fx_path(rel);

	hfm_imp_lfs_add_cand(e, p, kind, NULL);
	free(p);
}

static char *object_path(const struct object *o)
{
	return hfm_asprintf("%s/store/objects/%.2s/%s", fx_dir, o->oid, o->oid);
}

static ino_t inode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* The object in the store hashes to its name. */
static int object_ok(const struct object *o)
{
	char *p = object_path(o), buf[64], got[HFM_SHA256_HEX + 1];
	FILE *f = fopen(p, "rb");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;

	if (f)
		fclose(f);
	free(p);
	hfm_sha256_hex(got, buf, n);
	return f && !strcmp(got, o->oid);
}

static const struct hfm_imp_corrupt *corrupt_at(const struct fx_job *x, const char *rel)
{
	size_t i, n = strlen(fx_dir);

	for (i = 0; i < x->job.ncorrupt; i++)
		if (!strncmp(x->job.corrupt[i].path, fx_dir, n) &&
		    !strcmp(x->job.corrupt[i].path + n + 1, rel))
			return &x->job.corrupt[i];
	return NULL;
}

static void test_link(void)
{
	struct object a, b, c, d, e, f, g;
	struct hfm_imp_lfs *ea, *eb, *ec, *ed, *ee, *ef, *eg;
	const struct hfm_imp_corrupt *bad;
	struct fx_job x;
	char *p, *q, why[128];
	const char *said;
	int linked;

	object(&a, "the content of A, verified\n");
	object(&b, "B, whose cache blob has the wrong size\n");
	object(&c, "C, whose checked-out file was edited\n");
	object(&d, "D, nowhere to be found\n");
	object(&e, "E, in the store already\n");
	object(&f, "F, in the store with the wrong size\n");
	object(&g, "G, a checked-out file of the wrong size\n");
	fx_write("lfs/a-bad", "THE CONTENT OF A, VERIFIED\n", a.size);   /* same size, wrong */
	fx_write("lfs/a", a.content, a.size);
	fx_write("cache/b", b.content, b.size - 1);
	fx_write("work/c", "c, WHOSE CHECKED-OUT FILE WAS EDITED\n", c.size);
	fx_write("plain/f", f.content, f.size);
	fx_write("work/g", g.content, g.size + 1);

	fx_job_start(&x, fx_dir, "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	/* E in the store before the run; F there with the wrong size */
	fx_write("e-first", e.content, e.size);
	p = fx_path("e-first");
	TAP_IS_INT(hfm_store_add_file(x.store, p, e.oid, &linked), 0, "E is put in the store first");
	free(p);
	p = hfm_asprintf("store/objects/%.2s/%s", f.oid, f.oid);
	fx_write(p, "short", 5);
	free(p);

	ea = want(&x, &a, "refs/heads/main:a.bin");
	cand(ea, "lfs/a-bad", HFM_IMP_CAND_LFS);
	cand(ea, "lfs/a", HFM_IMP_CAND_LFS);
	eb = want(&x, &b, "refs/heads/main:b.bin");
	cand(eb, "cache/b", HFM_IMP_CAND_CACHE);
	ec = want(&x, &c, "refs/heads/main:c.bin");
	cand(ec, "work/c", HFM_IMP_CAND_WORKTREE);
	ed = want(&x, &d, "refs/heads/main:d.bin");
	cand(ed, "lfs/d", HFM_IMP_CAND_LFS);   /* no such file */
	ee = want(&x, &e, "refs/heads/main:e.bin");
	cand(ee, "lfs/e", HFM_IMP_CAND_LFS);   /* no such file: not needed */
	ef = want(&x, &f, "refs/heads/main:f.bin");
	cand(ef, "plain/f", HFM_IMP_CAND_PLAIN);
	eg = want(&x, &g, "refs/heads/main:g.bin");
	cand(eg, "work/g", HFM_IMP_CAND_WORKTREE);

	TAP_IS_INT(hfm_imp_lfs_import(&x.job), 0, "step 2 runs");
	said = fx_capture_new(&x.said);
	ea = hfm_imp_lfsset_find(&x.job.lfs, a.oid);
	TAP_IS_INT(ea->state, HFM_IMP_LFS_LINKED, "A: linked from its second candidate");
	p = object_path(&a);
	q = fx_path("lfs/a");
	TAP_OK(inode(p) && inode(p) == inode(q), "A: the object is the good file's inode");
	free(q);
	free(p);
	TAP_OK(object_ok(&a), "A: the object hashes to its name");
	bad = corrupt_at(&x, "lfs/a-bad");
	TAP_OK(bad && !strcmp(bad->oid, a.oid), "A: the corrupt candidate is reported");
	TAP_OK(bad && strstr(bad->reason, "content hashes to") != NULL, "with why (%s)",
	       bad ? bad->reason : "");

	TAP_IS_INT(hfm_imp_lfsset_find(&x.job.lfs, b.oid)->state, HFM_IMP_LFS_MISSING,
		   "B: missing");
	bad = corrupt_at(&x, "cache/b");
	snprintf(why, sizeof(why), "%zu bytes, the pointer says %zu", b.size - 1, b.size);
	TAP_OK(bad && !strcmp(bad->reason, why), "B: a cache blob of the wrong size is corrupt");
	TAP_IS_INT(hfm_imp_lfsset_find(&x.job.lfs, c.oid)->state, HFM_IMP_LFS_MISSING,
		   "C: missing");
	TAP_OK(!corrupt_at(&x, "work/c"), "C: an edited checked-out file is not corrupt");
	p = hfm_asprintf("%s/work/c differs from the committed file (edited?); not used", fx_dir);
	TAP_OK(strstr(said, p) != NULL, "C: but it is said that it was not used");
	free(p);
	TAP_IS_INT(hfm_imp_lfsset_find(&x.job.lfs, d.oid)->state, HFM_IMP_LFS_MISSING,
		   "D: no candidate file: missing");
	TAP_IS_INT(hfm_imp_lfsset_find(&x.job.lfs, e.oid)->state, HFM_IMP_LFS_PRESENT,
		   "E: present, without a candidate");
	TAP_IS_INT(hfm_imp_lfsset_find(&x.job.lfs, f.oid)->state, HFM_IMP_LFS_LINKED,
		   "F: a store object of the wrong size is imported again");
	TAP_OK(object_ok(&f), "F: and now right");
	p = hfm_asprintf("warning: object %s in the store has 5 bytes, its pointer says %zu",
			 f.oid, f.size);
	TAP_OK(strstr(said, p) != NULL, "F: with a warning");
	free(p);
	TAP_IS_INT(hfm_imp_lfsset_find(&x.job.lfs, g.oid)->state, HFM_IMP_LFS_MISSING,
		   "G: missing");
	TAP_OK(!corrupt_at(&x, "work/g"), "G: a checked-out file of another size is not corrupt");
	TAP_IS_INT(x.job.ncorrupt, 2, "two corrupt candidates in all");
	TAP_OK(x.job.linked == 2 && x.job.copied == 0 && x.job.present == 1,
	       "counts: 2 linked, 0 copied, 1 present");
	TAP_IS_INT(x.job.bytes, a.size + f.size, "bytes: what was linked");
	TAP_IS_INT(hfm_imp_job_missing(&x.job), 4, "4 missing");
	TAP_OK(strstr(said, "hfmirror-import: importing: 3 items, ") != NULL,
	       "the phase counted A, C and F: each has a candidate of the right size");
	fx_job_end(&x);

	/* again: everything there is present, nothing is read */
	fx_job_start(&x, fx_dir, "acme/tiny", HFM_IMP_SRC_CLONE, 0);
	ea = want(&x, &a, "refs/heads/main:a.bin");
	cand(ea, "lfs/a-bad", HFM_IMP_CAND_LFS);
	TAP_IS_INT(hfm_imp_lfs_import(&x.job), 0, "a second run");
	TAP_IS_INT(ea->state, HFM_IMP_LFS_PRESENT, "A: present");
	TAP_IS_INT(x.job.ncorrupt, 0, "its corrupt candidate is not even looked at");
	fx_job_end(&x);
}

static void test_copy(void)
{
	struct object a;
	struct hfm_imp_lfs *ea;
	struct fx_job x;
	char *p, *q, left[64];

	fx_sh("rm -rf '%s/store'", fx_dir);
	object(&a, "the content of A, verified\n");
	fx_job_start(&x, fx_dir, "acme/tiny", HFM_IMP_SRC_CLONE, 1);
	ea = want(&x, &a, "refs/heads/main:a.bin");
	cand(ea, "lfs/a-bad", HFM_IMP_CAND_LFS);
	cand(ea, "lfs/a", HFM_IMP_CAND_LFS);
	TAP_IS_INT(hfm_imp_lfs_import(&x.job), 0, "step 2 with --copy");
	TAP_IS_INT(ea->state, HFM_IMP_LFS_COPIED, "A: copied");
	p = object_path(&a);
	q = fx_path("lfs/a");
	TAP_OK(inode(p) && inode(p) != inode(q), "A: the object is a file of its own");
	free(q);
	free(p);
	TAP_OK(object_ok(&a), "A: the copy hashes to its name");
	TAP_OK(corrupt_at(&x, "lfs/a-bad") != NULL, "the corrupt candidate is still rejected");
	TAP_OK(x.job.copied == 1 && x.job.linked == 0 && x.job.bytes == a.size,
	       "counts: 1 copied");
	TAP_IS_STR(fx_sh_line(left, sizeof(left), "find '%s/store/tmp' -type f | wc -l", fx_dir),
		   "0", "nothing is left in tmp/");
	fx_job_end(&x);
}

int main(void)
{
	fx_init("import-lfs");
	test_link();
	test_copy();
	return fx_done();
}
