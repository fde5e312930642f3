/*
 * gitpack.c - upload-pack answers as streams (see gitpack.h): the worker,
 * the ring, the pkt-line and side-band framing, the packbuilder; what to
 * send is gitwalk.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "hfm/gitpack.h"
#include "hfm/gitwalk.h"
#include "hfm/hash.h"

#define RING_SIZE (1u << 20)
#define BAND_BIG (HFM_PKT_PAYLOAD_MAX - 1)   /* side-band-64k and v2: 65515 */
#define BAND_SMALL 999                        /* side-band */
#define DEFAULT_STREAMS 64
#define OBJECT_CACHE (32 << 20)               /* libgit2's parsed objects, process-wide */

/* ---- the pool ---------------------------------------------------------------- */

struct gp_stream;

struct hfm_gitpack_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;                  /* a turn freed, a worker ended */
	unsigned max_streams, max_busy, threads;
	unsigned nstreams, busy, running;
	struct gp_stream *live;               /* streams whose worker runs */
	pthread_t *zombies;                   /* ended workers to join */
	size_t nzombies;
	uint64_t started, objects, whole;
};

/* ---- a stream ----------------------------------------------------------------- */

struct gp_stream {
	struct hfm_stream base;
	struct hfm_gitpack_pool *pool;
	struct gp_stream *prev, *next;        /* pool->live, under pool->lock */
	char *path;
	struct hfm_upload_req q;

	pthread_mutex_t lock;                 /* everything down to refs */
	pthread_cond_t space, data;
	struct hfm_ring ring;
	struct hfm_waitq readers;
	int started, finished, failed, refs;
	atomic_int cancelled;

	/* the worker's own */
	git_repository *g;
	git_odb *odb;
	struct hfm_buf out;                   /* pkt-lines to emit */
	char *band;                           /* pack bytes to frame */
	size_t band_len, band_max;
	int progress, pack_started;
	struct hfm_gitwalk walk;              /* what to send */
	int64_t last_pct;
};

static void stream_unref(struct gp_stream *s);

/* ---- the ring: worker side ------------------------------------------------------ */

/* Wake readers and blocking reads.  Under s->lock; fire the list after unlocking. */
static struct hfm_waitq_node *wake_readers(struct gp_stream *s)
{
	pthread_cond_broadcast(&s->data);
	return hfm_waitq_take(&s->readers);
}

/* Copy n bytes into the ring, waiting for room.  HFM_ERROR once cancelled. */
static int emit(struct gp_stream *s, const char *p, size_t n)
{
	while (n) {
		struct hfm_waitq_node *wake;
		size_t k;

		pthread_mutex_lock(&s->lock);
		while (s->ring.len == s->ring.cap && !atomic_load(&s->cancelled))
			pthread_cond_wait(&s->space, &s->lock);
		if (atomic_load(&s->cancelled)) {
			pthread_mutex_unlock(&s->lock);
			return HFM_ERROR;
		}
		k = hfm_ring_put(&s->ring, p, n);
		wake = wake_readers(s);
		pthread_mutex_unlock(&s->lock);
		hfm_waitq_fire(wake);
		p += k;
		n -= k;
	}
	return 0;
}

/* Emit the staged pkt-lines. */
static int emit_out(struct gp_stream *s)
{
	int rc;

	if (s->out.err)
		return hfm_error_set(s->out.err, "response too large");
	rc = emit(s, s->out.ptr ? s->out.ptr : "", s->out.len);
	hfm_buf_reset(&s->out);
	return rc;
}

static int sideband(const struct gp_stream *s)
{
	return s->q.version == 2 || s->q.sideband;
}

/* A message on side-band 2 (progress), when the client wants them. */
static int say(struct gp_stream *s, const char *fmt, ...) HFM_PRINTF(2, 3);
static int say(struct gp_stream *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!s->progress)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hfm_pkt_band(&s->out, 2, msg, strlen(msg), s->band_max);
	return emit_out(s);
}

/* An error the client shows: an ERR line before the pack, side-band 3 in it. */
static void fail_msg(struct gp_stream *s, const char *msg)
{
	hfm_buf_reset(&s->out);
	if (s->pack_started && sideband(s)) {
		char *m = hfm_asprintf("error: %s\n", msg);

		hfm_pkt_band(&s->out, 3, m, strlen(m), s->band_max);
		free(m);
	} else if (!s->pack_started) {
		hfm_pkt_printf(&s->out, "ERR %s\n", msg);
	}
	emit_out(s);
}

/* Frame the staged pack bytes on side-band 1 (or as they are, without). */
static int band_flush(struct gp_stream *s)
{
	int rc;

	if (!s->band_len)
		return 0;
	if (sideband(s)) {
		hfm_pkt_band(&s->out, 1, s->band, s->band_len, s->band_max);
		s->band_len = 0;
		return emit_out(s);
	}
	rc = emit(s, s->band, s->band_len);
	s->band_len = 0;
	return rc;
}

static int pack_cb(void *buf, size_t size, void *payload)
{
	struct gp_stream *s = payload;
	const char *p = buf;

	s->pack_started = 1;
	while (size) {
		size_t k = HFM_MIN(size, s->band_max - s->band_len);

		memcpy(s->band + s->band_len, p, k);
		s->band_len += k;
		p += k;
		size -= k;
		if (s->band_len == s->band_max && band_flush(s))
			return -1;
	}
	return atomic_load(&s->cancelled) ? -1 : 0;
}

static int progress_cb(int stage, uint32_t current, uint32_t total, void *payload)
{
	struct gp_stream *s = payload;

	if (atomic_load(&s->cancelled))
		return -1;
	if (stage != GIT_PACKBUILDER_DELTAFICATION || !total)
		return 0;
	int64_t pct = (int64_t)current * 100 / total;
	if (pct == s->last_pct && current != total)
		return 0;
	s->last_pct = pct;
	if (say(s, "Compressing objects: %3d%% (%u/%u)%s", (int)pct, current, total,
		current == total ? ", done.\n" : "\r"))
		return -1;
	return 0;
}

/* Send pack file `path` as it is. */
static int send_file(struct gp_stream *s, const char *path)
{
	char *buf = hfm_malloc(RING_SIZE / 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t k;

	if (fd < 0) {
		free(buf);
		return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	}
	while (!rc && (k = read(fd, buf, RING_SIZE / 2)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
		else if (pack_cb(buf, (size_t)k, s))
			rc = HFM_ERROR;
	}
	close(fd);
	free(buf);
	return rc ? rc : band_flush(s);
}

static int packbuild(struct gp_stream *s)
{
	git_packbuilder *pb = NULL;
	size_t i;
	int rc = 0;

	if (git_packbuilder_new(&pb, s->g) < 0)
		return hfm_gitwalk_error("pack");
	git_packbuilder_set_threads(pb, s->pool->threads);
	git_packbuilder_set_callbacks(pb, progress_cb, s);
	for (i = 0; i < s->walk.nobjects && !rc; i++) {
		const struct hfm_gitobj *o = &s->walk.objects[i];

		if (git_packbuilder_insert(pb, &o->id, o->name[0] ? o->name : NULL) < 0)
			rc = hfm_gitwalk_error("pack");
		else if (atomic_load(&s->cancelled))
			rc = HFM_ERROR;
	}
	if (!rc && git_packbuilder_foreach(pb, pack_cb, s) < 0)
		rc = atomic_load(&s->cancelled) ? HFM_ERROR : hfm_gitwalk_error("pack");
	if (!rc)
		rc = band_flush(s);
	git_packbuilder_free(pb);
	return rc;
}

static int build_pack(struct gp_stream *s)
{
	char *whole = NULL;
	int rc;

	if ((rc = hfm_gitwalk_objects(&s->walk)) ||
	    (rc = say(s, "Enumerating objects: %zu, done.\n", s->walk.nobjects)))
		return rc;
	pthread_mutex_lock(&s->pool->lock);
	s->pool->objects += s->walk.nobjects;
	pthread_mutex_unlock(&s->pool->lock);
	/* the offsets of a pack's deltas need ofs-delta; no client leaves it out */
	if (s->q.ofs_delta && !s->q.haves.n && !s->walk.shallows.n && !s->q.depth &&
	    !s->q.deepen_since)
		whole = hfm_gitwalk_whole_pack(&s->walk);
	if (whole) {
		pthread_mutex_lock(&s->pool->lock);
		s->pool->whole++;
		pthread_mutex_unlock(&s->pool->lock);
		rc = send_file(s, whole);
		free(whole);
		return rc;
	}
	return packbuild(s);
}

/* ---- the answers --------------------------------------------------------------- */

/* After the preamble: the pack, framed, and the final flush. */
static int send_pack(struct gp_stream *s)
{
	int rc;

	if ((rc = emit_out(s)) || (rc = build_pack(s)))
		return rc;
	if (sideband(s)) {
		hfm_pkt_flush(&s->out);
		rc = emit_out(s);
	}
	return rc;
}

/*
 * v0/v1 stateless (every request repeats the wants): the shallow section,
 * then ACK/NAK for this round's haves as upload-pack does, and the pack
 * once the client said done (or, with no-done, once we said ready).
 */
static int answer_v0(struct gp_stream *s)
{
	char last[HFM_SHA1_HEX + 1] = "";
	int rc, got_common = 0, got_other = 0, sent_ready = 0, acked = 0;
	size_t i;

	if (s->q.depth || s->q.deepen_since) {
		if ((rc = hfm_gitwalk_shallow(&s->walk, &s->out)))
			return rc;
		hfm_pkt_flush(&s->out);
	}
	if (!s->q.wants.n || !s->q.negotiating)
		return emit_out(s);      /* e.g. the first round of a shallow fetch: the list only */
	for (i = 0; i < s->q.haves.n; i++) {
		git_oid id;
		char hex[HFM_SHA1_HEX + 1];

		hfm_gitwalk_oid(&id, &s->q.haves.v[i]);
		hfm_hex(hex, s->q.haves.v[i].id, 20);
		if (git_odb_exists(s->odb, &id)) {
			got_common = 1;
			memcpy(last, hex, sizeof(last));
			if (s->q.multi_ack == 2)
				hfm_pkt_printf(&s->out, "ACK %s common\n", hex);
			else if (s->q.multi_ack == 1)
				hfm_pkt_printf(&s->out, "ACK %s continue\n", hex);
			else if (!acked++)
				hfm_pkt_printf(&s->out, "ACK %s\n", hex);
		} else {
			got_other = 1;
			if (s->q.multi_ack && hfm_gitwalk_ready(&s->walk)) {
				sent_ready = s->q.multi_ack == 2;
				hfm_pkt_printf(&s->out, "ACK %s %s\n", hex,
					       sent_ready ? "ready" : "continue");
			}
		}
	}
	if (!s->q.done) {
		if (s->q.multi_ack == 2 && got_common && !got_other && hfm_gitwalk_ready(&s->walk)) {
			sent_ready = 1;
			hfm_pkt_printf(&s->out, "ACK %s ready\n", last);
		}
		if (!s->walk.common.n || s->q.multi_ack)
			hfm_pkt_printf(&s->out, "NAK\n");
		if (!(s->q.no_done && sent_ready))
			return emit_out(s);
		hfm_pkt_printf(&s->out, "ACK %s\n", last);
	} else if (s->walk.common.n) {
		if (s->q.multi_ack)
			hfm_pkt_printf(&s->out, "ACK %s\n", last);
	} else {
		hfm_pkt_printf(&s->out, "NAK\n");
	}
	return send_pack(s);
}

/* v2 fetch: acknowledgments while negotiating; shallow-info and the packfile once ready. */
static int answer_fetch(struct gp_stream *s)
{
	size_t i;
	int rc;

	if (!s->q.wants.n && !s->q.wait_for_done) {
		hfm_pkt_flush(&s->out);
		return emit_out(s);
	}
	if (s->q.haves.n && !s->q.done) {
		hfm_pkt_printf(&s->out, "acknowledgments\n");
		if (!s->walk.common.n)
			hfm_pkt_printf(&s->out, "NAK\n");
		for (i = 0; i < s->walk.common.n; i++) {
			char hex[HFM_SHA1_HEX + 1];

			hfm_hex(hex, s->walk.common.v[i].id, 20);
			hfm_pkt_printf(&s->out, "ACK %s\n", hex);
		}
		if (s->q.wait_for_done || !hfm_gitwalk_ready(&s->walk)) {
			hfm_pkt_flush(&s->out);
			return emit_out(s);
		}
		hfm_pkt_printf(&s->out, "ready\n");
		hfm_pkt_delim(&s->out);
	}
	if (s->q.depth || s->q.deepen_since || s->q.shallows.n || s->walk.repo_shallow.n) {
		hfm_pkt_printf(&s->out, "shallow-info\n");
		if ((rc = hfm_gitwalk_shallow(&s->walk, &s->out)))
			return rc;
		hfm_pkt_delim(&s->out);
	}
	hfm_pkt_printf(&s->out, "packfile\n");
	return send_pack(s);
}

static int answer(struct gp_stream *s)
{
	int rc;

	if (git_repository_open_ext(&s->g, s->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_repository_odb(&s->odb, s->g) < 0)
		return hfm_gitwalk_error("cannot open the repository");
	hfm_gitwalk_init(&s->walk, s->g, s->odb, &s->q, &s->cancelled);
	if ((rc = hfm_gitwalk_classify(&s->walk)))
		return rc;
	if (s->q.version == 2)
		return answer_fetch(s);
	return answer_v0(s);
}

/* ---- the worker ------------------------------------------------------------------ */

/* Wait for one of the pool's busy turns; HFM_ERROR when cancelled meanwhile. */
static int take_turn(struct gp_stream *s)
{
	struct hfm_gitpack_pool *p = s->pool;

	pthread_mutex_lock(&p->lock);
	while (p->busy >= p->max_busy && !atomic_load(&s->cancelled))
		pthread_cond_wait(&p->cond, &p->lock);
	if (atomic_load(&s->cancelled)) {
		pthread_mutex_unlock(&p->lock);
		return HFM_ERROR;
	}
	p->busy++;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void give_turn(struct hfm_gitpack_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->busy--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	struct gp_stream *s = arg;
	struct hfm_gitpack_pool *p = s->pool;
	struct hfm_waitq_node *wake;
	int rc;

	if ((rc = take_turn(s)) == 0) {
		rc = answer(s);
		if (rc && rc != HFM_ERROR && !atomic_load(&s->cancelled))
			fail_msg(s, hfm_error_last());
		give_turn(p);
	}
	git_odb_free(s->odb);
	git_repository_free(s->g);
	s->odb = NULL;
	s->g = NULL;
	git_error_clear();
	hfm_gitwalk_dispose(&s->walk);
#ifdef __GLIBC__
	/* a pack's hundreds of MiB go back to the system, not to malloc's arenas */
	malloc_trim(0);
#endif

	pthread_mutex_lock(&s->lock);
	s->finished = 1;
	/* an error after bytes went out must cut the response short */
	s->failed = rc && s->pack_started ? HFM_EIO : 0;
	if (rc == HFM_ERROR)
		s->failed = HFM_EIO;
	wake = wake_readers(s);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);

	pthread_mutex_lock(&p->lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		p->live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	p->running--;
	p->zombies = hfm_realloc(p->zombies, (p->nzombies + 1) * sizeof(*p->zombies));
	p->zombies[p->nzombies++] = pthread_self();
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	stream_unref(s);
	return NULL;
}

/* Join workers that ended.  Under p->lock. */
static void reap(struct hfm_gitpack_pool *p)
{
	while (p->nzombies)
		pthread_join(p->zombies[--p->nzombies], NULL);
}

/* ---- the stream ops ---------------------------------------------------------------- */

static void stream_free_now(struct gp_stream *s)
{
	struct hfm_gitpack_pool *p = s->pool;

	hfm_upload_req_dispose(&s->q);
	hfm_gitwalk_dispose(&s->walk);
	hfm_buf_dispose(&s->out);
	hfm_waitq_fire(hfm_waitq_take(&s->readers));
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->space);
	pthread_cond_destroy(&s->data);
	free(s->band);
	hfm_ring_dispose(&s->ring);
	free(s->path);
	free(s);
	pthread_mutex_lock(&p->lock);
	p->nstreams--;
	pthread_mutex_unlock(&p->lock);
}

static void stream_unref(struct gp_stream *s)
{
	int last;

	pthread_mutex_lock(&s->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		stream_free_now(s);
}

/*
 * Start the worker (the caller set s->started and took the worker's
 * reference under s->lock, and holds no lock now).
 */
static int start_worker(struct gp_stream *s)
{
	struct hfm_gitpack_pool *p = s->pool;
	pthread_t th;
	int err;

	pthread_mutex_lock(&p->lock);
	reap(p);
	s->next = p->live;
	s->prev = NULL;
	if (p->live)
		p->live->prev = s;
	p->live = s;
	p->running++;
	p->started++;
	err = pthread_create(&th, NULL, worker, s);
	if (err) {
		p->live = s->next;
		if (s->next)
			s->next->prev = NULL;
		p->running--;
	}
	pthread_mutex_unlock(&p->lock);
	if (!err)
		return 0;
	pthread_mutex_lock(&s->lock);
	s->refs--;
	s->finished = 1;
	s->failed = HFM_EIO;
	pthread_mutex_unlock(&s->lock);
	return hfm_error_set(HFM_EIO, "cannot start a pack worker");
}

static ssize_t gp_read(struct hfm_stream *base, uint64_t pos, uint64_t end, char *buf,
		       size_t max, struct hfm_waiter *w)
{
	struct gp_stream *s = (struct gp_stream *)base;
	ssize_t rc;

	(void)pos;
	(void)end;
	pthread_mutex_lock(&s->lock);
	if (!s->started) {
		s->started = 1;
		s->refs++;               /* the worker's */
		pthread_mutex_unlock(&s->lock);
		if (start_worker(s))
			return HFM_EIO;
		pthread_mutex_lock(&s->lock);
	}
	for (;;) {
		if (s->ring.len) {
			rc = (ssize_t)hfm_ring_get(&s->ring, buf, max);
			pthread_cond_signal(&s->space);
			break;
		}
		if (s->finished) {
			rc = s->failed;
			break;
		}
		if (w) {
			hfm_waitq_add(&s->readers, w);
			rc = HFM_EAGAIN;
			break;
		}
		pthread_cond_wait(&s->data, &s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void gp_free(struct hfm_stream *base)
{
	struct gp_stream *s = (struct gp_stream *)base;
	struct hfm_waitq_node *wake;

	pthread_mutex_lock(&s->lock);
	atomic_store(&s->cancelled, 1);
	pthread_cond_broadcast(&s->space);
	wake = hfm_waitq_take(&s->readers);
	pthread_mutex_unlock(&s->lock);
	hfm_waitq_fire(wake);
	/* a worker waiting for its turn must see the cancel too */
	pthread_mutex_lock(&s->pool->lock);
	pthread_cond_broadcast(&s->pool->cond);
	pthread_mutex_unlock(&s->pool->lock);
	stream_unref(s);
}

static const struct hfm_stream_ops gp_ops = {
	.read = gp_read,
	.prime = NULL,
	.free = gp_free,
};

static void copy_oids(struct hfm_oidv *dst, const struct hfm_oidv *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->n)
		return;
	dst->v = hfm_malloc(src->n * sizeof(*dst->v));
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = dst->cap = src->n;
}

int hfm_gitpack_start(struct hfm_stream **out, struct hfm_gitpack_pool *p, const char *git_path,
		      const struct hfm_upload_req *q)
{
	struct gp_stream *s;

	pthread_mutex_lock(&p->lock);
	reap(p);
	if (p->nstreams >= p->max_streams) {
		pthread_mutex_unlock(&p->lock);
		return hfm_error_set(HFM_EUNAVAIL, "too many git fetches at once; try again");
	}
	p->nstreams++;
	pthread_mutex_unlock(&p->lock);

	s = hfm_calloc(1, sizeof(*s));
	s->base.ops = &gp_ops;
	s->pool = p;
	s->path = hfm_strdup(git_path);
	s->q = *q;
	copy_oids(&s->q.wants, &q->wants);
	copy_oids(&s->q.haves, &q->haves);
	copy_oids(&s->q.shallows, &q->shallows);
	s->q.prefixes = NULL;
	s->q.nprefixes = 0;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->space, NULL);
	pthread_cond_init(&s->data, NULL);
	hfm_ring_init(&s->ring, RING_SIZE);
	s->refs = 1;
	atomic_init(&s->cancelled, 0);
	hfm_buf_init(&s->out, 16u << 20);
	s->band_max = s->q.version == 2 || s->q.sideband == 2 ? BAND_BIG : BAND_SMALL;
	if (!sideband(s))
		s->band_max = BAND_BIG;
	s->band = hfm_malloc(s->band_max);
	s->progress = sideband(s) && !s->q.no_progress;
	s->last_pct = -1;
	*out = &s->base;
	return 0;
}

/* ---- the pool ------------------------------------------------------------------- */

int hfm_gitpack_pool_new(struct hfm_gitpack_pool **out, unsigned max_streams, unsigned max_busy)
{
	struct hfm_gitpack_pool *p = hfm_calloc(1, sizeof(*p));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (ncpu < 1)
		ncpu = 1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->max_streams = max_streams ? max_streams : DEFAULT_STREAMS;
	p->max_busy = max_busy ? max_busy : (unsigned)ncpu;
	p->threads = (unsigned)ncpu;
	/*
	 * libgit2 keeps parsed trees and commits in a cache of 256 MiB by
	 * default, process-wide; a clone walks every tree of the history and
	 * would fill it (bench/git: 289 MiB peak for 5000 commits, 196 at 32).
	 */
	git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)OBJECT_CACHE);
	*out = p;
	return 0;
}

void hfm_gitpack_pool_free(struct hfm_gitpack_pool *p)
{
	struct gp_stream *s;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (s = p->live; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		atomic_store(&s->cancelled, 1);
		pthread_cond_broadcast(&s->space);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_cond_broadcast(&p->cond);
	while (p->running)
		pthread_cond_wait(&p->cond, &p->lock);
	reap(p);
	pthread_mutex_unlock(&p->lock);
	free(p->zombies);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

void hfm_gitpack_stats(struct hfm_gitpack_stats *out, struct hfm_gitpack_pool *p)
{
	pthread_mutex_lock(&p->lock);
	out->started = p->started;
	out->objects = p->objects;
	out->running = p->running;
	out->whole = p->whole;
	pthread_mutex_unlock(&p->lock);
}
