/* test_blobfetch.c - the blob cache filled from a canned upstream over HTTP. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfm/blobfetch.h"
#include "hfm/hash.h"
#include "stub_http.h"
#include "logcap.h"
#include "tap.h"

#define BS (64u * 1024)

static char root[] = "/tmp/hfm-blobfetch-XXXXXX";
static struct hfm_store *store;
static struct hfm_upstream *up;
static struct hfm_blobfetch *bf;
static struct hfm_blobcache *bc;
static struct stub *sa, *sb;
static char A[64];

/* The id of the stub's content of n bytes. */
static void stub_oid(char oid[HFM_SHA256_HEX + 1], size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	stub_fill(p, 0, n);
	hfm_sha256_hex(oid, p, n);
	free(p);
}

/*
 * Read [off, end) of the blob through ensure (blocking), checking every byte
 * against the stub's content.  Returns 0 or the first error.
 */
static int read_range(struct hfm_blob *b, const struct hfm_blob_origin *o, uint64_t off,
		      uint64_t end, int *content_ok)
{
	struct hfm_blob_reader r = { 0 };
	uint8_t buf[BS], want[BS];
	int fd = hfm_blob_fd(b), rc = 0;

	*content_ok = 1;
	while (off < end) {
		uint64_t avail;
		size_t n;
		if ((rc = hfm_blob_ensure(&avail, b, &r, off, end, o, NULL)))
			break;
		n = avail < BS ? (size_t)avail : BS;
		if (n > end - off)
			n = (size_t)(end - off);
		stub_fill(want, off, n);
		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n || memcmp(buf, want, n))
			*content_ok = 0;
		off += n;
	}
	hfm_blob_reader_dispose(&r);
	close(fd);
	return rc;
}

static int wait_complete(struct hfm_blob *b)
{
	int i;

	for (i = 0; i < 500 && !hfm_blob_complete(b); i++)
		usleep(10000);
	return hfm_blob_complete(b);
}

/* Sum of the lengths of the Range headers the stub saw from request i0 on. */
static uint64_t ranged_bytes(struct stub *s, int i0, int *nreq)
{
	uint64_t sum = 0;
	int i, n = stub_requests(s);

	*nreq = 0;
	for (i = i0; i < n; i++) {
		struct stub_req q;
		unsigned long long a, b;
		stub_request(s, i, &q);
		if (sscanf(q.range, "bytes=%llu-%llu", &a, &b) == 2) {
			sum += b - a + 1;
			(*nreq)++;
		}
	}
	return sum;
}

static void test_plain(void)
{
	size_t size = 40 * BS + 333;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, "Bearer hf_tok" };
	struct hfm_blob *b;
	int ok, nreq, i0 = stub_requests(sa);
	struct stub_req q;
	uint64_t sum;

	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/bytes/%zu", A, size);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(read_range(b, &o, 0, size, &ok), 0, "plain: whole blob read");
	TAP_OK(ok, "plain: content right");
	TAP_OK(wait_complete(b) && hfm_store_object_exists(store, oid), "plain: verified and stored");
	sum = ranged_bytes(sa, i0, &nreq);
	TAP_IS_INT(sum, size, "plain: every byte requested once");
	TAP_OK(nreq >= 2 && nreq <= 8, "plain: coalesced into few requests (%d)", nreq);
	stub_request(sa, i0, &q);
	TAP_IS_STR(q.auth, "Bearer hf_tok", "plain: the reader's token is sent upstream");
	hfm_blob_release(b);
}

static void test_redirect(void)
{
	size_t size = 10 * BS + 1;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, "Bearer hf_tok" };
	struct hfm_blob *b;
	int ok, nreq, i0 = stub_requests(sb), i;

	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/redirect/%d/bytes/%zu", A, stub_port(sb), size);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(read_range(b, &o, 3 * BS + 7, size, &ok), 0, "redirect: read from the CDN");
	TAP_OK(ok, "redirect: content right");
	TAP_IS_INT(ranged_bytes(sb, i0, &nreq), 7 * BS + 1, "redirect: CDN got the Range");
	for (ok = 1, i = i0; i < stub_requests(sb); i++) {
		struct stub_req q;
		stub_request(sb, i, &q);
		ok &= q.auth[0] == '\0';
	}
	TAP_OK(ok, "redirect: CDN never got the token");
	hfm_blob_release(b);
}

static void test_lying(void)
{
	size_t size = 20 * BS + 5;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, NULL };
	struct hfm_blobcache_stats s0, s1;
	struct hfm_blob *b;
	int ok, rc;

	/* Range ignored: 200 with the whole body */
	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/norange/%zu", A, size);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(read_range(b, &o, 12 * BS + 3, 13 * BS, &ok), 0, "norange: read in the middle");
	TAP_OK(ok, "norange: the right bytes were picked out of the whole body");
	TAP_IS_INT(hfm_blob_available(b, 12 * BS), BS, "norange: just that block stored");
	TAP_OK(logcap_has("ignored Range"), "norange: logged");

	/* wrong Content-Range */
	snprintf(url, sizeof(url), "%s/badrange/%zu", A, size);
	hfm_blobcache_stats(&s0, bc);
	rc = read_range(b, &o, 2 * BS, 3 * BS, &ok);
	hfm_blobcache_stats(&s1, bc);
	TAP_IS_INT(rc, HFM_EUPSTREAM, "badrange: the reader gets HFM_EUPSTREAM");
	TAP_IS_INT(hfm_blob_available(b, 2 * BS), 0, "badrange: nothing stored");
	TAP_IS_INT(s1.fetch_failures - s0.fetch_failures, 1, "badrange: one failed fetch");

	/* connection dropped mid-body (the drop route answers 200 with half) */
	snprintf(url, sizeof(url), "%s/drop/%zu", A, size);
	rc = read_range(b, &o, 15 * BS, 17 * BS, &ok);
	TAP_IS_INT(rc, HFM_EUPSTREAM, "drop: the reader's response ends with an error");
	TAP_IS_INT(hfm_blob_available(b, 15 * BS), 0, "drop: released, not present");

	/* error statuses */
	snprintf(url, sizeof(url), "%s/status/404", A);
	TAP_IS_INT(read_range(b, &o, 0, 1, &ok), HFM_EUPSTREAM, "404: HFM_EUPSTREAM");
	snprintf(url, sizeof(url), "%s/status/401", A);
	TAP_IS_INT(read_range(b, &o, 0, 1, &ok), HFM_EGATED, "401: HFM_EGATED");

	/* offline: nothing is attempted */
	{
		int n0 = stub_requests(sa);
		snprintf(url, sizeof(url), "%s/bytes/%zu", A, size);
		hfm_up_set_offline(up, 1);
		TAP_IS_INT(read_range(b, &o, 0, 1, &ok), HFM_EOFFLINE, "offline: HFM_EOFFLINE");
		TAP_IS_INT(stub_requests(sa), n0, "offline: no request");
		TAP_OK(read_range(b, &o, 12 * BS, 13 * BS, &ok) == 0 && ok,
		       "offline: cached blocks still served");
		hfm_up_set_offline(up, 0);
	}

	/* and after all that the blob still completes from an honest upstream */
	TAP_IS_INT(read_range(b, &o, 0, size, &ok), 0, "recovery: whole blob read");
	TAP_OK(ok && wait_complete(b), "recovery: verified");
	hfm_blob_release(b);
}

/*
 * A body cut off after 11 blocks: blobfetch gathers 256 KiB before it
 * writes, so the last 3 blocks are still gathered when the connection
 * drops; they must reach the cache anyway, and the blocks stay.
 */
static void test_drop_keeps_gathered(void)
{
	size_t size = 22 * BS;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, NULL };
	struct hfm_blob *b;
	int ok, rc;

	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/drop/%zu", A, size);
	hfm_blob_open(&b, bc, oid, size);
	rc = read_range(b, &o, 0, size, &ok);
	TAP_IS_INT(rc, HFM_EUPSTREAM, "cut body: the reader's response ends with an error");
	TAP_OK(ok, "cut body: the bytes read before it are right");
	TAP_IS_INT(hfm_blob_available(b, 0), 11 * BS,
		   "cut body: every block that arrived is kept, the last gathered ones too");
	hfm_blob_release(b);
}

struct reader_arg {
	struct hfm_blob *b;
	const struct hfm_blob_origin *o;
	uint64_t off;
	int rc, ok;
};

static void *reader(void *arg)
{
	struct reader_arg *a = arg;

	a->rc = read_range(a->b, a->o, a->off, hfm_blob_size(a->b), &a->ok);
	return NULL;
}

static void test_concurrent(void)
{
	size_t size = 60 * BS + 17;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, NULL };
	struct reader_arg ra[3];
	pthread_t th[3];
	struct hfm_blob *b;
	int i, ok = 1, nreq, i0 = stub_requests(sa);

	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/bytes/%zu", A, size);
	hfm_blob_open(&b, bc, oid, size);
	for (i = 0; i < 3; i++) {
		ra[i].b = b;
		ra[i].o = &o;
		ra[i].off = i == 2 ? 30 * BS + 9 : 0;
		pthread_create(&th[i], NULL, reader, &ra[i]);
	}
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ok &= ra[i].rc == 0 && ra[i].ok;
	}
	TAP_OK(ok, "concurrent: three readers, right bytes");
	TAP_IS_INT(ranged_bytes(sa, i0, &nreq), size, "concurrent: each byte fetched once");
	TAP_OK(wait_complete(b), "concurrent: verified");
	hfm_blob_release(b);
}

/*
 * A blob larger than the digest may fall behind by: read whole, right,
 * each byte fetched once (a transfer paused for the digest resumes).
 */
static void test_large(void)
{
	size_t size = 3 * HFM_BLOB_HASH_QUEUE + 12345;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, NULL };
	struct hfm_blobcache_stats s0, s1;
	struct hfm_blob *b;
	int ok, nreq, i0 = stub_requests(sa);

	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/bytes/%zu", A, size);
	hfm_blobcache_stats(&s0, bc);
	hfm_blob_open(&b, bc, oid, size);
	TAP_IS_INT(read_range(b, &o, 0, size, &ok), 0, "large: whole blob read");
	TAP_OK(ok, "large: content right");
	TAP_OK(wait_complete(b), "large: verified");
	TAP_IS_INT(ranged_bytes(sa, i0, &nreq), size, "large: every byte requested once");
	hfm_blobcache_stats(&s1, bc);
	/* a readahead fetch runs ahead of the digest's cursor: its bytes are read back */
	TAP_IS_INT(s1.hashed_given - s0.hashed_given + s1.hashed_read - s0.hashed_read, size,
		   "large: every byte hashed once");
	TAP_OK(s1.hashed_given - s0.hashed_given >= size / 2,
	       "large: most of it from the received buffers (%llu of %zu)",
	       (unsigned long long)(s1.hashed_given - s0.hashed_given), size);
	hfm_blob_release(b);
}

/*
 * A transfer whose bytes the digest cannot keep up with pauses: with no
 * hashing thread (hash_workers -1) it stops once HFM_BLOB_HASH_QUEUE bytes
 * wait (and the digest's queue, not the file, bounds the memory).
 * Returns the cache, to be freed after the upstream (which ends the transfer).
 */
static struct hfm_blobcache *test_paused(void)
{
	size_t size = 4 * HFM_BLOB_HASH_QUEUE;
	char oid[HFM_SHA256_HEX + 1], url[128];
	struct hfm_blob_origin o = { url, NULL };
	struct hfm_blobcache_opts co;
	struct hfm_blobcache *bc2 = NULL;
	struct hfm_blob_reader r = { 0 };
	struct hfm_blob *b;
	uint64_t avail, last = 0, now;
	int i, same = 0;

	memset(&co, 0, sizeof(co));
	co.block_size = 1u << 20;
	co.hash_workers = -1;
	co.fetch = hfm_blobfetch_start;
	co.fetch_cls = bf;
	co.log = logcap;
	if (hfm_blobcache_new(&bc2, store, &co))
		abort();
	stub_oid(oid, size);
	snprintf(url, sizeof(url), "%s/bytes/%zu", A, size);
	hfm_blob_open(&b, bc2, oid, size);
	TAP_IS_INT(hfm_blob_ensure(&avail, b, &r, 0, size, &o, NULL), 0, "paused: bytes come");
	/* until nothing more arrives for half a second (or 20 s) */
	for (i = 0; i < 400 && same < 10; i++) {
		usleep(50000);
		now = hfm_blob_available(b, 0);
		same = now == last ? same + 1 : 0;
		last = now;
	}
	TAP_OK(last >= HFM_BLOB_HASH_QUEUE && last <= HFM_BLOB_HASH_QUEUE + 2 * HFM_BLOB_BUF,
	       "paused: the transfer stopped once the digest was %u bytes behind (%llu)",
	       HFM_BLOB_HASH_QUEUE, (unsigned long long)last);
	hfm_blob_reader_dispose(&r);
	hfm_blob_release(b);
	return bc2;
}

int main(void)
{
	struct hfm_blobcache *bc2;
	struct hfm_up_opts uo;
	struct hfm_blobfetch_opts fo;
	struct hfm_blobcache_opts co;
	char r1[64], r2[64], cmd[600];
	const char *resolve[3];
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
	sa = stub_start();
	sb = stub_start();
	snprintf(A, sizeof(A), "http://hub.test:%d", stub_port(sa));
	snprintf(r1, sizeof(r1), "hub.test:%d:127.0.0.1", stub_port(sa));
	snprintf(r2, sizeof(r2), "cdn.test:%d:127.0.0.1", stub_port(sb));
	resolve[0] = r1;
	resolve[1] = r2;
	resolve[2] = NULL;

	memset(&uo, 0, sizeof(uo));
	uo.resolve = resolve;
	uo.log = logcap;
	memset(&fo, 0, sizeof(fo));
	fo.retry_base_ms = 10;
	fo.log = logcap;
	memset(&co, 0, sizeof(co));
	co.block_size = BS;
	co.run_blocks = 16;
	co.readahead_blocks = 8;
	co.sync_bytes = 8 * BS;
	co.fetch = hfm_blobfetch_start;
	co.log = logcap;
	TAP_OK(hfm_up_new(&up, &uo) == 0 && hfm_blobfetch_new(&bf, up, &fo) == 0, "engines start");
	co.fetch_cls = bf;
	TAP_IS_INT(hfm_blobcache_new(&bc, store, &co), 0, "cache opens");

	test_plain();
	test_redirect();
	test_lying();
	test_drop_keeps_gathered();
	test_concurrent();
	test_large();
	bc2 = test_paused();

	/* upstream first: it ends every transfer, which ends every fetch */
	hfm_up_free(up);
	hfm_blobcache_free(bc2);
	hfm_blobcache_free(bc);
	hfm_blobfetch_free(bf);
	stub_stop(sa);
	stub_stop(sb);
	hfm_store_free(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	rc = system(cmd);
	(void)rc;
	return tap_done();
}
