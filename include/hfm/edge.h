/*
 * edge.h - the connection edge in front of the HTTP library: the accept
 * loop, the request-head deadline and the connection cap.
 *
 * One thread accepts every connection.  A plain-HTTP connection is held
 * here, costing a few dozen bytes and no library state, until its first
 * request head has arrived whole (read with MSG_PEEK, so the bytes stay in
 * the socket for the library); the head is checked (httphead.h) and either
 * handed over (`admit`) or answered here and closed.  An HTTPS connection
 * is handed over at once: its head is encrypted.
 *
 * Deadlines: a request's head (and a POST's body) must arrive within
 * `head_timeout_ms` of the connection's accept, or, on a kept-alive
 * connection, of the first byte after the previous answer; a connection
 * that misses it is closed (408 when it is still held here).  A kept-alive
 * connection with nothing in flight is idle: the library's idle timeout
 * applies, not this one.  For handed-over connections the library reports
 * each request's progress through hfm_edge_conn_*(), and the edge closes a
 * late one with shutdown(): the fd stays valid until the library's close
 * callback (hfm_edge_conn_closed), which takes the same lock, so the edge
 * never touches an fd that was closed and reused.
 *
 * The cap: at most `max_connections` open connections, held here or handed
 * over.  A connection accepted at the cap makes room by closing the oldest
 * connection that is still sending its head, else the oldest idle one; if
 * every connection is answering a request, the new one is answered 503
 * (plain HTTP) or closed (HTTPS) at once.  Never left unaccepted.
 *
 * Threading: hfm_edge_start/stop/free from one thread; hfm_edge_conn_*()
 * from the library's threads, one connection's calls never at once;
 * hfm_edge_stats and hfm_edge_note_abort from any thread.
 */
#ifndef HFM_EDGE_H
#define HFM_EDGE_H

#include <stdint.h>
#include <sys/socket.h>

struct hfm_edge;
struct hfm_edge_conn;

/* A request the edge answered itself, for the access log. */
struct hfm_edge_answer {
	const struct sockaddr *addr;
	const char *method;              /* from the request line, not terminated; may be NULL */
	size_t method_len;
	const char *target;
	size_t target_len;
	unsigned status;
	uint64_t bytes;                  /* body bytes sent */
	uint64_t ns;                     /* accept to answer */
};

struct hfm_edge_opts {
	int listen_fd;                   /* bound and listening; the edge closes it */
	int tls;                         /* heads are encrypted: hand over at once */
	unsigned max_connections;
	unsigned head_timeout_ms;
	size_t head_budget;              /* httphead.h: HFM_HEAD_BUDGET */
	uint64_t max_body;               /* a Content-Length over it is answered 413 */
	/* Hand `fd` to the library: 0, or -1 when the library refused it and
	 * closed it. */
	int (*admit)(void *cls, int fd, const struct sockaddr *sa, socklen_t salen);
	/* A request answered here (a bad head, 503 at the cap); may be NULL. */
	void (*answered)(void *cls, const struct hfm_edge_answer *a);
	void *cls;
};

int hfm_edge_start(struct hfm_edge **out, const struct hfm_edge_opts *o);
/* Stop accepting and close every connection held here.  Handed-over
 * connections keep calling hfm_edge_conn_*() until the library closed them;
 * then hfm_edge_free(). */
void hfm_edge_stop(struct hfm_edge *e);
void hfm_edge_free(struct hfm_edge *e);

/*
 * A handed-over connection, from the library's callbacks: started (with its
 * fd; NULL if the edge does not know it), a request line arrived, the whole
 * request arrived (no deadline while it is answered), its answer is done
 * (idle until the next byte), closed (the fd is about to be closed).
 */
struct hfm_edge_conn *hfm_edge_conn_started(struct hfm_edge *e, int fd);
void hfm_edge_conn_head(struct hfm_edge_conn *c);
void hfm_edge_conn_busy(struct hfm_edge_conn *c);
void hfm_edge_conn_idle(struct hfm_edge_conn *c);
void hfm_edge_conn_closed(struct hfm_edge_conn *c);

/*
 * Bytes the peer's TCP acknowledged on `fd` so far (tcpi_bytes_acked), or
 * -1: how much of an answer that ended early reached the client.
 */
int64_t hfm_sock_bytes_acked(int fd);

/* Write p[0, n) to a non-blocking socket, as much as it takes now. */
void hfm_sock_send(int fd, const void *p, size_t n);

/* A connection the library ended early (its log line), counted for the
 * rate-limited summary instead of one stderr line each. */
void hfm_edge_note_abort(struct hfm_edge *e);

struct hfm_edge_stats {
	uint64_t open;                   /* connections now, held + handed over */
	uint64_t held;                   /* of which held here (heads on their way) */
	uint64_t accepted;
	uint64_t head_timeouts;          /* closed at the head deadline */
	uint64_t evicted;                /* closed to make room at the cap */
	uint64_t refused;                /* answered 503 (or closed) at the cap */
	uint64_t rejected;               /* bad heads answered here */
	uint64_t aborts;                 /* hfm_edge_note_abort */
};
void hfm_edge_stats(struct hfm_edge *e, struct hfm_edge_stats *out);

#endif
