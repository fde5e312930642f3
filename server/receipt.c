/* receipt.c - what a store holds, and its exact object sets (receipt.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/receipt.h"

/* ---- Elias-Fano sets ------------------------------------------------------------ */

static unsigned high_bits_for(size_t n, size_t len)
{
	unsigned b = 0;

	while (b < 24 && b < len * 8 && ((size_t)2 << b) <= n)
		b++;
	return b;
}

/* The first b (<= 24) bits of a key. */
static uint32_t key_high(const unsigned char *k, size_t len, unsigned b)
{
	uint32_t v = 0;

	for (size_t i = 0; i < 4; i++)
		v = v << 8 | (i < len ? k[i] : 0);
	return b ? v >> (32 - b) : 0;
}

static void bit_set(unsigned char *p, uint64_t pos)
{
	p[pos >> 3] |= (unsigned char)(0x80u >> (pos & 7));
}

static int bit_get(const unsigned char *p, uint64_t pos)
{
	return (p[pos >> 3] >> (7 - (pos & 7))) & 1;
}

int hfm_idset_encode(struct hfm_buf *out, const unsigned char *keys, size_t n, size_t len)
{
	unsigned b = high_bits_for(n, len);
	uint64_t ubits = n + ((uint64_t)1 << b), lbits = (uint64_t)n * (len * 8 - b);
	size_t ubytes = (size_t)((ubits + 7) / 8), lbytes = (size_t)((lbits + 7) / 8);
	unsigned char *u, *l;
	uint64_t lpos = 0;

	if (!len || len > 64)
		return hfm_error_set(HFM_EINVAL, "id set: keys of %zu bytes", len);
	if (hfm_buf_putc(out, (char)b))
		return out->err;
	u = (unsigned char *)hfm_buf_reserve(out, ubytes + lbytes);
	if (!u)
		return out->err ? out->err : HFM_ETOOBIG;
	memset(u, 0, ubytes + lbytes);
	l = u + ubytes;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *k = keys + i * len;

		bit_set(u, key_high(k, len, b) + i);
		for (size_t j = b; j < len * 8; j++, lpos++)
			if ((k[j >> 3] >> (7 - (j & 7))) & 1)
				bit_set(l, lpos);
	}
	out->len += ubytes + lbytes;
	out->ptr[out->len] = '\0';
	return 0;
}

int hfm_idset_decode(unsigned char **keys, size_t n, size_t len, const unsigned char *data,
		     size_t size)
{
	unsigned b;
	uint64_t ubits, lbits, upos = 0, lpos = 0;
	size_t ubytes, lbytes;
	unsigned char *v;

	*keys = NULL;
	if (!len || len > 64 || size < 1)
		return hfm_error_set(HFM_EINVAL, "id set: empty");
	b = data[0];
	if (b != high_bits_for(n, len))
		return hfm_error_set(HFM_EINVAL, "id set: %u high bits for %zu ids", b, n);
	ubits = n + ((uint64_t)1 << b);
	lbits = (uint64_t)n * (len * 8 - b);
	ubytes = (size_t)((ubits + 7) / 8);
	lbytes = (size_t)((lbits + 7) / 8);
	if (size != 1 + ubytes + lbytes)
		return hfm_error_set(HFM_EINVAL, "id set: %zu bytes, %zu expected for %zu ids",
				     size, 1 + ubytes + lbytes, n);
	data++;
	v = hfm_calloc(n ? n : 1, len);
	for (size_t i = 0; i < n; i++) {
		unsigned char *k = v + i * len;
		uint64_t high;

		while (upos < ubits && !bit_get(data, upos))
			upos++;
		if (upos == ubits)
			goto bad;
		high = upos - i;
		upos++;
		for (unsigned j = 0; j < b; j++)
			if ((high >> (b - 1 - j)) & 1)
				k[j >> 3] |= (unsigned char)(0x80u >> (j & 7));
		for (size_t j = b; j < len * 8; j++, lpos++)
			if (bit_get(data + ubytes, lpos))
				k[j >> 3] |= (unsigned char)(0x80u >> (j & 7));
		if (i && memcmp(k - len, k, len) >= 0)
			goto bad;
	}
	/* nothing set beyond the ids: a damaged set is refused, not guessed */
	for (; upos < ubytes * 8; upos++)
		if (bit_get(data, upos))
			goto bad;
	for (; lpos < lbytes * 8; lpos++)
		if (bit_get(data + ubytes, lpos))
			goto bad;
	*keys = v;
	return 0;
bad:
	free(v);
	return hfm_error_set(HFM_EINVAL, "id set: damaged");
}

/* ---- building ----------------------------------------------------------------------- */

struct hfm_receipt *hfm_receipt_new(const char *source)
{
	struct hfm_receipt *r = hfm_calloc(1, sizeof(*r));

	hfm_bundle_random_id(r->id);
	hfm_iso_date(r->created, hfm_now_ms());
	r->source = hfm_strdup(source ? source : "");
	return r;
}

void hfm_receipt_free(struct hfm_receipt *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nrepos; i++) {
		struct hfm_receipt_repo *rr = &r->repos[i];

		for (size_t j = 0; j < rr->nrevs; j++)
			free(rr->revs[j].name);
		free(rr->revs);
		for (size_t j = 0; j < rr->nmeta; j++)
			free(rr->meta[j]);
		free(rr->meta);
	}
	free(r->repos);
	free(r->ids20);
	free(r->ids32);
	free(r->source);
	free(r);
}

struct hfm_receipt_repo *hfm_receipt_add_repo(struct hfm_receipt *r, const struct hfm_repo_id *id,
					      enum hfm_bundle_kind kind)
{
	struct hfm_receipt_repo *rr = hfm_array_push(&r->repos, &r->nrepos, sizeof(*rr));

	rr->id = *id;
	rr->kind = kind;
	return rr;
}

void hfm_receipt_add_rev(struct hfm_receipt_repo *rr, const char *name, const char *commit)
{
	struct hfm_bundle_rev *v = hfm_array_push(&rr->revs, &rr->nrevs, sizeof(*v));

	v->name = hfm_strdup(name);
	snprintf(v->commit, sizeof(v->commit), "%s", commit);
}

void hfm_receipt_add_meta(struct hfm_receipt_repo *rr, const char *relpath)
{
	char **p = hfm_array_push(&rr->meta, &rr->nmeta, sizeof(*p));

	*p = hfm_strdup(relpath);
}

void hfm_receipt_add_object(struct hfm_receipt *r, const char *oid)
{
	size_t n = strlen(oid), len = n / 2;
	unsigned char **v = len == 20 ? &r->ids20 : &r->ids32;
	size_t *cnt = len == 20 ? &r->n20 : &r->n32, *cap = len == 20 ? &r->cap20 : &r->cap32;

	if ((n != HFM_SHA1_HEX && n != HFM_SHA256_HEX) || !hfm_is_hex(oid, n))
		return;
	if (*cnt == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*v = hfm_realloc(*v, *cap * len);
	}
	hfm_unhex(*v + *cnt * len, oid, len);
	(*cnt)++;
}

static int cmp20(const void *a, const void *b)
{
	return memcmp(a, b, 20);
}

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t dedupe(unsigned char *v, size_t n, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (!o || memcmp(v + (o - 1) * len, v + i * len, len))
			memmove(v + o++ * len, v + i * len, len);
	return o;
}

void hfm_receipt_seal(struct hfm_receipt *r)
{
	if (r->n20)
		qsort(r->ids20, r->n20, 20, cmp20);
	if (r->n32)
		qsort(r->ids32, r->n32, 32, cmp32);
	r->n20 = dedupe(r->ids20, r->n20, 20);
	r->n32 = dedupe(r->ids32, r->n32, 32);
	for (size_t i = 0; i < r->nrepos; i++) {
		struct hfm_receipt_repo *rr = &r->repos[i];
		size_t o = 0;

		if (rr->nmeta)
			qsort(rr->meta, rr->nmeta, sizeof(*rr->meta), cmpstr);
		for (size_t j = 0; j < rr->nmeta; j++) {
			if (o && !strcmp(rr->meta[o - 1], rr->meta[j]))
				free(rr->meta[j]);
			else
				rr->meta[o++] = rr->meta[j];
		}
		rr->nmeta = o;
	}
}

int hfm_receipt_has_object(const struct hfm_receipt *r, const char *oid)
{
	size_t n = strlen(oid), len = n / 2;
	unsigned char key[32];

	if ((n != HFM_SHA1_HEX && n != HFM_SHA256_HEX) || hfm_unhex(key, oid, len))
		return 0;
	if (len == 20)
		return r->n20 && bsearch(key, r->ids20, r->n20, 20, cmp20) != NULL;
	return r->n32 && bsearch(key, r->ids32, r->n32, 32, cmp32) != NULL;
}

const struct hfm_receipt_repo *hfm_receipt_find(const struct hfm_receipt *r,
						const struct hfm_repo_id *id,
						enum hfm_bundle_kind kind)
{
	for (size_t i = 0; r && i < r->nrepos; i++)
		if (r->repos[i].kind == kind && r->repos[i].id.type == id->type &&
		    !strcmp(r->repos[i].id.name, id->name))
			return &r->repos[i];
	return NULL;
}

int hfm_receipt_has_meta(const struct hfm_receipt_repo *rr, const char *relpath)
{
	return rr && rr->nmeta && bsearch(&relpath, rr->meta, rr->nmeta, sizeof(*rr->meta),
					  cmpstr) != NULL;
}

/* ---- text ------------------------------------------------------------------------------ */

static int put_set(struct hfm_buf *out, const char *name, const unsigned char *keys, size_t n,
		   size_t len)
{
	struct hfm_buf set = HFM_BUF_INIT(HFM_RECEIPT_MAX);
	int rc = hfm_idset_encode(&set, keys, n, len);

	if (!rc) {
		hfm_buf_printf(out, "objects %s %zu %zu\n", name, n, set.len);
		hfm_buf_put(out, set.ptr, set.len);
		hfm_buf_putc(out, '\n');
		rc = out->err;
	}
	hfm_buf_dispose(&set);
	return rc;
}

int hfm_receipt_format(struct hfm_buf *out, const struct hfm_receipt *r)
{
	char sum[HFM_SHA256_HEX + 1];
	size_t start = out->len;
	int rc;

	hfm_buf_printf(out, "hfmirror-receipt 1\nid %s\ncreated %s\nsource ", r->id, r->created);
	hfm_bundle_put_field(out, r->source);
	hfm_buf_putc(out, '\n');
	for (size_t i = 0; i < r->nrepos; i++) {
		const struct hfm_receipt_repo *rr = &r->repos[i];

		hfm_buf_printf(out, "repo %s %s %s\n", hfm_repo_type_name(rr->id.type), rr->id.name,
			       rr->kind == HFM_BUNDLE_GIT ? "git" : "cache");
		for (size_t j = 0; j < rr->nrevs; j++) {
			hfm_buf_puts(out, "rev ");
			hfm_bundle_put_field(out, rr->revs[j].name);
			hfm_buf_printf(out, " %s\n", rr->revs[j].commit);
		}
		for (size_t j = 0; j < rr->nmeta; j++) {
			hfm_buf_puts(out, "meta ");
			hfm_bundle_put_field(out, rr->meta[j]);
			hfm_buf_putc(out, '\n');
		}
	}
	if ((rc = put_set(out, "sha1", r->ids20, r->n20, 20)) ||
	    (rc = put_set(out, "sha256", r->ids32, r->n32, 32)))
		return rc;
	if (out->err)
		return out->err;
	hfm_sha256_hex(sum, out->ptr + start, out->len - start);
	hfm_buf_printf(out, "end %s\n", sum);
	return out->err;
}

/* ---- parsing --------------------------------------------------------------------------- */

struct rparse {
	struct hfm_receipt *r;
	struct hfm_buf *err;
	size_t line;
};

static int rfail(struct rparse *p, const char *fmt, ...) HFM_PRINTF(2, 3);

static int rfail(struct rparse *p, const char *fmt, ...)
{
	va_list ap;

	hfm_buf_reset(p->err);
	hfm_buf_printf(p->err, "receipt:%zu: ", p->line);
	va_start(ap, fmt);
	hfm_buf_vprintf(p->err, fmt, ap);
	va_end(ap);
	return HFM_EINVAL;
}

/* Split a line (NUL-terminated copy) at single spaces; 0 or -1 on an empty field. */
static int split(char *s, char **f, size_t max, size_t *n)
{
	*n = 0;
	for (;;) {
		char *sp = strchr(s, ' ');

		if (*n == max || !*s)
			return -1;
		f[(*n)++] = s;
		if (!sp)
			return 0;
		*sp = '\0';
		s = sp + 1;
	}
}

static int parse_count(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s < '0' || *s > '9' || strlen(s) > 19)
		return -1;
	v = strtoull(s, &end, 10);
	if (*end)
		return -1;
	*out = (size_t)v;
	return 0;
}

int hfm_receipt_parse(struct hfm_receipt **out, const void *data, size_t n, struct hfm_buf *err)
{
	struct rparse p = { .err = err };
	const char *s = data, *e = s + n;
	struct hfm_receipt_repo *repo = NULL;
	int rc = 0, ended = 0, sets = 0;

	*out = NULL;
	p.r = hfm_calloc(1, sizeof(*p.r));
	p.r->source = hfm_strdup("");
	while (s < e && !rc) {
		const char *nl = memchr(s, '\n', (size_t)(e - s)), *line_start = s;
		char *line, *f[6];
		size_t nf;

		p.line++;
		if (!nl) {
			rc = rfail(&p, "the last line has no newline: the receipt is cut off");
			break;
		}
		if (ended) {
			rc = rfail(&p, "text after the end record");
			break;
		}
		line = hfm_strndup(s, (size_t)(nl - s));
		s = nl + 1;
		if (strlen(line) != (size_t)(nl - line_start) || split(line, f, 6, &nf)) {
			rc = rfail(&p, "a NUL byte or an empty field");
		} else if (p.line == 1) {
			if (nf != 2 || strcmp(f[0], "hfmirror-receipt"))
				rc = rfail(&p, "not an hfmirror receipt");
			else if (strcmp(f[1], "1"))
				rc = rfail(&p, "receipt version %s; this hfmirror reads version 1", f[1]);
		} else if (!strcmp(f[0], "id") && nf == 2) {
			if (strlen(f[1]) != HFM_BUNDLE_ID_HEX || !hfm_is_hex(f[1], HFM_BUNDLE_ID_HEX))
				rc = rfail(&p, "id: not 32 lowercase hex digits");
			else
				memcpy(p.r->id, f[1], HFM_BUNDLE_ID_HEX + 1);
		} else if (!strcmp(f[0], "created") && nf == 2) {
			snprintf(p.r->created, sizeof(p.r->created), "%s", f[1]);
		} else if (!strcmp(f[0], "source") && nf == 2) {
			char *v = hfm_bundle_field_decode(f[1], strlen(f[1]));

			if (!v) {
				rc = rfail(&p, "source: bad percent-encoding");
			} else {
				free(p.r->source);
				p.r->source = v;
			}
		} else if (!strcmp(f[0], "repo") && nf == 4) {
			struct hfm_repo_id id;
			enum hfm_repo_type t;
			char *slash = strchr(f[2], '/');
			int bad;

			if (slash)
				*slash = '\0';
			bad = hfm_repo_type_parse(&t, f[1]) ||
			      (slash ? hfm_repo_id_set(&id, t, f[2], slash + 1)
				     : hfm_repo_id_set(&id, t, NULL, f[2])) ||
			      (strcmp(f[3], "cache") && strcmp(f[3], "git"));
			if (bad)
				rc = rfail(&p, "repo: not <type> <name> cache|git");
			else
				repo = hfm_receipt_add_repo(p.r, &id, strcmp(f[3], "git") ?
							    HFM_BUNDLE_CACHE : HFM_BUNDLE_GIT);
		} else if (!strcmp(f[0], "rev") && nf == 3) {
			char *v = hfm_bundle_field_decode(f[1], strlen(f[1]));

			if (!repo || !v || !hfm_rev_valid(v) || strlen(f[2]) != HFM_SHA1_HEX ||
			    !hfm_is_hex(f[2], HFM_SHA1_HEX))
				rc = rfail(&p, "rev: not <rev> <commit> after a repo record");
			else
				hfm_receipt_add_rev(repo, v, f[2]);
			free(v);
		} else if (!strcmp(f[0], "meta") && nf == 2) {
			char *v = hfm_bundle_field_decode(f[1], strlen(f[1]));

			if (!repo || !v || !hfm_path_valid(v) || !*v)
				rc = rfail(&p, "meta: not a path after a repo record");
			else
				hfm_receipt_add_meta(repo, v);
			free(v);
		} else if (!strcmp(f[0], "objects") && nf == 4 &&
			   (!strcmp(f[1], "sha1") || !strcmp(f[1], "sha256"))) {
			size_t cnt, bytes, len = strcmp(f[1], "sha1") ? 32 : 20;
			unsigned char *keys;

			if (parse_count(f[2], &cnt) || parse_count(f[3], &bytes) ||
			    bytes > (size_t)(e - s) || bytes + 1 > (size_t)(e - s) || s[bytes] != '\n') {
				rc = rfail(&p, "objects: the set is cut off");
			} else if (cnt > bytes * 8) {
				rc = rfail(&p, "objects: %zu ids cannot fit in %zu bytes", cnt, bytes);
			} else if (hfm_idset_decode(&keys, cnt, len, (const unsigned char *)s, bytes)) {
				rc = rfail(&p, "objects %s: %s", f[1], hfm_error_last());
			} else {
				free(len == 20 ? p.r->ids20 : p.r->ids32);
				if (len == 20)
					p.r->ids20 = keys, p.r->n20 = p.r->cap20 = cnt;
				else
					p.r->ids32 = keys, p.r->n32 = p.r->cap32 = cnt;
				s += bytes + 1;
				sets++;
			}
		} else if (!strcmp(f[0], "end") && nf == 2) {
			char sum[HFM_SHA256_HEX + 1];

			hfm_sha256_hex(sum, data, (size_t)(line_start - (const char *)data));
			if (strcmp(sum, f[1]))
				rc = rfail(&p, "the checksum does not match: the receipt is damaged "
					   "(write it again with hfmirror receipt)");
			ended = 1;
		} else if (!strncmp(f[0], "x-", 2)) {
			/* an extension: ignored */
		} else {
			rc = rfail(&p, "unknown record \"%.40s\" (a newer hfmirror wrote it?)", f[0]);
		}
		free(line);
	}
	if (!rc && !ended)
		rc = rfail(&p, "no end record: the receipt is cut off");
	if (!rc && !p.r->id[0])
		rc = rfail(&p, "no id record");
	if (!rc && sets != 2)
		rc = rfail(&p, "the object sets are missing");
	if (rc) {
		hfm_receipt_free(p.r);
		return rc;
	}
	hfm_receipt_seal(p.r);
	*out = p.r;
	return 0;
}
