/* store.c - content-addressed objects with staged, verified, atomic publish. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hfm/fsutil.h"
#include "hfm/hash.h"
#include "hfm/store.h"

static int mkdir_p(int dirfd, const char *rel)
{
	char *p = hfm_strdup(rel), *s;
	int rc = 0;

	for (s = p; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (*p && mkdirat(dirfd, p, 0755) < 0 && errno != EEXIST) {
				rc = hfm_error_set(HFM_EIO, "mkdir %s: %s", p, strerror(errno));
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return rc;
}

int hfm_store_mkdirs(const struct hfm_store *s, const char *rel)
{
	return mkdir_p(s->root_fd, rel);
}

/* Remove staging files older than a day: leftovers of a crash. */
static void sweep_tmp(int tmp_fd)
{
	int fd = dup(tmp_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	time_t cutoff = time(NULL) - 86400;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(tmp_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < cutoff)
			unlinkat(tmp_fd, de->d_name, 0);
	}
	closedir(d);
}

int hfm_store_open(struct hfm_store **out, const char *root, int flags)
{
	int read_only = (flags & HFM_STORE_READ_ONLY) != 0;
	int create = (flags & HFM_STORE_CREATE) && !read_only;
	struct hfm_store *s;
	char real[PATH_MAX];
	int rc;

	if (create && mkdir_p(AT_FDCWD, root))
		return HFM_EIO;
	if (!realpath(root, real))
		return hfm_error_set(HFM_EIO, "store %s: %s", root, strerror(errno));
	s = hfm_calloc(1, sizeof(*s));
	s->root = hfm_strdup(real);
	s->read_only = read_only;
	s->objects_fd = s->tmp_fd = -1;
	s->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		rc = hfm_error_set(HFM_EIO, "store %s: %s", real, strerror(errno));
		goto fail;
	}
	if (create && (mkdir_p(s->root_fd, "objects") || mkdir_p(s->root_fd, "tmp") ||
		       mkdir_p(s->root_fd, "partial") || mkdir_p(s->root_fd, "meta") ||
		       mkdir_p(s->root_fd, "mirrors"))) {
		rc = HFM_EIO;
		goto fail;
	}
	s->objects_fd = openat(s->root_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->tmp_fd = openat(s->root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->objects_fd < 0 || (s->tmp_fd < 0 && !read_only)) {
		rc = hfm_error_set(HFM_EIO, "store %s: not a store (objects/ and tmp/ "
				   "missing); create it with hfmirror-import --store", real);
		goto fail;
	}
	if (!read_only)
		sweep_tmp(s->tmp_fd);
	*out = s;
	return 0;
fail:
	hfm_store_free(s);
	return rc;
}

void hfm_store_free(struct hfm_store *s)
{
	if (!s)
		return;
	if (s->root_fd >= 0)
		close(s->root_fd);
	if (s->objects_fd >= 0)
		close(s->objects_fd);
	if (s->tmp_fd >= 0)
		close(s->tmp_fd);
	free(s->root);
	free(s);
}

int hfm_store_oid_valid(const char *oid)
{
	size_t n = strlen(oid);

	return (n == 40 || n == 64) && hfm_is_hex(oid, n);
}

static void object_rel(char *out, const char *oid)
{
	snprintf(out, 80, "%.2s/%s", oid, oid);
}

void hfm_store_object_path(struct hfm_buf *out, const struct hfm_store *s, const char *oid)
{
	hfm_buf_printf(out, "%s/objects/%.2s/%s", s->root, oid, oid);
}

/*
 * Take the shared lease on an object just opened (store.h): 0, or 1 when
 * the evictor holds it exclusively (it is being removed: open again).
 * Without lock support (no OFD locks, an NFS mount with nolock) the object
 * is served unleased.
 */
static int lease(int fd)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES;
}

int hfm_store_object_open(int *fd, uint64_t *size, const struct hfm_store *s, const char *oid)
{
	char rel[80];
	struct stat st;
	int f;

	if (!hfm_store_oid_valid(oid))
		return HFM_EINVAL;
	object_rel(rel, oid);
	for (int tries = 0;; tries++) {
		f = openat(s->objects_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (f < 0)
			return errno == ENOENT ? HFM_ENOENT
					       : hfm_error_set(HFM_EIO, "open object %s: %s", oid,
							       strerror(errno));
		if (!lease(f))
			break;
		close(f);
		/* the evictor holds it for an unlink: the next open misses */
		if (tries == 100)
			return hfm_error_set(HFM_EIO, "object %s stays locked", oid);
		usleep(1000);
	}
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(f);
		return hfm_error_set(HFM_EIO, "object %s is not a regular file", oid);
	}
	if (st.st_nlink == 0) {                /* removed between the open and the lease */
		close(f);
		return HFM_ENOENT;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return 0;
}

int hfm_store_object_remove_unleased(const struct hfm_store *s, const char *oid)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat fst, pst;
	char rel[80];
	int f, rc;

	if (!hfm_store_oid_valid(oid))
		return HFM_EINVAL;
	object_rel(rel, oid);
	f = openat(s->objects_fd, rel, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (f < 0)
		return errno == ENOENT ? HFM_ENOENT
				       : hfm_error_set(HFM_EIO, "open object %s: %s", oid,
						       strerror(errno));
	if (fcntl(f, F_OFD_SETLK, &fl) < 0 && (errno == EAGAIN || errno == EACCES)) {
		close(f);
		return 1;                          /* someone serves it */
	}
	/* still the object under that name (not replaced since the open) */
	if (fstat(f, &fst) || fstatat(s->objects_fd, rel, &pst, AT_SYMLINK_NOFOLLOW) ||
	    fst.st_ino != pst.st_ino || fst.st_dev != pst.st_dev)
		rc = HFM_ENOENT;
	else if (unlinkat(s->objects_fd, rel, 0) < 0)
		rc = errno == ENOENT ? HFM_ENOENT
				     : hfm_error_set(HFM_EIO, "remove object %s: %s", oid, strerror(errno));
	else
		rc = 0;
	close(f);                                  /* drops the lock */
	return rc;
}

void hfm_store_tmp_name(char name[96], const char *what)
{
	char host[64] = "";
	static atomic_uint seq;

	/* the host keeps two nodes' processes apart on a shared store */
	gethostname(host, sizeof(host) - 1);
	snprintf(name, 96, "%.8s.%.40s.%ld.%u", what, host, (long)getpid(),
		 atomic_fetch_add(&seq, 1));
}

/* A new read-write file under tmp/: unnamed where possible, else "<what>.<host>.<pid>.<n>". */
static int tmp_file(int *fd, char name[96], const struct hfm_store *s, const char *what,
		    mode_t mode)
{
	name[0] = '\0';
	*fd = openat(s->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (*fd >= 0)
		return 0;
	/* NFS and others have no O_TMPFILE */
	hfm_store_tmp_name(name, what);
	*fd = openat(s->tmp_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (*fd >= 0)
		return 0;
	return hfm_error_set(HFM_EIO, "cannot create a file in %s/tmp: %s", s->root, strerror(errno));
}

int hfm_store_scratch(int *fd, char name[96], const struct hfm_store *s)
{
	return tmp_file(fd, name, s, "probe", 0600);
}

int hfm_store_stage_unnamed(int *fd, char name[96], const struct hfm_store *s)
{
	/* no name: nothing to remove after a crash, no entry in tmp/ to add,
	 * remove and sync, and the link that publishes it never replaces */
	return tmp_file(fd, name, s, "stage", 0644);
}

int hfm_store_check(const struct hfm_store *s)
{
	char name[96];
	struct stat st;
	int fd, rc;

	if (fstatat(s->objects_fd, ".", &st, 0) < 0)
		return hfm_error_set(HFM_EIO, "store %s/objects: %s", s->root, strerror(errno));
	if (s->read_only)
		return 0;
	if ((rc = hfm_store_scratch(&fd, name, s)))
		return rc;
	/* a full disk takes the create but not the first block */
	if (pwrite(fd, "x", 1, 0) != 1)
		rc = hfm_error_set(HFM_EIO, "cannot write in %s/tmp: %s", s->root, strerror(errno));
	close(fd);
	if (name[0])
		unlinkat(s->tmp_fd, name, 0);
	return rc;
}

int hfm_store_object_exists(const struct hfm_store *s, const char *oid)
{
	char rel[80];
	struct stat st;

	if (!hfm_store_oid_valid(oid))
		return 0;
	object_rel(rel, oid);
	return fstatat(s->objects_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/*
 * Read the `size` bytes of `in` once, from offset 0: hash them the way `oid`
 * names them (sha256 for 64 hex, git blob sha1 for 40), copy them to `out`
 * unless it is -1, and report progress.  One pass does the verify and the
 * copy, so a large object is read once.  0 when the digest is `oid`,
 * HFM_ECORRUPT (with a message) or HFM_EIO.
 */
static int pump(int in, uint64_t size, int out, const char *oid,
		hfm_progress_fn *fn, void *payload)
{
	enum { CHUNK = 1 << 20 };
	int is256 = strlen(oid) == HFM_SHA256_HEX, rc = 0;
	struct hfm_hashctx *h = hfm_hashctx_new(size, !is256, is256);
	char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
	char *buf = hfm_malloc(CHUNK);
	uint64_t off = 0;

	while (off < size) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t n = pread(in, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = hfm_error_set(HFM_EIO, "read failed at offset %llu: %s",
					   (unsigned long long)off,
					   n < 0 ? strerror(errno) : "file shrank");
			break;
		}
		hfm_hashctx_update(h, buf, (size_t)n);
		if (out >= 0 && hfm_write_all(out, buf, (size_t)n) < 0) {
			rc = hfm_error_set(HFM_EIO, "write: %s", strerror(errno));
			break;
		}
		off += (uint64_t)n;
		if (fn)
			fn(payload, off, size);
	}
	hfm_hashctx_final(h, sha1, sha256);
	free(buf);
	if (!rc && strcmp(is256 ? sha256 : sha1, oid))
		rc = hfm_error_set(HFM_ECORRUPT, "content hashes to %s, expected %s",
				   is256 ? sha256 : sha1, oid);
	return rc;
}

int hfm_store_verify_fd(int fd, uint64_t size, const char *oid)
{
	return pump(fd, size, -1, oid, NULL, NULL);
}

int hfm_store_stage(int *fd, struct hfm_buf *tmp_name, const struct hfm_store *s)
{
	static atomic_uint seq;
	unsigned n;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		n = atomic_fetch_add(&seq, 1);
		hfm_buf_reset(tmp_name);
		hfm_buf_printf(tmp_name, "stage-%ld-%u-%u", (long)getpid(), n,
			       (unsigned)(hfm_mono_ns() & 0xffffff));
		*fd = openat(s->tmp_fd, tmp_name->ptr,
			     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (*fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	return hfm_error_set(HFM_EIO, "cannot create a staging file in %s/tmp: %s", s->root,
			     strerror(errno));
}

void hfm_store_abort(const struct hfm_store *s, const char *tmp_name)
{
	unlinkat(s->tmp_fd, tmp_name, 0);
}

/*
 * Link the inode behind `fd` as objects/<rel>.  linkat() of a path would
 * link a symlink itself, or whatever the path names by now; the /proc/self/fd
 * name is the open inode (open(2) documents this use with O_TMPFILE).
 */
static int link_fd(const struct hfm_store *s, int fd, const char *rel)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, s->objects_fd, rel, AT_SYMLINK_FOLLOW);
}

/* objects/<dir>, the directory of objects whose ids start with `dir` (2 hex). */
int hfm_store_object_dir_open(const struct hfm_store *s, const char *oid)
{
	char dir[3] = { oid[0], oid[1], '\0' };

	return openat(s->objects_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Rename `name` in dirfd to objects/<rel>, making objects/<2 hex> when it is
 * missing (tried after the rename, which usually finds it).  With
 * `noreplace` an object already there stays and `name` is removed: the
 * same bytes, and a reader of the old inode on another NFS client would
 * see it go stale if it were replaced.
 */
static int rename_object(const struct hfm_store *s, int dirfd, const char *name, int fd,
			 const char *rel, int noreplace)
{
	char dir[3] = { rel[0], rel[1], '\0' };

	for (int tries = 0; tries < 2; tries++) {
		int r = !name[0] ? link_fd(s, fd, rel)      /* unnamed: a link never replaces */
			: noreplace ? renameat2(dirfd, name, s->objects_fd, rel, RENAME_NOREPLACE)
				    : renameat(dirfd, name, s->objects_fd, rel);
		if (!name[0]) {
			if (r == 0 || errno == EEXIST)
				return 0;
			if (errno != ENOENT || tries)
				break;
			if (mkdirat(s->objects_fd, dir, 0755) < 0 && errno != EEXIST)
				return hfm_error_set(HFM_EIO, "mkdir objects/%s: %s", dir,
						     strerror(errno));
			continue;
		}
		if (r < 0 && noreplace && (errno == EINVAL || errno == ENOSYS)) {
			/* no RENAME_NOREPLACE here (NFS): a link never replaces either */
			r = linkat(dirfd, name, s->objects_fd, rel, 0);
			if (r == 0 || errno == EEXIST)
				unlinkat(dirfd, name, 0);
		}
		if (r == 0 || (noreplace && errno == EEXIST)) {
			if (r < 0)
				unlinkat(dirfd, name, 0);
			return 0;
		}
		if (errno != ENOENT || tries)
			break;
		if (mkdirat(s->objects_fd, dir, 0755) < 0 && errno != EEXIST)
			return hfm_error_set(HFM_EIO, "mkdir objects/%s: %s", dir, strerror(errno));
	}
	return hfm_error_set(HFM_EIO, "publish %s: %s", rel + 3, strerror(errno));
}

int hfm_store_publish_fd(const struct hfm_store *s, int dirfd, const char *name, int fd,
			 const char *oid, unsigned flags)
{
	char rel[80];
	struct stat st;
	int rc;

	if (!hfm_store_oid_valid(oid))
		return hfm_error_set(HFM_EINVAL, "invalid object id %s", oid);
	if (!(flags & HFM_STORE_VERIFIED)) {
		if (fstat(fd, &st) < 0)
			return hfm_error_set(HFM_EIO, "staged %s: %s", name, strerror(errno));
		if ((rc = hfm_store_verify_fd(fd, (uint64_t)st.st_size, oid)))
			return rc;
	}
	if (!(flags & HFM_STORE_DURABLE) && fsync(fd) < 0)
		return hfm_error_set(HFM_EIO, "fsync %s: %s", name, strerror(errno));
	object_rel(rel, oid);
	if ((rc = rename_object(s, dirfd, name, fd, rel, !!(flags & HFM_STORE_NOREPLACE))))
		return rc;
	if (!(flags & HFM_STORE_DIR_LATER))
		hfm_store_sync_object_dir(s, oid);
	return 0;
}

int hfm_store_sync_fds(const struct hfm_store *s, const int *fds, size_t n)
{
	size_t i = 0;

	if (n > 2 && syncfs(s->root_fd) == 0)
		i = n - 1;                 /* then one fsync: the flush after all of it */
	for (; i < n; i++)
		if (fsync(fds[n - 1 - i]) < 0)
			return hfm_error_set(HFM_EIO, "fsync: %s", strerror(errno));
	return 0;
}

void hfm_store_sync_object_dir(const struct hfm_store *s, const char *oid)
{
	int dfd = hfm_store_object_dir_open(s, oid);

	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int hfm_store_publish_at(const struct hfm_store *s, int dirfd, const char *name,
			 const char *oid, int verified)
{
	int fd, rc;

	if (!hfm_store_oid_valid(oid)) {
		unlinkat(dirfd, name, 0);
		return hfm_error_set(HFM_EINVAL, "invalid object id %s", oid);
	}
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = hfm_error_set(HFM_EIO, "staged %s: %s", name, strerror(errno));
	} else {
		rc = hfm_store_publish_fd(s, dirfd, name, fd, oid, verified ? HFM_STORE_VERIFIED : 0);
		close(fd);
	}
	if (rc)
		unlinkat(dirfd, name, 0);
	return rc;
}

int hfm_store_commit(const struct hfm_store *s, const char *tmp_name, const char *oid,
		     int verified)
{
	return hfm_store_publish_at(s, s->tmp_fd, tmp_name, oid, verified);
}

int hfm_store_add_file(const struct hfm_store *s, const char *path, const char *oid,
		       int *linked)
{
	enum hfm_store_added how = HFM_STORE_PRESENT;
	int fd, rc;

	*linked = 0;
	if (hfm_store_object_exists(s, oid))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	rc = hfm_store_add_fd(&how, s, fd, oid, 0, NULL, NULL);
	close(fd);
	*linked = how == HFM_STORE_LINKED;
	return rc;
}


int hfm_store_add_fd(enum hfm_store_added *how, const struct hfm_store *s, int fd,
		     const char *oid, unsigned flags, hfm_progress_fn *fn, void *payload)
{
	struct hfm_buf tmp = HFM_BUF_INIT(256);
	struct stat st, ost;
	char rel[80], dir[3];
	int out = -1, rc = 0;

	*how = HFM_STORE_PRESENT;
	if (!hfm_store_oid_valid(oid))
		return hfm_error_set(HFM_EINVAL, "invalid object id %s", oid);
	if (hfm_store_object_exists(s, oid))
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return hfm_error_set(HFM_EIO, "object %s: source is not a regular file", oid);
	memcpy(dir, oid, 2);
	dir[2] = '\0';
	if (mkdirat(s->objects_fd, dir, 0755) < 0 && errno != EEXIST)
		return hfm_error_set(HFM_EIO, "mkdir objects/%s: %s", dir, strerror(errno));
	object_rel(rel, oid);
	if (!(flags & HFM_STORE_COPY) && fstat(s->objects_fd, &ost) == 0 &&
	    ost.st_dev == st.st_dev) {
		/* verified before: the link publishes it at once */
		if (!(flags & HFM_STORE_VERIFIED) &&
		    (rc = pump(fd, (uint64_t)st.st_size, -1, oid, fn, payload)))
			goto done;
		if (link_fd(s, fd, rel) == 0) {
			*how = HFM_STORE_LINKED;
			goto done;
		}
		if (errno == EEXIST)
			goto done;
	}
	if ((rc = hfm_store_stage(&out, &tmp, s)))
		goto done;
	rc = pump(fd, (uint64_t)st.st_size, out, oid, fn, payload);
	close(out);
	if (rc) {
		hfm_store_abort(s, tmp.ptr);
	} else if (!(rc = hfm_store_commit(s, tmp.ptr, oid, 1))) {
		*how = HFM_STORE_COPIED;
	}
done:
	hfm_buf_dispose(&tmp);
	return rc;
}

void hfm_store_mirror_path(struct hfm_buf *out, const struct hfm_store *s,
			   const struct hfm_repo_id *id)
{
	hfm_buf_printf(out, "%s/mirrors/%s/%s.git", s->root, hfm_repo_type_plural(id->type),
		       id->name);
}

int hfm_store_mirror_lock(int *out, const struct hfm_store *s, const struct hfm_repo_id *id,
			  void (*on_wait)(void *cls), void *cls)
{
	return hfm_store_repo_lock(out, s, "", id, on_wait, cls);
}

int hfm_store_repo_lock(int *out, const struct hfm_store *s, const char *prefix,
			const struct hfm_repo_id *id, void (*on_wait)(void *cls), void *cls)
{
	struct hfm_buf path = HFM_BUF_INIT(HFM_PATH_MAX);
	char *flat = hfm_strdup(id->name), *p;
	int fd, rc = 0;

	*out = -1;
	for (p = flat; *p; p++)
		if (*p == '/')
			*p = '#';   /* not a name character, so the flat name is unique */
	if ((rc = hfm_store_mkdirs(s, "meta/import-locks")))
		goto out;
	hfm_buf_printf(&path, "%s/meta/import-locks/%s%s--%s", s->root, prefix,
		       hfm_repo_type_plural(id->type), flat);
	fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = hfm_error_set(HFM_EIO, "%s: %s", path.ptr, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (on_wait)
			on_wait(cls);
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	}
	*out = fd;
out:
	free(flat);
	hfm_buf_dispose(&path);
	return rc;
}
