/*
 * The git-mirror source against fixture repos made here with git and git-lfs:
 * a non-bare repo with LFS objects, a bare mirror clone, a non-bare clone
 * without LFS objects (served from the store), a mirror inside the store and
 * a canonical (org-less) repo.  Every op, the error codes, and a few threads
 * hammering list/open across more commits than the snapshot cache holds.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/src_git.h"
#include "hfm/store.h"
#include "fx_sh.h"
#include "tap.h"

static char T[256];
static char c1[41], c2[41], c3[41], d1[41], d2[41];

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* The bytes of a body, whatever its kind (malloc'd). */
static char *body_bytes(const struct hfm_body *b)
{
	char *buf = malloc(b->size + 1);

	buf[b->size] = '\0';
	if (b->kind == HFM_BODY_MEM) {
		memcpy(buf, b->mem, b->size);
	} else if (b->kind == HFM_BODY_FD) {
		if (pread(b->fd, buf, b->size, (off_t)b->offset) != (ssize_t)b->size) {
			free(buf);
			return NULL;
		}
	}
	return buf;
}

static int make_fixtures(void)
{
	char script[512];
	FILE *f;

	snprintf(script, sizeof(script), "%s/fixture.sh", T);
	f = fopen(script, "w");
	if (!f)
		return -1;
	fprintf(f,
		"set -e\n"
		"T=%s\n"
		"d() { export GIT_AUTHOR_DATE=\"$1\" GIT_COMMITTER_DATE=\"$1\"; }\n"
		"W=$T/m1/models/acme/tiny\n"
		"mkdir -p $W && cd $W && git init -q -b main .\n"
		"git lfs install --local >/dev/null\n"
		"git lfs track '*.bin' >/dev/null\n"
		"printf 'hello\\n' > README.md\n"
		"printf '{\"a\":1}\\n' > config.json\n"
		"mkdir -p sub/dir a && printf 'nested\\n' > 'sub/dir/nested file.txt'\n"
		"printf 'x\\n' > a-b.txt && printf 'ax\\n' > a/x.txt\n"
		"git add -A\n"
		"git update-index --add --cacheinfo 160000,1111111111111111111111111111111111111111,subm\n"
		"d '2024-01-01T00:00:00Z'; git commit -q -m 'first commit'\n"
		"printf '{\"a\":2}\\n' > config.json\n"
		"head -c 102400 /dev/urandom > model.bin\n"
		"head -c 50000 /dev/urandom > gone.bin\n"
		"git add -A\n"
		"d '2024-02-01T00:00:00Z'; git commit -q -m 'update config' -m 'Second commit body.'\n"
		"printf 'hello world\\n' > README.md && git add -A\n"
		"d '2024-03-01T00:00:00Z'; git commit -q -m 'third: readme'\n"
		"git tag -a v1.0 -m release HEAD~1 && git tag light HEAD~2\n"
		"git checkout -q -b dev\n"
		"printf 'dev\\n' > dev.txt && git add -A\n"
		"d '2024-04-01T00:00:00Z'; git commit -q -m 'dev work'\n"
		"printf 'dev2\\n' > dev.txt && git add -A\n"
		"d '2024-04-02T00:00:00Z'; git commit -q -m 'dev more'\n"
		"git checkout -q main\n"
		"git update-ref refs/pr/1 dev\n"
		"git update-ref refs/convert/parquet main~2\n"
		"mkdir -p $T/m2/models/acme $T/m2/datasets/acme $T/store/mirrors/spaces/acme\n"
		"git clone -q --mirror $W $T/m2/models/acme/bare.git\n"
		"cp -r .git/lfs $T/m2/models/acme/bare.git/lfs\n"
		"git clone -q --mirror $W $T/m2/models/canon.git\n"
		"git clone -q --bare --depth 1 file://$W $T/m2/models/acme/shallow.git\n"
		"GIT_LFS_SKIP_SMUDGE=1 git clone -q $W $T/m2/datasets/acme/ds\n"
		"git clone -q --mirror $W $T/store/mirrors/spaces/acme/sp.git\n"
		"o=$(sha256sum gone.bin | cut -c1-64)\n"
		"rm -f .git/lfs/objects/$(echo $o | cut -c1-2)/$(echo $o | cut -c3-4)/$o\n",
		T);
	fclose(f);
	return fx_sh("bash %s", script);
}

static void rev(char *out, const char *what)
{
	fx_sh_line(out, 41, "git -C %s/m1/models/acme/tiny rev-parse %s", T, what);
}

static struct hfm_source *src;
static struct hfm_store *store;

static struct hfm_repo *open_repo(enum hfm_repo_type t, const char *name, int *rc)
{
	struct hfm_repo_id id;
	struct hfm_repo *r = NULL;

	id.type = t;
	snprintf(id.name, sizeof(id.name), "%s", name);
	*rc = src->ops->repo_open(&r, src, &id, NULL);
	return r;
}

static void check_resolve(struct hfm_repo *r, const char *revision, const char *want)
{
	struct hfm_resolved res;
	int rc = src->ops->resolve(&res, r, revision, NULL);

	if (want) {
		TAP_IS_INT(rc, 0, "resolve %s", revision);
		TAP_IS_STR(rc ? "" : res.commit, want, "resolve %s -> commit", revision);
	} else {
		TAP_IS_INT(rc, HFM_ENOREV, "resolve %s is ENOREV", revision);
	}
}

static const struct hfm_entry *find(const struct hfm_list *l, const char *path)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->items[i]->path, path))
			return l->items[i];
	return NULL;
}

static void test_resolve(struct hfm_repo *r)
{
	struct hfm_resolved res;
	char shortsha[8];

	check_resolve(r, "main", c3);
	check_resolve(r, "HEAD", c3);
	check_resolve(r, "refs/heads/main", c3);
	check_resolve(r, "dev", d2);
	check_resolve(r, "v1.0", c2);
	check_resolve(r, "light", c1);
	check_resolve(r, c1, c1);
	check_resolve(r, "refs/pr/1", d2);
	check_resolve(r, "refs/convert/parquet", c1);
	check_resolve(r, "refs/tags/v1.0", c2);
	memcpy(shortsha, c1, 7);
	shortsha[7] = '\0';
	check_resolve(r, shortsha, NULL);
	check_resolve(r, "nope", NULL);
	check_resolve(r, "0000000000000000000000000000000000000000", NULL);
	check_resolve(r, "refs/heads/nope", NULL);
	check_resolve(r, "refs/pr/2", NULL);
	check_resolve(r, "refs/x..y", NULL);
	TAP_IS_INT(src->ops->resolve(&res, r, "main", NULL), 0, "resolve main again");
	TAP_IS_INT(res.date_ms, 1709251200000LL, "date_ms is the committer date");
	TAP_IS_INT(res.created_ms, 1704067200000LL, "created_ms is the root commit's date");
}

static void test_list(struct hfm_repo *r)
{
	static const char *root[] = { ".gitattributes", "README.md", "a", "a-b.txt",
				      "config.json", "gone.bin", "model.bin", "sub" };
	struct hfm_list *l = NULL;
	char want[128];
	size_t i;
	int rc, sorted = 1;

	rc = src->ops->list(&l, r, c3, "", 0, NULL);
	TAP_IS_INT(rc, 0, "list root");
	TAP_IS_INT(l ? l->n : 0, HFM_ARRAY_SIZE(root), "root entries (submodule skipped)");
	for (i = 0; l && i < l->n && i < HFM_ARRAY_SIZE(root); i++)
		TAP_IS_STR(l->items[i]->path, root[i], "root entry %zu in byte order", i);
	if (l) {
		const struct hfm_entry *e = find(l, "README.md");

		rev(want, "main:README.md");
		TAP_IS_STR(e ? e->oid : "", want, "file oid is the git blob id");
		TAP_IS_INT(e ? e->size : 0, 12, "file size");
		TAP_OK(e && atomic_load(&e->has_ids) && !e->is_lfs, "ids final, not LFS");
		TAP_OK(e && e->last_commit == NULL, "no lastCommit without EXPAND");
		e = find(l, "sub");
		rev(want, "main:sub");
		TAP_OK(e && e->is_dir && e->size == 0, "sub is a directory");
		TAP_IS_STR(e ? e->oid : "", want, "directory oid is the tree id");
	}
	hfm_list_free(l);

	rc = src->ops->list(&l, r, c3, "", HFM_LIST_RECURSIVE, NULL);
	TAP_IS_INT(rc, 0, "list recursive");
	TAP_IS_INT(l ? l->n : 0, 11, "recursive entries");
	for (i = 1; l && i < l->n; i++)
		if (strcmp(l->items[i - 1]->path, l->items[i]->path) >= 0)
			sorted = 0;
	TAP_OK(sorted, "recursive listing in strict byte order");
	TAP_OK(l && find(l, "sub/dir/nested file.txt") && find(l, "a/x.txt"), "nested files listed");
	hfm_list_free(l);

	rc = src->ops->list(&l, r, c3, "sub", 0, NULL);
	TAP_IS_INT(rc, 0, "list sub");
	TAP_OK(l && l->n == 1 && !strcmp(l->items[0]->path, "sub/dir"), "sub holds sub/dir only");
	hfm_list_free(l);
	rc = src->ops->list(&l, r, c3, "sub/dir", 0, NULL);
	TAP_OK(rc == 0 && l->n == 1 && !strcmp(l->items[0]->path, "sub/dir/nested file.txt"),
	       "list sub/dir");
	hfm_list_free(l);
	l = NULL;
	TAP_IS_INT(src->ops->list(&l, r, c3, "nope", 0, NULL), HFM_ENOENT, "missing dir ENOENT");
	TAP_IS_INT(src->ops->list(&l, r, c3, "README.md", 0, NULL), HFM_ENOENT,
		   "listing a file is ENOENT");
	TAP_IS_INT(src->ops->list(&l, r, "0123456789012345678901234567890123456789", "", 0, NULL),
		   HFM_ENOREV, "unknown commit ENOREV");
	TAP_IS_INT(src->ops->list(&l, r, "main", "", 0, NULL), HFM_ENOREV,
		   "list needs a resolved commit");
	rc = src->ops->list(&l, r, c1, "", 0, NULL);
	TAP_OK(rc == 0 && !find(l, "model.bin") && find(l, "config.json"), "older commit's tree");
	hfm_list_free(l);
}

static void test_stat(struct hfm_repo *r, const char *wdir)
{
	const char *paths[] = { "config.json", "nope", "sub", "model.bin" };
	struct hfm_list *l = NULL;
	char want[128], sha[HFM_SHA256_HEX + 1], *content;
	size_t len = 0;
	int rc;

	rc = src->ops->stat(&l, r, c3, paths, 4, HFM_LIST_IDS, NULL);
	TAP_IS_INT(rc, 0, "stat");
	TAP_IS_INT(l ? l->n : 0, 3, "missing paths are left out");
	if (rc || l->n != 3) {
		hfm_list_free(l);
		return;
	}
	TAP_IS_STR(l->items[0]->path, "config.json", "stat keeps request order (0)");
	TAP_IS_STR(l->items[1]->path, "sub", "stat keeps request order (1)");
	TAP_IS_STR(l->items[2]->path, "model.bin", "stat keeps request order (2)");
	{
		const struct hfm_entry *e = l->items[2];
		char path[512];

		snprintf(path, sizeof(path), "%s/model.bin", wdir);
		content = slurp(path, &len);
		hfm_sha256_hex(sha, content, len);
		free(content);
		TAP_OK(e->is_lfs, "model.bin is LFS");
		TAP_IS_INT(e->size, 102400, "LFS size is the object's");
		TAP_IS_STR(e->lfs_oid, sha, "lfs_oid is the content sha256");
		rev(want, "main:model.bin");
		TAP_IS_STR(e->oid, want, "oid is the pointer's blob id");
		fx_sh_line(want, sizeof(want), "git -C %s cat-file -s main:model.bin", wdir);
		TAP_IS_INT(e->pointer_size, atoi(want), "pointer_size is the blob size");
	}
	hfm_list_free(l);
}

static void check_lc(const struct hfm_list *l, const char *path, const char *commit,
		     const char *title)
{
	const struct hfm_entry *e = find(l, path);

	TAP_OK(e && e->last_commit, "%s has a lastCommit", path);
	if (!e || !e->last_commit)
		return;
	TAP_IS_STR(e->last_commit->id, commit, "lastCommit of %s", path);
	if (title)
		TAP_IS_STR(e->last_commit->title, title, "lastCommit title of %s", path);
}

static void test_expand(struct hfm_repo *r)
{
	const char *paths[] = { "config.json", "README.md", "sub/dir/nested file.txt", "sub",
				"model.bin", "a" };
	struct hfm_list *l = NULL;
	size_t i;
	int rc, all = 1;

	rc = src->ops->stat(&l, r, c3, paths, HFM_ARRAY_SIZE(paths), HFM_LIST_EXPAND, NULL);
	TAP_IS_INT(rc, 0, "stat with EXPAND");
	if (!rc) {
		check_lc(l, "config.json", c2, "update config");
		check_lc(l, "README.md", c3, "third: readme");
		check_lc(l, "sub/dir/nested file.txt", c1, "first commit");
		check_lc(l, "sub", c1, NULL);
		check_lc(l, "model.bin", c2, NULL);
		check_lc(l, "a", c1, NULL);
		{
			const struct hfm_entry *e = find(l, "config.json");
			TAP_IS_INT(e && e->last_commit ? e->last_commit->date_ms : 0,
				   1706745600000LL, "lastCommit date");
		}
	}
	hfm_list_free(l);
	rc = src->ops->list(&l, r, c3, "", HFM_LIST_RECURSIVE | HFM_LIST_EXPAND, NULL);
	for (i = 0; rc == 0 && i < l->n; i++)
		if (!l->items[i]->last_commit)
			all = 0;
	TAP_OK(rc == 0 && all, "every entry of an expanded listing has a lastCommit");
	hfm_list_free(l);
	rc = src->ops->list(&l, r, c2, "", HFM_LIST_EXPAND, NULL);
	TAP_IS_INT(rc, 0, "expand an older commit");
	if (!rc)
		check_lc(l, "README.md", c1, "first commit");
	hfm_list_free(l);
	rc = src->ops->list(&l, r, d2, "", HFM_LIST_EXPAND, NULL);
	if (!rc) {
		check_lc(l, "dev.txt", d2, "dev more");
		check_lc(l, "README.md", c3, NULL);
	}
	hfm_list_free(l);
}

static void test_refs(struct hfm_repo *r, const char *what, int want_pr)
{
	struct hfm_refs *refs = NULL;
	int rc = src->ops->refs(&refs, r, NULL);

	TAP_IS_INT(rc, 0, "%s: refs", what);
	if (rc)
		return;
	TAP_IS_INT(refs->n[HFM_REFS_BRANCH], 2, "%s: two branches", what);
	if (refs->n[HFM_REFS_BRANCH] == 2) {
		TAP_IS_STR(refs->v[HFM_REFS_BRANCH][0].name, "dev", "%s: branch dev", what);
		TAP_IS_STR(refs->v[HFM_REFS_BRANCH][0].ref, "refs/heads/dev", "%s: dev ref", what);
		TAP_IS_STR(refs->v[HFM_REFS_BRANCH][0].target, d2, "%s: dev target", what);
		TAP_IS_STR(refs->v[HFM_REFS_BRANCH][1].name, "main", "%s: branch main", what);
		TAP_IS_STR(refs->v[HFM_REFS_BRANCH][1].target, c3, "%s: main target", what);
	}
	TAP_IS_INT(refs->n[HFM_REFS_TAG], 2, "%s: two tags", what);
	if (refs->n[HFM_REFS_TAG] == 2) {
		TAP_IS_STR(refs->v[HFM_REFS_TAG][0].name, "light", "%s: tag light", what);
		TAP_IS_STR(refs->v[HFM_REFS_TAG][1].name, "v1.0", "%s: tag v1.0", what);
		TAP_IS_STR(refs->v[HFM_REFS_TAG][1].target, c2, "%s: annotated tag peeled", what);
	}
	if (want_pr) {
		TAP_IS_INT(refs->n[HFM_REFS_CONVERT], 1, "%s: one convert", what);
		TAP_IS_STR(refs->n[HFM_REFS_CONVERT] ? refs->v[HFM_REFS_CONVERT][0].name : "",
			   "parquet", "%s: convert name", what);
		TAP_IS_INT(refs->n[HFM_REFS_PR], 1, "%s: one PR", what);
		TAP_IS_STR(refs->n[HFM_REFS_PR] ? refs->v[HFM_REFS_PR][0].ref : "", "refs/pr/1",
			   "%s: PR ref", what);
		TAP_IS_STR(refs->n[HFM_REFS_PR] ? refs->v[HFM_REFS_PR][0].target : "", d2,
			   "%s: PR target", what);
	}
	hfm_refs_free(refs);
}

static void test_commits(struct hfm_repo *r)
{
	struct hfm_commits *c = NULL;
	int rc;

	rc = src->ops->commits(&c, r, c3, 0, 2, NULL);
	TAP_IS_INT(rc, 0, "commits page 1");
	TAP_OK(c && c->n == 2 && c->more, "two commits and more");
	if (c && c->n == 2) {
		TAP_IS_STR(c->v[0].id, c3, "newest first");
		TAP_IS_STR(c->v[0].title, "third: readme", "title");
		TAP_IS_STR(c->v[1].id, c2, "then its parent");
		TAP_IS_STR(c->v[1].title, "update config", "title of the 2nd");
		TAP_IS_STR(c->v[1].message, "Second commit body.", "message is the body");
		TAP_IS_STR(c->v[1].author, "Test User", "author name");
		TAP_IS_INT(c->v[1].date_ms, 1706745600000LL, "commit date");
	}
	hfm_commits_free(c);
	rc = src->ops->commits(&c, r, c3, 2, 2, NULL);
	TAP_OK(rc == 0 && c->n == 1 && !c->more && !strcmp(c->v[0].id, c1),
	       "commits page 2: the root, no more");
	hfm_commits_free(c);
	rc = src->ops->commits(&c, r, c3, 5, 2, NULL);
	TAP_OK(rc == 0 && c->n == 0 && !c->more, "past the end: empty");
	hfm_commits_free(c);
	c = NULL;
	TAP_IS_INT(src->ops->commits(&c, r, "0000000000000000000000000000000000000000", 0, 10, NULL),
		   HFM_ENOREV, "commits of an unknown commit");
}

/* History ends where a shallow clone was cut: no errors, the cut is the root. */
static void test_shallow(struct hfm_repo *r)
{
	const char *p = "config.json";
	struct hfm_resolved res;
	struct hfm_commits *c = NULL;
	struct hfm_list *l = NULL;
	int rc;

	rc = src->ops->resolve(&res, r, "main", NULL);
	TAP_OK(rc == 0 && !strcmp(res.commit, c3), "shallow: resolve main");
	TAP_IS_INT(rc ? 0 : res.created_ms, 1709251200000LL, "shallow: created at the cut");
	rc = src->ops->commits(&c, r, c3, 0, 10, NULL);
	TAP_OK(rc == 0 && c->n == 1 && !c->more, "shallow: one commit, no more");
	hfm_commits_free(c);
	rc = src->ops->stat(&l, r, c3, &p, 1, HFM_LIST_EXPAND, NULL);
	TAP_OK(rc == 0 && l->n == 1 && l->items[0]->last_commit &&
	       !strcmp(l->items[0]->last_commit->id, c3), "shallow: lastCommit at the cut");
	hfm_list_free(l);
}

static int open_path(struct hfm_body *b, struct hfm_repo *r, const char *commit,
		     const char *path, unsigned flags)
{
	struct hfm_list *l = NULL;
	int rc = src->ops->stat(&l, r, commit, &path, 1, 0, NULL);

	if (rc == 0 && l->n != 1)
		rc = HFM_ENOENT;
	if (rc == 0)
		rc = src->ops->open(b, r, commit, l->items[0], flags, NULL);
	hfm_list_free(l);
	return rc;
}

static void test_open(struct hfm_repo *r, const char *wdir, const char *what, int have_gone)
{
	struct hfm_body b;
	char path[512], want[256], *got, *content;
	size_t len = 0;
	int rc;

	rc = open_path(&b, r, c3, "README.md", 0);
	TAP_IS_INT(rc, 0, "%s: open README.md", what);
	if (!rc) {
		TAP_OK(b.kind == HFM_BODY_MEM && b.size == 12, "%s: small file is a memory body", what);
		got = body_bytes(&b);
		TAP_IS_STR(got, "hello world\n", "%s: README bytes", what);
		free(got);
		hfm_body_dispose(&b);
	}
	rc = open_path(&b, r, c3, "sub/dir/nested file.txt", 0);
	TAP_OK(rc == 0 && b.size == 7 && !memcmp(b.mem, "nested\n", 7), "%s: file with a space",
	       what);
	if (!rc)
		hfm_body_dispose(&b);

	rc = open_path(&b, r, c3, "model.bin", 0);
	TAP_IS_INT(rc, 0, "%s: open LFS file", what);
	if (!rc) {
		TAP_OK(b.kind == HFM_BODY_FD && b.fd >= 0 && b.size == 102400,
		       "%s: LFS content is an fd body of the object's size", what);
		snprintf(path, sizeof(path), "%s/model.bin", wdir);
		content = slurp(path, &len);
		got = body_bytes(&b);
		TAP_OK(got && content && len == b.size && !memcmp(got, content, len),
		       "%s: LFS bytes equal", what);
		free(got);
		free(content);
		hfm_body_dispose(&b);
	}
	rc = open_path(&b, r, c3, "model.bin", HFM_OPEN_RAW);
	TAP_IS_INT(rc, 0, "%s: open LFS pointer raw", what);
	if (!rc) {
		FILE *p;
		size_t n;

		snprintf(path, sizeof(path), "git -C %s/m1/models/acme/tiny cat-file -p main:model.bin",
			 T);
		p = popen(path, "r");
		n = p ? fread(want, 1, sizeof(want) - 1, p) : 0;
		want[n] = '\0';
		if (p)
			pclose(p);
		got = body_bytes(&b);
		TAP_OK(b.kind == HFM_BODY_MEM && got && n == b.size && !memcmp(got, want, n),
		       "%s: raw answers the pointer blob", what);
		free(got);
		hfm_body_dispose(&b);
	}
	if (!have_gone)
		return;
	hfm_error_clear();
	rc = open_path(&b, r, c3, "gone.bin", 0);
	TAP_IS_INT(rc, HFM_EUNAVAIL, "%s: missing LFS object is EUNAVAIL", what);
	TAP_OK(strstr(hfm_error_last(), "is missing from this mirror") != NULL,
	       "%s: message says the object is missing (%s)", what, hfm_error_last());
}

static void test_big_blob(void)
{
	const char *dirs[1];
	char d[300], *got;
	struct hfm_source *s2;
	struct hfm_repo_id id = { HFM_MODEL, "acme/tiny" };
	struct hfm_repo *r;
	struct hfm_list *l = NULL;
	struct hfm_body b;
	const char *p = "config.json";
	int rc, i;

	snprintf(d, sizeof(d), "%s/m1", T);
	dirs[0] = d;
	TAP_IS_INT(hfm_gitsrc_new(&s2, dirs, 1, NULL), 0, "second source");
	hfm_gitsrc_tune(s2, 4, 1);
	rc = s2->ops->repo_open(&r, s2, &id, NULL);
	if (rc == 0)
		rc = s2->ops->stat(&l, r, c3, &p, 1, HFM_LIST_EXPAND, NULL);
	TAP_IS_INT(rc, 0, "stat with a lastCommit bound of one commit");
	if (rc == 0 && l->n == 1) {
		TAP_IS_STR(l->items[0]->last_commit ? l->items[0]->last_commit->id : "", c3,
			   "past the bound: the oldest commit examined");
		for (i = 0; i < 3; i++) {
			rc = s2->ops->open(&b, r, c3, l->items[0], 0, NULL);
			got = rc ? NULL : body_bytes(&b);
			TAP_OK(rc == 0 && b.kind == HFM_BODY_FD && got &&
			       !strcmp(got, "{\"a\":2}\n"),
			       "blob above mem_max served from a temp file (%d)", i);
			free(got);
			if (!rc)
				hfm_body_dispose(&b);
		}
	}
	hfm_list_free(l);
	s2->ops->free(s2);
}

static atomic_int hammer_fail;

static void *hammer(void *arg)
{
	const char *commits[] = { c1, c2, c3, d1, d2 };
	long seed = (long)(intptr_t)arg;
	struct hfm_repo_id id = { HFM_MODEL, "acme/tiny" };
	int i;

	for (i = 0; i < 60; i++) {
		const char *c = commits[(i + seed) % 5];
		const char *readme = (c == c1 || c == c2) ? "hello\n" : "hello world\n";
		struct hfm_repo *r;
		struct hfm_list *l = NULL;
		struct hfm_body b;
		char *got;
		unsigned flags = HFM_LIST_RECURSIVE | ((i % 3 == 0) ? HFM_LIST_EXPAND : 0);

		if (src->ops->repo_open(&r, src, &id, NULL) ||
		    src->ops->list(&l, r, c, "", flags, NULL) || l->n < 8) {
			atomic_fetch_add(&hammer_fail, 1);
			hfm_list_free(l);
			continue;
		}
		hfm_list_free(l);
		if (open_path(&b, r, c, "README.md", 0)) {
			atomic_fetch_add(&hammer_fail, 1);
			continue;
		}
		got = body_bytes(&b);
		if (!got || strcmp(got, readme))
			atomic_fetch_add(&hammer_fail, 1);
		free(got);
		hfm_body_dispose(&b);
		if (c != c1) {
			if (open_path(&b, r, c, "model.bin", 0) || b.size != 102400)
				atomic_fetch_add(&hammer_fail, 1);
			else
				hfm_body_dispose(&b);
		}
		src->ops->repo_close(r);
	}
	return NULL;
}

/* Milliseconds until `done` holds, polling; -1 past `limit_ms`. */
static long wait_until(int (*done)(void *), void *cls, long limit_ms)
{
	uint64_t t0 = hfm_mono_ns();

	for (;;) {
		long ms = (long)((hfm_mono_ns() - t0) / 1000000);

		if (done(cls))
			return ms;
		if (ms > limit_ms)
			return -1;
		usleep(20 * 1000);
	}
}

static int late_gone(void *cls)
{
	int rc;

	(void)cls;
	open_repo(HFM_MODEL, "acme/late", &rc);
	return rc == HFM_ENOREPO;
}

/* main of acme/late is `cls` (a 40-hex commit). */
static int late_main_is(void *cls)
{
	struct hfm_resolved res;
	struct hfm_repo *r;
	int rc;

	r = open_repo(HFM_MODEL, "acme/late", &rc);
	return rc == 0 && src->ops->resolve(&res, r, "main", NULL) == 0 &&
	       !strcmp(res.commit, cls);
}

/*
 * The documented delay (docs/git-mirrors.md): what the source caches about
 * a repo on disk is re-checked within 1 s.  The bound allows for a busy
 * machine on top of that.
 */
#define VISIBLE_MS 1000
#define SLACK_MS 400

static void test_repo_gone(void)
{
	long ms;
	int rc;

	/* replaced in place by another history while it is served */
	fx_sh("rm -rf %s/m1/models/acme/late.git && "
	   "git clone -q --bare %s/m1/models/acme/tiny %s/m1/models/acme/late.git && "
	   "git -C %s/m1/models/acme/late.git update-ref refs/heads/main %s", T, T, T, T, c1);
	ms = wait_until(late_main_is, c1, VISIBLE_MS + SLACK_MS);
	TAP_OK(ms >= 0, "a repo made again at the same path is read anew within %d ms (%ld ms)",
	       VISIBLE_MS, ms);

	fx_sh("rm -rf %s/m1/models/acme/late.git", T);
	ms = wait_until(late_gone, NULL, VISIBLE_MS + SLACK_MS);
	TAP_OK(ms >= 0, "a removed repo is gone within %d ms (%ld ms)", VISIBLE_MS, ms);
	open_repo(HFM_MODEL, "acme/late", &rc);
	TAP_IS_INT(rc, HFM_ENOREPO, "and stays gone");

	/* an unknown repo is looked for on every request: it appears at once */
	fx_sh("git clone -q --bare %s/m1/models/acme/tiny %s/m1/models/acme/late.git", T, T);
	open_repo(HFM_MODEL, "acme/late", &rc);
	TAP_IS_INT(rc, 0, "a repo added again is found at once");
}

/*
 * A push into a served bare repo: the new commit is served by id at once,
 * and by branch name within the documented delay; its new file is there.
 */
static void test_push_visible(void)
{
	char work[400], pushed[41];
	struct hfm_repo *r;
	struct hfm_body b;
	char *got;
	long ms;
	int rc;

	snprintf(work, sizeof(work), "%s/pushwork", T);
	ms = wait_until(late_main_is, c3, 0);
	TAP_OK(ms >= 0, "main resolves before the push (and is cached)");
	fx_sh("git clone -q %s/m1/models/acme/late.git %s && cd %s && "
	   "printf 'pushed\\n' > pushed.txt && git add pushed.txt && "
	   "git commit -q -m 'pushed' && git push -q origin main", T, work, work);
	fx_sh_line(pushed, sizeof(pushed), "git -C %s rev-parse HEAD", work);
	r = open_repo(HFM_MODEL, "acme/late", &rc);
	TAP_IS_INT(rc, 0, "pushed-to repo opens");
	if (rc)
		return;
	check_resolve(r, pushed, pushed);
	ms = wait_until(late_main_is, pushed, VISIBLE_MS + SLACK_MS);
	TAP_OK(ms >= 0, "a pushed commit is main within %d ms (%ld ms)", VISIBLE_MS, ms);
	rc = open_path(&b, r, pushed, "pushed.txt", 0);
	TAP_IS_INT(rc, 0, "the pushed file opens");
	got = rc ? NULL : body_bytes(&b);
	TAP_IS_STR(got ? got : "", "pushed\n", "the pushed file's content");
	free(got);
	if (rc == 0)
		hfm_body_dispose(&b);
}

static void collect(void *cls, const char *name)
{
	struct hfm_buf *b = cls;

	hfm_buf_printf(b, "%s%s", b->len ? "," : "", name);
}

static void test_list_repos(void)
{
	static const char *want[] = { "acme/bare,acme/shallow,acme/tiny,canon", "acme/ds", "acme/sp" };
	int t;

	for (t = 0; t < HFM_REPO_TYPES; t++) {
		struct hfm_buf b = HFM_BUF_INIT(4096);

		src->ops->list_repos(src, (enum hfm_repo_type)t, collect, &b);
		TAP_IS_STR(hfm_buf_cstr(&b), want[t], "list_repos %s", hfm_repo_type_plural(t));
		hfm_buf_dispose(&b);
	}
}

int main(void)
{
	char m1[300], m2[300], sp[400], wdir[300], sha[HFM_SHA256_HEX + 1], *content;
	const char *dirs[2];
	struct hfm_repo *r;
	pthread_t th[4];
	size_t len = 0;
	int rc, linked = 0, i;
	FILE *f;

	if (system("git lfs version >/dev/null 2>&1")) {
		printf("1..0 # SKIP git-lfs is not installed\n");
		return 0;
	}
	snprintf(T, sizeof(T), "%s/hfm-git-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(T))
		return 1;
	/* a private git environment: no user or system config leaks in */
	snprintf(wdir, sizeof(wdir), "%s/home", T);
	mkdir(wdir, 0700);
	setenv("HOME", wdir, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	snprintf(wdir, sizeof(wdir), "%s/home/.gitconfig", T);
	f = fopen(wdir, "w");
	fprintf(f, "[user]\n\tname = Test User\n\temail = test@example.com\n"
		   "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n");
	fclose(f);

	snprintf(sp, sizeof(sp), "%s/store", T);
	TAP_IS_INT(hfm_store_open(&store, sp, 1), 0, "store");
	TAP_IS_INT(make_fixtures(), 0, "fixture repos");
	rev(c1, "main~2");
	rev(c2, "main~1");
	rev(c3, "main");
	rev(d1, "dev~1");
	rev(d2, "dev");
	snprintf(wdir, sizeof(wdir), "%s/m1/models/acme/tiny", T);

	/* the clone without LFS objects gets model.bin from the store */
	snprintf(sp, sizeof(sp), "%s/model.bin", wdir);
	content = slurp(sp, &len);
	hfm_sha256_hex(sha, content, len);
	free(content);
	TAP_IS_INT(hfm_store_add_file(store, sp, sha, &linked), 0, "LFS object into the store");

	snprintf(m1, sizeof(m1), "%s/m1", T);
	snprintf(m2, sizeof(m2), "%s/m2", T);
	dirs[0] = m1;
	dirs[1] = "/nonexistent/hfm";
	TAP_IS_INT(hfm_gitsrc_new(&src, dirs, 2, store), HFM_EIO, "missing mirrors dir refused");
	TAP_IS_INT(hfm_gitsrc_new(&src, NULL, 0, NULL), HFM_EINVAL, "nothing to serve refused");
	dirs[1] = m2;
	TAP_IS_INT(hfm_gitsrc_new(&src, dirs, 2, store), 0, "source");
	TAP_IS_STR(src->ops->kind, "git", "kind");

	r = open_repo(HFM_MODEL, "acme/tiny", &rc);
	TAP_IS_INT(rc, 0, "open non-bare repo");
	if (rc == 0) {
		test_resolve(r);
		test_list(r);
		test_stat(r, wdir);
		test_expand(r);
		test_refs(r, "non-bare", 1);
		test_commits(r);
		test_open(r, wdir, "non-bare", 1);
	}

	r = open_repo(HFM_MODEL, "acme/bare", &rc);
	TAP_IS_INT(rc, 0, "open bare mirror (.git suffix, second dir)");
	if (rc == 0) {
		check_resolve(r, "HEAD", c3);
		check_resolve(r, "refs/pr/1", d2);
		test_refs(r, "bare", 1);
		test_open(r, wdir, "bare", 0);
	}

	r = open_repo(HFM_DATASET, "acme/ds", &rc);
	TAP_IS_INT(rc, 0, "open non-bare clone");
	if (rc == 0) {
		check_resolve(r, "dev", d2);
		check_resolve(r, "refs/heads/dev", d2);
		check_resolve(r, "HEAD", c3);
		test_refs(r, "clone", 0);
		test_open(r, wdir, "clone, LFS from the store", 1);
	}

	r = open_repo(HFM_SPACE, "acme/sp", &rc);
	TAP_IS_INT(rc, 0, "open a mirror in the store");
	if (rc == 0)
		check_resolve(r, "main", c3);
	r = open_repo(HFM_MODEL, "canon", &rc);
	TAP_IS_INT(rc, 0, "open a canonical repo");
	if (rc == 0)
		check_resolve(r, "v1.0", c2);

	r = open_repo(HFM_MODEL, "acme/shallow", &rc);
	TAP_IS_INT(rc, 0, "open a shallow clone");
	if (rc == 0)
		test_shallow(r);

	open_repo(HFM_MODEL, "acme/nope", &rc);
	TAP_IS_INT(rc, HFM_ENOREPO, "unknown repo ENOREPO");
	open_repo(HFM_DATASET, "acme/tiny", &rc);
	TAP_IS_INT(rc, HFM_ENOREPO, "wrong repo type ENOREPO");
	open_repo(HFM_MODEL, "acme", &rc);
	TAP_IS_INT(rc, HFM_ENOREPO, "an org directory is not a repo");

	test_list_repos();

	/* repos come and go without a restart */
	fx_sh("git clone -q --bare %s/m1/models/acme/tiny %s/m1/models/acme/late.git", T, T);
	r = open_repo(HFM_MODEL, "acme/late", &rc);
	TAP_IS_INT(rc, 0, "a repo added later is found");
	if (rc == 0)
		check_resolve(r, "main", c3);
	test_repo_gone();
	test_push_visible();

	test_big_blob();

	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)i);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	TAP_IS_INT(atomic_load(&hammer_fail), 0, "4 threads listing/opening across 5 commits");

	src->ops->free(src);
	hfm_store_free(store);
	fx_sh("rm -rf %s", T);
	return tap_done();
}
