/* The store: adding files by link or copy, verification, atomic publish. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/hash.h"
#include "hfm/store.h"
#include "tap.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
}

static void progress(void *payload, uint64_t done, uint64_t total)
{
	*(uint64_t *)payload = done;
}

int main(void)
{
	char dir[] = "/tmp/hfm-test-store.XXXXXX", oid[HFM_SHA256_HEX + 1];
	struct hfm_store *s = NULL;
	struct hfm_buf path = HFM_BUF_INIT(4096), obj = HFM_BUF_INIT(4096);
	enum hfm_store_added how;
	uint64_t seen = 0;
	char *src, *lnk, *other;
	int fd, linked;

	if (!mkdtemp(dir))
		return 1;
	hfm_buf_printf(&path, "%s/store", dir);
	TAP_IS_INT(hfm_store_open(&s, path.ptr, 1), 0, "store created");

	src = hfm_asprintf("%s/a.bin", dir);
	write_file(src, "hello\n");
	hfm_sha256_hex(oid, "hello\n", 6);
	hfm_store_object_path(&obj, s, oid);

	/* a symlink to the file: the object must be the file, not the link */
	lnk = hfm_asprintf("%s/link", dir);
	TAP_OK(symlink(src, lnk) == 0, "symlink made");
	fd = open(lnk, O_RDONLY);
	TAP_IS_INT(hfm_store_add_fd(&how, s, fd, oid, 0, progress, &seen), 0, "add through a symlink");
	close(fd);
	TAP_IS_INT(how, HFM_STORE_LINKED, "same filesystem: linked");
	TAP_IS_INT(seen, 6, "progress saw every byte");
	TAP_OK(inode_of(obj.ptr) == inode_of(src), "object is the file's inode");
	TAP_OK(hfm_store_object_exists(s, oid), "object is a regular file under objects/");

	fd = open(src, O_RDONLY);
	TAP_IS_INT(hfm_store_add_fd(&how, s, fd, oid, 0, NULL, NULL), 0, "add again");
	TAP_IS_INT(how, HFM_STORE_PRESENT, "present: nothing done");
	close(fd);

	/* HFM_STORE_COPY makes a copy with its own inode */
	other = hfm_asprintf("%s/b.txt", dir);
	write_file(other, "copy me\n");
	hfm_sha256_hex(oid, "copy me\n", 8);
	hfm_buf_reset(&obj);
	hfm_store_object_path(&obj, s, oid);
	fd = open(other, O_RDONLY);
	TAP_IS_INT(hfm_store_add_fd(&how, s, fd, oid, HFM_STORE_COPY, NULL, NULL), 0, "add as copy");
	close(fd);
	TAP_IS_INT(how, HFM_STORE_COPIED, "copied");
	TAP_OK(inode_of(obj.ptr) != inode_of(other) && inode_of(obj.ptr), "own inode");

	/* a staged file without a name is linked in; an object there already stays */
	{
		char name[96], oid2[HFM_SHA256_HEX + 1];
		int sfd, ino;

		hfm_sha256_hex(oid2, "staged\n", 7);
		TAP_IS_INT(hfm_store_stage_unnamed(&sfd, name, s), 0, "stage unnamed");
		TAP_OK(write(sfd, "staged\n", 7) == 7, "staged bytes written");
		TAP_IS_INT(hfm_store_publish_fd(s, s->tmp_fd, name, sfd, oid2,
						HFM_STORE_VERIFIED | HFM_STORE_NOREPLACE |
						HFM_STORE_DIR_LATER), 0, "unnamed: published");
		close(sfd);
		hfm_buf_reset(&obj);
		hfm_store_object_path(&obj, s, oid2);
		ino = (int)inode_of(obj.ptr);
		TAP_OK(hfm_store_object_exists(s, oid2) && ino, "unnamed: the object is there");
		TAP_IS_INT(hfm_store_stage_unnamed(&sfd, name, s), 0, "stage again");
		TAP_OK(write(sfd, "staged\n", 7) == 7, "again: written");
		TAP_IS_INT(hfm_store_publish_fd(s, s->tmp_fd, name, sfd, oid2,
						HFM_STORE_NOREPLACE), 0,
			   "again: published (verified here), no error for the object there");
		close(sfd);
		TAP_OK((int)inode_of(obj.ptr) == ino, "again: the object there stays (same inode)");
		hfm_store_sync_object_dir(s, oid2);
		TAP_IS_INT(hfm_store_stage_unnamed(&sfd, name, s), 0, "stage a wrong one");
		TAP_OK(write(sfd, "wrong\n", 6) == 6, "wrong: written");
		hfm_sha256_hex(oid2, "right\n", 6);
		TAP_IS_INT(hfm_store_publish_fd(s, s->tmp_fd, name, sfd, oid2, 0), HFM_ECORRUPT,
			   "wrong: refused when not verified by the caller");
		close(sfd);
		if (name[0])
			hfm_store_abort(s, name);
		TAP_OK(!hfm_store_object_exists(s, oid2), "wrong: nothing published");
	}

	/* staged files made durable together, then published without an fsync each */
	{
		char names[4][96], oids[4][HFM_SHA256_HEX + 1], body[16];
		int fds[4], i, n = 0, rc = 0;

		for (i = 0; i < 4; i++) {
			snprintf(body, sizeof(body), "group %d\n", i);
			hfm_sha256_hex(oids[i], body, strlen(body));
			rc |= hfm_store_stage_unnamed(&fds[i], names[i], s);
			rc |= write(fds[i], body, strlen(body)) != (ssize_t)strlen(body);
		}
		TAP_IS_INT(rc, 0, "group: four staged");
		TAP_IS_INT(hfm_store_sync_fds(s, fds, 1), 0, "group: one synced (fsync)");
		TAP_IS_INT(hfm_store_sync_fds(s, fds, 4), 0, "group: four synced (syncfs)");
		for (i = 0; i < 4; i++) {
			n += hfm_store_publish_fd(s, s->tmp_fd, names[i], fds[i], oids[i],
						  HFM_STORE_VERIFIED | HFM_STORE_NOREPLACE |
						  HFM_STORE_DIR_LATER | HFM_STORE_DURABLE) == 0 &&
			     hfm_store_object_exists(s, oids[i]);
			close(fds[i]);
		}
		TAP_IS_INT(n, 4, "group: all four published");
	}

	/* content that does not match its name is refused, both ways */
	hfm_sha256_hex(oid, "something else", 14);
	hfm_buf_reset(&obj);
	hfm_store_object_path(&obj, s, oid);
	fd = open(other, O_RDONLY);
	TAP_IS_INT(hfm_store_add_fd(&how, s, fd, oid, 0, NULL, NULL), HFM_ECORRUPT,
		   "corrupt content refused (link path)");
	TAP_IS_INT(hfm_store_add_fd(&how, s, fd, oid, HFM_STORE_COPY, NULL, NULL), HFM_ECORRUPT,
		   "corrupt content refused (copy path)");
	close(fd);
	TAP_OK(access(obj.ptr, F_OK) != 0, "nothing published under the wrong name");
	hfm_buf_reset(&path);
	hfm_buf_printf(&path, "%s/store/tmp", dir);
	TAP_OK(rmdir(path.ptr) == 0 && mkdir(path.ptr, 0755) == 0,
	       "staging file removed (tmp/ empty)");

	/* the old entry point still works and reports a link */
	hfm_sha256_hex(oid, "hello\n", 6);
	linked = 7;
	TAP_IS_INT(hfm_store_add_file(s, src, oid, &linked), 0, "add_file of a present object");
	TAP_IS_INT(linked, 0, "present is not linked");

	hfm_store_free(s);
	hfm_buf_dispose(&path);
	hfm_buf_dispose(&obj);
	{
		char *cmd = hfm_asprintf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			TAP_OK(0, "cleanup");
		free(cmd);
	}
	free(src);
	free(lnk);
	free(other);
	return tap_done();
}
