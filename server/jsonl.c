/* jsonl.c - JSON-lines files admins edit and the server watches: the file discipline (jsonl.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/fsutil.h"
#include "hfm/jsonl.h"

void hfm_filesig_get(struct hfm_filesig *out, const char *path)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st))
		return;
	out->exists = 1;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->size = st.st_size;
	out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	out->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

int hfm_filesig_same(const struct hfm_filesig *a, const struct hfm_filesig *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int hfm_jsonl_bad(struct hfm_buf *err, const char *path, unsigned line, const char *key,
		  const char *fmt, ...)
{
	va_list ap;

	struct hfm_buf msg = HFM_BUF_INIT(4096);

	if (!err)
		return HFM_EINVAL;
	hfm_buf_printf(&msg, "%s: ", key);
	va_start(ap, fmt);
	hfm_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	/* One line each, whatever bytes a key from the file holds. */
	for (size_t i = 0; i < msg.len; i++)
		if ((unsigned char)msg.ptr[i] < 0x20 || msg.ptr[i] == 0x7f)
			msg.ptr[i] = '?';
	hfm_buf_printf(err, "%s:%u: %s\n", path, line, hfm_buf_cstr(&msg));
	hfm_buf_dispose(&msg);
	return HFM_EINVAL;
}

static int slurp(struct hfm_buf *out, const char *path)
{
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return errno == ENOENT ? HFM_ENOENT : hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || hfm_buf_put(out, chunk, (size_t)got)) {
			int e = got < 0 ? errno : EFBIG;
			close(fd);
			return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(e));
		}
	}
	close(fd);
	return 0;
}

int hfm_jsonl_lines(const char *path, hfm_jsonl_line_fn fn, void *cls, struct hfm_buf *err)
{
	struct hfm_buf b = HFM_BUF_INIT(HFM_JSONL_MAX);
	unsigned line = 0;
	int rc = slurp(&b, path), bad = 0;

	if (rc) {
		if (rc == HFM_EIO && err)
			hfm_buf_printf(err, "%s\n", hfm_error_last());
		goto cleanup;
	}
	for (const char *p = hfm_buf_cstr(&b), *end = p + b.len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *s = p;

		line++;
		p += n + (nl != NULL);
		while (n && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++, n--;
		if (!n || *s == '#')
			continue;
		bad |= fn(cls, s, n, path, line, err) != 0;
	}
	rc = bad ? HFM_EINVAL : 0;
cleanup:
	hfm_buf_dispose(&b);
	return rc;
}

int hfm_jsonl_lock(const char *path)
{
	char *lp = hfm_asprintf("%s.lock", path);
	int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || flock(fd, LOCK_EX)) {
		hfm_error_set(HFM_EIO, "%s: %s", lp, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(lp);
	return fd;
}

void hfm_jsonl_unlock(int fd)
{
	if (fd >= 0)
		close(fd);                   /* drops the flock */
}

int hfm_jsonl_replace(const char *path, const char *data, size_t n, mode_t mode)
{
	char *tmp = hfm_asprintf("%s.tmp.%ld", path, (long)getpid());
	struct stat st;
	int fd, rc = 0;

	if (!stat(path, &st))
		mode = st.st_mode & 07777;   /* keep what the admin chose */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || hfm_write_all(fd, data, n) || fsync(fd) || rename(tmp, path)) {
		rc = hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
		unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	return rc;
}
