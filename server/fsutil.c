/* fsutil.c - root-confined opens (openat2 RESOLVE_BENEATH + fallback). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/fsutil.h"

int hfm_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int hfm_path_within(const char *root_real, const char *path)
{
	char real[PATH_MAX];
	size_t n = strlen(root_real);

	if (!realpath(path, real))
		return 0;
	if (strncmp(real, root_real, n))
		return 0;
	return real[n] == '\0' || real[n] == '/' || (n == 1 && root_real[0] == '/');
}

static int fd_within(int fd, const char *root_real)
{
	char link[64];

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	return hfm_path_within(root_real, link);
}

int hfm_open_beneath(int root_fd, const char *root_real, const char *rel, int flags)
{
	struct open_how how;
	int fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno != ENOSYS && errno != EXDEV && errno != EPERM && errno != EINVAL)
		return -1;
	/* no openat2, or an absolute symlink: open, then check where we landed */
	fd = openat(root_fd, rel, flags | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!fd_within(fd, root_real)) {
		close(fd);
		errno = EXDEV;
		return -1;
	}
	return fd;
}
