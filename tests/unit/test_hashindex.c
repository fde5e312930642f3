/*
 * The persistent hash index: records survive reopen, a changed key misses,
 * a damaged tail is dropped (not trusted), and a missing directory is made.
 * Several processes append at once and none of their records is lost, also
 * past a record a dead writer left torn in the middle; an index whose header
 * a crash tore is rebuilt, not ignored forever.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "hfm/hashindex.h"
#include "tap.h"

static void rec_for(struct hfm_hash_rec *r, unsigned i)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->sha1, sizeof(r->sha1), "%040x", i);
	snprintf(r->sha256, sizeof(r->sha256), "%064x", i * 7);
	r->binary = (uint8_t)(i & 1);
}

int main(void)
{
	char dir[] = "/tmp/hfm-hidx-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char path[256];
	snprintf(path, sizeof(path), "%s/sub/dir/index.bin", dir);
	struct hfm_hashindex *idx;
	const char *warn;
	struct hfm_hash_key k;
	struct hfm_hash_rec r, got;

	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "open creates parents");
	TAP_IS_STR(warn, "", "no warning on a fresh file");
	for (unsigned i = 0; i < 5000; i++) {
		k = (struct hfm_hash_key){ .dev = 1, .ino = i, .size = i * 10, .mtime_ns = 1000 + i };
		rec_for(&r, i);
		hfm_hashindex_put(idx, &k, &r);
	}
	TAP_IS_INT(hfm_hashindex_count(idx), 5000, "5000 records in memory");
	hfm_hashindex_free(idx);

	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "reopen");
	TAP_IS_INT(hfm_hashindex_count(idx), 5000, "5000 records after reopen");
	k = (struct hfm_hash_key){ .dev = 1, .ino = 1234, .size = 12340, .mtime_ns = 2234 };
	TAP_IS_INT(hfm_hashindex_get(idx, &k, &got), 0, "a record is found after reopen");
	rec_for(&r, 1234);
	TAP_IS_STR(got.sha1, r.sha1, "sha1 survives");
	TAP_IS_STR(got.sha256, r.sha256, "sha256 survives");
	TAP_IS_INT(got.binary, r.binary, "binary flag survives");
	k.mtime_ns++;
	TAP_OK(hfm_hashindex_get(idx, &k, &got) != 0, "a changed mtime misses");
	k.mtime_ns--;
	k.size++;
	TAP_OK(hfm_hashindex_get(idx, &k, &got) != 0, "a changed size misses");

	/* the same inode re-hashed after a change: the newest record wins */
	k = (struct hfm_hash_key){ .dev = 1, .ino = 7, .size = 999, .mtime_ns = 99 };
	rec_for(&r, 424242);
	hfm_hashindex_put(idx, &k, &r);
	hfm_hashindex_free(idx);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "reopen after update");
	TAP_IS_INT(hfm_hashindex_get(idx, &k, &got), 0, "updated record found");
	TAP_IS_STR(got.sha1, r.sha1, "updated record has the new hash");
	hfm_hashindex_free(idx);

	/* damage: flip a byte in the middle and append a torn record */
	int fd = open(path, O_RDWR);
	off_t size = lseek(fd, 0, SEEK_END);
	char c;
	pread(fd, &c, 1, size / 2);
	c ^= 0x55;
	pwrite(fd, &c, 1, size / 2);
	pwrite(fd, "torn", 4, size);
	close(fd);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "a damaged index still opens");
	size_t n = hfm_hashindex_count(idx);
	TAP_OK(n >= 4998 && n < 5001, "only the damaged record is lost (%zu kept)", n);
	k = (struct hfm_hash_key){ .dev = 1, .ino = 10, .size = 100, .mtime_ns = 1010 };
	TAP_IS_INT(hfm_hashindex_get(idx, &k, &got), 0, "undamaged records are kept");
	hfm_hashindex_free(idx);

	/* not a hash index at all: replaced, with a warning, never trusted */
	fd = open(path, O_WRONLY | O_TRUNC);
	write(fd, "not an index at all, just some text\n", 36);
	close(fd);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "a foreign file opens");
	TAP_IS_INT(hfm_hashindex_count(idx), 0, "and nothing from it is trusted");
	hfm_hashindex_free(idx);

	/* a torn header (a crash while the file was made) is rebuilt */
	fd = open(path, O_WRONLY | O_TRUNC);
	write(fd, "HFMHI", 5);
	close(fd);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "a torn header opens");
	TAP_OK(strstr(warn, "torn") != NULL, "and says it was torn: %s", warn);
	k = (struct hfm_hash_key){ .dev = 3, .ino = 3, .size = 3, .mtime_ns = 3 };
	TAP_IS_INT(hfm_hashindex_put(idx, &k, &r), 0, "a record is written to the rebuilt file");
	hfm_hashindex_free(idx);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "reopen the rebuilt index");
	TAP_IS_STR(warn, "", "it is an index again");
	TAP_IS_INT(hfm_hashindex_get(idx, &k, &got), 0, "with the record");
	hfm_hashindex_free(idx);

	/* several processes append at once; one died mid-record before them */
	unlink(path);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "a fresh index");
	hfm_hashindex_free(idx);
	fd = open(path, O_WRONLY | O_APPEND);
	write(fd, "HFMR torn by a crash", 20);
	close(fd);
	enum { PROCS = 4, EACH = 1500 };
	struct hfm_hashindex *opened[PROCS];
	for (unsigned p = 0; p < PROCS; p++)      /* all open before any appends */
		hfm_hashindex_open(&opened[p], path, &warn);
	pid_t kids[PROCS];
	for (unsigned p = 0; p < PROCS; p++) {
		if ((kids[p] = fork()) == 0) {
			for (unsigned i = 0; i < EACH; i++) {
				struct hfm_hash_key kk = { .dev = 10 + p, .ino = i, .size = i,
							   .mtime_ns = i };
				rec_for(&r, p * EACH + i);
				if (hfm_hashindex_put(opened[p], &kk, &r))
					_exit(1);
			}
			_exit(0);
		}
	}
	int all_ok = 1, st;
	for (unsigned p = 0; p < PROCS; p++)
		all_ok &= waitpid(kids[p], &st, 0) == kids[p] && WIFEXITED(st) && !WEXITSTATUS(st);
	for (unsigned p = 0; p < PROCS; p++)
		hfm_hashindex_free(opened[p]);
	TAP_OK(all_ok, "%d processes appended %d records each", PROCS, EACH);
	TAP_IS_INT(hfm_hashindex_open(&idx, path, &warn), 0, "reopen after the appenders");
	TAP_IS_INT(hfm_hashindex_count(idx), PROCS * EACH, "every record of every process is there");
	int right = 1;
	for (unsigned p = 0; p < PROCS; p++)
		for (unsigned i = 0; i < EACH; i += 97) {
			struct hfm_hash_key kk = { .dev = 10 + p, .ino = i, .size = i, .mtime_ns = i };
			rec_for(&r, p * EACH + i);
			right &= hfm_hashindex_get(idx, &kk, &got) == 0 && !strcmp(got.sha1, r.sha1);
		}
	TAP_OK(right, "and answers with its own hashes");
	hfm_hashindex_free(idx);

	/* memory only */
	TAP_IS_INT(hfm_hashindex_open(&idx, NULL, &warn), 0, "in-memory index");
	hfm_hashindex_put(idx, &k, &r);
	TAP_IS_INT(hfm_hashindex_get(idx, &k, &got), 0, "in-memory get");
	hfm_hashindex_free(idx);

	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {}
	return tap_done();
}
