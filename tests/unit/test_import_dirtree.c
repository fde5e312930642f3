/*
 * A directory of files as git objects: dirtree.h (listing, trees, commits)
 * and plaindir.c through the runner (run.h).  The ids must be git's own, so
 * git computes the expected ones at test time from a copy of the directory
 * that holds exactly what the import should see (symlinks followed, skipped
 * names left out, LFS files as their pointers).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "dirtree.h"
#include "hfm/hash.h"
#include "hfm/hashindex.h"
#include "import_fixture.h"
#include "run.h"

#define WHEN 1700000000

/* Write a file into both the source dir and the expected copy (below fx_dir). */
static void both(const char *src, const char *exp, const char *rel, const char *text)
{
	char *a = hfm_asprintf("%s/%s", src, rel), *b = hfm_asprintf("%s/%s", exp, rel);

	fx_write_str(a, text);
	fx_write_str(b, text);
	free(a);
	free(b);
}

/* The tree git writes for everything in fx_dir/exp. */
static void git_tree_of(char out[GIT_OID_HEXSZ + 1], const char *exp)
{
	fx_sh_line(out, GIT_OID_HEXSZ + 1, "cd '%s/%s' && { [ -d .git ] || git init -q .; } && "
		   "git add -A && git write-tree", fx_dir, exp);
}

/* The commit `git commit-tree` makes as hfmirror-import would. */
static void git_commit_of(char out[GIT_OID_HEXSZ + 1], const char *exp, const char *tree,
			  const char *parent, long when, const char *msg)
{
	fx_sh_line(out, GIT_OID_HEXSZ + 1,
		   "cd '%s/%s' && printf '%s' | GIT_AUTHOR_NAME=hfmirror-import "
		   "GIT_AUTHOR_EMAIL=hfmirror-import@localhost GIT_AUTHOR_DATE='%ld +0000' "
		   "GIT_COMMITTER_NAME=hfmirror-import GIT_COMMITTER_EMAIL=hfmirror-import@localhost "
		   "GIT_COMMITTER_DATE='%ld +0000' git commit-tree %s%s %s", fx_dir, exp, msg, when,
		   when, parent ? "-p " : "", parent ? parent : "", tree);
}

static char *hex_of(const git_oid *id)
{
	static char hex[4][GIT_OID_HEXSZ + 1];
	static int next;

	next = (next + 1) % 4;
	return git_oid_tostr(hex[next], sizeof(hex[next]), id);
}

/* Blobs from the files' content (links followed), as plaindir.c writes them. */
static int write_blobs(git_repository *repo, struct hfm_imp_filelist *l)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < l->n; i++) {
		FILE *f = fopen(l->v[i].abs, "rb");
		char data[4096];
		size_t n = f ? fread(data, 1, sizeof(data), f) : 0;

		if (f)
			fclose(f);
		bad |= !f || git_blob_create_from_buffer(&l->v[i].blob, repo, data, n) < 0;
		l->v[i].keep = 1;
	}
	return bad;
}

static void test_dirtree(void)
{
	struct hfm_imp_filelist l;
	struct fx_capture said;
	struct hfm_progress *p;
	git_repository *repo = NULL;
	git_oid tree, commit, commit2;
	char *src = fx_path("src"), *exp = fx_path("exp"), *path;
	char want[GIT_OID_HEXSZ + 1], list[4096], names[4096], readme[64];
	const char *S = "src", *E = "exp";
	const char *t;
	size_t i, sorted = 1, links = 0, len = 0, z = 0;

	both(S, E, "README.md", "# tiny\n");
	both(S, E, "config.json", "{\"a\": 1}\n");
	both(S, E, "sub dir/nested/file with spaces.txt", "hello\n");
	/* names that sort next to the directory a/: before it, and after */
	both(S, E, "a-b.txt", "dash\n");
	both(S, E, "a.txt", "dot\n");
	both(S, E, "a/x.txt", "ax\n");
	both(S, E, "a/y/z.txt", "z\n");
	both(S, E, "a0.txt", "zero\n");
	both(S, E, "sub dir/.cache/kept.txt", "only the top .cache is huggingface_hub's\n");
	both(S, E, "link.txt", "# tiny\n");  /* in src: a symlink to README.md */
	path = hfm_asprintf("%s/link.txt", src);
	unlink(path);
	TAP_OK(symlink("README.md", path) == 0, "a symlink to a file");
	free(path);
	fx_write_str("src/.git/config", "[core]\n");
	fx_write_str("src/.cache/huggingface/download/x.metadata", "x\n");
	fx_write_str("src/.hfmirror-partial", "x\n");
	fx_write_str("src/bad\\name.txt", "backslash\n");
	fx_sh("mkdir -p '%s/empty/inner' && ln -s . '%s/loop' && ln -s nowhere '%s/dangling' && "
	      "mkfifo '%s/pipe'", src, src, src, src);

	fx_capture_open(&said);
	p = hfm_progress_new(HFM_SHOW_PLAIN, said.f, "hfmirror-import");
	TAP_IS_INT(hfm_imp_dir_list(&l, src, p), 0, "list the directory");
	for (i = 0; i < l.n; i++) {
		sorted &= i == 0 || strcmp(l.v[i - 1].rel, l.v[i].rel) < 0;
		links += l.v[i].is_link;
		len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", i ? "\n" : "",
					l.v[i].rel);
		TAP_OK(l.v[i].abs[0] == '/' && strstr(l.v[i].abs, l.v[i].rel), "%s: absolute path",
		       l.v[i].rel);
	}
	fx_sh_text(list, sizeof(list), "cd '%s' && find . -type f ! -path './.git/*' | "
		   "sed 's|^\\./||' | LC_ALL=C sort", exp);
	TAP_IS_STR(names, list, "every file, and nothing else");
	TAP_OK(sorted, "sorted by path");
	TAP_IS_INT(links, 1, "the symlink is marked as one");
	t = fx_capture_new(&said);
	path = hfm_asprintf("skipping %s/loop: a symlink loop", src);
	TAP_OK(strstr(t, path) != NULL, "a directory loop is cut and said");
	free(path);
	path = hfm_asprintf("skipping %s/bad\\name.txt: not a valid repo path", src);
	TAP_OK(strstr(t, path) != NULL, "an invalid repo path is skipped and said");
	free(path);
	path = hfm_asprintf("skipping %s/dangling: ", src);
	TAP_OK(strstr(t, path) != NULL, "a dangling symlink is skipped and said");
	free(path);

	path = fx_path("t.git");
	TAP_OK(git_repository_init(&repo, path, 1) == 0, "a bare repo for the objects");
	free(path);
	TAP_IS_INT(write_blobs(repo, &l), 0, "blobs written");
	for (i = 0; i < l.n; i++)
		if (!strcmp(l.v[i].rel, "link.txt"))
			TAP_IS_STR(hex_of(&l.v[i].blob),
				   fx_sh_line(readme, sizeof(readme), "git hash-object '%s/README.md'",
					      src), "a symlink's blob is its target's content");
	TAP_IS_INT(hfm_imp_dir_tree(&tree, repo, &l), 0, "write the trees");
	git_tree_of(want, "exp");
	TAP_IS_STR(hex_of(&tree), want, "the tree id is git's");

	TAP_IS_INT(hfm_imp_dir_commit(&commit, repo, &tree, NULL, WHEN, "Import\n"), 0, "commit");
	git_commit_of(want, "exp", hex_of(&tree), NULL, WHEN, "Import\\n");
	TAP_IS_STR(hex_of(&commit), want, "the commit id is git commit-tree's");
	TAP_IS_INT(hfm_imp_dir_commit(&commit2, repo, &tree, NULL, WHEN, "Import\n"), 0, "again");
	TAP_OK(git_oid_equal(&commit, &commit2), "the same inputs give the same commit");

	/* a file left out leaves its directory empty: no tree for it */
	for (i = 0; i < l.n; i++)
		if (!strcmp(l.v[i].rel, "a/y/z.txt")) {
			l.v[i].keep = 0;
			z++;
		}
	TAP_IS_INT(z, 1, "a/y/z.txt listed");
	TAP_IS_INT(hfm_imp_dir_tree(&tree, repo, &l), 0, "write the trees without it");
	fx_sh("cd '%s' && git rm -q --cached a/y/z.txt", exp);
	fx_sh_line(want, sizeof(want), "cd '%s' && git write-tree", exp);
	TAP_IS_STR(hex_of(&tree), want, "files not kept are left out, and so are emptied dirs");
	TAP_IS_INT(hfm_imp_dir_commit(&commit2, repo, &tree, &commit, WHEN + 60, "Next\n"), 0,
		   "a commit with a parent");
	{
		char parent[GIT_OID_HEXSZ + 1];

		snprintf(parent, sizeof(parent), "%s", hex_of(&commit));
		git_commit_of(want, "exp", hex_of(&tree), parent, WHEN + 60, "Next\\n");
	}
	TAP_IS_STR(hex_of(&commit2), want, "is git commit-tree -p's");

	git_repository_free(repo);
	hfm_imp_filelist_dispose(&l);
	TAP_OK(l.n == 0 && l.v == NULL, "the list is disposed");
	hfm_progress_free(p);
	fx_capture_close(&said);
	free(src);
	free(exp);
}

/* Put the LFS pointer of `content` at fx_dir/exp/rel; its sha256 into oid. */
static void pointer_in(const char *exp, const char *rel, const char *content, size_t len,
		       char oid[HFM_SHA256_HEX + 1])
{
	struct hfm_buf ptr = HFM_BUF_INIT(1024);
	char *path = hfm_asprintf("%s/%s", exp, rel);

	hfm_sha256_hex(oid, content, len);
	hfm_lfs_pointer(&ptr, oid, len);
	fx_write(path, ptr.ptr, ptr.len);
	hfm_buf_dispose(&ptr);
	free(path);
}

struct run_result {
	int rc;
	char main[GIT_OID_HEXSZ + 1];
	size_t refs_new, refs_moved, linked, copied, present, lfs;
	int hashed;          /* a hashing phase ran */
};

static void run_plain(struct run_result *r, const char *src, struct hfm_hashindex *hashes)
{
	struct fx_job x;
	git_oid id;

	memset(r, 0, sizeof(*r));
	fx_job_start(&x, src, "acme/plain", HFM_IMP_SRC_PLAIN, 0);
	x.job.hashes = hashes;
	r->rc = hfm_imp_run(&x.job);
	if (r->rc)
		printf("# %s\n", hfm_error_last());
	if (x.job.nrefs == 1 && !strcmp(x.job.refs[0].name, "refs/heads/main")) {
		id = x.job.refs[0].target;
		snprintf(r->main, sizeof(r->main), "%s", hex_of(&id));
	}
	r->refs_new = x.job.refs_new;
	r->refs_moved = x.job.refs_moved;
	r->linked = x.job.linked;
	r->copied = x.job.copied;
	r->present = x.job.present;
	r->lfs = x.job.lfs.n;
	r->hashed = strstr(fx_capture_new(&x.said), "hfmirror-import: hashing: ") != NULL;
	fx_job_end(&x);
}

static void test_plaindir(void)
{
	static const char blob[] = "\x7f" "ELF\0\0\0binary";
	struct hfm_hashindex *hashes = NULL;
	struct run_result r;
	const char *S = "plain", *E = "plainexp";
	char *src = fx_path(S), *index = fx_path("hashindex");
	char *mirror = fx_path("store/mirrors/models/acme/plain.git");
	char want[GIT_OID_HEXSZ + 1], tree[GIT_OID_HEXSZ + 1], first[GIT_OID_HEXSZ + 1];
	char oid_w[HFM_SHA256_HEX + 1], oid_b[HFM_SHA256_HEX + 1], got[256], *obj, *file;
	const char *warning = NULL;
	struct stat a, b;

	both(S, E, ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n");
	both(S, E, "config.json", "{\"model_type\": \"plain\"}\n");
	both(S, E, "notes/readme.txt", "text\n");
	fx_write_str("plain/weights.bin", "text, but *.bin is LFS here\n");
	pointer_in(E, "weights.bin", "text, but *.bin is LFS here\n", 28, oid_w);
	fx_write("plain/data/blob.dat", blob, sizeof(blob) - 1);
	pointer_in(E, "data/blob.dat", blob, sizeof(blob) - 1, oid_b);
	fx_sh("find '%s' -type f -exec touch -d @%d {} + && touch -d @%d '%s/config.json'", src,
	      WHEN, WHEN + 500, src);
	TAP_IS_INT(hfm_hashindex_open(&hashes, index, &warning), 0, "a hash index");

	run_plain(&r, src, hashes);
	TAP_IS_INT(r.rc, 0, "import a plain directory");
	git_tree_of(tree, "plainexp");
	fx_sh_line(got, sizeof(got), "git --git-dir='%s' rev-parse 'main^{tree}'", mirror);
	TAP_IS_STR(got, tree, "main's tree is git's tree of the files, LFS ones as pointers");
	git_commit_of(want, "plainexp", tree, NULL, WHEN + 500, "Import the files of acme/plain\\n");
	TAP_IS_STR(r.main, want, "the commit is git's, dated by the newest file");
	fx_sh_line(got, sizeof(got), "git --git-dir='%s' rev-parse main", mirror);
	TAP_IS_STR(got, r.main, "the mirror's main names it");
	fx_sh_line(got, sizeof(got), "git --git-dir='%s' symbolic-ref HEAD", mirror);
	TAP_IS_STR(got, "refs/heads/main", "HEAD is main");
	TAP_IS_INT(r.refs_new, 1, "one new ref");
	TAP_IS_INT(r.lfs, 2, "two LFS objects: by .gitattributes and by content");
	TAP_IS_INT(r.linked, 2, "both linked");
	TAP_OK(r.hashed, "the files were hashed");
	obj = hfm_asprintf("%s/store/objects/%.2s/%s", fx_dir, oid_b, oid_b);
	file = hfm_asprintf("%s/data/blob.dat", src);
	TAP_OK(stat(obj, &a) == 0 && stat(file, &b) == 0 && a.st_ino == b.st_ino,
	       "an object is a hard link to its file");
	free(obj);
	free(file);
	TAP_IS_INT(fx_sh("git --git-dir='%s' fsck --strict --no-progress 2>/dev/null", mirror), 0,
		   "the mirror passes git fsck");
	snprintf(first, sizeof(first), "%s", r.main);

	run_plain(&r, src, hashes);
	TAP_IS_INT(r.rc, 0, "import it again, unchanged");
	TAP_IS_STR(r.main, first, "same commit: nothing new");
	TAP_OK(r.refs_new == 0 && r.refs_moved == 0, "no ref moved");
	TAP_OK(r.present == 2 && r.linked == 0 && r.copied == 0, "the objects are present");
	TAP_OK(!r.hashed, "the hash index spared reading the files again");

	both(S, E, "notes/readme.txt", "more text\n");
	fx_sh("touch -d @%d '%s/notes/readme.txt'", WHEN + 900, src);
	run_plain(&r, src, hashes);
	TAP_IS_INT(r.rc, 0, "import it after a change");
	TAP_IS_INT(r.refs_moved, 1, "main moved");
	git_tree_of(tree, "plainexp");
	git_commit_of(want, "plainexp", tree, first, WHEN + 900,
		      "Import the files of acme/plain\\n");
	TAP_IS_STR(r.main, want, "a new commit whose parent is the previous one");
	TAP_IS_INT(r.present, 2, "the LFS objects were there already");

	hfm_hashindex_free(hashes);
	free(mirror);
	free(index);
	free(src);
}

int main(void)
{
	fx_init("import-dirtree");
	test_dirtree();
	test_plaindir();
	return fx_done();
}
