/*
 * The model-bin source: id derivation (commit from the listing, git blob
 * ids, LFS sha256 by the Hub's rule), stability across restarts, change
 * detection, waiting for a hash, and what is never listed.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "hfm/hash.h"
#include "hfm/hasher.h"
#include "hfm/src_modelbin.h"
#include "tap.h"

static char root[64];

static void put_file(const char *rel, const void *data, size_t n)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n)
		abort();
	close(fd);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int woken;

static void on_wake(void *cls)
{
	(void)cls;
	pthread_mutex_lock(&mu);
	woken = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* stat one path with ids, waiting as the HTTP layer would. */
static int stat_wait(struct hfm_list **l, struct hfm_repo *repo, const char *commit,
		     const char *path, int *waited)
{
	for (int tries = 0; tries < 100; tries++) {
		struct hfm_waiter *w = hfm_waiter_new(on_wake, NULL);
		struct hfm_ctx ctx = { .waiter = w };
		woken = 0;
		int rc = repo->src->ops->stat(l, repo, commit, &path, 1, HFM_LIST_IDS, &ctx);
		if (rc == HFM_EAGAIN) {
			(*waited)++;
			pthread_mutex_lock(&mu);
			while (!woken)
				pthread_cond_wait(&cv, &mu);
			pthread_mutex_unlock(&mu);
		}
		hfm_waiter_cancel(w);
		hfm_waiter_unref(w);
		if (rc != HFM_EAGAIN)
			return rc;
	}
	return HFM_EAGAIN;
}

static int open_repo(struct hfm_repo **repo, struct hfm_source *src, enum hfm_repo_type t,
		     const char *name)
{
	struct hfm_repo_id id = { .type = t };
	snprintf(id.name, sizeof(id.name), "%s", name);
	struct hfm_ctx ctx = { 0 };
	return src->ops->repo_open(repo, src, &id, &ctx);
}

static void commit_of(struct hfm_source *src, const char *name, char out[41])
{
	struct hfm_repo *repo;
	struct hfm_resolved rc;
	struct hfm_ctx ctx = { 0 };
	out[0] = '\0';
	if (open_repo(&repo, src, HFM_MODEL, name))
		return;
	if (!src->ops->resolve(&rc, repo, "main", &ctx))
		strcpy(out, rc.commit);
	src->ops->repo_close(repo);
}

static void put_link(const char *target, const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (symlink(target, p))
		abort();
}

struct names {
	char buf[512];
};

static void add_name(void *cls, const char *name)
{
	struct names *n = cls;
	size_t len = strlen(n->buf);

	snprintf(n->buf + len, sizeof(n->buf) - len, "%s%s", len ? " " : "", name);
}

/*
 * One id per folder: a folder of a canonical repo is not a repo, a repo is
 * not reached under another repo's name, and a symlink does not carry one
 * repo's files into another.
 */
static void test_layout(struct hfm_hasher *h)
{
	struct hfm_source *src;
	struct hfm_repo *repo;
	struct hfm_resolved rc;
	struct hfm_list *l;
	struct hfm_ctx ctx = { 0 };
	struct names models = { "" }, datasets = { "" };

	snprintf(root, sizeof(root), "/tmp/hfm-mbl-XXXXXX");
	if (!mkdtemp(root))
		abort();
	put_file("canon/c.txt", "c\n", 2);
	put_file("canon/sub/d.txt", "d\n", 2);
	put_file("org/a/x.txt", "x\n", 2);
	put_file("datasets/cds/f.csv", "f\n", 2);
	put_file("acme/open/x.txt", "x\n", 2);
	put_file("acme/secret/s.txt", "s\n", 2);
	put_file(".store/v/w.txt", "w\n", 2);
	put_file("acme/r.git/x.txt", "x\n", 2);
	put_link("x.txt", "acme/open/in.txt");
	put_link("../secret/s.txt", "acme/open/leak.txt");
	put_link("../secret", "acme/open/leakdir");
	put_link("../canon/c.txt", "org/a/leak.txt");
	put_link("secret", "acme/alias");
	put_link("acme", "other");
	put_link("../.store/v", "acme/ver");
	put_link("../acme", "org/up");
	TAP_IS_INT(hfm_modelbin_new(&src, root, h, 0), 0, "layout: a second tree");

	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "canon"), 0, "a folder that holds files is a repo");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "canon/sub"), HFM_ENOREPO,
		   "... and its folders are not repos");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "org"), HFM_ENOREPO,
		   "a folder of folders is an org, not a repo");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "org/a"), 0, "... whose folders are repos");
	TAP_IS_INT(open_repo(&repo, src, HFM_DATASET, "cds"), 0, "canonical datasets too");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "acme/alias"), HFM_ENOREPO,
		   "a repo folder that is a symlink to another repo is not a repo");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "other/secret"), HFM_ENOREPO,
		   "nor is a repo reached through a symlink to its org");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "org/up"), HFM_ENOREPO,
		   "nor a symlink to an org (it holds repos)");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "acme/r.git"), HFM_ENOREPO,
		   "a name ending in .git is no repo (routes drop the suffix)");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "acme/ver"), 0,
		   "a repo folder that is a symlink to what is no repo is a repo");
	TAP_IS_INT(src->ops->resolve(&rc, repo, "main", &ctx), 0, "... it resolves");
	TAP_IS_INT(src->ops->list(&l, repo, rc.commit, "", HFM_LIST_RECURSIVE, &ctx), 0, "... and lists");
	TAP_OK(l->n == 1 && !strcmp(l->items[0]->path, "w.txt"), "... the target's files");
	hfm_list_free(l);

	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "acme/open"), 0, "acme/open");
	TAP_IS_INT(src->ops->resolve(&rc, repo, "main", &ctx), 0, "... resolves");
	TAP_IS_INT(src->ops->list(&l, repo, rc.commit, "", HFM_LIST_RECURSIVE, &ctx), 0, "... lists");
	TAP_OK(l->n == 2 && !strcmp(l->items[0]->path, "in.txt") && !strcmp(l->items[1]->path, "x.txt"),
	       "symlinks within the repo are listed, those into another repo are not (%zu)", l->n);
	hfm_list_free(l);
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "org/a"), 0, "org/a");
	TAP_IS_INT(src->ops->resolve(&rc, repo, "main", &ctx), 0, "... resolves");
	TAP_IS_INT(src->ops->list(&l, repo, rc.commit, "", HFM_LIST_RECURSIVE, &ctx), 0, "... lists");
	TAP_OK(l->n == 1, "a symlink into a canonical repo is not listed (%zu)", l->n);
	hfm_list_free(l);

	/* a file put into an org makes it a canonical repo: its repos are gone */
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "org/a"), 0, "org/a before");
	put_file("org/notes.txt", "n\n", 2);
	TAP_IS_INT(src->ops->resolve(&rc, repo, "main", &ctx), HFM_ENOREPO,
		   "a file added to the org: org/a is no repo at the next listing");
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "org"), 0, "... org is a canonical repo");
	TAP_IS_INT(src->ops->resolve(&rc, repo, "main", &ctx), 0, "... that resolves");
	TAP_IS_INT(src->ops->list(&l, repo, rc.commit, "", HFM_LIST_RECURSIVE, &ctx), 0, "... lists");
	TAP_OK(l->n == 3 && !strcmp(l->items[0]->path, "a") && !strcmp(l->items[1]->path, "a/x.txt"),
	       "... with org/a's files in its folder a/ (%zu entries)", l->n);
	hfm_list_free(l);
	char p[600];
	snprintf(p, sizeof(p), "%s/org/notes.txt", root);
	unlink(p);

	src->ops->list_repos(src, HFM_MODEL, add_name, &models);
	src->ops->list_repos(src, HFM_DATASET, add_name, &datasets);
	/* readdir order: compare as sets by sorting the words */
	TAP_OK(strstr(models.buf, "canon") && strstr(models.buf, "org/a") &&
	       strstr(models.buf, "acme/open") && strstr(models.buf, "acme/secret") &&
	       strstr(models.buf, "acme/ver") && !strstr(models.buf, "canon/sub") &&
	       !strstr(models.buf, "alias") && !strstr(models.buf, "other") &&
	       !strstr(models.buf, "org/up") && !strstr(models.buf, ".git") &&
	       strlen(models.buf) == strlen("canon org/a acme/open acme/secret acme/ver"),
	       "models listed: exactly the repos (%s)", models.buf);
	TAP_IS_STR(datasets.buf, "cds", "datasets listed: the canonical one");

	src->ops->free(src);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd)) {}
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/hfm-mb-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	char idxpath[128];
	snprintf(idxpath, sizeof(idxpath), "%s.idx", root);

	size_t big_n = 11u << 20;            /* over the 10 MiB LFS threshold */
	char *big = malloc(big_n);
	for (size_t i = 0; i < big_n; i++)
		big[i] = (char)('a' + (i * 7919) % 26);
	put_file("acme/tiny/config.json", "{\"a\": 1}\n", 9);
	put_file("acme/tiny/big.txt", big, big_n);
	put_file("acme/tiny/small.bin", "ab\0cd", 5);                 /* binary: LFS */
	put_file("acme/tiny/weights.pt", "text but tracked\n", 17);   /* by .gitattributes */
	put_file("acme/tiny/.gitattributes", "*.pt filter=lfs diff=lfs merge=lfs -text\n", 41);
	put_file("acme/tiny/sub/dir/a b.txt", "hello\n", 6);
	put_file("acme/tiny/.git/config", "x", 1);
	put_file("acme/tiny/.cache/huggingface/x", "x", 1);
	put_file("datasets/acme/ds/train.csv", "a,b\n", 4);
	put_file("outside.txt", "secret\n", 7);
	char p1[256], p2[256];
	snprintf(p1, sizeof(p1), "%s/acme/tiny/link-out", root);
	if (symlink("/etc/hostname", p1)) {}
	snprintf(p1, sizeof(p1), "%s/acme/tiny/link-in.json", root);
	if (symlink("config.json", p1)) {}
	/* climbs out of the root by "..": root is /tmp/hfm-mb-XXXXXX */
	snprintf(p2, sizeof(p2), "%s-outside.txt", root);
	int ofd = open(p2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	close(ofd);
	char rel[256];
	snprintf(rel, sizeof(rel), "../../../%s-outside.txt", strrchr(root, '/') + 1);
	snprintf(p1, sizeof(p1), "%s/acme/tiny/link-up", root);
	if (symlink(rel, p1)) {}
	snprintf(p1, sizeof(p1), "%s/acme/tiny/link-sibling", root);
	if (symlink("../../outside.txt", p1)) {}

	struct hfm_hashindex *idx;
	hfm_hashindex_open(&idx, idxpath, NULL);
	struct hfm_hasher *h = hfm_hasher_new(idx, 1, 0);
	struct hfm_source *src;
	TAP_IS_INT(hfm_modelbin_new(&src, root, h, 0), 0, "source over a temp tree");

	struct hfm_repo *repo;
	struct hfm_ctx ctx = { 0 };
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "acme/tiny"), 0, "model repo found");
	struct hfm_resolved main_rc, head_rc, sha_rc;
	TAP_IS_INT(src->ops->resolve(&main_rc, repo, "main", &ctx), 0, "main resolves");
	TAP_OK(hfm_is_hex(main_rc.commit, 40), "commit is 40 hex");
	TAP_IS_INT(src->ops->resolve(&head_rc, repo, "HEAD", &ctx), 0, "HEAD resolves");
	TAP_IS_STR(head_rc.commit, main_rc.commit, "HEAD is main");
	TAP_IS_INT(src->ops->resolve(&sha_rc, repo, main_rc.commit, &ctx), 0, "the sha resolves");
	TAP_IS_INT(src->ops->resolve(&sha_rc, repo, "dev", &ctx), HFM_ENOREV, "other branch: ENOREV");
	TAP_IS_INT(src->ops->resolve(&sha_rc, repo, "0123456789012345678901234567890123456789", &ctx),
		   HFM_ENOREV, "unknown sha: ENOREV");

	struct hfm_list *l;
	TAP_IS_INT(src->ops->list(&l, repo, main_rc.commit, "", HFM_LIST_RECURSIVE, &ctx), 0, "list");
	int saw_git = 0, saw_cache = 0, saw_out = 0, saw_up = 0, saw_in = 0, saw_dir = 0, saw_sib = 0;
	for (size_t i = 0; i < l->n; i++) {
		const char *p = l->items[i]->path;
		saw_git |= !strncmp(p, ".git", 4) && strcmp(p, ".gitattributes");
		saw_cache |= !strncmp(p, ".cache", 6);
		saw_out |= !strcmp(p, "link-out");
		saw_up |= !strcmp(p, "link-up");
		saw_in |= !strcmp(p, "link-in.json");
		saw_sib |= !strcmp(p, "link-sibling");
		saw_dir |= !strcmp(p, "sub/dir") && l->items[i]->is_dir;
		if (i)
			TAP_OK(strcmp(l->items[i - 1]->path, p) < 0, "sorted: %s", p);
	}
	TAP_OK(!saw_git, ".git is not listed");
	TAP_OK(!saw_cache, "top-level .cache is not listed");
	TAP_OK(!saw_out, "a symlink out of the root is not listed");
	TAP_OK(!saw_up, "a symlink that climbs out through .. is not listed");
	TAP_OK(saw_in, "a symlink inside the root is listed");
	TAP_OK(!saw_sib, "a symlink out of its repo is not listed, even inside the root");
	TAP_OK(saw_dir, "directories are entries");
	hfm_list_free(l);
	TAP_IS_INT(src->ops->list(&l, repo, main_rc.commit, "nope", 0, &ctx), HFM_ENOENT,
		   "listing a missing dir: ENOENT");

	/* ids, as git and git-lfs would compute them */
	int waited = 0;
	char want[65];
	TAP_IS_INT(stat_wait(&l, repo, main_rc.commit, "config.json", &waited), 0, "stat small");
	hfm_git_blob_id(want, "{\"a\": 1}\n", 9);
	TAP_IS_STR(l->items[0]->oid, want, "small file oid is its git blob id");
	TAP_IS_INT(l->items[0]->is_lfs, 0, "small text file is not LFS");
	hfm_list_free(l);

	waited = 0;
	TAP_IS_INT(stat_wait(&l, repo, main_rc.commit, "big.txt", &waited), 0, "stat big");
	TAP_OK(waited > 0, "an unhashed big file makes the request wait (%d)", waited);
	hfm_sha256_hex(want, big, big_n);
	TAP_IS_INT(l->items[0]->is_lfs, 1, "file over 10 MiB is LFS");
	TAP_IS_STR(l->items[0]->lfs_oid, want, "LFS oid is the content sha256");
	char ptr_id[41];
	hfm_lfs_pointer_id(ptr_id, want, big_n);
	TAP_IS_STR(l->items[0]->oid, ptr_id, "tree oid is the pointer's blob id");
	TAP_IS_INT(l->items[0]->pointer_size, hfm_lfs_pointer_len(big_n), "pointerSize");
	struct hfm_body body;
	TAP_IS_INT(src->ops->open(&body, repo, main_rc.commit, l->items[0], 0, &ctx), 0, "open big");
	TAP_IS_INT(body.kind, HFM_BODY_FD, "big file is an fd body (zero-copy)");
	TAP_IS_INT(body.size, big_n, "body size");
	hfm_body_dispose(&body);
	TAP_IS_INT(src->ops->open(&body, repo, main_rc.commit, l->items[0], HFM_OPEN_RAW, &ctx), 0,
		   "open raw big");
	TAP_IS_INT(body.kind, HFM_BODY_MEM, "raw LFS is the pointer text");
	TAP_OK(body.size == hfm_lfs_pointer_len(big_n) && !memcmp(body.mem, "version https://git-lfs", 23),
	       "pointer body");
	hfm_body_dispose(&body);
	hfm_list_free(l);

	TAP_IS_INT(stat_wait(&l, repo, main_rc.commit, "small.bin", &waited), 0, "stat binary");
	TAP_IS_INT(l->items[0]->is_lfs, 1, "a small binary file is LFS");
	hfm_list_free(l);
	TAP_IS_INT(stat_wait(&l, repo, main_rc.commit, "weights.pt", &waited), 0, "stat tracked");
	TAP_IS_INT(l->items[0]->is_lfs, 1, "a .gitattributes filter=lfs match is LFS");
	hfm_list_free(l);
	TAP_IS_INT(stat_wait(&l, repo, main_rc.commit, "sub/dir/a b.txt", &waited), 0, "stat nested");
	TAP_IS_STR(l->items[0]->oid, "ce013625030ba8dba906f756967f9e9ca394464a", "nested id");
	hfm_list_free(l);
	src->ops->repo_close(repo);

	TAP_IS_INT(open_repo(&repo, src, HFM_DATASET, "acme/ds"), 0, "dataset found");
	src->ops->repo_close(repo);
	TAP_IS_INT(open_repo(&repo, src, HFM_MODEL, "acme/nope"), HFM_ENOREPO, "missing repo");
	TAP_IS_INT(open_repo(&repo, src, HFM_DATASET, "acme/tiny"), HFM_ENOREPO, "model is not a dataset");

	/* restart: same commit, nothing hashed again */
	char c1[41], c2[41], c3[41];
	commit_of(src, "acme/tiny", c1);
	src->ops->free(src);
	hfm_hasher_free(h);
	hfm_hashindex_free(idx);
	hfm_hashindex_open(&idx, idxpath, NULL);
	TAP_OK(hfm_hashindex_count(idx) >= 2, "hashes persisted (%zu)", hfm_hashindex_count(idx));
	h = hfm_hasher_new(idx, 1, 0);
	hfm_modelbin_new(&src, root, h, 0);
	commit_of(src, "acme/tiny", c2);
	TAP_IS_STR(c2, c1, "commit is the same after a restart");
	open_repo(&repo, src, HFM_MODEL, "acme/tiny");
	waited = 0;
	TAP_IS_INT(stat_wait(&l, repo, c2, "big.txt", &waited), 0, "stat big after restart");
	TAP_IS_INT(waited, 0, "the big file is not hashed again after a restart");
	hfm_list_free(l);
	src->ops->repo_close(repo);

	/* a change: new commit; untouched files keep their ids */
	usleep(20000);
	put_file("acme/tiny/config.json", "{\"a\": 2}\n", 9);
	commit_of(src, "acme/tiny", c3);
	TAP_OK(strcmp(c3, c1) != 0 && hfm_is_hex(c3, 40), "a modified file changes the commit");
	open_repo(&repo, src, HFM_MODEL, "acme/tiny");
	TAP_IS_INT(stat_wait(&l, repo, c3, "config.json", &waited), 0, "stat changed");
	hfm_git_blob_id(want, "{\"a\": 2}\n", 9);
	TAP_IS_STR(l->items[0]->oid, want, "changed file is re-hashed");
	hfm_list_free(l);
	TAP_IS_INT(stat_wait(&l, repo, c3, "sub/dir/a b.txt", &waited), 0, "stat untouched");
	TAP_IS_STR(l->items[0]->oid, "ce013625030ba8dba906f756967f9e9ca394464a", "untouched id kept");
	hfm_list_free(l);
	src->ops->repo_close(repo);

	src->ops->free(src);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s-outside.txt", root, idxpath, root);
	if (system(cmd)) {}
	test_layout(h);
	hfm_hasher_free(h);
	hfm_hashindex_free(idx);
	free(big);
	return tap_done();
}
