/*
 * bench-floors - what each step of a cold GET through the cache costs at
 * least on this machine: CPU seconds per GiB of each copy and of the
 * digest, measured alone (bench/cache --perf prints them beside its phase
 * rows; docs/performance.md, "The cold GET").
 *
 *   bench-floors [DIR]      DIR: where to write a 1 GiB scratch file (/tmp)
 *
 * The rows a cold GET needs, in order: receive (the receiving side of a
 * loopback TCP stream, 512 KiB reads as libcurl makes them), gather
 * (memcpy of 16 KiB pieces into a 256 KiB buffer), write (pwrite of
 * 256 KiB into a new file: the page cache), hash (sha256 of bytes in
 * cache, and of bytes that are not, plain and fed a page at a time with the
 * next two prefetched), the copy out (pread of 1 MiB from the page cache,
 * or memcpy of 1 MiB from buffers out of cache) and send (the sending side
 * of the loopback stream, 1 MiB sends; and sendfile).  Each is the CPU time
 * of the thread doing it (CLOCK_THREAD_CPUTIME_ID), for 1 GiB.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GIB (1ull << 30)
#define KIB(n) ((size_t)(n) << 10)
#define MIB(n) ((size_t)(n) << 20)
#define RING MIB(64)                     /* more than the caches: bytes out of cache */

static const char *dir = "/tmp";

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void row(const char *what, double s)
{
	printf("| %s | %.3f |\n", what, s);
}

static char *filled(size_t n, int c)
{
	char *p = malloc(n);

	if (!p)
		abort();
	memset(p, c, n);
	return p;
}

static void sha_update(EVP_MD_CTX *c, const char *p, size_t n, int prefetch)
{
	const char *end = p + n, *pf = p;

	if (!prefetch) {
		EVP_DigestUpdate(c, p, n);
		return;
	}
	while (p < end) {
		size_t k = (size_t)(end - p) < 4096 ? (size_t)(end - p) : 4096;
		const char *want = (size_t)(end - p) > k + 8192 ? p + k + 8192 : end;

		for (; pf < want; pf += 64)
			__builtin_prefetch(pf);
		EVP_DigestUpdate(c, p, k);
		p += k;
	}
}

/* sha256 of 1 GiB in 256 KiB pieces of a ring of `ring` bytes. */
static double sha(size_t ring, int prefetch)
{
	char *b = filled(ring, 7);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	double t0;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	t0 = cpu_now();
	for (uint64_t d = 0; d < GIB; d += KIB(256))
		sha_update(c, b + d % ring, KIB(256), prefetch);
	t0 = cpu_now() - t0;
	EVP_MD_CTX_free(c);
	free(b);
	return t0;
}

/* memcpy of 1 GiB in `piece` bytes from a ring of `ring` into a buffer of `to`. */
static double copy(size_t piece, size_t ring, size_t to)
{
	char *src = filled(ring, 1), *dst = filled(to, 2);
	double t0 = cpu_now();

	for (uint64_t d = 0; d < GIB; d += piece) {
		memcpy(dst + d % to, src + d % ring, piece);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	t0 = cpu_now() - t0;
	free(src);
	free(dst);
	return t0;
}

/* Write and remove a file of 1 GiB: the pages the next write takes were just freed (bench/cache's page_room). */
static void page_room(void)
{
	char p[512], *b = filled(MIB(1), 0);
	int fd;

	snprintf(p, sizeof(p), "%s/bench-floors.room", dir);
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	for (uint64_t d = 0; fd >= 0 && d < GIB; d += MIB(1))
		if (write(fd, b, MIB(1)) != (ssize_t)MIB(1))
			abort();
	close(fd);
	unlink(p);
	free(b);
}

/* pwrite of 1 GiB in `piece` bytes into a new file; the file's fd in *keep. */
static double write_file(size_t piece, int *keep)
{
	char p[512], *b = filled(piece, 3);
	double t0;
	int fd;

	page_room();
	snprintf(p, sizeof(p), "%s/bench-floors.data", dir);
	fd = open(p, O_CREAT | O_TRUNC | O_RDWR, 0600);
	if (fd < 0) {
		perror(p);
		exit(1);
	}
	unlink(p);
	t0 = cpu_now();
	for (uint64_t d = 0; d < GIB; d += piece)
		if (pwrite(fd, b, piece, (off_t)d) != (ssize_t)piece)
			abort();
	t0 = cpu_now() - t0;
	free(b);
	*keep = fd;
	return t0;
}

static double read_file(int fd, size_t piece)
{
	char *b = filled(piece, 0);
	double t0 = cpu_now();

	for (uint64_t d = 0; d < GIB; d += piece)
		if (pread(fd, b, piece, (off_t)d) != (ssize_t)piece)
			abort();
	t0 = cpu_now() - t0;
	free(b);
	return t0;
}

struct rx {
	int fd;
	double cpu;
};

static void *receive(void *arg)
{
	struct rx *r = arg;
	char *b = filled(KIB(512), 0);
	uint64_t got = 0;
	double t0 = cpu_now();
	ssize_t k;

	while ((k = recv(r->fd, b, KIB(512), 0)) > 0)
		got += (uint64_t)k;
	r->cpu = (cpu_now() - t0) * (double)GIB / (double)(got ? got : 1);
	free(b);
	return NULL;
}

/* A loopback TCP stream of 1 GiB: the sender's CPU (send() of 1 MiB, or sendfile of fd), the receiver's in *rcpu. */
static double tcp(int file_fd, double *rcpu)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	char *b = filled(MIB(1), 5);
	struct rx rx;
	pthread_t th;
	double t0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) ||
	    connect(s, (struct sockaddr *)&sa, sizeof(sa)) || (rx.fd = accept(l, NULL, NULL)) < 0) {
		perror("loopback");
		exit(1);
	}
	close(l);
	pthread_create(&th, NULL, receive, &rx);
	t0 = cpu_now();
	for (uint64_t d = 0; d < GIB;) {
		off_t o = (off_t)d;
		ssize_t k = file_fd >= 0 ? sendfile(s, file_fd, &o, MIB(1)) : send(s, b, MIB(1), 0);

		if (k <= 0)
			abort();
		d += (uint64_t)k;
	}
	t0 = cpu_now() - t0;
	shutdown(s, SHUT_WR);
	pthread_join(th, NULL);
	close(s);
	close(rx.fd);
	free(b);
	*rcpu = rx.cpu;
	return t0;
}

int main(int argc, char **argv)
{
	double recv_cpu, send_cpu, sf_cpu, sf_recv;
	int fd;

	if (argc > 1)
		dir = argv[1];
	printf("| step (alone, one thread) | CPU s per GiB |\n|---|---|\n");
	send_cpu = tcp(-1, &recv_cpu);
	row("receive: recv() of a loopback stream, 512 KiB reads", recv_cpu);
	row("gather: memcpy of 16 KiB pieces into 256 KiB buffers", copy(KIB(16), KIB(512), KIB(256)));
	row("write: pwrite of 256 KiB into a new file", write_file(KIB(256), &fd));
	row("hash: sha256, bytes in cache", sha(MIB(1), 0));
	row("hash: sha256, bytes out of cache", sha(RING, 0));
	row("hash: sha256, bytes out of cache, a page at a time, prefetched", sha(RING, 1));
	row("copy out: pread of 1 MiB from the page cache", read_file(fd, MIB(1)));
	row("copy out: memcpy of 1 MiB from buffers out of cache", copy(MIB(1), RING, MIB(1)));
	row("send: send() of 1 MiB to a loopback stream", send_cpu);
	sf_cpu = tcp(fd, &sf_recv);
	row("send: sendfile of 1 MiB from the page cache to a loopback stream", sf_cpu);
	close(fd);
	return 0;
}
