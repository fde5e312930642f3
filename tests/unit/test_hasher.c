/*
 * test_hasher.c - hashing off the request path: small files inline, large
 * ones queued with the request's waiter, failures remembered, background
 * prefetch promoted when a request starts waiting for it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/hasher.h"
#include "tap.h"
#include "waitfor.h"

#define LARGE (HFM_HASH_INLINE_MAX + 4096)

static char dir[] = "/tmp/hfm-hasher-XXXXXX";
static struct hfm_hashindex *idx;

/* Write n bytes of a pattern (with a NUL in the first KiB when binary). */
static void make_file(char *path, size_t cap, const char *name, size_t n, int binary,
		      unsigned seed)
{
	char *p = malloc(n ? n : 1);
	int fd;

	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (i * 7 + seed) % 26);
	if (binary && n > 10)
		p[10] = '\0';
	snprintf(path, cap, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
	free(p);
}

/* The ids the Hub would give the file's content. */
static void want_ids(const char *path, struct hfm_hash_rec *want)
{
	struct stat st;
	char *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		abort();
	p = malloc((size_t)st.st_size + 1);
	if (read(fd, p, (size_t)st.st_size) != st.st_size)
		abort();
	close(fd);
	memset(want, 0, sizeof(*want));
	hfm_git_blob_id(want->sha1, p, (size_t)st.st_size);
	hfm_sha256_hex(want->sha256, p, (size_t)st.st_size);
	free(p);
}

static int same_ids(const struct hfm_hash_rec *a, const struct hfm_hash_rec *b)
{
	return !strcmp(a->sha1, b->sha1) && !strcmp(a->sha256, b->sha256);
}

static int indexed(const struct stat *st, struct hfm_hash_rec *out)
{
	struct hfm_hash_key k;

	hfm_hash_key_from_stat(&k, st);
	return hfm_hashindex_get(idx, &k, out) == 0;
}

static void test_inline(struct hfm_hasher *h)
{
	char path[256];
	struct hfm_hash_rec got, want, in;
	struct waitfor t;
	struct stat st;

	waitfor_init(&t);
	make_file(path, sizeof(path), "small.txt", 5000, 0, 1);
	stat(path, &st);
	want_ids(path, &want);
	TAP_IS_INT(hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL), 0,
		   "small file: hashed inline, no waiting");
	TAP_OK(same_ids(&got, &want) && got.binary == 0, "small file: its git and LFS ids, text");
	TAP_OK(indexed(&st, &in) && same_ids(&in, &want), "small file: remembered in the index");

	make_file(path, sizeof(path), "small.bin", 5000, 1, 2);
	stat(path, &st);
	TAP_OK(hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL) == 0 && got.binary == 1,
	       "a NUL early on: binary");

	/* a file that changed since the caller's stat is not hashed under the old key */
	make_file(path, sizeof(path), "moving.txt", 100, 0, 3);
	stat(path, &st);
	make_file(path, sizeof(path), "moving.txt", 200, 0, 3);
	TAP_IS_INT(hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL), HFM_EIO,
		   "changed since stat: HFM_EIO");
	TAP_OK(!indexed(&st, &in), "changed since stat: nothing indexed under the old key");
	unlink(path);
	TAP_IS_INT(hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL), HFM_EIO,
		   "gone: HFM_EIO");
	waitfor_dispose(&t);
}

static void test_queued(struct hfm_hasher *h)
{
	char path[256], p2[256], p3[256];
	struct hfm_hash_rec got, want;
	struct waitfor t;
	struct stat st, st2, st3;
	uint64_t budget;
	int rc;

	waitfor_init(&t);
	make_file(path, sizeof(path), "large.bin", LARGE, 0, 4);
	stat(path, &st);
	want_ids(path, &want);
	rc = hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL);
	TAP_IS_INT(rc, HFM_EAGAIN, "large file: queued, the request waits");
	TAP_OK(waitfor_woken(&t), "large file: woken when hashed");
	rc = hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL);
	TAP_OK(rc == 0 && same_ids(&got, &want), "large file: the re-run finds its ids");

	/* a caller that cannot wait hashes on its own thread */
	make_file(p2, sizeof(p2), "large2.bin", LARGE, 0, 5);
	stat(p2, &st2);
	want_ids(p2, &want);
	TAP_OK(hfm_hasher_get(h, p2, &st2, &got, NULL, NULL) == 0 && same_ids(&got, &want),
	       "no waiter: hashed at once");

	/* the inline budget: small files are queued once a request has spent it */
	make_file(p2, sizeof(p2), "b1.txt", 3000, 0, 6);
	make_file(p3, sizeof(p3), "b2.txt", 3000, 0, 7);
	stat(p2, &st2);
	stat(p3, &st3);
	budget = 4000;
	TAP_IS_INT(hfm_hasher_get(h, p2, &st2, &got, waitfor_arm(&t), &budget), 0,
		   "budget: the first small file inline");
	TAP_IS_INT(budget, 1000, "budget: spent by its size");
	rc = hfm_hasher_get(h, p3, &st3, &got, waitfor_arm(&t), &budget);
	TAP_IS_INT(rc, HFM_EAGAIN, "budget: the next one is queued");
	TAP_OK(waitfor_woken(&t), "budget: ... and hashed by a worker");
	want_ids(p3, &want);
	TAP_OK(hfm_hasher_get(h, p3, &st3, &got, waitfor_arm(&t), &budget) == 0 &&
	       same_ids(&got, &want), "budget: known now, whatever the budget");

	/* a queued file that fails: the failure is the answer for a while */
	make_file(p2, sizeof(p2), "vanishing.bin", LARGE, 0, 8);
	stat(p2, &st2);
	make_file(p2, sizeof(p2), "vanishing.bin", LARGE + 1, 0, 8);
	rc = hfm_hasher_get(h, p2, &st2, &got, waitfor_arm(&t), NULL);
	TAP_IS_INT(rc, HFM_EAGAIN, "failing: queued");
	TAP_OK(waitfor_woken(&t), "failing: its waiter is woken too");
	TAP_IS_INT(hfm_hasher_get(h, p2, &st2, &got, waitfor_arm(&t), NULL), HFM_EIO,
		   "failing: the re-run gets HFM_EIO, not another queue turn");
	TAP_IS_INT(hfm_hasher_get(h, p2, &st2, &got, waitfor_arm(&t), NULL), HFM_EIO,
		   "failing: and so does the next request");
	waitfor_dispose(&t);
}

/* Prefetched work a request starts waiting for is its own: promoted. */
static void test_promotion(void)
{
	/* no background worker: a prefetched job runs only if promoted */
	struct hfm_hasher *h = hfm_hasher_new(idx, 1, 0);
	char path[256], p2[256];
	struct hfm_hash_rec got, want;
	struct waitfor t;
	struct stat st, st2;
	int rc;

	waitfor_init(&t);
	make_file(path, sizeof(path), "prefetched.bin", LARGE, 0, 9);
	stat(path, &st);
	want_ids(path, &want);
	hfm_hasher_prefetch(h, path, &st);
	rc = hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL);
	TAP_IS_INT(rc, HFM_EAGAIN, "prefetched: a request waits for it");
	TAP_OK(waitfor_woken(&t), "prefetched: promoted to an urgent worker, done");
	TAP_OK(hfm_hasher_get(h, path, &st, &got, waitfor_arm(&t), NULL) == 0 &&
	       same_ids(&got, &want), "prefetched: ids right");

	/* jobs nobody waits for are dropped at free (the sanitizer checks leaks) */
	make_file(p2, sizeof(p2), "never.bin", LARGE, 0, 10);
	stat(p2, &st2);
	hfm_hasher_prefetch(h, p2, &st2);
	hfm_hasher_prefetch(h, p2, &st2);
	hfm_hasher_free(h);
	TAP_OK(!indexed(&st2, &got), "free: a queued background job is dropped unhashed");
	waitfor_dispose(&t);

	/* with a background worker, prefetch fills the index by itself */
	h = hfm_hasher_new(idx, 1, 1);
	hfm_hasher_prefetch(h, p2, &st2);
	for (int i = 0; i < 6000 && !indexed(&st2, &got); i++)
		usleep(10000);
	want_ids(p2, &want);
	TAP_OK(indexed(&st2, &got) && same_ids(&got, &want), "background: prefetch hashed it");
	hfm_hasher_free(h);
}

int main(void)
{
	struct hfm_hasher *h;
	char cmd[300];
	int rc;

	if (!mkdtemp(dir) || hfm_hashindex_open(&idx, NULL, NULL)) {
		printf("Bail out! no temporary directory\n");
		return 1;
	}
	h = hfm_hasher_new(idx, 2, 0);
	test_inline(h);
	test_queued(h);
	hfm_hasher_free(h);
	test_promotion();
	hfm_hashindex_free(idx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	rc = system(cmd);
	(void)rc;
	return tap_done();
}
