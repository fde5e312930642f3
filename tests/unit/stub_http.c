/* stub_http.c - canned HTTP answers for upstream tests (see stub_http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stub_http.h"

#define MAX_LOG 1024
#define MAX_CONNS 64
#define MAX_FLAKY 16
#define MAX_ROUTES 64

struct route {
	char *target, *headers, *body;
	int status;
};

struct conn {
	struct stub *s;
	int fd;
	pthread_t th;
};

struct stub {
	int lfd, port;
	atomic_int stopping;
	pthread_t accept_th;
	pthread_mutex_t lock;
	struct conn *conns[MAX_CONNS];
	int nconns;
	struct stub_req log[MAX_LOG];
	int nlog;
	char flaky_key[MAX_FLAKY][64];
	int flaky_count[MAX_FLAKY];
	struct route routes[MAX_ROUTES];
	int nroutes;
	atomic_int hold;
};

void stub_fill(void *buf, uint64_t off, size_t n)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = stub_byte(off + i);
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int send_pattern(int fd, uint64_t off, uint64_t n)
{
	char buf[16384];

	while (n) {
		size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		stub_fill(buf, off, k);
		if (send_all(fd, buf, k))
			return -1;
		off += k;
		n -= k;
	}
	return 0;
}

static int send_head(int fd, int status, const char *extra, uint64_t clen)
{
	char h[2048];
	int n = snprintf(h, sizeof(h), "HTTP/1.1 %d X\r\nContent-Length: %llu\r\n%s\r\n", status,
			 (unsigned long long)clen, extra ? extra : "");

	return send_all(fd, h, (size_t)n);
}

static int send_text(int fd, int status, const char *extra, const char *body, int head)
{
	if (send_head(fd, status, extra, strlen(body)))
		return -1;
	return head ? 0 : send_all(fd, body, strlen(body));
}

/* Parse "bytes=a-b" / "bytes=a-" against size; 1 if a valid single range. */
static int parse_range(const char *r, uint64_t size, uint64_t *a, uint64_t *b)
{
	unsigned long long x, y;
	char dash;

	if (strncmp(r, "bytes=", 6))
		return 0;
	if (sscanf(r + 6, "%llu-%llu", &x, &y) == 2)
		;
	else if (sscanf(r + 6, "%llu%c", &x, &dash) == 2 && dash == '-')
		y = size - 1;
	else
		return 0;
	if (x >= size || y < x)
		return 0;
	if (y >= size)
		y = size - 1;
	*a = x;
	*b = y;
	return 1;
}

static void stall(struct stub *s, int fd)
{
	while (!s->stopping) {
		struct pollfd p = { fd, POLLIN, 0 };
		char c;
		if (poll(&p, 1, 50) > 0 && recv(fd, &c, 1, MSG_PEEK) <= 0)
			return;          /* client went away */
	}
}

static void wait_hold(struct stub *s)
{
	while (s->hold && !s->stopping)
		usleep(2000);
}

/* A canned answer for r, sent; 1 to keep the connection, 0 to close, -1 if none. */
static int answer_canned(struct stub *s, int fd, const struct stub_req *r, int head)
{
	struct route rt = { 0 };
	int i, rc;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nroutes; i++)
		if (!strcmp(s->routes[i].target, r->path)) {
			rt.status = s->routes[i].status;
			rt.headers = strdup(s->routes[i].headers);
			rt.body = strdup(s->routes[i].body);
			break;
		}
	pthread_mutex_unlock(&s->lock);
	if (!rt.status)
		return -1;
	wait_hold(s);
	rc = send_text(fd, rt.status, rt.headers, rt.body, head) == 0;
	free(rt.headers);
	free(rt.body);
	return rc;
}

/* Answer one request; returns 1 to keep the connection open. */
static int answer(struct stub *s, int fd, const struct stub_req *r, const char *raw)
{
	int head = strcmp(r->method, "HEAD") == 0;
	unsigned long long n = 0, k = 0;
	char extra[1024], key[64];
	int port = 0, off = 0, canned;
	uint64_t a, b;

	if ((canned = answer_canned(s, fd, r, head)) >= 0)
		return canned;
	if (sscanf(r->path, "/hold/%llu", &n) == 1) {
		if (send_head(fd, 200, NULL, n))
			return 0;
		wait_hold(s);
		return head || send_pattern(fd, 0, n) == 0;
	}
	if (sscanf(r->path, "/bytes/%llu", &n) == 1 || sscanf(r->path, "/norange/%llu", &n) == 1 ||
	    sscanf(r->path, "/badrange/%llu", &n) == 1) {
		int ranged = strncmp(r->path, "/norange/", 9) && r->range[0] &&
			     parse_range(r->range, n, &a, &b);
		if (ranged && strncmp(r->path, "/badrange/", 10) == 0) {
			snprintf(extra, sizeof(extra), "Content-Range: bytes %llu-%llu/%llu\r\n",
				 (unsigned long long)a + 1, (unsigned long long)b + 1, n);
			if (send_head(fd, 206, extra, b - a + 1) || (!head && send_pattern(fd, a + 1, b - a + 1)))
				return 0;
			return 1;
		}
		if (ranged) {
			snprintf(extra, sizeof(extra),
				 "Content-Range: bytes %llu-%llu/%llu\r\nETag: \"e%llu\"\r\n",
				 (unsigned long long)a, (unsigned long long)b, n, n);
			if (send_head(fd, 206, extra, b - a + 1) || (!head && send_pattern(fd, a, b - a + 1)))
				return 0;
			return 1;
		}
		snprintf(extra, sizeof(extra), "ETag: \"e%llu\"\r\nX-Repo-Commit: %040d\r\n", n, 7);
		if (send_head(fd, 200, extra, n) || (!head && send_pattern(fd, 0, n)))
			return 0;
		return 1;
	}
	if (sscanf(r->path, "/redirect/%d/%n", &port, &off) == 1 && off) {
		snprintf(extra, sizeof(extra),
			 "Location: http://cdn.test:%d/%s\r\nX-Linked-Size: 1234\r\n"
			 "X-Linked-Etag: \"abc\"\r\nX-Repo-Commit: %040d\r\n", port, r->path + off, 7);
		return send_text(fd, 302, extra, "redirect", head) == 0;
	}
	if (strncmp(r->path, "/relredirect/", 13) == 0) {
		snprintf(extra, sizeof(extra), "Location: /%s\r\n", r->path + 13);
		return send_text(fd, 302, extra, "redirect", head) == 0;
	}
	if (sscanf(r->path, "/stall/%llu", &n) == 1) {
		if (send_head(fd, 200, NULL, n) || send_pattern(fd, 0, n < 1000 ? n : 1000))
			return 0;
		stall(s, fd);
		return 0;
	}
	if (sscanf(r->path, "/drop/%llu", &n) == 1) {
		if (send_head(fd, 200, NULL, n) == 0)
			send_pattern(fd, 0, n / 2);
		return 0;
	}
	if (sscanf(r->path, "/status/%llu", &n) == 1)
		return send_text(fd, (int)n, NULL, "status body", head) == 0;
	if (sscanf(r->path, "/flaky/%llu/%63s", &k, key) == 2) {
		int i, c = 0;
		pthread_mutex_lock(&s->lock);
		for (i = 0; i < MAX_FLAKY && s->flaky_key[i][0]; i++)
			if (strcmp(s->flaky_key[i], key) == 0)
				break;
		if (i < MAX_FLAKY) {
			snprintf(s->flaky_key[i], sizeof(s->flaky_key[i]), "%s", key);
			c = ++s->flaky_count[i];
		}
		pthread_mutex_unlock(&s->lock);
		if ((unsigned long long)c <= k)
			return send_text(fd, 503, NULL, "busy", head) == 0;
		if (send_head(fd, 200, NULL, 16) || (!head && send_pattern(fd, 0, 16)))
			return 0;
		return 1;
	}
	if (strcmp(r->path, "/echo") == 0)
		return send_text(fd, 200, NULL, raw, head) == 0;
	return send_text(fd, 404, NULL, "not found", head) == 0;
}

static void header_value(const char *raw, const char *name, char *out, size_t cap)
{
	const char *p = raw;
	size_t nl = strlen(name);

	out[0] = '\0';
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e;
			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			snprintf(out, cap, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
			return;
		}
	}
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct stub *s = c->s;
	char buf[8192];
	size_t have = 0;

	for (;;) {
		char *end, target[512];
		struct stub_req r;
		ssize_t k;
		size_t used;

		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end) {
			if (have >= sizeof(buf) - 1)
				break;
			k = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);
			if (k <= 0)
				break;
			have += (size_t)k;
			continue;
		}
		end[2] = '\0';
		used = (size_t)(end + 4 - buf);
		memset(&r, 0, sizeof(r));
		if (sscanf(buf, "%7s %511s", r.method, target) != 2)
			break;
		if (strncmp(target, "http://", 7) == 0) {
			const char *slash = strchr(target + 7, '/');
			r.proxied = 1;
			snprintf(r.path, sizeof(r.path), "%s", slash ? slash : "/");
		} else {
			snprintf(r.path, sizeof(r.path), "%s", target);
		}
		header_value(buf, "Authorization", r.auth, sizeof(r.auth));
		header_value(buf, "Range", r.range, sizeof(r.range));
		pthread_mutex_lock(&s->lock);
		if (s->nlog < MAX_LOG)
			s->log[s->nlog++] = r;
		pthread_mutex_unlock(&s->lock);
		if (!answer(s, c->fd, &r, buf))
			break;
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct stub *s = arg;

	while (!s->stopping) {
		struct pollfd p = { s->lfd, POLLIN, 0 };
		struct conn *c;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		if (s->nconns == MAX_CONNS) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		c->s = s;
		c->fd = fd;
		s->conns[s->nconns++] = c;
		pthread_create(&c->th, NULL, conn_main, c);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

struct stub *stub_start(void)
{
	struct stub *s = calloc(1, sizeof(*s));
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int one = 1;

	pthread_mutex_init(&s->lock, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(s->lfd, 64) ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &al)) {
		perror("stub");
		abort();
	}
	s->port = ntohs(a.sin_port);
	pthread_create(&s->accept_th, NULL, accept_main, s);
	return s;
}

int stub_port(struct stub *s)
{
	return s->port;
}

void stub_stop(struct stub *s)
{
	int i;

	s->stopping = 1;
	pthread_join(s->accept_th, NULL);
	for (i = 0; i < s->nconns; i++)
		shutdown(s->conns[i]->fd, SHUT_RDWR);
	for (i = 0; i < s->nconns; i++) {
		pthread_join(s->conns[i]->th, NULL);
		close(s->conns[i]->fd);
		free(s->conns[i]);
	}
	close(s->lfd);
	for (i = 0; i < s->nroutes; i++) {
		free(s->routes[i].target);
		free(s->routes[i].headers);
		free(s->routes[i].body);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int stub_connections(struct stub *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nconns;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int stub_requests(struct stub *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nlog;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void stub_request(struct stub *s, int i, struct stub_req *out)
{
	pthread_mutex_lock(&s->lock);
	if (i >= 0 && i < s->nlog)
		*out = s->log[i];
	else
		memset(out, 0, sizeof(*out));
	pthread_mutex_unlock(&s->lock);
}

void stub_route(struct stub *s, const char *target, int status, const char *headers,
		const char *body)
{
	struct route *rt = NULL;
	int i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nroutes && !rt; i++)
		if (!strcmp(s->routes[i].target, target))
			rt = &s->routes[i];
	if (!rt) {
		if (s->nroutes == MAX_ROUTES)
			abort();
		rt = &s->routes[s->nroutes++];
		rt->target = strdup(target);
	} else {
		free(rt->headers);
		free(rt->body);
	}
	rt->status = status;
	rt->headers = strdup(headers ? headers : "");
	rt->body = strdup(body ? body : "");
	pthread_mutex_unlock(&s->lock);
}

int stub_hits(struct stub *s, const char *target)
{
	int i, n = 0;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nlog; i++)
		n += strcmp(s->log[i].path, target) == 0;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void stub_hold(struct stub *s, int on)
{
	s->hold = on;
}
