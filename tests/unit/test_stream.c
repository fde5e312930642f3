/*
 * test_stream.c - the online cache's streamed bodies, read as the HTTP layer
 * reads them (hfm_stream_read/prime with a waiter, re-run when woken).
 *
 * Blob streams run over a blob cache whose fetches the test serves by hand,
 * so "not there yet" is certain; relay streams over a real upstream and the
 * stub server, whose /hold/ route keeps the body back until released.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/hash.h"
#include "hfm/stream.h"
#include "logcap.h"
#include "stub_http.h"
#include "tap.h"
#include "waitfor.h"

#define BS (64u * 1024)

static char root[] = "/tmp/hfm-stream-XXXXXX";
static struct hfm_store *store;
static struct hfm_blobcache *bc;         /* fills wait an hour: only urgent ones run */
static struct hfm_blobcache *bc2;        /* fills go 20 ms after readers' fetches */
static struct hfm_upstream *up;
static struct stub *sa;
static char A[64];

/* ---- a fetcher the test serves by hand -------------------------------------- */

static struct {
	pthread_mutex_t lock;
	struct hfm_blob_fetch *q[64];
	int nq;
	int fail_start;                  /* returned by the callback when set */
	/* when set, only this URL's fetches are queued: a worker's timer may retry
	 * an earlier test's fill at any time, and its fetch must not count here */
	char only_url[256];
	char url[256], auth[256];        /* the last origin seen */
} fk = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int manual_fetch(void *cls, struct hfm_blob_fetch *f, const struct hfm_blob_origin *o)
{
	(void)cls;
	pthread_mutex_lock(&fk.lock);
	snprintf(fk.url, sizeof(fk.url), "%s", o->url);
	snprintf(fk.auth, sizeof(fk.auth), "%s", o->authorization ? o->authorization : "");
	if (fk.fail_start) {
		pthread_mutex_unlock(&fk.lock);
		return hfm_error_set(fk.fail_start, "refused by the test");
	}
	if (fk.only_url[0] && strcmp(o->url, fk.only_url)) {
		pthread_mutex_unlock(&fk.lock);
		return hfm_error_set(HFM_EUPSTREAM, "another test's blob");
	}
	fk.q[fk.nq++] = f;
	pthread_mutex_unlock(&fk.lock);
	return 0;
}

static struct hfm_blob_fetch *take_fetch(void)
{
	struct hfm_blob_fetch *f = NULL;

	pthread_mutex_lock(&fk.lock);
	if (fk.nq) {
		f = fk.q[0];
		memmove(fk.q, fk.q + 1, (size_t)(fk.nq - 1) * sizeof(fk.q[0]));
		fk.nq--;
	}
	pthread_mutex_unlock(&fk.lock);
	return f;
}

/* Write the fetch's range from content and end it with rc. */
static void serve(struct hfm_blob_fetch *f, const uint8_t *content, int rc)
{
	uint64_t off = hfm_blob_fetch_offset(f), len = hfm_blob_fetch_length(f);

	if (!rc)
		rc = hfm_blob_fetch_write(f, content + off, (size_t)len);
	hfm_blob_fetch_done(f, rc);
}

/*
 * The blob the test serves; fetches of others (a fill an earlier test
 * started goes on) fail.  "" = serve every one.
 */
static char cur_oid[HFM_SHA256_HEX + 1];

/* Serve every queued fetch. */
static int serve_all(const uint8_t *content)
{
	struct hfm_blob_fetch *f;
	int n = 0;

	while ((f = take_fetch())) {
		if (cur_oid[0] && strcmp(hfm_blob_oid(hfm_blob_fetch_blob(f)), cur_oid)) {
			hfm_blob_fetch_done(f, hfm_error_set(HFM_ERROR, "not this test's"));
			continue;
		}
		serve(f, content, 0);
		n++;
	}
	return n;
}

/*
 * Serve fetches from content as they come (a fill's come from a worker's
 * timer) until t's waiter fired; 0 if it did not within 30 s.
 */
static int serve_until_woken(struct waitfor *t, const uint8_t *content)
{
	for (int i = 0; i < 6000; i++) {
		int fired;

		serve_all(content);
		pthread_mutex_lock(&t->lock);
		fired = t->fired;
		pthread_mutex_unlock(&t->lock);
		if (fired)
			return 1;
		usleep(5000);
	}
	return 0;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 12));
	return p;
}

/*
 * Read [pos, end) as the HTTP layer does, serving fetches whenever the
 * stream waits.  Returns the bytes read; *err gets the error that ended the
 * read early (0 if none), *waits how often it waited.
 */
static size_t read_range(struct hfm_stream *s, uint64_t pos, uint64_t end, uint8_t *out,
			 const uint8_t *content, int *err, int *waits)
{
	struct waitfor t;
	char buf[BS];
	size_t got = 0;

	waitfor_init(&t);
	*err = 0;
	*waits = 0;
	while (pos < end) {
		ssize_t n = hfm_stream_read(s, pos, end, buf, sizeof(buf), waitfor_arm(&t));
		if (n == HFM_EAGAIN) {
			(*waits)++;
			if (!(content ? serve_until_woken(&t, content) : waitfor_woken(&t))) {
				*err = HFM_ETIMEOUT;
				break;
			}
			continue;
		}
		if (n < 0) {
			*err = (int)n;
			break;
		}
		memcpy(out + got, buf, (size_t)n);
		got += (size_t)n;
		pos += (uint64_t)n;
	}
	waitfor_dispose(&t);
	return got;
}

/* A blob stream over `url` for a request that came at `arrived` (mono ns). */
static struct hfm_stream *range_stream(const struct hfm_stream_cache *c, const char *url,
				       const char *oid, uint64_t size, uint64_t arrived)
{
	struct hfm_stream *s = NULL;
	struct hfm_stream_origin o = {
		.url = url,
		.oid = oid,
		.size = size,
		.arrived_ns = arrived,
	};

	if (hfm_stream_blob_new(&s, c, &o))
		abort();
	return s;
}

static struct hfm_stream *blob_stream(const char *oid, uint64_t size)
{
	struct hfm_stream *s = NULL;
	struct hfm_stream_origin o = {
		.url = "https://hub.test/org/x/resolve/c0ffee/w.bin",
		.authorization = "Bearer hf_reader",
		.oid = oid,
		.size = size,
	};

	struct hfm_stream_cache c = { .bc = bc, .up = up };

	if (hfm_stream_blob_new(&s, &c, &o))
		abort();
	return s;
}

/* ---- blob streams ------------------------------------------------------------ */

static void test_blob_whole(void)
{
	size_t size = 10 * BS + 7;
	uint8_t *content = pattern(size, 1), *out = malloc(size);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_stream *s;
	int err, waits;
	size_t got;

	hfm_sha256_hex(oid, content, size);
	s = blob_stream(oid, size);
	TAP_OK(!hfm_store_object_exists(store, oid), "blob: nothing stored before the first read");
	got = read_range(s, 0, size, out, content, &err, &waits);
	TAP_IS_INT(err, 0, "blob: whole file read");
	TAP_OK(got == size && !memcmp(out, content, size), "blob: every byte right");
	TAP_OK(waits >= 1, "blob: the reader waited for the fetch (%d)", waits);
	TAP_IS_STR(fk.url, "https://hub.test/org/x/resolve/c0ffee/w.bin",
		   "blob: the fetch uses the stream's URL");
	TAP_IS_STR(fk.auth, "Bearer hf_reader", "blob: ... and the client's token");
	/* the last byte came only after verification: by then it is published */
	TAP_OK(hfm_store_object_exists(store, oid), "blob: verified before the last byte was read");
	hfm_stream_free(s);
	free(content);
	free(out);
}

/*
 * A whole-file reader that keeps up with the download reads the buffers
 * the digest has not hashed yet, not the file: with no hashing thread they
 * stay, so bytes spoilt in the partial file behind the cache's back do not
 * reach the reader.
 */
static void test_blob_recent(void)
{
	size_t size = 4 * HFM_BLOB_BUF + 9, n;
	uint8_t *content = pattern(size, 9), *junk = pattern(size, 10), *out = malloc(size);
	char oid[HFM_SHA256_HEX + 1], path[512];
	struct hfm_blobcache_opts co;
	struct hfm_blobcache *bc3 = NULL;
	struct hfm_blob_fetch *f;
	struct hfm_stream *s = NULL;
	struct hfm_stream_origin o = { .url = "https://hub.test/r", .size = size };
	struct hfm_stream_cache c = { .up = up };
	struct waitfor t;
	void *buf = NULL;
	ssize_t got;
	int fd;

	memset(&co, 0, sizeof(co));
	co.block_size = 1u << 20;
	co.fetch = manual_fetch;
	co.log = logcap;
	co.fill_idle_ms = 3600 * 1000;
	co.hash_workers = -1;
	hfm_blobcache_new(&bc3, store, &co);
	c.bc = bc3;
	hfm_sha256_hex(oid, content, size);
	o.oid = oid;
	hfm_stream_blob_new(&s, &c, &o);
	waitfor_init(&t);
	got = hfm_stream_read(s, 0, size, (char *)out, size, waitfor_arm(&t));
	f = take_fetch();
	TAP_OK(got == HFM_EAGAIN && f && hfm_blob_fetch_length(f) == size,
	       "recent: the reader waits for one fetch of the blob");
	for (n = 0; n < 2 * HFM_BLOB_BUF; n += HFM_BLOB_BUF) {
		if (!buf)
			buf = hfm_blob_fetch_buf(f);
		memcpy(buf, content + n, HFM_BLOB_BUF);
		hfm_blob_fetch_write_buf(f, &buf, HFM_BLOB_BUF);
	}
	snprintf(path, sizeof(path), "%s/partial/%s", root, oid);
	fd = open(path, O_WRONLY);
	TAP_OK(fd >= 0 && pwrite(fd, junk, 2 * HFM_BLOB_BUF, 0) == 2 * HFM_BLOB_BUF,
	       "recent: the partial file spoilt");
	got = hfm_stream_read(s, 0, size, (char *)out, size, waitfor_arm(&t));
	TAP_OK(got == 2 * HFM_BLOB_BUF && !memcmp(out, content, (size_t)got),
	       "recent: the reader gets the bytes as received (%zd)", got);
	/* put right, the rest written: verified when the cache ends (no hashing thread) */
	TAP_OK(pwrite(fd, content, 2 * HFM_BLOB_BUF, 0) == 2 * HFM_BLOB_BUF, "recent: put right");
	close(fd);
	for (; n < size; n += HFM_BLOB_BUF) {
		size_t k = (size_t)HFM_MIN((uint64_t)HFM_BLOB_BUF, size - n);
		if (!buf)
			buf = hfm_blob_fetch_buf(f);
		memcpy(buf, content + n, k);
		hfm_blob_fetch_write_buf(f, &buf, k);
	}
	hfm_blob_fetch_buf_put(f, buf);
	hfm_blob_fetch_done(f, 0);
	hfm_stream_free(s);
	waitfor_dispose(&t);
	hfm_blobcache_free(bc3);
	TAP_OK(hfm_store_object_exists(store, oid), "recent: verified and published");
	free(content);
	free(junk);
	free(out);
}

/* Content that is not what its id says: a whole-file answer ends one byte short. */
static void test_blob_corrupt(void)
{
	size_t size = 4 * BS + 100;
	uint8_t *content = pattern(size, 2), *out = malloc(size);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_stream *s;
	int err, waits;
	size_t got;

	hfm_sha256_hex(oid, content, size);
	content[size / 2] ^= 0x40;
	s = blob_stream(oid, size);
	got = read_range(s, 0, size, out, content, &err, &waits);
	/*
	 * ECORRUPT when the read saw the verification fail; HFM_EUPSTREAM when it
	 * came back after the blob was discarded (refetching is refused for a
	 * while).  Either way the response ends short.
	 */
	TAP_OK(err == HFM_ECORRUPT || err == HFM_EUPSTREAM,
	       "corrupt: the whole-file read ends with an error (%d)", err);
	/*
	 * Never the last byte.  How far the read got before that depends on
	 * when the fill's verification failed relative to the reader (a loaded
	 * machine lets the fill finish first), so only the bound is asserted.
	 */
	TAP_OK(got < size && !memcmp(out, content, got),
	       "corrupt: ... before its last byte (%zu of %zu)", got, size);
	TAP_OK(logcap_has("discarded") && logcap_has(oid), "corrupt: logged");
	TAP_OK(!hfm_store_object_exists(store, oid), "corrupt: nothing published");
	hfm_stream_free(s);
	free(content);
	free(out);
}

/*
 * A small blob (one block) is verified before any byte is read, whole file
 * or Range: right bytes are answered whole; wrong ones are an error before
 * the first byte (the HTTP layer primes first: a 502, not a short body),
 * and nothing is published.
 */
static void test_blob_small(void)
{
	size_t size = BS / 2 + 3;
	uint8_t *content = pattern(size, 4), *out = malloc(size);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_stream *s;
	int err, waits;
	size_t got;

	hfm_sha256_hex(oid, content, size);
	content[size - 10] ^= 0x40;
	s = blob_stream(oid, size);
	got = read_range(s, 0, size, out, content, &err, &waits);
	TAP_OK(err == HFM_EUPSTREAM && got == 0,
	       "small, wrong bytes: the whole-file read fails before its first byte (%d, %zu)",
	       err, got);
	hfm_stream_free(s);
	s = blob_stream(oid, size);
	got = read_range(s, 100, 200, out, content, &err, &waits);
	TAP_OK(err == HFM_EUPSTREAM && got == 0,
	       "small, wrong bytes: a Range read too (%d, %zu)", err, got);
	hfm_stream_free(s);
	TAP_OK(!hfm_store_object_exists(store, oid), "small, wrong bytes: nothing published");

	content[size - 10] ^= 0x40;
	s = blob_stream(oid, size);
	got = read_range(s, 100, 200, out, content, &err, &waits);
	TAP_OK(err == 0 && got == 100 && !memcmp(out, content + 100, 100),
	       "small: a Range read, right bytes");
	hfm_stream_free(s);
	s = blob_stream(oid, size);
	got = read_range(s, 0, size, out, content, &err, &waits);
	TAP_OK(err == 0 && got == size && !memcmp(out, content, size), "small: whole, right bytes");
	hfm_stream_free(s);
	free(content);
	free(out);
}

/* A range answer is not held back: only a whole file needs the last byte checked. */
static void test_blob_range(void)
{
	size_t size = 6 * BS + 11;
	uint8_t *content = pattern(size, 3), *out = malloc(size);
	char oid[HFM_SHA256_HEX + 1];
	struct hfm_stream *s;
	struct hfm_blob *b;
	int err, waits;
	size_t got;

	hfm_sha256_hex(oid, content, size);
	s = blob_stream(oid, size);
	got = read_range(s, BS + 5, size, out, content, &err, &waits);
	TAP_OK(err == 0 && got == size - BS - 5 && !memcmp(out, content + BS + 5, got),
	       "range to the end: every byte, the last one too");
	hfm_blob_open(&b, bc, oid, size);
	TAP_OK(!hfm_blob_complete(b), "range to the end: served while the blob is unverified");
	hfm_blob_release(b);
	hfm_stream_free(s);

	/* a second response for the whole file still waits for verification */
	s = blob_stream(oid, size);
	got = read_range(s, 0, size, out, content, &err, &waits);
	TAP_OK(err == 0 && got == size && !memcmp(out, content, size), "then whole: right");
	TAP_OK(hfm_store_object_exists(store, oid), "then whole: published before its last byte");
	hfm_stream_free(s);
	free(content);
	free(out);
}

static void test_blob_errors(void)
{
	size_t size = 3 * BS;
	uint8_t *content = pattern(size, 4);
	char oid[HFM_SHA256_HEX + 1], buf[16];
	struct hfm_blob_fetch *f;
	struct hfm_stream *s;
	struct waitfor t;
	int rc;

	waitfor_init(&t);
	hfm_sha256_hex(oid, content, size);
	s = blob_stream(oid, size);
	TAP_IS_INT(hfm_stream_prime(s, 0, size, NULL), 0, "prime: no waiter, no check");
	TAP_IS_INT(hfm_stream_prime(s, 5, 5, waitfor_arm(&t)), 0, "prime: empty range, no check");
	TAP_IS_INT(fk.nq, 0, "prime: neither started a fetch");
	rc = hfm_stream_prime(s, 0, size, waitfor_arm(&t));
	TAP_IS_INT(rc, HFM_EAGAIN, "prime: the first bytes are on their way");
	f = take_fetch();
	TAP_OK(f != NULL, "prime: ... a fetch started");
	serve(f, content, HFM_ETIMEOUT);
	TAP_OK(waitfor_woken(&t), "prime: woken when the fetch failed");
	TAP_IS_INT(hfm_stream_prime(s, 0, size, waitfor_arm(&t)), HFM_ETIMEOUT,
		   "prime: the re-run gets the fetch's error (a 504, not a broken 200)");
	hfm_stream_free(s);

	s = blob_stream(oid, size);
	TAP_IS_INT(hfm_stream_read(s, 0, size, buf, sizeof(buf), waitfor_arm(&t)), HFM_EAGAIN,
		   "read: waits for a fetch");
	f = take_fetch();
	serve(f, content, HFM_EUPSTREAM);
	TAP_OK(waitfor_woken(&t), "read: woken when it failed");
	TAP_IS_INT(hfm_stream_read(s, 0, size, buf, sizeof(buf), waitfor_arm(&t)), HFM_EUPSTREAM,
		   "read: the response ends with the fetch's error");
	TAP_IS_INT(hfm_stream_read(s, size, size, buf, sizeof(buf), waitfor_arm(&t)), HFM_EINVAL,
		   "read: at the end is refused");
	TAP_IS_INT(hfm_stream_read(s, 0, size, buf, 0, waitfor_arm(&t)), HFM_EINVAL,
		   "read: into nothing is refused");
	hfm_stream_free(s);

	fk.fail_start = HFM_EOFFLINE;
	s = blob_stream(oid, size);
	TAP_IS_INT(hfm_stream_prime(s, 0, size, waitfor_arm(&t)), HFM_EOFFLINE,
		   "prime: a fetch that cannot start is the answer at once");
	hfm_stream_free(s);
	fk.fail_start = 0;

	/* freed after HFM_EAGAIN: the fetch goes on for the re-run */
	s = blob_stream(oid, size);
	TAP_IS_INT(hfm_stream_prime(s, 0, size, waitfor_arm(&t)), HFM_EAGAIN, "freed early: waiting");
	hfm_stream_free(s);
	f = take_fetch();
	TAP_OK(f != NULL, "freed early: the fetch is still there to serve");
	serve(f, content, 0);
	s = blob_stream(oid, size);
	TAP_IS_INT(hfm_stream_prime(s, 0, size, waitfor_arm(&t)), 0, "freed early: the re-run is ready");
	hfm_stream_free(s);
	hfm_stream_free(NULL);
	waitfor_dispose(&t);
	free(content);
}

/* ---- ranges over stored, unverified bytes ---------------------------------------- */

/* Content of the stub's /bytes/<size>, its oid and URL; bad: one byte flipped at `at`. */
static uint8_t *stub_content(size_t size, char oid[HFM_SHA256_HEX + 1], char *url, size_t urlmax,
			     uint8_t **bad, size_t at)
{
	uint8_t *p = malloc(size);

	stub_fill(p, 0, size);
	hfm_sha256_hex(oid, p, size);
	snprintf(cur_oid, sizeof(cur_oid), "%s", oid);
	snprintf(url, urlmax, "%s/bytes/%zu", A, size);
	*bad = malloc(size);
	memcpy(*bad, p, size);
	(*bad)[at] ^= 0xff;
	return p;
}

/*
 * Prime as the HTTP layer does: run again whenever woken (every write of
 * the blob wakes its waiters), serving fetches from content meanwhile.
 * Returns the first answer that is not HFM_EAGAIN.
 */
static int prime_serving(struct hfm_stream *s, uint64_t start, uint64_t end,
			 const uint8_t *content)
{
	struct waitfor t;
	int rc, i;

	waitfor_init(&t);
	for (i = 0; i < 10000; i++) {
		if ((rc = hfm_stream_prime(s, start, end, waitfor_arm(&t))) != HFM_EAGAIN)
			break;
		if (!serve_until_woken(&t, content))
			break;
	}
	waitfor_dispose(&t);
	return rc;
}

static int partial_exists(const char *oid)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/partial/%s", root, oid);
	return access(p, F_OK) == 0;
}

/* Fail every fetch left queued (a test's fills), so the caches can be freed. */
static void drop_fetches(void)
{
	struct hfm_blob_fetch *f;

	while ((f = take_fetch()))
		hfm_blob_fetch_done(f, hfm_error_set(HFM_ERROR, "test over"));
}

static void test_range_stored(void)
{
	size_t size = 8 * BS + 3, at = 2 * BS + 150;
	char oid[HFM_SHA256_HEX + 1], url[128], want[64];
	uint8_t *bad, *content = stub_content(size, oid, url, sizeof(url), &bad, at);
	uint8_t *out = malloc(size);
	struct hfm_stream_cache c = { .bc = bc, .up = up };
	struct hfm_stream *s;
	struct stub_req q;
	uint64_t t0 = hfm_mono_ns();
	int err, waits, i0;
	size_t got;

	/* the first range: upstream's bytes as they come (here: wrong) */
	s = range_stream(&c, url, oid, size, hfm_mono_ns());
	got = read_range(s, 2 * BS + 100, 2 * BS + 200, out, bad, &err, &waits);
	TAP_OK(err == 0 && got == 100 && !memcmp(out, bad + 2 * BS + 100, 100) &&
	       memcmp(out, content + 2 * BS + 100, 100),
	       "stored: the first range is upstream's bytes as they arrive");
	hfm_stream_free(s);

	/* a later request for them: relayed again, not read from the store */
	i0 = stub_requests(sa);
	s = range_stream(&c, url, oid, size, hfm_mono_ns());
	got = read_range(s, 2 * BS + 100, 2 * BS + 200, out, bad, &err, &waits);
	TAP_OK(err == 0 && got == 100 && !memcmp(out, content + 2 * BS + 100, 100),
	       "stored: a later range over them gets upstream's bytes again (right now)");
	TAP_IS_INT(stub_requests(sa), i0 + 1, "stored: ... relayed in one request");
	stub_request(sa, i0, &q);
	snprintf(want, sizeof(want), "bytes=%u-%u", 2 * BS + 100, 2 * BS + 199);
	TAP_IS_STR(q.range, want, "stored: ... for just those bytes");
	TAP_IS_INT(fk.nq, 0, "stored: ... and no fetch into the store");
	hfm_stream_free(s);

	/* the re-run of the request they arrived for reads them from the blob */
	s = range_stream(&c, url, oid, size, t0);
	i0 = stub_requests(sa);
	got = read_range(s, 2 * BS + 100, 2 * BS + 200, out, bad, &err, &waits);
	TAP_OK(err == 0 && got == 100 && !memcmp(out, bad + 2 * BS + 100, 100) &&
	       stub_requests(sa) == i0, "stored: a request older than the bytes reads them live");
	hfm_stream_free(s);

	/* a range over missing, stored and missing bytes: live, relayed, live */
	i0 = stub_requests(sa);
	s = range_stream(&c, url, oid, size, hfm_mono_ns());
	TAP_IS_INT(hfm_stream_prime(s, BS + 10, 3 * BS + 10, NULL), 0, "mixed: primes");
	got = read_range(s, BS + 10, 3 * BS + 10, out, content, &err, &waits);
	TAP_OK(err == 0 && got == 2 * BS && !memcmp(out, content + BS + 10, 2 * BS),
	       "mixed: every byte right");
	stub_request(sa, i0, &q);
	snprintf(want, sizeof(want), "bytes=%u-%u", 2 * BS, 3 * BS - 1);
	TAP_OK(stub_requests(sa) == i0 + 1 && !strcmp(q.range, want),
	       "mixed: only the stored block was relayed (%s)", q.range);
	hfm_stream_free(s);

	/* a range that starts in stored bytes is answered at once (a relay) */
	s = range_stream(&c, url, oid, size, hfm_mono_ns());
	{
		struct waitfor t;
		waitfor_init(&t);
		TAP_IS_INT(hfm_stream_prime(s, 2 * BS, 3 * BS, waitfor_arm(&t)), 0,
			   "mixed: starting in stored bytes, ready at once");
		waitfor_dispose(&t);
	}
	hfm_stream_free(s);
	drop_fetches();
	free(content);
	free(bad);
	free(out);
}

/* Few bytes left to fetch: the range waits for the fill's verification instead. */
static void test_range_wait(void)
{
	size_t size = 8 * BS + 13, at = 7 * BS + 1;      /* sizes differ: blobs too */
	char oid[HFM_SHA256_HEX + 1], url[128];
	uint8_t *bad, *content = stub_content(size, oid, url, sizeof(url), &bad, at);
	uint8_t *out = malloc(size);
	struct hfm_stream_cache c = { .bc = bc2, .up = up };
	struct hfm_blob_reader r = { 0 };
	struct hfm_blobcache_stats st;
	struct hfm_stream *s;
	struct hfm_blob *b;
	struct waitfor t;
	uint64_t avail, arrived;
	int err, waits, i0;
	size_t got;

	waitfor_init(&t);
	for (int round = 0; round < 2; round++) {
		const uint8_t *fill = round ? bad : content;

		/* seven of eight blocks stored before the request */
		hfm_blob_open(&b, bc2, oid, size);
		if (hfm_blob_ensure(&avail, b, &r, 0, 7 * BS, &(struct hfm_blob_origin){ url, NULL },
				    waitfor_arm(&t)) == HFM_EAGAIN)
			serve_until_woken(&t, content);
		hfm_blob_reader_dispose(&r);
		hfm_blobcache_stats(&st, bc2);
		i0 = stub_requests(sa);
		arrived = hfm_mono_ns();
		s = range_stream(&c, url, oid, size, arrived);
		TAP_IS_INT(hfm_stream_prime(s, BS, 4 * BS, waitfor_arm(&t)), HFM_EAGAIN,
			   "wait %d: a range over stored bytes, the blob nearly there: waits", round);
		if (round == 0) {
			TAP_IS_INT(prime_serving(s, BS, 4 * BS, fill), 0,
				   "wait: once the fill verified the blob, the answer is ready");
			got = read_range(s, BS, 4 * BS, out, NULL, &err, &waits);
			TAP_OK(err == 0 && got == 3 * BS && !memcmp(out, content + BS, 3 * BS),
			       "wait: right bytes, from the verified blob");
			TAP_OK(hfm_blob_complete(b), "wait: published before the answer");
			TAP_IS_INT(stub_requests(sa), i0, "wait: nothing relayed");
		} else {
			TAP_IS_INT(prime_serving(s, BS, 4 * BS, fill), HFM_EUPSTREAM,
				   "wait, corrupt: the fill failed verification: the answer is an error");
			hfm_stream_free(s);
			/* its re-run (the same request) finds the blob empty: reads anew */
			s = range_stream(&c, url, oid, size, arrived);
			TAP_IS_INT(prime_serving(s, BS, 4 * BS, content), 0,
				   "wait, corrupt: a re-run fetches afresh");
			got = read_range(s, BS, 4 * BS, out, content, &err, &waits);
			TAP_OK(err == 0 && got == 3 * BS && !memcmp(out, content + BS, 3 * BS),
			       "wait, corrupt: ... and right");
		}
		hfm_stream_free(s);
		hfm_blob_release(b);
		if (round == 0) {
			/* a new blob for the corrupt round */
			size += 1;
			free(content);
			free(bad);
			content = stub_content(size, oid, url, sizeof(url), &bad, at);
			free(out);
			out = malloc(size);
		}
	}
	drop_fetches();
	waitfor_dispose(&t);
	free(content);
	free(bad);
	free(out);
}

/* Over range_fill_max: relayed, nothing stored; strict: only verified bytes. */
static void test_range_bound_strict(void)
{
	size_t size = 3 * BS + 25, at = BS + 9;
	char oid[HFM_SHA256_HEX + 1], url[128];
	uint8_t *bad, *content = stub_content(size, oid, url, sizeof(url), &bad, at);
	uint8_t *out = malloc(size);
	struct hfm_stream_cache bound = { .bc = bc2, .up = up, .range_fill_max = BS };
	struct hfm_stream_cache strict = { .bc = bc2, .up = up, .strict = 1 };
	struct hfm_stream *s;
	struct waitfor t;
	uint64_t arrived;
	int err, waits, i0;
	size_t got;

	pthread_mutex_lock(&fk.lock);
	snprintf(fk.only_url, sizeof(fk.only_url), "%s", url);
	pthread_mutex_unlock(&fk.lock);
	drop_fetches();
	waitfor_init(&t);
	i0 = stub_requests(sa);
	s = range_stream(&bound, url, oid, size, hfm_mono_ns());
	got = read_range(s, 10, 2 * BS, out, content, &err, &waits);
	TAP_OK(err == 0 && got == 2 * BS - 10 && !memcmp(out, content + 10, got),
	       "bound: a range of a blob over range_fill_max: right bytes");
	TAP_IS_INT(stub_requests(sa), i0 + 1, "bound: ... relayed");
	TAP_OK(!partial_exists(oid) && !hfm_store_object_exists(store, oid) && fk.nq == 0,
	       "bound: ... nothing stored, nothing fetched");
	hfm_stream_free(s);

	/* strict, upstream wrong: an error, never the bytes; the re-run too */
	arrived = hfm_mono_ns();
	s = range_stream(&strict, url, oid, size, arrived);
	TAP_IS_INT(hfm_stream_prime(s, BS, BS + 100, waitfor_arm(&t)), HFM_EAGAIN,
		   "strict: waits for the verified blob");
	TAP_IS_INT(fk.nq, 1, "strict: the fill fetches at once");
	TAP_IS_INT(prime_serving(s, BS, BS + 100, bad), HFM_EUPSTREAM,
		   "strict: verification failed: the answer is an error");
	hfm_stream_free(s);
	/* the failed fill may have left a fetch queued: fail it, so what follows counts only the re-run */
	drop_fetches();
	s = range_stream(&strict, url, oid, size, arrived);
	TAP_IS_INT(hfm_stream_prime(s, BS, BS + 100, waitfor_arm(&t)), HFM_EUPSTREAM,
		   "strict: ... also when the request runs again (no new fill for it)");
	TAP_IS_INT(fk.nq, 0, "strict: ... which fetches nothing");
	hfm_stream_free(s);

	/* strict, upstream right: the answer after verification */
	s = range_stream(&strict, url, oid, size, hfm_mono_ns());
	TAP_IS_INT(hfm_stream_prime(s, BS, BS + 100, waitfor_arm(&t)), HFM_EAGAIN,
		   "strict: a new request starts a clean fill");
	TAP_IS_INT(prime_serving(s, BS, BS + 100, content), 0, "strict: ready once verified");
	got = read_range(s, BS, BS + 100, out, NULL, &err, &waits);
	TAP_OK(err == 0 && got == 100 && !memcmp(out, content + BS, 100) &&
	       hfm_store_object_exists(store, oid), "strict: right bytes, of a published blob");
	hfm_stream_free(s);
	drop_fetches();
	waitfor_dispose(&t);
	pthread_mutex_lock(&fk.lock);
	fk.only_url[0] = '\0';
	pthread_mutex_unlock(&fk.lock);
	free(content);
	free(bad);
	free(out);
}

/* A response reading live when the blob fails verification ends early. */
static void test_range_discard(void)
{
	size_t size = 6 * BS + 31, at = 5 * BS + 3;
	char oid[HFM_SHA256_HEX + 1], url[128], buf[256];
	uint8_t *bad, *content = stub_content(size, oid, url, sizeof(url), &bad, at);
	struct hfm_stream_cache c = { .bc = bc, .up = up };
	struct hfm_blob_reader r = { 0 };
	struct hfm_blobcache_stats st;
	struct hfm_stream *s, *whole;
	struct hfm_blob *b;
	struct waitfor t;
	uint64_t avail, corrupt0;
	ssize_t n;

	waitfor_init(&t);
	hfm_blobcache_stats(&st, bc);
	corrupt0 = st.corrupt;
	s = range_stream(&c, url, oid, size, hfm_mono_ns());
	whole = range_stream(&c, url, oid, size, hfm_mono_ns());
	if ((n = hfm_stream_read(s, 0, 4 * BS, buf, sizeof(buf), waitfor_arm(&t))) == HFM_EAGAIN) {
		serve_until_woken(&t, bad);
		n = hfm_stream_read(s, 0, 4 * BS, buf, sizeof(buf), waitfor_arm(&t));
	}
	TAP_IS_INT(n, (ssize_t)sizeof(buf), "discard: a range reads its first bytes");
	if ((n = hfm_stream_read(whole, 0, size, buf, sizeof(buf), waitfor_arm(&t))) == HFM_EAGAIN) {
		serve_until_woken(&t, bad);
		n = hfm_stream_read(whole, 0, size, buf, sizeof(buf), waitfor_arm(&t));
	}
	TAP_IS_INT(n, (ssize_t)sizeof(buf), "discard: so does a whole-file answer");
	/* the rest comes, wrong: verification fails */
	hfm_blob_open(&b, bc, oid, size);
	if (hfm_blob_ensure(&avail, b, &r, 0, size, &(struct hfm_blob_origin){ url, NULL },
			    waitfor_arm(&t)) == HFM_EAGAIN)
		serve_until_woken(&t, bad);
	for (int i = 0; i < 3000 && hfm_blob_ensure(&avail, b, &r, 4 * BS, size,
			&(struct hfm_blob_origin){ url, NULL }, waitfor_arm(&t)) == HFM_EAGAIN; i++)
		serve_until_woken(&t, bad);
	for (int i = 0; i < 3000; i++) {
		hfm_blobcache_stats(&st, bc);
		if (st.corrupt > corrupt0)
			break;
		usleep(1000);
	}
	TAP_IS_INT(st.corrupt, corrupt0 + 1, "discard: the blob failed verification");
	TAP_IS_INT(hfm_stream_read(s, sizeof(buf), 4 * BS, buf, sizeof(buf), waitfor_arm(&t)),
		   HFM_ECORRUPT, "discard: the range ends early");
	TAP_IS_INT(hfm_stream_read(whole, sizeof(buf), size, buf, sizeof(buf), waitfor_arm(&t)),
		   HFM_ECORRUPT, "discard: the whole-file answer ends early");
	hfm_stream_free(s);
	hfm_stream_free(whole);
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	drop_fetches();
	waitfor_dispose(&t);
	free(content);
	free(bad);
}

/* ---- relay streams ------------------------------------------------------------- */

static struct hfm_stream *relay_stream(const char *path, const char *oid, uint64_t size)
{
	struct hfm_stream *s = NULL;
	char url[256];
	struct hfm_stream_origin o = { .url = url, .authorization = "Bearer hf_relay",
				       .oid = oid, .size = size };

	snprintf(url, sizeof(url), "%s%s", A, path);
	if (hfm_stream_relay_new(&s, up, &o))
		abort();
	return s;
}

static void stub_oid(char oid[HFM_SHA256_HEX + 1], size_t n)
{
	uint8_t *p = malloc(n);

	stub_fill(p, 0, n);
	hfm_sha256_hex(oid, p, n);
	free(p);
}

static int matches_stub(const uint8_t *p, uint64_t off, size_t n)
{
	uint8_t *want = malloc(n ? n : 1);
	int ok;

	stub_fill(want, off, n);
	ok = !memcmp(p, want, n);
	free(want);
	return ok;
}

static void test_relay(void)
{
	/* larger than the relay buffer: upstream is paused and resumed */
	size_t size = 1024 * 1024 + 3;
	uint8_t *out = malloc(size);
	char oid[HFM_SHA256_HEX + 1], bad[HFM_SHA256_HEX + 1], path[64];
	struct hfm_stream *s;
	struct stub_req q;
	int err, waits, i0;
	size_t got;

	stub_oid(oid, size);
	memset(bad, 'e', HFM_SHA256_HEX);
	bad[HFM_SHA256_HEX] = '\0';
	snprintf(path, sizeof(path), "/bytes/%zu", size);

	i0 = stub_requests(sa);
	s = relay_stream(path, oid, size);
	TAP_IS_INT(hfm_stream_prime(s, 0, size, NULL), 0, "relay: prime has nothing to check");
	TAP_IS_INT(stub_requests(sa), i0, "relay: nothing asked before the first read");
	got = read_range(s, 0, size, out, NULL, &err, &waits);
	TAP_OK(err == 0 && got == size && matches_stub(out, 0, size), "relay: whole file, right");
	stub_request(sa, i0, &q);
	TAP_OK(q.range[0] == '\0' && !strcmp(q.auth, "Bearer hf_relay"),
	       "relay: one plain GET with the client's token");
	hfm_stream_free(s);

	s = relay_stream(path, bad, size);
	got = read_range(s, 0, size, out, NULL, &err, &waits);
	TAP_IS_INT(err, HFM_ECORRUPT, "relay, wrong content: the whole-file read fails");
	/* what was buffered when the digest failed is dropped with the last byte */
	TAP_OK(got < size && matches_stub(out, 0, got), "relay, wrong content: ... short (%zu)", got);
	hfm_stream_free(s);

	i0 = stub_requests(sa);
	s = relay_stream(path, bad, size);
	got = read_range(s, 1000, 5000, out, NULL, &err, &waits);
	TAP_OK(err == 0 && got == 4000 && matches_stub(out, 1000, 4000),
	       "relay range: the bytes asked for (a range is not verified)");
	stub_request(sa, i0, &q);
	TAP_IS_STR(q.range, "bytes=1000-4999", "relay range: upstream asked for just those");
	hfm_stream_free(s);

	snprintf(path, sizeof(path), "/norange/%zu", size);
	s = relay_stream(path, oid, size);
	got = read_range(s, 300000, 300100, out, NULL, &err, &waits);
	TAP_OK(err == 0 && got == 100 && matches_stub(out, 300000, 100),
	       "relay range, upstream ignores Range: the right bytes picked out");
	hfm_stream_free(s);

	snprintf(path, sizeof(path), "/badrange/%zu", size);
	s = relay_stream(path, oid, size);
	read_range(s, 10, 20, out, NULL, &err, &waits);
	TAP_IS_INT(err, HFM_EUPSTREAM, "relay: a wrong Content-Range fails");
	hfm_stream_free(s);

	s = relay_stream("/status/404", oid, size);
	read_range(s, 0, size, out, NULL, &err, &waits);
	TAP_IS_INT(err, HFM_EUPSTREAM, "relay: upstream 404 fails");
	hfm_stream_free(s);
	s = relay_stream("/status/403", oid, size);
	read_range(s, 0, size, out, NULL, &err, &waits);
	TAP_IS_INT(err, HFM_EGATED, "relay: upstream 403 is a gated answer");
	hfm_stream_free(s);

	snprintf(path, sizeof(path), "/drop/%zu", size);
	s = relay_stream(path, oid, size);
	got = read_range(s, 0, size, out, NULL, &err, &waits);
	TAP_OK(err == HFM_EUPSTREAM && got == size / 2 && matches_stub(out, 0, got),
	       "relay: a dropped connection ends the response after what came");
	hfm_stream_free(s);
	free(out);
}

static void test_relay_wait(void)
{
	size_t size = 5000;
	char oid[HFM_SHA256_HEX + 1], path[64], buf[8192];
	struct hfm_stream *s;
	struct waitfor t;
	ssize_t n;

	waitfor_init(&t);
	stub_oid(oid, size);
	snprintf(path, sizeof(path), "/hold/%zu", size);
	stub_hold(sa, 1);
	s = relay_stream(path, oid, size);
	n = hfm_stream_read(s, 0, 3000, buf, sizeof(buf), waitfor_arm(&t));
	TAP_IS_INT(n, HFM_EAGAIN, "relay: nothing yet, the reader waits");
	stub_hold(sa, 0);
	TAP_OK(waitfor_woken(&t), "relay: woken when bytes came");
	n = hfm_stream_read(s, 0, 3000, buf, sizeof(buf), waitfor_arm(&t));
	TAP_OK(n > 0 && matches_stub((uint8_t *)buf, 0, (size_t)n), "relay: the re-run reads them");
	TAP_IS_INT(hfm_stream_read(s, 0, 3000, buf, sizeof(buf), waitfor_arm(&t)), HFM_EINVAL,
		   "relay: reading the same bytes again is refused");
	hfm_stream_free(s);

	/* freed while upstream is still sending: the transfer is cancelled */
	stub_hold(sa, 1);
	s = relay_stream(path, oid, size);
	TAP_IS_INT(hfm_stream_read(s, 0, size, buf, sizeof(buf), waitfor_arm(&t)), HFM_EAGAIN,
		   "relay freed mid-transfer: was waiting");
	hfm_stream_free(s);
	stub_hold(sa, 0);
	waitfor_dispose(&t);

	hfm_up_set_offline(up, 1);
	s = relay_stream("/bytes/10", oid, 10);
	TAP_IS_INT(hfm_stream_read(s, 0, 10, buf, sizeof(buf), NULL), HFM_EOFFLINE,
		   "relay offline: nothing asked");
	hfm_stream_free(s);
	hfm_up_set_offline(up, 0);
}

int main(void)
{
	struct hfm_blobcache_opts co;
	struct hfm_up_opts uo;
	char cmd[300];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (!mkdtemp(root) || hfm_store_open(&store, root, 1)) {
		printf("Bail out! cannot make a store\n");
		return 1;
	}
	memset(&co, 0, sizeof(co));
	co.block_size = BS;
	co.fetch = manual_fetch;
	co.log = logcap;
	co.fill_idle_ms = 3600 * 1000;
	TAP_IS_INT(hfm_blobcache_new(&bc, store, &co), 0, "blob cache opens");
	co.fill_idle_ms = 20;
	TAP_IS_INT(hfm_blobcache_new(&bc2, store, &co), 0, "a second one, whose fills go soon");
	sa = stub_start();
	snprintf(A, sizeof(A), "http://127.0.0.1:%d", stub_port(sa));
	memset(&uo, 0, sizeof(uo));
	uo.log = logcap;
	TAP_IS_INT(hfm_up_new(&up, &uo), 0, "upstream starts");

	test_blob_whole();
	test_blob_recent();
	test_blob_corrupt();
	test_blob_range();
	test_blob_small();
	test_blob_errors();
	test_relay();
	test_relay_wait();
	test_range_stored();
	test_range_wait();
	test_range_bound_strict();
	test_range_discard();

	/* as the cache source stops: no fill starts a fetch, those queued end */
	hfm_blobcache_stop_fills(bc);
	hfm_blobcache_stop_fills(bc2);
	drop_fetches();
	hfm_up_free(up);
	hfm_blobcache_free(bc);
	hfm_blobcache_free(bc2);
	stub_stop(sa);
	hfm_store_free(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	rc = system(cmd);
	(void)rc;
	return tap_done();
}
