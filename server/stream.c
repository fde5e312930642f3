/* stream.c - bodies still arriving: blob and relay streams (see stream.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/blobcache.h"
#include "hfm/blobfollow.h"
#include "hfm/hash.h"
#include "hfm/stream.h"

/* Relay buffer: bounds memory per denied download. */
#define RELAY_BUF (256u * 1024)

/* What blob and relay streams share: the origin, and how far to trust it. */
struct origin_stream {
	struct hfm_stream base;
	char *url, *auth;
	char oid[HFM_SHA256_HEX + 1];
	uint64_t size;
	int started;
	int whole;                       /* first read at 0 up to size: verify */
};

static void origin_init(struct origin_stream *s, const struct hfm_stream_origin *o,
			const struct hfm_stream_ops *ops)
{
	s->base.ops = ops;
	s->url = hfm_strdup(o->url);
	s->auth = o->authorization ? hfm_strdup(o->authorization) : NULL;
	snprintf(s->oid, sizeof(s->oid), "%s", o->oid);
	s->size = o->size;
}

/* Every read first: the first one tells whether the response is the whole file. */
static void origin_read(struct origin_stream *s, uint64_t pos, uint64_t end)
{
	if (!s->started) {
		s->started = 1;
		s->whole = pos == 0 && end == s->size;
	}
}

static void origin_dispose(struct origin_stream *s)
{
	free(s->url);
	free(s->auth);
}

/* ---- blob streams --------------------------------------------------------- */

/*
 * How a blob stream answers, decided at its first prime or read (stream.h):
 *  M_WHOLE  the whole file from the blob, its last byte after verification
 *  M_LIVE   a range none of whose bytes were stored before the request
 *           came: read from the blob as its fetches write them
 *  M_WAIT   a range over unverified stored bytes, or any range with
 *           strict: answered from the blob once the fill verified it
 *  M_MIXED  a range over unverified stored bytes: those parts relayed
 *           from upstream (not stored), the rest read live
 *  M_RELAY  a range of a blob over range_fill_max, or of a blob another
 *           process fills: relayed, not stored
 *  M_FOLLOW the whole file while another process fills it (blobfollow.h):
 *           its durable blocks as they come, hashed here, the last byte
 *           after the digest matched (or once the blob is published); if
 *           that process goes away, this one takes the fill over (M_WHOLE)
 *  M_SMALL  any range of a small blob (hfm_blob_in_memory): fetched whole,
 *           verified, then read from memory; no byte before verification
 */
enum blob_mode { M_NONE, M_WHOLE, M_LIVE, M_WAIT, M_MIXED, M_RELAY, M_FOLLOW, M_SMALL };

#define FOLLOWING 2                      /* blob_attach: another process fills it */

#define STALE_MAX 16                     /* stored parts a mixed range keeps apart */

struct blob_stream {
	struct origin_stream os;
	struct hfm_stream_cache c;
	uint64_t arrived_ns;
	struct hfm_blob *blob;
	struct hfm_blob_reader reader;
	uint64_t discards;
	int fd;
	enum blob_mode mode;
	struct hfm_blob_range stale[STALE_MAX];   /* M_MIXED: relayed parts */
	size_t nstale;
	struct hfm_stream *relay;        /* M_RELAY; M_MIXED inside a stale part */
	uint64_t relay_end;              /* where that relay stops */
	struct hfm_follow *follow;       /* M_FOLLOW */
	struct hfm_hashctx *hash;        /* M_FOLLOW: the bytes handed out, in order */
	uint64_t hashed;
};

/*
 * Open the blob in this process's blob cache: 0; FOLLOWING when another
 * process fills it (s->follow is set); or an error.  The filler may let go
 * between the two looks: then the blob is opened again here (a takeover).
 */
static int blob_attach(struct blob_stream *s)
{
	struct hfm_follow *f;
	int rc = 0, frc;

	if (s->blob)
		return 0;
	for (int tries = 0; tries < 3; tries++) {
		if (!(rc = hfm_blob_open(&s->blob, s->c.bc, s->os.oid, s->os.size)))
			break;
		if (!s->c.followers || rc != HFM_EIO)
			return rc;
		frc = hfm_follow_open(&f, s->c.followers, s->c.store, s->os.oid, s->os.size);
		if (frc == 0) {
			hfm_follow_free(s->follow);
			s->follow = f;
			return FOLLOWING;
		}
		if (frc != HFM_FOLLOW_TAKEOVER)
			return rc;
	}
	if (rc)
		return rc;
	hfm_follow_free(s->follow);
	s->follow = NULL;
	s->discards = hfm_blob_discards(s->blob);
	if (hfm_blob_in_memory(s->blob))
		return 0;                /* read from memory, no fd */
	s->fd = hfm_blob_fd(s->blob);
	if (s->fd < 0)
		return hfm_error_set(HFM_EIO, "blob %s: cannot open", s->os.oid);
	return 0;
}

/* A relay of [pos, ...) for the stream's file, replacing any other. */
static int blob_relay(struct blob_stream *s, uint64_t end)
{
	struct hfm_stream_origin o = {
		.url = s->os.url,
		.authorization = s->os.auth,
		.oid = s->os.oid,
		.size = s->os.size,
	};

	hfm_stream_free(s->relay);
	s->relay = NULL;
	s->relay_end = end;
	return hfm_stream_relay_new(&s->relay, s->c.up, &o);
}

static int blob_decide(struct blob_stream *s, uint64_t start, uint64_t end)
{
	struct hfm_blob_origin origin = { s->os.url, s->os.auth };
	uint64_t unfilled, stale = 0;
	int rc;

	if (start == 0 && end == s->os.size) {
		s->mode = M_WHOLE;
		if ((rc = blob_attach(s)) != FOLLOWING) {
			if (!rc && hfm_blob_in_memory(s->blob))
				s->mode = M_SMALL;
			return rc;
		}
		s->mode = M_FOLLOW;
		s->hash = hfm_hashctx_new(s->os.size, strlen(s->os.oid) == HFM_SHA1_HEX,
					  strlen(s->os.oid) == HFM_SHA256_HEX);
		return 0;
	}
	if (!s->c.strict && s->c.range_fill_max && s->os.size > s->c.range_fill_max) {
		s->mode = M_RELAY;
		return blob_relay(s, end);
	}
	if ((rc = blob_attach(s)) == FOLLOWING) {
		/* its stored bytes are not verified and older than this request */
		s->mode = M_RELAY;
		return blob_relay(s, end);
	}
	if (rc)
		return rc;
	if (hfm_blob_in_memory(s->blob)) {
		s->mode = M_SMALL;       /* verified before any byte, live or strict */
		return 0;
	}
	/*
	 * Strict: the fill this request waited for failed verification (the
	 * request runs again from the top, with a new stream).  Its answer
	 * ends there rather than wait for the next fill: a client retries, an
	 * upstream that keeps sending wrong bytes is not asked for the whole
	 * blob again and again.  (Otherwise the range is fresh now: no stored
	 * bytes, it reads what comes.)
	 */
	if (s->c.strict && s->arrived_ns && hfm_blob_discarded_ns(s->blob) > s->arrived_ns)
		return hfm_error_set(HFM_EUPSTREAM, "upstream sent content that is not %s",
				     s->os.oid);
	rc = hfm_blob_fill(s->blob, &origin, s->c.strict);
	if (s->c.strict) {
		if (rc)
			return rc;
		s->mode = M_WAIT;
		return 0;
	}
	s->nstale = hfm_blob_unverified(s->blob, s->arrived_ns, start, end, s->stale, STALE_MAX,
					&unfilled);
	for (size_t i = 0; i < s->nstale; i++)
		stale += s->stale[i].end - s->stale[i].start;
	if (!s->nstale)
		s->mode = M_LIVE;
	else if (rc == 0 && unfilled <= stale)
		s->mode = M_WAIT;        /* the fill is done about as soon as a relay */
	else
		s->mode = M_MIXED;
	return 0;
}

/* M_WAIT: 0 once the blob is verified, HFM_EAGAIN with w armed before. */
static int blob_wait(struct blob_stream *s, struct hfm_waiter *w)
{
	int rc;

	if (!w)
		return hfm_error_set(HFM_EINVAL, "blob %s: waiting needs a waiter", s->os.oid);
	rc = hfm_blob_wait_verified(s->blob, s->discards, w);
	if (rc == HFM_ECORRUPT)
		return hfm_error_set(HFM_EUPSTREAM, "upstream sent content that is not %s",
				     s->os.oid);
	/* armed: a fill that ends later wakes w; one that ended already will not */
	if (rc == HFM_EAGAIN && !hfm_blob_filling(s->blob))
		return hfm_error_set(HFM_EUPSTREAM, "the fill of blob %s ended early",
				     s->os.oid);
	return rc;
}

/* M_MIXED: the stale part holding pos, or NULL. */
static const struct hfm_blob_range *blob_stale_at(struct blob_stream *s, uint64_t pos)
{
	for (size_t i = 0; i < s->nstale; i++)
		if (pos >= s->stale[i].start && pos < s->stale[i].end)
			return &s->stale[i];
	return NULL;
}

/*
 * M_FOLLOW: bytes readable at pos, 0 with *avail set; FOLLOWING when the
 * filler went away and the blob is this process's now (mode M_WHOLE, read
 * it as such); HFM_EAGAIN (w armed) or an error.
 */
static int follow_ensure(struct blob_stream *s, uint64_t pos, uint64_t *avail,
			 struct hfm_waiter *w)
{
	int rc;

	for (int tries = 0; tries < 3; tries++) {
		rc = hfm_follow_ensure(avail, s->follow, pos, w);
		if (rc != HFM_FOLLOW_TAKEOVER)
			return rc;
		/* the filler is gone: fill it here, from its durable blocks */
		hfm_follow_free(s->follow);
		s->follow = NULL;
		if ((rc = blob_attach(s)) == 0) {
			s->mode = M_WHOLE;
			return FOLLOWING;
		}
		if (rc != FOLLOWING)
			return rc;
		/* another node won the takeover: follow it */
	}
	return hfm_error_set(HFM_EUPSTREAM, "blob %s changes hands too often", s->os.oid);
}

/* M_FOLLOW: read what is durable; the last byte once the digest matched. */
static ssize_t follow_read(struct blob_stream *s, uint64_t pos, uint64_t end, char *buf,
			   size_t max, uint64_t avail)
{
	uint64_t n = HFM_MIN(HFM_MIN(avail, end - pos), (uint64_t)max);
	int published = hfm_follow_published(s->follow);
	ssize_t got;

	if (pos != s->hashed)
		return hfm_error_set(HFM_EINVAL, "blob %s: follower read out of order", s->os.oid);
	if (!published && pos + n >= end && pos + 1 < end)
		n = end - 1 - pos;           /* the last byte after the digest */
	got = pread(hfm_follow_fd(s->follow), buf, n, (off_t)pos);
	if (got <= 0)
		return hfm_error_set(HFM_EIO, "blob %s: read failed", s->os.oid);
	hfm_hashctx_update(s->hash, buf, (size_t)got);
	s->hashed += (uint64_t)got;
	if (s->hashed == s->os.size) {
		char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
		hfm_hashctx_final(s->hash, sha1, sha256);
		s->hash = NULL;
		if (strcmp(strlen(s->os.oid) == HFM_SHA1_HEX ? sha1 : sha256, s->os.oid))
			return hfm_error_set(HFM_ECORRUPT, "blob %s: the bytes another node "
					     "stored are not its content", s->os.oid);
	}
	return got;
}

/* M_SMALL: the blob's verified bytes at pos (fetching it whole first). */
static int small_ensure(struct blob_stream *s, uint64_t pos, uint64_t end, uint64_t *avail,
			struct hfm_waiter *w)
{
	struct hfm_blob_origin origin = { s->os.url, s->os.auth };
	int rc = hfm_blob_ensure(avail, s->blob, &s->reader, pos, end, &origin, w);

	/* discarded under this reader: the upstream's bytes were not the blob */
	if (rc == HFM_ECORRUPT)
		return hfm_error_set(HFM_EUPSTREAM, "upstream sent content that is not %s",
				     s->os.oid);
	return rc;
}

static int blob_prime(struct hfm_stream *stream, uint64_t start, uint64_t end, struct hfm_waiter *w)
{
	struct blob_stream *s = (struct blob_stream *)stream;
	struct hfm_blob_origin origin = { s->os.url, s->os.auth };
	uint64_t avail;
	int rc;

	if (!s->mode && (rc = blob_decide(s, start, end)))
		return rc;
	switch (s->mode) {
	case M_RELAY:
		return 0;                /* relays answer at once (as for repos not cached) */
	case M_FOLLOW:
		if ((rc = follow_ensure(s, start, &avail, w)) != FOLLOWING)
			return rc;
		break;                   /* taken over: the blob is this process's now */
	case M_WAIT:
		return blob_wait(s, w);
	case M_MIXED:
		if (blob_stale_at(s, start) && !hfm_blob_complete(s->blob))
			return 0;
		break;
	case M_SMALL:
		return small_ensure(s, start, end, &avail, w);
	default:
		break;
	}
	return hfm_blob_ensure(&avail, s->blob, &s->reader, start, end, &origin, w);
}

/*
 * n readable bytes at pos.  A reader that keeps up with a cold download
 * finds them in the buffers the digest has not hashed yet: copied from
 * there, a cold 1 GiB GET spends 0.06-0.08 s of CPU on them instead of
 * 0.14-0.17 in pread (docs/performance.md, "The cold GET").
 */
static ssize_t blob_pread(struct blob_stream *s, char *buf, uint64_t n, uint64_t pos)
{
	size_t mem = hfm_blob_read_recent(s->blob, buf, (size_t)n, pos);
	ssize_t got;

	if (mem == n)
		return (ssize_t)mem;
	got = pread(s->fd, buf + mem, n - mem, (off_t)(pos + mem));
	if (got <= 0 && !mem)
		return hfm_error_set(HFM_EIO, "blob %s: read failed", s->os.oid);
	return (ssize_t)mem + HFM_MAX(got, 0);
}

static ssize_t blob_read(struct hfm_stream *stream, uint64_t pos, uint64_t end, char *buf,
			 size_t max, struct hfm_waiter *w)
{
	struct blob_stream *s = (struct blob_stream *)stream;
	struct hfm_blob_origin origin = { s->os.url, s->os.auth };
	uint64_t avail, lim = end;
	int rc;

	if (!s->mode && (rc = blob_decide(s, pos, end)))
		return rc;
	if (s->mode == M_RELAY)
		return hfm_stream_read(s->relay, pos, end, buf, max, w);
	if (s->mode == M_SMALL) {
		if ((rc = small_ensure(s, pos, end, &avail, w)))
			return rc;
		return hfm_blob_read_memory(s->blob, buf, HFM_MIN(end - pos, (uint64_t)max), pos);
	}
	if (s->mode == M_FOLLOW) {
		rc = follow_ensure(s, pos, &avail, w);
		if (rc == 0)
			return follow_read(s, pos, end, buf, max, avail);
		if (rc != FOLLOWING)
			return rc;
		/* taken over: on as M_WHOLE (the blob verifies itself) */
	}
	if (s->mode == M_WAIT) {
		if ((rc = blob_wait(s, w)))
			return rc;
		return blob_pread(s, buf, HFM_MIN(end - pos, (uint64_t)max), pos);
	}
	if (s->mode == M_MIXED && !hfm_blob_complete(s->blob)) {
		const struct hfm_blob_range *st = blob_stale_at(s, pos);
		if (st) {
			if (!s->relay || s->relay_end != st->end) {
				if ((rc = blob_relay(s, st->end)))
					return rc;
			}
			return hfm_stream_read(s->relay, pos, st->end, buf, max, w);
		}
		/* live up to the next stored part */
		for (size_t i = 0; i < s->nstale; i++)
			if (s->stale[i].start > pos && s->stale[i].start < lim)
				lim = s->stale[i].start;
	}
	if (s->mode == M_MIXED && s->relay) {
		hfm_stream_free(s->relay);   /* past its part, or the blob verified */
		s->relay = NULL;
	}
	rc = hfm_blob_ensure(&avail, s->blob, &s->reader, pos, end, &origin, w);
	if (rc)
		return rc;
	/*
	 * The last byte of a whole-file answer waits for verification: if the
	 * blob turns out corrupt the client sees a short body, not a wrong one.
	 */
	if (s->mode == M_WHOLE && pos + HFM_MIN(avail, (uint64_t)max) >= end) {
		if (pos + 1 < end)
			lim = end - 1;
		else if ((rc = hfm_blob_wait_verified(s->blob, s->discards, w)))
			return rc;
	}
	return blob_pread(s, buf, HFM_MIN(HFM_MIN(avail, lim - pos), (uint64_t)max), pos);
}

static void blob_free(struct hfm_stream *stream)
{
	struct blob_stream *s = (struct blob_stream *)stream;

	hfm_stream_free(s->relay);
	hfm_follow_free(s->follow);
	if (s->hash) {
		char a[HFM_SHA1_HEX + 1], b[HFM_SHA256_HEX + 1];
		hfm_hashctx_final(s->hash, a, b);
	}
	hfm_blob_reader_dispose(&s->reader);
	if (s->fd >= 0)
		close(s->fd);
	if (s->blob)
		hfm_blob_release(s->blob);
	origin_dispose(&s->os);
	free(s);
}

static const struct hfm_stream_ops blob_ops = {
	.read = blob_read,
	.prime = blob_prime,
	.free = blob_free,
};

int hfm_stream_blob_new(struct hfm_stream **out, const struct hfm_stream_cache *c,
			const struct hfm_stream_origin *o)
{
	struct blob_stream *s = hfm_calloc(1, sizeof(*s));

	origin_init(&s->os, o, &blob_ops);
	s->c = *c;
	s->arrived_ns = o->arrived_ns;
	s->fd = -1;
	*out = &s->os.base;
	return 0;
}

/* ---- relay streams -------------------------------------------------------- */

/*
 * The transfer's callbacks and the reader share the state below under
 * `lock`.  The struct is freed by whichever of free() and on_done() comes
 * last (`refs`), because on_done may still run after the response is gone.
 */
struct relay_stream {
	struct origin_stream os;
	struct hfm_upstream *up;
	struct hfm_up_xfer *x;
	pthread_mutex_t lock;
	int refs;
	char *buf;                       /* [head, tail) unread */
	size_t head, tail;
	uint64_t start, want;            /* asked range */
	uint64_t got;                    /* body bytes taken */
	int paused, done, rc, skip_ok;
	uint64_t skip;                   /* 200 instead of 206: bytes to drop */
	struct hfm_hashctx *hash;        /* whole-file answers */
	int verified;                    /* 1 ok, -1 failed */
	struct hfm_waitq waiters;
};

static void relay_unref(struct relay_stream *s)
{
	pthread_mutex_lock(&s->lock);
	int last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	if (s->hash) {
		char a[HFM_SHA1_HEX + 1], b[HFM_SHA256_HEX + 1];
		hfm_hashctx_final(s->hash, a, b);
	}
	if (s->x)
		hfm_up_release(s->x);
	hfm_waitq_fire(hfm_waitq_take(&s->waiters));
	pthread_mutex_destroy(&s->lock);
	free(s->buf);
	origin_dispose(&s->os);
	free(s);
}

static int relay_headers(void *cls, const struct hfm_up_response *r)
{
	struct relay_stream *s = cls;

	if (r->status == 206) {
		char want[96];
		const char *cr = hfm_up_header(r, "Content-Range");
		snprintf(want, sizeof(want), "bytes %llu-%llu/%llu", (unsigned long long)s->start,
			 (unsigned long long)(s->start + s->want - 1),
			 (unsigned long long)s->os.size);
		if (!cr || strcmp(cr, want))
			return hfm_error_set(HFM_EUPSTREAM, "upstream sent the wrong range");
		return HFM_UP_CONTINUE;
	}
	if (r->status == 200) {
		if (r->content_length >= 0 && (uint64_t)r->content_length != s->os.size)
			return hfm_error_set(HFM_EUPSTREAM, "upstream size differs");
		s->skip = s->start;          /* Range ignored: drop what precedes */
		return HFM_UP_CONTINUE;
	}
	if (r->status == 401 || r->status == 403)
		return hfm_error_set(HFM_EGATED, "upstream refused access (%ld)", r->status);
	return hfm_error_set(HFM_EUPSTREAM, "upstream answered %ld", r->status);
}

static int relay_data(void *cls, const void *data, size_t n)
{
	struct relay_stream *s = cls;
	const char *p = data;
	struct hfm_waitq_node *wake;
	int rc = HFM_UP_CONTINUE;

	pthread_mutex_lock(&s->lock);
	size_t drop = (size_t)HFM_MIN(s->skip, (uint64_t)n);
	size_t take = n - drop;
	if (s->got + take > s->want)
		take = (size_t)(s->want - s->got);
	if (s->tail + take > RELAY_BUF && s->head) {
		memmove(s->buf, s->buf + s->head, s->tail - s->head);
		s->tail -= s->head;
		s->head = 0;
	}
	if (s->tail + take > RELAY_BUF) {
		s->paused = 1;               /* libcurl keeps the bytes for later */
		pthread_mutex_unlock(&s->lock);
		return HFM_UP_PAUSE;
	}
	s->skip -= drop;
	memcpy(s->buf + s->tail, p + drop, take);
	s->tail += take;
	s->got += take;
	if (s->hash)
		hfm_hashctx_update(s->hash, p + drop, take);
	if (s->got == s->want && drop + take < n)
		rc = HFM_UP_STOP;            /* 200 for a range: the rest is not ours */
	wake = hfm_waitq_take(&s->waiters);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	return rc;
}

static void relay_done(void *cls, int result)
{
	struct relay_stream *s = cls;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&s->lock);
	s->done = 1;
	s->rc = result;
	if (!result && s->got != s->want)
		s->rc = HFM_EUPSTREAM;
	if (s->hash) {
		char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
		hfm_hashctx_final(s->hash, sha1, sha256);
		s->hash = NULL;
		const char *got = strlen(s->os.oid) == HFM_SHA1_HEX ? sha1 : sha256;
		s->verified = !s->rc && !strcmp(got, s->os.oid) ? 1 : -1;
	}
	wake = hfm_waitq_take(&s->waiters);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	relay_unref(s);
}

static ssize_t relay_read(struct hfm_stream *stream, uint64_t pos, uint64_t end, char *buf,
			  size_t max, struct hfm_waiter *w)
{
	struct relay_stream *s = (struct relay_stream *)stream;
	ssize_t rc;

	origin_read(&s->os, pos, end);
	if (!s->x && !s->done) {
		struct hfm_up_request req = {
			.method = HFM_UP_GET,
			.kind = HFM_UPK_RELAY,
			.url = s->os.url,
			.authorization = s->os.auth,
			.has_range = pos > 0 || end < s->os.size,
			.range_start = pos,
			.range_len = end - pos,
			.follow_redirects = 1,
			.max_attempts = 3,
			.on_headers = relay_headers,
			.on_data = relay_data,
			.on_done = relay_done,
			.cls = s,
		};
		s->start = pos;
		s->want = end - pos;
		s->buf = hfm_malloc(RELAY_BUF);
		if (s->os.whole)
			s->hash = hfm_hashctx_new(s->os.size, strlen(s->os.oid) == HFM_SHA1_HEX,
						  strlen(s->os.oid) == HFM_SHA256_HEX);
		s->refs++;                   /* the transfer's */
		if ((rc = hfm_up_start(&s->x, s->up, &req))) {
			s->refs--;
			return rc;
		}
	}
	pthread_mutex_lock(&s->lock);
	size_t have = s->tail - s->head;
	uint64_t stream_pos = s->start + s->got - have;   /* offset of buf[head] */
	if (stream_pos != pos) {
		pthread_mutex_unlock(&s->lock);
		return hfm_error_set(HFM_EINVAL, "relay stream read out of order");
	}
	/* hold back the last byte of a whole file until its digest matched */
	if (s->os.whole && have && pos + have >= s->os.size && s->verified != 1) {
		have--;
		if (s->verified == -1) {
			pthread_mutex_unlock(&s->lock);
			return hfm_error_set(HFM_ECORRUPT, "upstream sent content that is not %s",
					     s->os.oid);
		}
	}
	if (have) {
		size_t n = HFM_MIN(have, max);
		memcpy(buf, s->buf + s->head, n);
		s->head += n;
		int resume = s->paused;
		s->paused = 0;
		pthread_mutex_unlock(&s->lock);
		if (resume)
			hfm_up_resume(s->x);
		return (ssize_t)n;
	}
	if (s->done) {
		rc = s->rc ? s->rc : (s->verified == -1 ? HFM_ECORRUPT : HFM_EUPSTREAM);
		pthread_mutex_unlock(&s->lock);
		return hfm_error_set((int)rc, "upstream transfer ended early");
	}
	hfm_waitq_add(&s->waiters, w);
	pthread_mutex_unlock(&s->lock);
	return HFM_EAGAIN;
}

static void relay_free(struct hfm_stream *stream)
{
	struct relay_stream *s = (struct relay_stream *)stream;

	if (s->x)
		hfm_up_cancel(s->x);
	relay_unref(s);
}

static const struct hfm_stream_ops relay_ops = {
	.read = relay_read,
	.free = relay_free,
};

int hfm_stream_relay_new(struct hfm_stream **out, struct hfm_upstream *up,
			 const struct hfm_stream_origin *o)
{
	struct relay_stream *s = hfm_calloc(1, sizeof(*s));

	origin_init(&s->os, o, &relay_ops);
	s->up = up;
	s->refs = 1;
	pthread_mutex_init(&s->lock, NULL);
	*out = &s->os.base;
	return 0;
}
