/* hash.c - git blob ids, sha256 and LFS pointers (OpenSSL EVP). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "hfm/hash.h"

#define LFS_SPEC "version https://git-lfs.github.com/spec/v1\n"

void hfm_hex(char *out, const unsigned char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hfm_unhex(unsigned char *out, const char *hex, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return HFM_EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int hfm_is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

static void digest_hex(char *out, const EVP_MD *md, const void *data, size_t n)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	EVP_Digest(data, n, d, &dl, md, NULL);
	hfm_hex(out, d, dl);
}

void hfm_sha1_hex(char out[HFM_SHA1_HEX + 1], const void *data, size_t n)
{
	digest_hex(out, EVP_sha1(), data, n);
}

void hfm_sha256_hex(char out[HFM_SHA256_HEX + 1], const void *data, size_t n)
{
	digest_hex(out, EVP_sha256(), data, n);
}

struct hfm_hashctx {
	EVP_MD_CTX *sha1;
	EVP_MD_CTX *sha256;
};

struct hfm_hashctx *hfm_hashctx_new(uint64_t total_size, int want_sha1, int want_sha256)
{
	struct hfm_hashctx *h = hfm_calloc(1, sizeof(*h));
	char hdr[32];
	int n;

	if (want_sha1) {
		h->sha1 = EVP_MD_CTX_new();
		if (!h->sha1)
			abort();
		EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL);
		n = snprintf(hdr, sizeof(hdr), "blob %llu", (unsigned long long)total_size);
		EVP_DigestUpdate(h->sha1, hdr, (size_t)n + 1); /* include the NUL */
	}
	if (want_sha256) {
		h->sha256 = EVP_MD_CTX_new();
		if (!h->sha256)
			abort();
		EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL);
	}
	return h;
}

/*
 * Bytes another core wrote a few MiB ago (the blob cache hands its
 * received buffers to a hashing thread) are no longer in this core's
 * caches, and the hardware prefetcher stops at each 4 KiB page: sha256 of
 * such bytes cost 0.84-0.91 s per GiB here against 0.60 for bytes in cache
 * (docs/performance.md, "The cold GET").  Fed a page at a time with the
 * next two pages prefetched, 0.68; bytes in cache lose nothing.  Both
 * digests of one call take each page while it is in L1.
 */
#define UPDATE_STEP 4096u
#define PREFETCH_AHEAD 8192u

void hfm_hashctx_update(struct hfm_hashctx *h, const void *data, size_t n)
{
	const unsigned char *p = data, *end = p + n, *pf = p;

	while (p < end) {
		size_t k = HFM_MIN((size_t)(end - p), (size_t)UPDATE_STEP);
		const unsigned char *want = (size_t)(end - p) > k + PREFETCH_AHEAD ?
			p + k + PREFETCH_AHEAD : end;

		for (; pf < want; pf += 64)
			__builtin_prefetch(pf);
		if (h->sha1)
			EVP_DigestUpdate(h->sha1, p, k);
		if (h->sha256)
			EVP_DigestUpdate(h->sha256, p, k);
		p += k;
	}
}

void hfm_hashctx_final(struct hfm_hashctx *h, char sha1[HFM_SHA1_HEX + 1],
		       char sha256[HFM_SHA256_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl;

	if (sha1)
		sha1[0] = '\0';
	if (sha256)
		sha256[0] = '\0';
	if (h->sha1) {
		EVP_DigestFinal_ex(h->sha1, d, &dl);
		if (sha1)
			hfm_hex(sha1, d, dl);
		EVP_MD_CTX_free(h->sha1);
	}
	if (h->sha256) {
		EVP_DigestFinal_ex(h->sha256, d, &dl);
		if (sha256)
			hfm_hex(sha256, d, dl);
		EVP_MD_CTX_free(h->sha256);
	}
	free(h);
}

void hfm_git_blob_id(char out[HFM_SHA1_HEX + 1], const void *data, size_t n)
{
	struct hfm_hashctx *h = hfm_hashctx_new(n, 1, 0);

	hfm_hashctx_update(h, data, n);
	hfm_hashctx_final(h, out, NULL);
}

int hfm_hash_fd(int fd, uint64_t size, char sha1[HFM_SHA1_HEX + 1],
		char sha256[HFM_SHA256_HEX + 1], int *binary)
{
	return hfm_hash_fd_progress(fd, size, sha1, sha256, binary, NULL, NULL);
}

int hfm_hash_fd_progress(int fd, uint64_t size, char sha1[HFM_SHA1_HEX + 1],
			 char sha256[HFM_SHA256_HEX + 1], int *binary,
			 hfm_progress_fn *fn, void *payload)
{
	enum { CHUNK = 1 << 20 };
	struct hfm_hashctx *h = hfm_hashctx_new(size, sha1 != NULL, sha256 != NULL);
	unsigned char *buf = hfm_malloc(CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (binary)
		*binary = 0;
	while (off < size) {
		size_t want = (size - off) < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = hfm_error_set(HFM_EIO, "read failed at offset %llu: %s",
					   (unsigned long long)off,
					   got < 0 ? strerror(errno) : "file shrank");
			break;
		}
		if (binary && off < 8192 &&
		    memchr(buf, 0, (size_t)HFM_MIN((uint64_t)got, 8192 - off)))
			*binary = 1;
		hfm_hashctx_update(h, buf, (size_t)got);
		off += (uint64_t)got;
		if (fn)
			fn(payload, off, size);
	}
	hfm_hashctx_final(h, sha1, sha256);
	free(buf);
	return rc;
}

int hfm_lfs_pointer(struct hfm_buf *out, const char *oid, uint64_t size)
{
	hfm_buf_puts(out, LFS_SPEC "oid sha256:");
	hfm_buf_puts(out, oid);
	hfm_buf_puts(out, "\nsize ");
	hfm_buf_put_u64(out, size);
	return hfm_buf_putc(out, '\n');
}

size_t hfm_lfs_pointer_len(uint64_t size)
{
	size_t digits = 1;

	while (size >= 10) {
		size /= 10;
		digits++;
	}
	return strlen(LFS_SPEC "oid sha256:") + HFM_SHA256_HEX + strlen("\nsize ") +
	       digits + 1;
}

void hfm_lfs_pointer_id(char out[HFM_SHA1_HEX + 1], const char *oid, uint64_t size)
{
	struct hfm_buf b = HFM_BUF_INIT(256);

	hfm_lfs_pointer(&b, oid, size);
	hfm_git_blob_id(out, b.ptr, b.len);
	hfm_buf_dispose(&b);
}

int hfm_lfs_pointer_parse(char oid[HFM_SHA256_HEX + 1], uint64_t *size,
			  const void *data, size_t n)
{
	const char *p = data, *end = p + n;
	const char *line, *nl;
	uint64_t v = 0;
	int have_oid = 0, have_size = 0;

	if (n > 1024 || n < strlen(LFS_SPEC) || memcmp(p, LFS_SPEC, strlen(LFS_SPEC)))
		return HFM_EINVAL;
	p += strlen(LFS_SPEC);
	while (p < end) {
		line = p;
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			return HFM_EINVAL;
		p = nl + 1;
		if ((size_t)(nl - line) == 11 + HFM_SHA256_HEX &&
		    !memcmp(line, "oid sha256:", 11)) {
			if (have_oid)
				return HFM_EINVAL;   /* each key once (spec) */
			memcpy(oid, line + 11, HFM_SHA256_HEX);
			oid[HFM_SHA256_HEX] = '\0';
			if (!hfm_is_hex(oid, HFM_SHA256_HEX))
				return HFM_EINVAL;
			have_oid = 1;
		} else if (nl - line > 5 && !memcmp(line, "size ", 5)) {
			const char *d;
			if (have_size || nl - line > 5 + 19)
				return HFM_EINVAL;
			for (d = line + 5; d < nl; d++) {
				if (*d < '0' || *d > '9')
					return HFM_EINVAL;
				v = v * 10 + (uint64_t)(*d - '0');
			}
			have_size = 1;
		} else if (nl == line) {
			return HFM_EINVAL;
		}
		/* other "key value" lines (ext-*) are allowed and ignored */
	}
	if (!have_oid || !have_size)
		return HFM_EINVAL;
	*size = v;
	return 0;
}
