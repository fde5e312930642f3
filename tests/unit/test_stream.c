/*
 * test_stream.c - the online cache's streamed bodies, read as the HTTP layer
 * reads them (hfm_stream_read/prime with a waiter, re-run when woken).
 *
 * Blob streams run over a blob cache whose fetches the test serves by hand,
 * so "not there yet" is certain; relay streams over a real upstream and the
 * stub server, whose /hold/ route keeps the body back until released.
 */
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
static struct hfm_blobcache *bc;
static struct hfm_upstream *up;
static struct stub *sa;
static char A[64];

/* ---- a fetcher the test serves by hand -------------------------------------- */

static struct {
	pthread_mutex_t lock;
	struct hfm_blob_fetch *q[64];
	int nq;
	int fail_start;                  /* returned by the callback when set */
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

/* Serve every queued fetch. */
static int serve_all(const uint8_t *content)
{
	struct hfm_blob_fetch *f;
	int n = 0;

	while ((f = take_fetch())) {
		serve(f, content, 0);
		n++;
	}
	return n;
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
			if (content)
				serve_all(content);
			if (!waitfor_woken(&t)) {
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

static struct hfm_stream *blob_stream(const char *oid, uint64_t size)
{
	struct hfm_stream *s = NULL;
	struct hfm_stream_origin o = {
		.url = "https://hub.test/org/x/resolve/c0ffee/w.bin",
		.authorization = "Bearer hf_reader",
		.oid = oid,
		.size = size,
	};

	if (hfm_stream_blob_new(&s, bc, &o))
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
	TAP_IS_INT(got, size - 1, "corrupt: ... before its last byte");
	TAP_OK(logcap_has("discarded") && logcap_has(oid), "corrupt: logged");
	TAP_OK(!hfm_store_object_exists(store, oid), "corrupt: nothing published");
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
	TAP_IS_INT(hfm_blobcache_new(&bc, store, &co), 0, "blob cache opens");
	sa = stub_start();
	snprintf(A, sizeof(A), "http://127.0.0.1:%d", stub_port(sa));
	memset(&uo, 0, sizeof(uo));
	uo.log = logcap;
	TAP_IS_INT(hfm_up_new(&up, &uo), 0, "upstream starts");

	test_blob_whole();
	test_blob_corrupt();
	test_blob_range();
	test_blob_errors();
	test_relay();
	test_relay_wait();

	hfm_up_free(up);
	hfm_blobcache_free(bc);
	stub_stop(sa);
	hfm_store_free(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	rc = system(cmd);
	(void)rc;
	return tap_done();
}
