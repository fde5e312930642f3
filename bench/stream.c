/*
 * stream.c - bench-stream: large-file download throughput.
 *
 *   bench-stream [-n STREAMS] [-r REPEATS] [-b BUF_MIB] [-s STATUS]
 *                [-p SIZE] [-H 'Name: value']... URL
 *
 * Each of STREAMS threads opens one connection, sends a GET for URL and
 * recv()s the answer into a multi-MiB buffer, REPEATS times on the same
 * keep-alive connection.  With -p SIZE (the file's size in bytes) the
 * streams read the file in parts, as parallel downloaders do: stream i asks
 * for Range bytes [i*SIZE/STREAMS, (i+1)*SIZE/STREAMS) and expects 206.
 * It prints one line:
 *
 *   streams=4 repeats=1 bytes=4294967296 seconds=1.234 gbps=3.480 slowest_gbps=0.870
 *
 * gbps is decimal GB/s of body bytes over the wall time from the first
 * stream's start to the last stream's end (the aggregate); slowest_gbps is
 * the slowest single stream.
 *
 * Why not curl or wrk: both read through small buffers and top out near
 * 1.2-1.5 GB/s on this machine, below what nginx serves over loopback, so
 * they measure themselves.  A big recv() buffer lets the kernel hand over as
 * much as is queued per call, which is the cheapest a receiver can be while
 * still copying the data out (as a real client must).
 *
 * Every body is checked: the status must be the expected one, the response
 * must carry a Content-Length, and exactly that many bytes must arrive.
 * Any mismatch is an error and the exit status is 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define MAX_STREAMS 256

struct opts {
	struct bench_url url;
	int streams;
	int repeats;
	size_t bufsize;
	int status;
	struct bench_headers headers;
	unsigned long long parts;        /* -p: the file's size, read in parts */
};

struct stream {
	pthread_t tid;
	const struct opts *o;
	char *req;                       /* this stream's request */
	size_t req_len;
	pthread_barrier_t *start;
	uint64_t bytes;
	uint64_t t_start, t_end;
	char error[256];
};

static void usage(void)
{
	fprintf(stderr, "usage: bench-stream [-n STREAMS] [-r REPEATS] [-b BUF_MIB] "
		"[-s STATUS] [-p SIZE] [-H 'Name: value']... http://HOST:PORT/PATH\n");
	exit(2);
}

/* Check a complete response; 0 if it is what we asked for. */
static int check_response(struct stream *s, const struct bench_resp *r,
			  size_t used, size_t got)
{
	if (used != got) {
		snprintf(s->error, sizeof(s->error),
			 "%zu bytes after the end of the response", got - used);
		return -1;
	}
	if (r->status != s->o->status) {
		snprintf(s->error, sizeof(s->error), "status %d, expected %d",
			 r->status, s->o->status);
		return -1;
	}
	if (!r->has_length || r->chunked) {
		snprintf(s->error, sizeof(s->error),
			 "no Content-Length (a file answer must have one)");
		return -1;
	}
	if (r->body_bytes != r->content_length) {
		snprintf(s->error, sizeof(s->error),
			 "body %llu bytes, Content-Length %llu",
			 (unsigned long long)r->body_bytes,
			 (unsigned long long)r->content_length);
		return -1;
	}
	return 0;
}

/* One request/response on `fd`; adds the body size to s->bytes. */
static int fetch_once(struct stream *s, int fd, char *buf, int *keep_alive)
{
	struct bench_resp *r = bench_xmalloc(sizeof(*r));
	int rc = -1;

	bench_resp_reset(r, 0);
	if (bench_send_all(fd, s->req, s->req_len) < 0) {
		snprintf(s->error, sizeof(s->error), "send: %s", strerror(errno));
		goto cleanup;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, s->o->bufsize, 0);
		size_t used;
		int done;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(s->error, sizeof(s->error), "recv: %s", strerror(errno));
			goto cleanup;
		}
		if (n == 0) {
			done = bench_resp_eof(r);
			used = 0;
		} else {
			done = bench_resp_feed(r, buf, (size_t)n, &used);
		}
		if (done < 0) {
			snprintf(s->error, sizeof(s->error), "%s", r->error);
			goto cleanup;
		}
		if (done) {
			if (check_response(s, r, used, n > 0 ? (size_t)n : 0) < 0)
				goto cleanup;
			break;
		}
	}
	s->bytes += r->body_bytes;
	*keep_alive = r->keep_alive;
	rc = 0;
cleanup:
	free(r);
	return rc;
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	char *buf = bench_xmalloc(s->o->bufsize);
	int fd, i, keep_alive = 1;

	/* Fault the buffer in now so page faults do not land in the timing. */
	memset(buf, 0, s->o->bufsize);
	fd = bench_connect(&s->o->url);
	if (fd < 0)
		snprintf(s->error, sizeof(s->error), "connect: %s", strerror(errno));
	pthread_barrier_wait(s->start);
	s->t_start = bench_now_ns();
	for (i = 0; fd >= 0 && i < s->o->repeats; i++) {
		if (!keep_alive) {
			close(fd);
			fd = bench_connect(&s->o->url);
			if (fd < 0) {
				snprintf(s->error, sizeof(s->error), "reconnect: %s",
					 strerror(errno));
				break;
			}
		}
		if (fetch_once(s, fd, buf, &keep_alive) < 0)
			break;
	}
	s->t_end = bench_now_ns();
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	int c;

	o->streams = 1;
	o->repeats = 1;
	o->bufsize = 4u << 20;
	o->status = 200;
	while ((c = getopt(argc, argv, "n:r:b:s:p:H:")) != -1) {
		switch (c) {
		case 'n': o->streams = atoi(optarg); break;
		case 'r': o->repeats = atoi(optarg); break;
		case 'b': o->bufsize = (size_t)atoi(optarg) << 20; break;
		case 's': o->status = atoi(optarg); break;
		case 'p': o->parts = strtoull(optarg, NULL, 10); o->status = 206; break;
		case 'H': bench_headers_add(&o->headers, optarg); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || o->streams < 1 || o->streams > MAX_STREAMS ||
	    o->repeats < 1 || o->bufsize == 0)
		usage();
	if (bench_url_parse(&o->url, argv[optind]) < 0)
		bench_die("bad URL (want http://IPv4:PORT/PATH): %s", argv[optind]);
	if (o->parts && o->parts < (unsigned long long)o->streams)
		bench_die("-p: a file of %llu bytes has no %d parts", o->parts, o->streams);
}

/* Stream i's request: the whole file, or its part of it (-p). */
static void make_request(struct stream *s, const struct opts *o, int i)
{
	struct bench_headers h = o->headers;
	char range[96];

	if (o->parts) {
		unsigned long long a = o->parts * (unsigned long long)i / (unsigned)o->streams;
		unsigned long long b = o->parts * (unsigned long long)(i + 1) / (unsigned)o->streams;
		snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", a, b - 1);
		bench_headers_add(&h, range);
	}
	s->req = bench_request("GET", &o->url, &h, &s->req_len);
}

int main(int argc, char **argv)
{
	static struct opts o;
	struct stream *s;
	pthread_barrier_t start;
	uint64_t bytes = 0, t0 = UINT64_MAX, t1 = 0;
	double slowest = 0;
	int i, failed = 0;

	bench_set_prog(argv[0]);
	parse_args(&o, argc, argv);
	s = calloc((size_t)o.streams, sizeof(*s));
	if (!s)
		bench_die("out of memory");
	pthread_barrier_init(&start, NULL, (unsigned)o.streams);
	for (i = 0; i < o.streams; i++) {
		s[i].o = &o;
		s[i].start = &start;
		make_request(&s[i], &o, i);
		if (pthread_create(&s[i].tid, NULL, stream_main, &s[i]) != 0)
			bench_die("pthread_create failed");
	}
	for (i = 0; i < o.streams; i++) {
		double secs, gbps;

		pthread_join(s[i].tid, NULL);
		if (s[i].error[0]) {
			fprintf(stderr, "bench-stream: stream %d: %s\n", i, s[i].error);
			failed = 1;
		}
		bytes += s[i].bytes;
		t0 = s[i].t_start < t0 ? s[i].t_start : t0;
		t1 = s[i].t_end > t1 ? s[i].t_end : t1;
		secs = (double)(s[i].t_end - s[i].t_start) / 1e9;
		gbps = secs > 0 ? (double)s[i].bytes / secs / 1e9 : 0;
		if (i == 0 || gbps < slowest)
			slowest = gbps;
		free(s[i].req);
	}
	if (failed)
		return 1;
	printf("streams=%d repeats=%d bytes=%llu seconds=%.6f gbps=%.3f slowest_gbps=%.3f\n",
	       o.streams, o.repeats, (unsigned long long)bytes,
	       (double)(t1 - t0) / 1e9, (double)bytes / ((double)(t1 - t0) / 1e9) / 1e9,
	       slowest);
	return 0;
}
