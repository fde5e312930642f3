/*
 * edge.c - the accept loop, the head deadline and the connection cap (see
 * edge.h).
 *
 * One thread runs an epoll loop over the listening socket, the connections
 * held here (edge-triggered: a held head stays in the socket, so only new
 * bytes wake us) and an eventfd that stops it.  Held connections sit in two
 * lists in accept order, which is also deadline order: heads on their way,
 * and lingering ones (answered, write side shut, read side drained for a
 * moment so that the client reads the answer instead of a reset).
 *
 * Handed-over connections are tracked under `lock`: `byfd` finds the record
 * when the library reports the connection started, and two lists hold those
 * whose head is on its way and those that are idle.  The same thread checks
 * their deadlines every TICK_MS, and looks for bytes on idle ones once a
 * second through TCP_INFO (the library reads them, so only the kernel's
 * time of the last received data shows that a next head has begun).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
/* linux/tcp.h, not netinet/tcp.h: glibc's struct tcp_info lacks
 * tcpi_bytes_acked; the two headers cannot be included together. */
#include <linux/tcp.h>

#include "hfm/common.h"
#include "hfm/edge.h"
#include "hfm/httphead.h"

#define TICK_MS 250
#define IDLE_SCAN_MS 1000
#define LINGER_MS 2000               /* how long an answered connection is drained */
#define MAX_LINGER 4096              /* beyond, answered connections are closed at once */
#define SUMMARY_MS 60000
#define ACCEPT_BATCH 512

/* ---- lists -------------------------------------------------------------------- */

/* G_DEAD: closed, freed after the epoll batch that may still name it */
enum gstate { G_HEAD, G_LINGER, G_DEAD };

struct gconn {                       /* a connection held here */
	int fd;
	enum gstate state;
	uint64_t t0_ns;                  /* accepted */
	uint64_t deadline_ns;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct gconn *prev, *next;
};

struct glist {
	struct gconn *first, *last;
	size_t n;
};

enum cstate { C_HEAD, C_BUSY, C_IDLE };

struct hfm_edge_conn {               /* a handed-over connection */
	struct hfm_edge *e;
	int fd;
	int started;                     /* the library will report its close */
	int closing;                     /* shut down by the edge: in no list */
	enum cstate state;
	uint64_t since_ns;               /* HEAD: the head began; IDLE: went idle */
	struct hfm_edge_conn *prev, *next;
};

struct clist {
	struct hfm_edge_conn *first, *last;
	size_t n;
};

#define LIST_APPEND(l, x) do { \
	(x)->next = NULL; (x)->prev = (l)->last; \
	if ((l)->last) (l)->last->next = (x); else (l)->first = (x); \
	(l)->last = (x); (l)->n++; \
} while (0)

#define LIST_REMOVE(l, x) do { \
	if ((x)->prev) (x)->prev->next = (x)->next; else (l)->first = (x)->next; \
	if ((x)->next) (x)->next->prev = (x)->prev; else (l)->last = (x)->prev; \
	(x)->prev = (x)->next = NULL; (l)->n--; \
} while (0)

struct hfm_edge {
	struct hfm_edge_opts o;
	int epfd, evfd;
	pthread_t thr;
	int thr_started;
	char *peek;                      /* head_budget + 1 */
	struct glist heads, lingers;     /* edge thread only */
	struct glist dead;               /* closed this batch, freed after it (edge thread) */
	int accept_paused;
	uint64_t accept_resume_ns;
	uint64_t next_idle_scan_ns;
	uint64_t last_summary_ns;
	struct hfm_edge_stats reported;  /* counters at the last summary */
	uint64_t reported_accept_fail;

	pthread_mutex_t lock;            /* handed-over connections */
	struct clist cheads, cidles;
	struct hfm_edge_conn **byfd;
	size_t nfd;
	size_t handed, closing;

	atomic_ullong held, accepted, head_timeouts, evicted, refused, rejected, aborts;
	atomic_ullong open_handed, accept_fail;
};

/* The markers of the two non-connection fds in epoll. */
static char mark_listen, mark_stop;

/* ---- sockets ------------------------------------------------------------------- */

static int tcp_info(int fd, struct tcp_info *ti)
{
	socklen_t len = sizeof(*ti);
	memset(ti, 0, sizeof(*ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len);
}

int64_t hfm_sock_bytes_acked(int fd)
{
	struct tcp_info ti;
	if (tcp_info(fd, &ti))
		return -1;
	return (int64_t)ti.tcpi_bytes_acked;
}

void hfm_sock_send(int fd, const void *buf, size_t n)
{
	/* A fresh socket's send buffer takes a canned answer whole. */
	const char *p = buf;
	while (n && fd >= 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

/* ---- connections held here ------------------------------------------------------ */

/*
 * g is done with (closed or handed over).  Not freed yet: an event of the
 * batch edge_main is going through may still name it (make_room closes the
 * oldest held head while the listening socket's event is handled), so it
 * waits in e->dead, skipped, until the batch ends.
 */
static void g_release(struct hfm_edge *e, struct gconn *g)
{
	g->state = G_DEAD;
	g->fd = -1;
	LIST_APPEND(&e->dead, g);
}

static void g_free_dead(struct hfm_edge *e)
{
	while (e->dead.first) {
		struct gconn *g = e->dead.first;
		LIST_REMOVE(&e->dead, g);
		free(g);
	}
}

static void g_close(struct hfm_edge *e, struct gconn *g)
{
	if (g->state == G_HEAD)
		LIST_REMOVE(&e->heads, g);
	else
		LIST_REMOVE(&e->lingers, g);
	close(g->fd);                     /* also leaves the epoll set */
	atomic_fetch_sub(&e->held, 1);
	g_release(e, g);
}

/*
 * Answer `status` on a held connection, shut its write side and drain it for
 * a moment (a close with unread bytes would send a reset that can overtake
 * the answer).  Returns the body bytes sent.
 */
static uint64_t g_answer(struct hfm_edge *e, struct gconn *g, unsigned status, const char *why)
{
	struct hfm_buf b = HFM_BUF_INIT(4096);
	uint64_t body = hfm_head_canned(&b, status, why);
	hfm_sock_send(g->fd, b.ptr, b.len);
	hfm_buf_dispose(&b);
	shutdown(g->fd, SHUT_WR);
	if (e->lingers.n >= MAX_LINGER) {
		g_close(e, g);
		return body;
	}
	if (g->state == G_HEAD)
		LIST_REMOVE(&e->heads, g);
	g->state = G_LINGER;
	g->deadline_ns = hfm_mono_ns() + (uint64_t)LINGER_MS * 1000000ull;
	LIST_APPEND(&e->lingers, g);
	return body;
}

static void g_drain(struct hfm_edge *e, struct gconn *g)
{
	char buf[16384];
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(g->fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		break;
	}
	g_close(e, g);
}

/* ---- handed-over connections ---------------------------------------------------- */

static void c_unlist(struct hfm_edge *e, struct hfm_edge_conn *c)
{
	if (c->closing)
		return;
	if (c->state == C_HEAD)
		LIST_REMOVE(&e->cheads, c);
	else if (c->state == C_IDLE)
		LIST_REMOVE(&e->cidles, c);
}

/* Put c in state `st` (and the list of it) since `since`.  Under e->lock. */
static void c_set(struct hfm_edge *e, struct hfm_edge_conn *c, enum cstate st, uint64_t since)
{
	c_unlist(e, c);
	c->state = st;
	c->since_ns = since;
	if (st == C_HEAD)
		LIST_APPEND(&e->cheads, c);
	else if (st == C_IDLE)
		LIST_APPEND(&e->cidles, c);
}

/* Stop tracking c (closed, refused, or found stale) and free it.  Under e->lock. */
static void c_forget(struct hfm_edge *e, struct hfm_edge_conn *c)
{
	c_unlist(e, c);
	if (c->closing)
		e->closing--;
	if ((size_t)c->fd < e->nfd && e->byfd[c->fd] == c)
		e->byfd[c->fd] = NULL;
	e->handed--;
	atomic_fetch_sub(&e->open_handed, 1);
	free(c);
}

/* Close a handed-over connection: the library sees the shutdown and closes
 * it, then reports it closed.  Under e->lock. */
static void c_shut(struct hfm_edge *e, struct hfm_edge_conn *c)
{
	c_unlist(e, c);
	c->closing = 1;
	e->closing++;
	shutdown(c->fd, SHUT_RDWR);
}

static void handover(struct hfm_edge *e, int fd, const struct sockaddr *sa, socklen_t salen,
		     uint64_t since)
{
	struct hfm_edge_conn *c = hfm_calloc(1, sizeof(*c));
	c->e = e;
	c->fd = fd;
	c->state = C_HEAD;
	c->since_ns = since;
	pthread_mutex_lock(&e->lock);
	if ((size_t)fd >= e->nfd) {
		size_t n = HFM_MAX(e->nfd * 2, (size_t)fd + 1);
		e->byfd = hfm_realloc(e->byfd, n * sizeof(*e->byfd));
		memset(e->byfd + e->nfd, 0, (n - e->nfd) * sizeof(*e->byfd));
		e->nfd = n;
	}
	/* A record left here was closed by the library without being started
	 * (out of memory): accept() could not have returned this fd otherwise. */
	if (e->byfd[fd])
		c_forget(e, e->byfd[fd]);
	e->byfd[fd] = c;
	LIST_APPEND(&e->cheads, c);
	e->handed++;
	atomic_fetch_add(&e->open_handed, 1);
	pthread_mutex_unlock(&e->lock);
	if (e->o.admit(e->o.cls, fd, sa, salen) == 0)
		return;
	/* Refused and closed by the library, never started. */
	pthread_mutex_lock(&e->lock);
	if (e->byfd[fd] == c)
		c_forget(e, c);
	pthread_mutex_unlock(&e->lock);
}

struct hfm_edge_conn *hfm_edge_conn_started(struct hfm_edge *e, int fd)
{
	struct hfm_edge_conn *c = NULL;
	pthread_mutex_lock(&e->lock);
	if (fd >= 0 && (size_t)fd < e->nfd && (c = e->byfd[fd]))
		c->started = 1;
	pthread_mutex_unlock(&e->lock);
	return c;
}

void hfm_edge_conn_head(struct hfm_edge_conn *c)
{
	if (!c)
		return;
	struct hfm_edge *e = c->e;
	pthread_mutex_lock(&e->lock);
	if (!c->closing && c->state == C_IDLE)
		c_set(e, c, C_HEAD, hfm_mono_ns());
	pthread_mutex_unlock(&e->lock);
}

void hfm_edge_conn_busy(struct hfm_edge_conn *c)
{
	if (!c)
		return;
	struct hfm_edge *e = c->e;
	pthread_mutex_lock(&e->lock);
	if (!c->closing)
		c_set(e, c, C_BUSY, 0);
	pthread_mutex_unlock(&e->lock);
}

void hfm_edge_conn_idle(struct hfm_edge_conn *c)
{
	if (!c)
		return;
	struct hfm_edge *e = c->e;
	pthread_mutex_lock(&e->lock);
	if (!c->closing)
		c_set(e, c, C_IDLE, hfm_mono_ns());
	pthread_mutex_unlock(&e->lock);
}

void hfm_edge_conn_closed(struct hfm_edge_conn *c)
{
	if (!c)
		return;
	struct hfm_edge *e = c->e;
	pthread_mutex_lock(&e->lock);
	c_forget(e, c);
	pthread_mutex_unlock(&e->lock);
}

/*
 * Deadlines of handed-over connections; on idle ones, a byte received after
 * they went idle starts a head.  Under no lock; takes e->lock.
 */
static void scan_handed(struct hfm_edge *e, uint64_t now)
{
	uint64_t timeout = (uint64_t)e->o.head_timeout_ms * 1000000ull;
	pthread_mutex_lock(&e->lock);
	if (now >= e->next_idle_scan_ns) {
		e->next_idle_scan_ns = now + (uint64_t)IDLE_SCAN_MS * 1000000ull;
		struct hfm_edge_conn *c = e->cidles.first, *next;
		for (; c; c = next) {
			next = c->next;
			struct tcp_info ti;
			if (!c->started || tcp_info(c->fd, &ti))
				continue;
			uint64_t ago = (uint64_t)ti.tcpi_last_data_recv * 1000000ull;
			if (ago > now)
				continue;
			uint64_t last = now - ago;
			/* 50 ms: the kernel counts in jiffies */
			if (last > c->since_ns + 50000000ull)
				c_set(e, c, C_HEAD, last);
		}
	}
	struct hfm_edge_conn *c = e->cheads.first, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->started && now >= c->since_ns + timeout) {
			c_shut(e, c);
			atomic_fetch_add(&e->head_timeouts, 1);
		}
	}
	pthread_mutex_unlock(&e->lock);
}

/* ---- the cap ---------------------------------------------------------------------- */

/* Connections that count against the cap.  Under e->lock. */
static size_t live(struct hfm_edge *e)
{
	return e->heads.n + e->handed - e->closing;
}

/*
 * At the cap: close the oldest connection still sending its head (held here,
 * else handed over), else the oldest idle one.  Returns whether there is
 * room now.
 */
static int make_room(struct hfm_edge *e)
{
	int ok = 1;
	if (e->heads.first) {
		g_close(e, e->heads.first);
		atomic_fetch_add(&e->evicted, 1);
		return 1;
	}
	pthread_mutex_lock(&e->lock);
	struct hfm_edge_conn *v = NULL;
	for (struct hfm_edge_conn *c = e->cheads.first; c; c = c->next)
		if (c->started && (!v || c->since_ns < v->since_ns))
			v = c;
	if (!v)
		for (v = e->cidles.first; v && !v->started; v = v->next)
			;
	if (v) {
		c_shut(e, v);
		atomic_fetch_add(&e->evicted, 1);
	} else {
		ok = 0;
	}
	pthread_mutex_unlock(&e->lock);
	return ok;
}

static void answered(struct hfm_edge *e, const struct sockaddr *sa, const char *head,
		     const struct hfm_head *h, unsigned status, uint64_t bytes, uint64_t t0)
{
	if (!e->o.answered)
		return;
	struct hfm_edge_answer a = {
		.addr = sa,
		.method = h && h->method_len ? head + h->method_off : NULL,
		.method_len = h ? h->method_len : 0,
		.target = h && h->target_len ? head + h->target_off : NULL,
		.target_len = h ? h->target_len : 0,
		.status = status,
		.bytes = bytes,
		.ns = hfm_mono_ns() - t0,
	};
	e->o.answered(e->o.cls, &a);
}

/* Full, and every connection is answering a request: 503 (or close, HTTPS). */
static void refuse(struct hfm_edge *e, int fd, struct sockaddr_storage *sa, socklen_t salen,
		   uint64_t now)
{
	atomic_fetch_add(&e->refused, 1);
	if (e->o.tls || e->lingers.n >= MAX_LINGER) {
		close(fd);
		return;
	}
	struct gconn *g = hfm_calloc(1, sizeof(*g));
	g->fd = fd;
	g->t0_ns = now;
	g->sa = *sa;
	g->salen = salen;
	g->state = G_HEAD;
	LIST_APPEND(&e->heads, g);
	atomic_fetch_add(&e->held, 1);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = g };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		g_close(e, g);
		return;
	}
	uint64_t body = g_answer(e, g, 503, "The server is at its connection limit; retry later");
	answered(e, (struct sockaddr *)sa, NULL, NULL, 503, body, now);
}

/* ---- heads held here ------------------------------------------------------------- */

/*
 * Look at what arrived of g's head: hand it over when complete and fine,
 * answer it when wrong, close it when the client left.  `hup`: the client
 * closed its side, so an incomplete head will stay incomplete.
 */
static void g_read(struct hfm_edge *e, struct gconn *g, int hup)
{
	ssize_t n = recv(g->fd, e->peek, e->o.head_budget + 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		g_close(e, g);
		return;
	}
	struct hfm_head h;
	if (!hfm_head_scan(&h, e->peek, (size_t)n, e->o.head_budget, e->o.max_body)) {
		if (hup)
			g_close(e, g);
		return;
	}
	if (h.status) {
		atomic_fetch_add(&e->rejected, 1);
		uint64_t t0 = g->t0_ns;
		struct sockaddr_storage sa = g->sa;
		/* the answer goes first: g_answer may free g */
		char line[512];
		struct hfm_head hl = h;
		size_t keep = HFM_MIN((size_t)n, sizeof(line));
		memcpy(line, e->peek, keep);
		if (hl.method_off + hl.method_len > keep)
			hl.method_len = 0;
		if (hl.target_off + hl.target_len > keep)
			hl.target_len = hl.target_off < keep ? keep - hl.target_off : 0;
		uint64_t body = g_answer(e, g, h.status, h.why);
		answered(e, (struct sockaddr *)&sa, line, &hl, h.status, body, t0);
		return;
	}
	int fd = g->fd;
	uint64_t t0 = g->t0_ns;
	struct sockaddr_storage sa = g->sa;
	socklen_t salen = g->salen;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
	LIST_REMOVE(&e->heads, g);
	atomic_fetch_sub(&e->held, 1);
	g_release(e, g);
	handover(e, fd, (struct sockaddr *)&sa, salen, t0);
}

static void accept_some(struct hfm_edge *e)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(e->o.listen_fd, (struct sockaddr *)&sa, &salen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: the listening socket stays readable,
				 * so stop watching it for a moment instead of spinning. */
				atomic_fetch_add(&e->accept_fail, 1);
				epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->o.listen_fd, NULL);
				e->accept_paused = 1;
				e->accept_resume_ns = hfm_mono_ns() + 100000000ull;
			}
			return;
		}
		atomic_fetch_add(&e->accepted, 1);
		uint64_t now = hfm_mono_ns();
		pthread_mutex_lock(&e->lock);
		size_t n = live(e);
		pthread_mutex_unlock(&e->lock);
		if (n >= e->o.max_connections && !make_room(e)) {
			refuse(e, fd, &sa, salen, now);
			continue;
		}
		if (e->o.tls) {
			handover(e, fd, (struct sockaddr *)&sa, salen, now);
			continue;
		}
		struct gconn *g = hfm_calloc(1, sizeof(*g));
		g->fd = fd;
		g->t0_ns = now;
		g->deadline_ns = now + (uint64_t)e->o.head_timeout_ms * 1000000ull;
		g->sa = sa;
		g->salen = salen;
		g->state = G_HEAD;
		LIST_APPEND(&e->heads, g);
		atomic_fetch_add(&e->held, 1);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = g };
		if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			g_close(e, g);
			continue;
		}
		/* The head often came with the connection: the add reports it,
		 * but looking now saves a round through epoll. */
		g_read(e, g, 0);
	}
}

/* ---- the loop ---------------------------------------------------------------------- */

static void summary(struct hfm_edge *e, uint64_t now)
{
	if (e->last_summary_ns && now - e->last_summary_ns < (uint64_t)SUMMARY_MS * 1000000ull)
		return;
	struct hfm_edge_stats s;
	hfm_edge_stats(e, &s);
	uint64_t fail = atomic_load(&e->accept_fail);
	uint64_t d_to = s.head_timeouts - e->reported.head_timeouts;
	uint64_t d_ev = s.evicted - e->reported.evicted;
	uint64_t d_rf = s.refused - e->reported.refused;
	uint64_t d_ab = s.aborts - e->reported.aborts;
	uint64_t d_fail = fail - e->reported_accept_fail;
	if (!d_to && !d_ev && !d_rf && !d_ab && !d_fail)
		return;
	char line[512];
	int k = snprintf(line, sizeof(line), "hfmirror: http: connections %s:",
			 e->last_summary_ns ? "in the last minute" : "so far (reported at most once a minute)");
	const char *sep = "";
	if (d_to) {
		k += snprintf(line + k, sizeof(line) - (size_t)k, "%s %llu closed at the head deadline",
			      sep, (unsigned long long)d_to);
		sep = ",";
	}
	if (d_ev) {
		k += snprintf(line + k, sizeof(line) - (size_t)k, "%s %llu closed to make room at the cap",
			      sep, (unsigned long long)d_ev);
		sep = ",";
	}
	if (d_rf) {
		k += snprintf(line + k, sizeof(line) - (size_t)k, "%s %llu refused at the cap", sep,
			      (unsigned long long)d_rf);
		sep = ",";
	}
	if (d_ab) {
		k += snprintf(line + k, sizeof(line) - (size_t)k,
			      "%s %llu ended early (client gone, reset or timed out)", sep,
			      (unsigned long long)d_ab);
		sep = ",";
	}
	if (d_fail)
		snprintf(line + k, sizeof(line) - (size_t)k,
			 "%s %llu not accepted for a moment (out of file descriptors)", sep,
			 (unsigned long long)d_fail);
	fprintf(stderr, "%s\n", line);
	e->reported = s;
	e->reported_accept_fail = fail;
	e->last_summary_ns = now;
}

static void *edge_main(void *arg)
{
	struct hfm_edge *e = arg;
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(e->epfd, evs, (int)HFM_ARRAY_SIZE(evs), TICK_MS);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &mark_stop)
				goto out;
			if (p == &mark_listen) {
				accept_some(e);
				continue;
			}
			struct gconn *g = p;
			int hup = (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
			if (g->state == G_DEAD)
				continue;        /* closed earlier in this batch */
			if (g->state == G_HEAD)
				g_read(e, g, hup);
			else
				g_drain(e, g);
		}
		uint64_t now = hfm_mono_ns();
		while (e->heads.first && e->heads.first->deadline_ns <= now) {
			atomic_fetch_add(&e->head_timeouts, 1);
			g_answer(e, e->heads.first, 408, "The request head did not arrive in time");
		}
		while (e->lingers.first && e->lingers.first->deadline_ns <= now)
			g_close(e, e->lingers.first);
		if (e->accept_paused && now >= e->accept_resume_ns) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &mark_listen };
			epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->o.listen_fd, &ev);
			e->accept_paused = 0;
		}
		scan_handed(e, now);
		summary(e, now);
		g_free_dead(e);
	}
out:
	while (e->heads.first)
		g_close(e, e->heads.first);
	while (e->lingers.first)
		g_close(e, e->lingers.first);
	g_free_dead(e);
	return NULL;
}

int hfm_edge_start(struct hfm_edge **out, const struct hfm_edge_opts *o)
{
	struct hfm_edge *e = hfm_calloc(1, sizeof(*e));
	int rc = 0;
	e->o = *o;
	e->epfd = e->evfd = -1;
	pthread_mutex_init(&e->lock, NULL);
	e->peek = hfm_malloc(o->head_budget + 1);
	struct rlimit rl;
	e->nfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 24) ? rl.rlim_cur : 65536;
	e->byfd = hfm_calloc(e->nfd, sizeof(*e->byfd));
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->epfd < 0 || e->evfd < 0) {
		rc = hfm_error_set(HFM_EIO, "edge: %s", strerror(errno));
		goto cleanup;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &mark_listen };
	struct epoll_event sv = { .events = EPOLLIN, .data.ptr = &mark_stop };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, o->listen_fd, &ev) ||
	    epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &sv)) {
		rc = hfm_error_set(HFM_EIO, "edge: %s", strerror(errno));
		goto cleanup;
	}
	if (pthread_create(&e->thr, NULL, edge_main, e)) {
		rc = hfm_error_set(HFM_EIO, "edge: cannot start its thread");
		goto cleanup;
	}
	e->thr_started = 1;
	*out = e;
	return 0;

cleanup:
	hfm_edge_free(e);
	return rc;
}

void hfm_edge_stop(struct hfm_edge *e)
{
	if (!e || !e->thr_started)
		return;
	uint64_t one = 1;
	ssize_t k = write(e->evfd, &one, sizeof(one));
	(void)k;
	pthread_join(e->thr, NULL);
	e->thr_started = 0;
	if (e->o.listen_fd >= 0) {
		close(e->o.listen_fd);
		e->o.listen_fd = -1;
	}
}

void hfm_edge_free(struct hfm_edge *e)
{
	if (!e)
		return;
	hfm_edge_stop(e);
	if (e->o.listen_fd >= 0)
		close(e->o.listen_fd);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->evfd >= 0)
		close(e->evfd);
	/* Whatever the library never reported closed (it refused it). */
	for (size_t i = 0; i < e->nfd; i++)
		free(e->byfd[i]);
	free(e->byfd);
	free(e->peek);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void hfm_edge_note_abort(struct hfm_edge *e)
{
	atomic_fetch_add(&e->aborts, 1);
}

void hfm_edge_stats(struct hfm_edge *e, struct hfm_edge_stats *s)
{
	s->held = atomic_load(&e->held);
	s->open = s->held + atomic_load(&e->open_handed);
	s->accepted = atomic_load(&e->accepted);
	s->head_timeouts = atomic_load(&e->head_timeouts);
	s->evicted = atomic_load(&e->evicted);
	s->refused = atomic_load(&e->refused);
	s->rejected = atomic_load(&e->rejected);
	s->aborts = atomic_load(&e->aborts);
}
