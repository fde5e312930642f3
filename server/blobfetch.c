/* blobfetch.c - blob-cache fetches as upstream Range requests, checked. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/blobfetch.h"
#include "hfm/hash.h"
#include "hfm/ttlmap.h"

/*
 * A failed fetch is remembered for FAIL_KEEP_NS, by blob, offset and origin
 * (URL and credentials).  Its readers are woken and their requests run
 * again with new readers (the HTTP layer frees a stream that is not ready
 * yet), which know nothing of the failure: without this memory each re-run
 * started the same fetch again, and a stalled upstream held its clients
 * until wait-timeout (then 503) instead of failing them after
 * upstream-timeout.  As short as the metadata answers' negative cache.
 */
#define FAIL_KEEP_NS (2ull * 1000000000)
#define FAIL_SLOTS 32

/*
 * libcurl hands the body over in pieces of at most 16 KiB; writing each
 * one cost a pwrite, two blob-lock rounds and a reader wake-up per piece
 * (docs/performance.md, "Online cache").  Pieces are gathered into writes
 * of COALESCE bytes, aligned to COALESCE in the blob (fetches start on a
 * block boundary and blocks are powers of two, so a write never straddles
 * a block of COALESCE bytes or more).  Bytes are held back at most
 * COALESCE_NS, checked when the next piece arrives, and at the latest until
 * the transfer ends, whatever its result: gathered bytes always reach the
 * cache before hfm_blob_fetch_done().  The gathering buffers are the
 * cache's (hfm_blob_fetch_buf): it keeps those its digest hashes next, so
 * the digest runs on its thread from the bytes as received, and when it
 * falls behind the transfer pauses until it has caught up
 * (hfm_blob_fetch_hash_wait).
 */
#define COALESCE HFM_BLOB_BUF
#define COALESCE_NS (20ull * 1000000)

struct hfm_blobfetch {
	struct hfm_upstream *up;
	int max_attempts;
	long retry_base_ms;
	hfm_log_fn log;
	void *log_cls;
	struct hfm_ttlmap *fails;        /* by struct xfer's key: rc and why */
};

/* One fetch in flight: lives from start until on_done. */
struct xfer {
	struct hfm_blobfetch *bf;
	struct hfm_blob_fetch *f;
	struct hfm_up_xfer *up;          /* to resume it */
	struct hfm_waiter *hash_w;       /* paused until the digest caught up */
	int handed;                      /* the cache kept a buffer since the last look */
	char key[HFM_TTLMAP_KEY_MAX + 1];   /* "<oid> <off> <sha1 of Authorization and URL>" */
	uint64_t off, len, size;
	uint64_t skip;                   /* bytes to drop first (Range ignored) */
	uint64_t got;                    /* bytes handed to the cache */
	char *buf;                       /* COALESCE bytes, gathered after got (the cache's) */
	size_t nbuf;
	uint64_t buf_since;              /* mono ns of the first byte in buf */
	int whole;                       /* 200: the body is the whole blob */
	hfm_log_fn log;
	void *log_cls;
};

int hfm_blobfetch_new(struct hfm_blobfetch **out, struct hfm_upstream *up,
		      const struct hfm_blobfetch_opts *o)
{
	static const struct hfm_blobfetch_opts none;
	struct hfm_blobfetch *bf = hfm_calloc(1, sizeof(*bf));

	if (!o)
		o = &none;
	bf->up = up;
	bf->max_attempts = o->max_attempts > 0 ? o->max_attempts : 3;
	bf->retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : 250;
	bf->log = o->log;
	bf->log_cls = o->log_cls;
	bf->fails = hfm_ttlmap_new(FAIL_SLOTS);
	*out = bf;
	return 0;
}

void hfm_blobfetch_free(struct hfm_blobfetch *bf)
{
	if (!bf)
		return;
	hfm_ttlmap_free(bf->fails);
	free(bf);
}

static const char *oid_of(const struct xfer *x)
{
	return hfm_blob_oid(hfm_blob_fetch_blob(x->f));
}

static void fail_remember(struct xfer *x, int rc)
{
	/* upstream's doing only: not a cancel, a shutdown or a disk error */
	if (rc == HFM_ETIMEOUT || rc == HFM_EUPSTREAM || rc == HFM_EGATED)
		hfm_ttlmap_put(x->bf->fails, x->key, rc, hfm_error_last(), FAIL_KEEP_NS);
}

/* The error of a fetch like x that failed just now, or 0. */
static int fail_recent(const struct xfer *x)
{
	char why[HFM_TTLMAP_WHY_MAX + 1];
	int rc;

	if (!hfm_ttlmap_get(x->bf->fails, x->key, &rc, why, sizeof(why)))
		return 0;
	return hfm_error_set(rc, "%s (a moment ago; not asking upstream again yet)", why);
}

/* "bytes a-b/total" -> a, b, total; 0 on success. */
static int parse_content_range(const char *v, uint64_t *a, uint64_t *b, uint64_t *total)
{
	char tail;

	if (!v || sscanf(v, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64 "%c", a, b, total, &tail) != 3)
		return -1;
	return 0;
}

static int on_headers(void *cls, const struct hfm_up_response *r)
{
	struct xfer *x = cls;
	uint64_t a, b, total;

	if (r->status == 206) {
		if (parse_content_range(hfm_up_header(r, "Content-Range"), &a, &b, &total) ||
		    a != x->off || b != x->off + x->len - 1 || total != x->size ||
		    (r->content_length >= 0 && (uint64_t)r->content_length != x->len))
			return hfm_error_set(HFM_EUPSTREAM, "upstream answered Range bytes=%" PRIu64
					     "-%" PRIu64 " of %s with Content-Range '%s'", x->off,
					     x->off + x->len - 1, oid_of(x),
					     hfm_up_header(r, "Content-Range") ?: "");
		return HFM_UP_CONTINUE;
	}
	if (r->status == 200) {
		if (r->content_length >= 0 && (uint64_t)r->content_length != x->size)
			return hfm_error_set(HFM_EUPSTREAM, "upstream sent %" PRId64 " bytes for %s "
					     "of %" PRIu64, r->content_length, oid_of(x), x->size);
		x->whole = 1;
		x->skip = x->off;
		if (x->off || x->len != x->size)
			hfm_log(x->log, x->log_cls, HFM_LOG_WARN,
				"blobfetch: upstream ignored Range for %s; reading %" PRIu64
				" bytes to use %" PRIu64, oid_of(x), x->off + x->len, x->len);
		return HFM_UP_CONTINUE;
	}
	if (r->status == 401 || r->status == 403)
		return hfm_error_set(HFM_EGATED, "upstream refused %s (%ld)", oid_of(x), r->status);
	return hfm_error_set(HFM_EUPSTREAM, "upstream answered %ld for %s", r->status, oid_of(x));
}

/* Hand the gathered bytes to the cache. */
static int flush_buf(struct xfer *x)
{
	int rc;

	if (!x->nbuf)
		return 0;
	/* x->buf is NULL afterwards when the cache kept it for its digest */
	if ((rc = hfm_blob_fetch_write_buf(x->f, (void **)&x->buf, x->nbuf))) {
		x->nbuf = 0;             /* refused: not offered again when the transfer ends */
		return rc;
	}
	x->handed |= !x->buf;
	x->got += x->nbuf;
	x->nbuf = 0;
	return 0;
}

/* Gather n bytes, writing whenever an aligned COALESCE bytes are complete. */
static int gather(struct xfer *x, const char *p, size_t n)
{
	int rc;

	while (n) {
		uint64_t at = x->off + x->got;
		size_t room = COALESCE - (size_t)(at & (COALESCE - 1)) - x->nbuf;
		size_t k = n < room ? n : room;

		if (!x->buf)
			x->buf = hfm_blob_fetch_buf(x->f);
		if (!x->nbuf)
			x->buf_since = hfm_mono_ns();
		memcpy(x->buf + x->nbuf, p, k);
		x->nbuf += k;
		p += k;
		n -= k;
		if ((k == room || x->got + x->nbuf == x->len) && (rc = flush_buf(x)))
			return rc;
	}
	/* a slow upstream: what came is streamed on without waiting for more */
	if (x->nbuf && hfm_mono_ns() - x->buf_since >= COALESCE_NS)
		return flush_buf(x);
	return 0;
}

static void resume(void *cls)
{
	hfm_up_resume(cls);
}

static int on_data(void *cls, const void *data, size_t n)
{
	struct xfer *x = cls;
	const char *p = data;
	uint64_t want;
	int rc;

	/* the digest is behind this transfer: take nothing until it caught up */
	if (x->handed && x->up) {
		if (x->hash_w) {
			hfm_waiter_cancel(x->hash_w);
			hfm_waiter_unref(x->hash_w);
		}
		x->hash_w = hfm_waiter_new(resume, x->up);
		if (hfm_blob_fetch_hash_wait(x->f, x->hash_w) == HFM_EAGAIN)
			return HFM_UP_PAUSE;
		x->handed = 0;
	}
	if (x->skip) {
		size_t k = x->skip < n ? (size_t)x->skip : n;
		x->skip -= k;
		p += k;
		n -= k;
	}
	want = x->len - x->got - x->nbuf;
	if (n > want && !x->whole)
		return hfm_error_set(HFM_EUPSTREAM, "upstream sent more than the range of %s",
				     oid_of(x));
	if (n > want)
		n = (size_t)want;
	if (n && (rc = gather(x, p, n)))
		return rc;
	/* a whole-body answer is cut once our part is in (gather wrote it all) */
	return x->whole && x->got == x->len ? HFM_UP_STOP : HFM_UP_CONTINUE;
}

static void on_done(void *cls, int rc)
{
	struct xfer *x = cls;
	int wrc;

	/* bytes that came before a failure are kept: their blocks may be complete */
	if ((wrc = flush_buf(x)) && !rc)
		rc = wrc;
	if (rc == 0 && x->got < x->len)
		rc = hfm_error_set(HFM_EUPSTREAM, "upstream ended %s after %" PRIu64 " of %" PRIu64
				   " bytes", oid_of(x), x->got, x->len);
	if (rc)
		fail_remember(x, rc);
	if (x->hash_w) {
		/* after cancel no resume runs: the handle may go */
		hfm_waiter_cancel(x->hash_w);
		hfm_waiter_unref(x->hash_w);
	}
	hfm_blob_fetch_buf_put(x->f, x->buf);
	hfm_blob_fetch_done(x->f, rc);
	hfm_up_release(x->up);
	free(x);
}

int hfm_blobfetch_start(void *cls, struct hfm_blob_fetch *f, const struct hfm_blob_origin *o)
{
	struct hfm_blobfetch *bf = cls;
	struct hfm_up_request req;
	struct xfer *x;
	int rc;

	if (!o || !o->url)
		return hfm_error_set(HFM_EINVAL, "blob fetch without an origin URL");
	x = hfm_calloc(1, sizeof(*x));
	x->bf = bf;
	x->f = f;
	x->off = hfm_blob_fetch_offset(f);
	x->len = hfm_blob_fetch_length(f);
	x->size = hfm_blob_size(hfm_blob_fetch_blob(f));
	char *who = hfm_asprintf("%s\n%s", o->authorization ? o->authorization : "", o->url);
	char from[HFM_SHA1_HEX + 1];
	hfm_sha1_hex(from, who, strlen(who));
	free(who);
	snprintf(x->key, sizeof(x->key), "%s %" PRIu64 " %s", oid_of(x), x->off, from);
	if ((rc = fail_recent(x))) {
		free(x);
		return rc;
	}
	x->log = bf->log;
	x->log_cls = bf->log_cls;

	memset(&req, 0, sizeof(req));
	req.method = HFM_UP_GET;
	req.kind = HFM_UPK_BLOB;
	req.url = o->url;
	req.authorization = o->authorization;
	req.has_range = 1;
	req.range_start = x->off;
	req.range_len = x->len;
	req.follow_redirects = 1;
	req.max_attempts = bf->max_attempts;
	req.retry_base_ms = bf->retry_base_ms;
	req.on_headers = on_headers;
	req.on_data = on_data;
	req.on_done = on_done;
	req.cls = x;
	rc = hfm_up_start(&x->up, bf->up, &req);
	if (rc)
		free(x);
	return rc;
}
