/* gitrelay.c - git smart HTTP relayed to the upstream hub (see gitrelay.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/gitrelay.h"
#include "hfm/hash.h"

#define BUF_SIZE (256u * 1024)
#define RESUME_ROOM (64u * 1024)        /* curl hands over up to 64 KiB at once */
#define PENDING_NS (15ull * 60 * 1000000000)

struct rl_stream {
	struct hfm_stream base;
	pthread_mutex_t lock;
	struct hfm_ring ring;
	int got_headers, done, result, paused, freed, refs;
	long status;
	char content_type[128];
	char www_auth[256];
	struct hfm_waitq waiters;
	struct hfm_up_xfer *x;
};

struct pending {
	const void *key;
	char fp[HFM_SHA1_HEX + 1];
	struct rl_stream *s;
	uint64_t created_ns;
	struct pending *next;
};

struct hfm_gitrelay {
	struct hfm_upstream *up;
	char *base;
	pthread_mutex_t lock;
	struct pending *pending;
};

/* ---- the stream ----------------------------------------------------------------- */

static void rl_unref_locked(struct rl_stream *s)
{
	int last = --s->refs == 0;

	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	hfm_waitq_fire(hfm_waitq_take(&s->waiters));
	if (s->x)
		hfm_up_release(s->x);
	pthread_mutex_destroy(&s->lock);
	hfm_ring_dispose(&s->ring);
	free(s);
}

static void copy_header(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "");
}

static int on_headers(void *cls, const struct hfm_up_response *r)
{
	struct rl_stream *s = cls;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&s->lock);
	s->got_headers = 1;
	s->status = r->status;
	copy_header(s->content_type, sizeof(s->content_type), hfm_up_header(r, "Content-Type"));
	copy_header(s->www_auth, sizeof(s->www_auth), hfm_up_header(r, "WWW-Authenticate"));
	wake = hfm_waitq_take(&s->waiters);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	return HFM_UP_CONTINUE;
}

static int on_data(void *cls, const void *data, size_t n)
{
	struct rl_stream *s = cls;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&s->lock);
	if (s->freed) {
		pthread_mutex_unlock(&s->lock);
		return HFM_UP_STOP;
	}
	if (s->ring.cap - s->ring.len < n) {
		s->paused = 1;
		pthread_mutex_unlock(&s->lock);
		return HFM_UP_PAUSE;
	}
	hfm_ring_put(&s->ring, data, n);
	wake = hfm_waitq_take(&s->waiters);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	return HFM_UP_CONTINUE;
}

static void on_done(void *cls, int result)
{
	struct rl_stream *s = cls;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&s->lock);
	s->done = 1;
	s->result = result;
	wake = hfm_waitq_take(&s->waiters);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	pthread_mutex_lock(&s->lock);
	rl_unref_locked(s);
}

static ssize_t rl_read(struct hfm_stream *base, uint64_t pos, uint64_t end, char *buf,
		       size_t max, struct hfm_waiter *w)
{
	struct rl_stream *s = (struct rl_stream *)base;
	int resume = 0;
	ssize_t rc;

	(void)pos;
	(void)end;
	pthread_mutex_lock(&s->lock);
	if (s->ring.len) {
		rc = (ssize_t)hfm_ring_get(&s->ring, buf, max);
		if (s->paused && s->ring.cap - s->ring.len >= RESUME_ROOM) {
			s->paused = 0;
			resume = 1;
		}
	} else if (s->done) {
		rc = s->result ? hfm_error_set(s->result, "the upstream's answer broke off") : 0;
	} else {
		if (w)
			hfm_waitq_add(&s->waiters, w);
		rc = HFM_EAGAIN;
	}
	pthread_mutex_unlock(&s->lock);
	if (resume)
		hfm_up_resume(s->x);
	return rc;
}

static void rl_free(struct hfm_stream *base)
{
	struct rl_stream *s = (struct rl_stream *)base;

	pthread_mutex_lock(&s->lock);
	s->freed = 1;
	if (!s->done)
		hfm_up_cancel(s->x);
	rl_unref_locked(s);
}

static const struct hfm_stream_ops rl_ops = {
	.read = rl_read,
	.prime = NULL,
	.free = rl_free,
};

/* ---- the relay ------------------------------------------------------------------ */

int hfm_gitrelay_new(struct hfm_gitrelay **out, const char *upstream_url,
		     const struct hfm_up_opts *o)
{
	struct hfm_gitrelay *g = hfm_calloc(1, sizeof(*g));
	struct hfm_up_opts dflt = { 0 };
	size_t n;
	int rc;

	if ((rc = hfm_up_new(&g->up, o ? o : &dflt))) {
		free(g);
		return rc;
	}
	g->base = hfm_strdup(upstream_url);
	n = strlen(g->base);
	while (n && g->base[n - 1] == '/')
		g->base[--n] = '\0';
	pthread_mutex_init(&g->lock, NULL);
	*out = g;
	return 0;
}

static void pending_drop(struct pending *p)
{
	hfm_stream_free(&p->s->base);
	free(p);
}

void hfm_gitrelay_free(struct hfm_gitrelay *g)
{
	if (!g)
		return;
	while (g->pending) {
		struct pending *p = g->pending;

		g->pending = p->next;
		pending_drop(p);
	}
	hfm_up_free(g->up);
	pthread_mutex_destroy(&g->lock);
	free(g->base);
	free(g);
}

/* What makes two runs the same relayed request. */
static void fingerprint(char out[HFM_SHA1_HEX + 1], const struct hfm_gitrelay_req *rq)
{
	struct hfm_buf b = HFM_BUF_INIT(SIZE_MAX / 2);
	const char *const *h;

	hfm_buf_printf(&b, "%s\n%d\n%s\n", rq->path, rq->post,
		       rq->authorization ? rq->authorization : "");
	for (h = rq->headers; h && *h; h++)
		hfm_buf_printf(&b, "%s\n", *h);
	hfm_buf_put(&b, rq->body, rq->body_len);
	hfm_sha1_hex(out, hfm_buf_cstr(&b), b.len);
	hfm_buf_dispose(&b);
}

static int start(struct rl_stream **out, struct hfm_gitrelay *g, const struct hfm_gitrelay_req *rq)
{
	struct rl_stream *s = hfm_calloc(1, sizeof(*s));
	char *url = hfm_asprintf("%s%s", g->base, rq->path);
	struct hfm_up_request req = {
		.method = rq->post ? HFM_UP_POST : HFM_UP_GET,
		.url = url,
		.authorization = rq->authorization,
		.headers = rq->headers,
		.body = rq->body,
		.body_len = rq->body_len,
		.follow_redirects = 1,
		.max_attempts = rq->post ? 1 : 3,
		.on_headers = on_headers,
		.on_data = on_data,
		.on_done = on_done,
		.cls = s,
	};
	int rc;

	s->base.ops = &rl_ops;
	pthread_mutex_init(&s->lock, NULL);
	hfm_ring_init(&s->ring, BUF_SIZE);
	s->refs = 2;                         /* the holder, the transfer until on_done */
	rc = hfm_up_start(&s->x, g->up, &req);
	free(url);
	if (rc) {
		pthread_mutex_destroy(&s->lock);
		hfm_ring_dispose(&s->ring);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int hfm_gitrelay_run(struct hfm_gitrelay_answer *out, struct hfm_gitrelay *g,
		     const struct hfm_gitrelay_req *rq, struct hfm_waiter *w)
{
	struct pending **pp, *p = NULL, *old = NULL;
	uint64_t now = hfm_mono_ns();
	char fp[HFM_SHA1_HEX + 1];
	struct rl_stream *s;
	int rc;

	memset(out, 0, sizeof(*out));
	fingerprint(fp, rq);
	pthread_mutex_lock(&g->lock);
	for (pp = &g->pending; *pp;) {
		struct pending *e = *pp;

		if (e->key == rq->key && !strcmp(e->fp, fp) && !p) {
			p = e;
			pp = &e->next;
		} else if (e->key == rq->key || e->created_ns + PENDING_NS < now) {
			*pp = e->next;            /* another request at that address, or forgotten */
			e->next = old;
			old = e;
		} else {
			pp = &e->next;
		}
	}
	if (!p) {
		if ((rc = start(&s, g, rq))) {
			pthread_mutex_unlock(&g->lock);
			goto cleanup_old;
		}
		p = hfm_calloc(1, sizeof(*p));
		p->key = rq->key;
		memcpy(p->fp, fp, sizeof(p->fp));
		p->s = s;
		p->created_ns = now;
		p->next = g->pending;
		g->pending = p;
	}
	s = p->s;
	pthread_mutex_lock(&s->lock);
	if (s->got_headers) {
		rc = 0;
	} else if (s->done) {
		rc = s->result ? s->result : HFM_EUPSTREAM;
		hfm_error_set(rc, "the upstream hub did not answer");
	} else {
		if (w)
			hfm_waitq_add(&s->waiters, w);
		rc = HFM_EAGAIN;
	}
	if (!rc) {
		out->status = s->status;
		memcpy(out->content_type, s->content_type, sizeof(out->content_type));
		memcpy(out->www_authenticate, s->www_auth, sizeof(out->www_authenticate));
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != HFM_EAGAIN) {
		/* this run takes it: out of the table */
		for (pp = &g->pending; *pp != p; pp = &(*pp)->next)
			;
		*pp = p->next;
		if (rc) {
			p->next = old;
			old = p;
		} else {
			out->body = &s->base;
			free(p);
		}
	}
	pthread_mutex_unlock(&g->lock);
cleanup_old:
	while (old) {
		struct pending *e = old;

		old = e->next;
		pending_drop(e);
	}
	return rc;
}
