/* bundleio.c - tar framing, payload volumes and the bundle reader (bundleio.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hfm/bundleio.h"
#include "hfm/fsutil.h"
#include "hfm/hash.h"

#define IO_BUF ((size_t)1 << 20)
#define PAX_MAX ((size_t)1 << 20)
#define OCTAL_SIZE_MAX 077777777777ull      /* 11 octal digits */

/* ---- tar headers ----------------------------------------------------------------- */

struct ustar {
	char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], chksum[8];
	char typeflag, linkname[100], magic[6], version[2], uname[32], gname[32];
	char devmajor[8], devminor[8], prefix[155], pad[12];
};

_Static_assert(sizeof(struct ustar) == HFM_TAR_BLOCK, "a ustar header is one block");

static unsigned sum_block(const unsigned char *b)
{
	unsigned s = 0;

	for (size_t i = 0; i < HFM_TAR_BLOCK; i++)
		s += (i >= 148 && i < 156) ? ' ' : b[i];
	return s;
}

static void put_header(struct hfm_buf *out, const char *name, size_t namelen, uint64_t size,
		       int64_t mtime, char type)
{
	struct ustar h;

	memset(&h, 0, sizeof(h));
	memcpy(h.name, name, HFM_MIN(namelen, sizeof(h.name)));
	memcpy(h.mode, "0000644", 8);
	memcpy(h.uid, "0000000", 8);
	memcpy(h.gid, "0000000", 8);
	if (size <= OCTAL_SIZE_MAX) {
		snprintf(h.size, sizeof(h.size), "%011llo", (unsigned long long)size);
	} else {
		/* base-256 (GNU, star): the pax size record says the same */
		h.size[0] = (char)0x80;
		for (int i = 11; i >= 4; i--, size >>= 8)
			h.size[i] = (char)(size & 0xff);
	}
	snprintf(h.mtime, sizeof(h.mtime), "%011llo",
		 (unsigned long long)(mtime > 0 ? mtime : 0) & OCTAL_SIZE_MAX);
	h.typeflag = type;
	memcpy(h.magic, "ustar", 6);
	memcpy(h.version, "00", 2);
	snprintf(h.chksum, sizeof(h.chksum), "%06o", sum_block((unsigned char *)&h));
	h.chksum[7] = ' ';
	hfm_buf_put(out, &h, sizeof(h));
}

/* One pax record "<len> key=value\n"; len counts itself. */
static void pax_record(struct hfm_buf *out, const char *key, const char *value)
{
	size_t body = 1 + strlen(key) + 1 + strlen(value) + 1, len = body, digits;

	for (;;) {
		char tmp[24];

		digits = (size_t)snprintf(tmp, sizeof(tmp), "%zu", len);
		if (body + digits == len)
			break;
		len = body + digits;
	}
	hfm_buf_printf(out, "%zu %s=%s\n", len, key, value);
}

size_t hfm_tar_padding(uint64_t size)
{
	return (size_t)((HFM_TAR_BLOCK - size % HFM_TAR_BLOCK) % HFM_TAR_BLOCK);
}

int hfm_tar_header(struct hfm_buf *out, const char *name, uint64_t size, int64_t mtime)
{
	size_t n = strlen(name);

	if (n > 100 || size > OCTAL_SIZE_MAX) {
		struct hfm_buf rec = HFM_BUF_INIT(HFM_TAR_NAME_MAX + 256);
		static const char zero[HFM_TAR_BLOCK];

		if (n > 100)
			pax_record(&rec, "path", name);
		if (size > OCTAL_SIZE_MAX) {
			char v[24];

			snprintf(v, sizeof(v), "%llu", (unsigned long long)size);
			pax_record(&rec, "size", v);
		}
		put_header(out, "PaxHeader", 9, rec.len, mtime, 'x');
		hfm_buf_put(out, rec.ptr, rec.len);
		hfm_buf_put(out, zero, hfm_tar_padding(rec.len));
		hfm_buf_dispose(&rec);
	}
	put_header(out, name, n, size, mtime, '0');
	return out->err;
}

static int parse_octal(uint64_t *out, const char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;
	int digits = 0;

	if ((unsigned char)f[0] & 0x80) {
		/* base-256: a positive number in the remaining bytes */
		if ((unsigned char)f[0] != 0x80)
			return HFM_EINVAL;
		for (i = 1; i < n; i++) {
			if (v >> 56)
				return HFM_EINVAL;
			v = v << 8 | (unsigned char)f[i];
		}
		*out = v;
		return 0;
	}
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
		if (v >> 60)
			return HFM_EINVAL;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	if (!digits || (i < n && f[i] != ' ' && f[i] != '\0'))
		return HFM_EINVAL;
	*out = v;
	return 0;
}

int hfm_tar_parse(struct hfm_tar_hdr *h, const unsigned char block[HFM_TAR_BLOCK])
{
	const struct ustar *u = (const struct ustar *)block;
	uint64_t sum;
	size_t i, pl, nl;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < HFM_TAR_BLOCK && !block[i]; i++)
		;
	if (i == HFM_TAR_BLOCK) {
		h->type = HFM_TAR_END;
		return 0;
	}
	if (parse_octal(&sum, u->chksum, sizeof(u->chksum)) || sum != sum_block(block))
		return hfm_error_set(HFM_EINVAL, "a damaged tar header (its checksum does not "
				     "match)");
	if (memcmp(u->magic, "ustar", 5))
		return hfm_error_set(HFM_EINVAL, "not a POSIX tar header");
	if (parse_octal(&h->size, u->size, sizeof(u->size)))
		return hfm_error_set(HFM_EINVAL, "a tar header with a bad size");
	pl = strnlen(u->prefix, sizeof(u->prefix));
	nl = strnlen(u->name, sizeof(u->name));
	if (pl) {
		memcpy(h->name, u->prefix, pl);
		h->name[pl] = '/';
		memcpy(h->name + pl + 1, u->name, nl);
	} else {
		memcpy(h->name, u->name, nl);
	}
	switch (u->typeflag) {
	case '0':
	case '\0':
		h->type = HFM_TAR_FILE;
		break;
	case 'x':
		h->type = HFM_TAR_PAX;
		break;
	case 'g':
		h->type = HFM_TAR_GLOBAL;
		break;
	default:
		return hfm_error_set(HFM_EINVAL, "tar member %s is of type '%c', not a file",
				     h->name, u->typeflag);
	}
	return 0;
}

int hfm_tar_pax(char **path, uint64_t *size, int *has_size, const char *data, size_t n)
{
	size_t i = 0;

	*path = NULL;
	*has_size = 0;
	while (i < n) {
		size_t len = 0, j = i;
		const char *eq, *rec;

		while (j < n && data[j] >= '0' && data[j] <= '9' && len < n)
			len = len * 10 + (size_t)(data[j++] - '0');
		if (j == i || j >= n || data[j] != ' ' || len < j - i + 3 || len > n - i ||
		    data[i + len - 1] != '\n')
			goto bad;
		rec = data + j + 1;
		eq = memchr(rec, '=', (size_t)(data + i + len - 1 - rec));
		if (!eq)
			goto bad;
		size_t klen = (size_t)(eq - rec), vlen = (size_t)(data + i + len - 1 - eq - 1);
		if (klen == 4 && !memcmp(rec, "path", 4)) {
			if (!vlen || vlen > HFM_TAR_NAME_MAX || memchr(eq + 1, '\0', vlen))
				goto bad;
			free(*path);
			*path = hfm_strndup(eq + 1, vlen);
		} else if (klen == 4 && !memcmp(rec, "size", 4)) {
			uint64_t v = 0;

			if (!vlen || vlen > 20)
				goto bad;
			for (size_t k = 0; k < vlen; k++) {
				unsigned d = (unsigned)(eq[1 + k] - '0');
				if (d > 9 || v > (UINT64_MAX - d) / 10)
					goto bad;
				v = v * 10 + d;
			}
			*size = v;
			*has_size = 1;
		}
		i += len;
	}
	return 0;
bad:
	free(*path);
	*path = NULL;
	return hfm_error_set(HFM_EINVAL, "a damaged pax header");
}

/* ---- writing ------------------------------------------------------------------------ */

struct out_vol {
	char name[32];
	uint64_t size;
	char sha256[HFM_SHA256_HEX + 1];
	char framing[HFM_SHA256_HEX + 1];
};

struct hfm_bundle_out {
	int fd;                      /* the stream, or the current volume (-1: none open) */
	char *dir;                   /* directory form; NULL for a stream */
	int dirfd;
	uint64_t split;
	unsigned nvol;               /* volumes started */
	uint64_t vol_bytes;
	EVP_MD_CTX *vh;              /* all of the current volume */
	EVP_MD_CTX *fh;              /* the framing of volume fv */
	unsigned fv;                 /* volumes before it have their digest in fdig */
	char (*fdig)[HFM_SHA256_HEX + 1];
	struct out_vol *vols;
	uint64_t total;
	uint64_t member_left;
	unsigned char *buf;
	size_t blen;
};

static int out_error(const struct hfm_bundle_out *o, const char *what)
{
	if (o->dir)
		return hfm_error_set(HFM_EIO, "%s %s/payload.%03u: %s", what, o->dir,
				     o->nvol ? o->nvol - 1 : 0, strerror(errno));
	return hfm_error_set(HFM_EIO, "%s the bundle stream: %s", what, strerror(errno));
}

static int vol_open(struct hfm_bundle_out *o)
{
	char part[48];

	snprintf(part, sizeof(part), "payload.%03u.part", o->nvol);
	o->fd = openat(o->dirfd, part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0)
		return hfm_error_set(HFM_EIO, "create %s/%s: %s", o->dir, part, strerror(errno));
	o->nvol++;
	o->vol_bytes = 0;
	EVP_DigestInit_ex(o->vh, EVP_sha256(), NULL);
	return 0;
}

/* Volume fv's framing is complete: its digest, and the next volume's begins. */
static void frame_close(struct hfm_bundle_out *o)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl;

	EVP_DigestFinal_ex(o->fh, d, &dl);
	o->fdig = hfm_realloc(o->fdig, (o->fv + 1) * sizeof(*o->fdig));
	hfm_hex(o->fdig[o->fv++], d, dl);
	EVP_DigestInit_ex(o->fh, EVP_sha256(), NULL);
}

/*
 * Framing bytes (not an entry's data) about to go out at stream offset
 * o->total: into the digest of the volume they will land in (bundle.h).
 */
static void frame_hash(struct hfm_bundle_out *o, const unsigned char *p, size_t n)
{
	uint64_t pos = o->total;

	while (n) {
		uint64_t v = o->split ? pos / o->split : 0;
		size_t k = n;

		while (o->fv < v)
			frame_close(o);
		if (o->split && o->split - pos % o->split < k)
			k = (size_t)(o->split - pos % o->split);
		EVP_DigestUpdate(o->fh, p, k);
		pos += k;
		p += k;
		n -= k;
	}
}

static int vol_close(struct hfm_bundle_out *o)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl;
	char part[48];
	struct out_vol *v;
	int rc = 0;

	if (o->fd < 0)
		return 0;
	if (fdatasync(o->fd) < 0)
		rc = out_error(o, "sync");
	close(o->fd);
	o->fd = -1;
	if (rc)
		return rc;
	o->vols = hfm_realloc(o->vols, o->nvol * sizeof(*o->vols));
	v = &o->vols[o->nvol - 1];
	snprintf(v->name, sizeof(v->name), "payload.%03u", o->nvol - 1);
	snprintf(part, sizeof(part), "%s.part", v->name);
	v->size = o->vol_bytes;
	EVP_DigestFinal_ex(o->vh, d, &dl);
	hfm_hex(v->sha256, d, dl);
	while (o->fv < o->nvol)
		frame_close(o);
	memcpy(v->framing, o->fdig[o->nvol - 1], sizeof(v->framing));
	if (renameat(o->dirfd, part, o->dirfd, v->name) < 0)
		return hfm_error_set(HFM_EIO, "rename %s/%s: %s", o->dir, part, strerror(errno));
	return 0;
}

/* Write straight through: into volumes (split at their size) or the stream. */
static int raw_write(struct hfm_bundle_out *o, const unsigned char *p, size_t n)
{
	int rc;

	while (n) {
		size_t k = n;

		if (o->dir) {
			if (o->fd < 0 && (rc = vol_open(o)))
				return rc;
			if (o->split && o->split - o->vol_bytes < k)
				k = (size_t)(o->split - o->vol_bytes);
			EVP_DigestUpdate(o->vh, p, k);
		}
		if (hfm_write_all(o->fd, p, k) < 0)
			return out_error(o, "write");
		o->vol_bytes += k;
		p += k;
		n -= k;
		if (o->dir && o->split && o->vol_bytes == o->split && (rc = vol_close(o)))
			return rc;
	}
	return 0;
}

static int flush(struct hfm_bundle_out *o)
{
	int rc = o->blen ? raw_write(o, o->buf, o->blen) : 0;

	o->blen = 0;
	return rc;
}

/* Bytes into the bundle; `framing`: not an entry's data (hashed into its volume's digest). */
static int out_put(struct hfm_bundle_out *o, const void *p, size_t n, int framing)
{
	const unsigned char *c = p;
	int rc;

	if (framing && o->dir)
		frame_hash(o, c, n);
	o->total += n;
	if (n >= IO_BUF) {
		if ((rc = flush(o)))
			return rc;
		return raw_write(o, c, n);
	}
	if (o->blen + n > IO_BUF && (rc = flush(o)))
		return rc;
	memcpy(o->buf + o->blen, c, n);
	o->blen += n;
	return 0;
}

static struct hfm_bundle_out *out_new(void)
{
	struct hfm_bundle_out *o = hfm_calloc(1, sizeof(*o));

	o->fd = -1;
	o->dirfd = -1;
	o->buf = hfm_malloc(IO_BUF);
	return o;
}

int hfm_bundle_out_dir(struct hfm_bundle_out **out, const char *dir, uint64_t split)
{
	struct hfm_bundle_out *o;

	if (split && split < ((uint64_t)1 << 20))
		return hfm_error_set(HFM_EINVAL, "--split: volumes of at least 1 MiB");
	o = out_new();
	o->dir = hfm_strdup(dir);
	o->split = split;
	o->vh = EVP_MD_CTX_new();
	o->fh = EVP_MD_CTX_new();
	o->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->fh)
		EVP_DigestInit_ex(o->fh, EVP_sha256(), NULL);
	if (!o->vh || !o->fh || o->dirfd < 0) {
		int rc = hfm_error_set(HFM_EIO, "%s: %s", dir, strerror(errno));
		hfm_bundle_out_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

int hfm_bundle_out_fd(struct hfm_bundle_out **out, int fd)
{
	struct hfm_bundle_out *o = out_new();

#ifdef F_SETPIPE_SZ
	fcntl(fd, F_SETPIPE_SZ, 1 << 20);   /* fewer wakeups on a pipe; harmless elsewhere */
#endif
	o->fd = fd;
	*out = o;
	return 0;
}

int hfm_bundle_out_begin(struct hfm_bundle_out *o, const char *name, uint64_t size)
{
	struct hfm_buf h = HFM_BUF_INIT(HFM_TAR_NAME_MAX + 4 * HFM_TAR_BLOCK);
	int rc;

	if ((rc = hfm_tar_header(&h, name, size, hfm_now_ms() / 1000)) == 0)
		rc = out_put(o, h.ptr, h.len, 1);
	hfm_buf_dispose(&h);
	o->member_left = size;
	return rc;
}

int hfm_bundle_out_write(struct hfm_bundle_out *o, const void *p, size_t n)
{
	if (n > o->member_left)
		return hfm_error_set(HFM_EINVAL, "a bundle member got more bytes than announced");
	o->member_left -= n;
	return out_put(o, p, n, 0);
}

int hfm_bundle_out_copy(struct hfm_bundle_out *o, int fd, uint64_t size)
{
	uint64_t off = 0;
	int rc;

	if (size > o->member_left)
		return hfm_error_set(HFM_EINVAL, "a bundle member got more bytes than announced");
	if (!o->dir && size >= IO_BUF) {
		/* a stream needs no digest: let the kernel move the bytes */
		if ((rc = flush(o)))
			return rc;
		while (off < size) {
			off_t at = (off_t)off;
			ssize_t n = sendfile(o->fd, fd, &at, (size_t)HFM_MIN(size - off, 1u << 30));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;       /* not supported here, or the file shrank: read below */
			off += (uint64_t)n;
		}
		o->total += off;
		o->member_left -= off;
	}
	while (off < size) {
		size_t want = (size_t)HFM_MIN(size - off, IO_BUF), k = want;
		ssize_t n;

		if (o->blen + k > IO_BUF && (rc = flush(o)))
			return rc;
		n = pread(fd, o->buf + o->blen, k, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return hfm_error_set(HFM_EIO, "read failed at byte %llu: %s",
					     (unsigned long long)off,
					     n < 0 ? strerror(errno) : "the file shrank");
		o->blen += (size_t)n;
		o->total += (uint64_t)n;
		o->member_left -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int hfm_bundle_out_end(struct hfm_bundle_out *o)
{
	static const char zero[HFM_TAR_BLOCK];

	if (o->member_left)
		return hfm_error_set(HFM_EINVAL, "a bundle member got fewer bytes than announced");
	return out_put(o, zero, hfm_tar_padding(o->total), 1);
}

int hfm_bundle_out_finish(struct hfm_bundle_out *o, struct hfm_bundle_manifest *m)
{
	static const char zero[2 * HFM_TAR_BLOCK];
	int rc;

	if ((rc = out_put(o, zero, sizeof(zero), 1)) || (rc = flush(o)))
		return rc;
	if (!o->dir)
		return 0;
	if ((rc = vol_close(o)))
		return rc;
	fsync(o->dirfd);
	for (unsigned i = 0; m && i < o->nvol; i++)
		hfm_bundle_add_volume(m, o->vols[i].name, o->vols[i].size, o->vols[i].sha256,
				      o->vols[i].framing);
	return 0;
}

uint64_t hfm_bundle_out_bytes(const struct hfm_bundle_out *o)
{
	return o->total;
}

void hfm_bundle_out_free(struct hfm_bundle_out *o)
{
	if (!o)
		return;
	if (o->dir && o->fd >= 0) {
		char part[48];

		close(o->fd);
		snprintf(part, sizeof(part), "payload.%03u.part", o->nvol - 1);
		unlinkat(o->dirfd, part, 0);
	}
	if (o->dirfd >= 0)
		close(o->dirfd);
	EVP_MD_CTX_free(o->vh);
	EVP_MD_CTX_free(o->fh);
	free(o->fdig);
	free(o->vols);
	free(o->buf);
	free(o->dir);
	free(o);
}

int hfm_bundle_write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char *tmp = hfm_asprintf("%s/.%s.tmp", dir, name), *final = hfm_asprintf("%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;

	if (fd < 0 || hfm_write_all(fd, p, n) < 0 || fsync(fd) < 0 || rename(tmp, final) < 0)
		rc = hfm_error_set(HFM_EIO, "write %s: %s", final, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	else if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(tmp);
	free(final);
	return rc;
}

/* ---- reading ------------------------------------------------------------------------ */

struct in_vol {
	char *name;
	uint64_t size;
	char sha256[HFM_SHA256_HEX + 1];
	char framing[HFM_SHA256_HEX + 1];
};

struct hfm_bundle_in {
	char *path;                  /* as given, for messages */
	int dir;                     /* directory form */
	int fd;                      /* stream, tar file or current volume; -1 */
	int own_fd;
	struct in_vol *vols;
	size_t nvols, cur;           /* cur: the volume fd reads */
	uint64_t vol_read;
	EVP_MD_CTX *vh;              /* version 1: all of volume cur; 2: the framing of fv */
	int v2;                      /* the framing digests are checked (bundle.h) */
	int located;                 /* v2: the whole volumes were checked for damage */
	size_t fv;
	uint64_t fv_end;             /* payload offset where volume fv ends */
	unsigned char *buf;
	size_t pos, len;
	int eof;
	uint64_t offset;             /* payload bytes consumed */
	uint64_t remain;             /* data left in the current member */
	uint64_t member_size;
	size_t pad;                  /* its padding */
	char *manifest, *sig;
	size_t nmanifest, nsig;
	char name[HFM_TAR_NAME_MAX + 1];
	char *damage;                /* the first volume whose digest failed */
	int pending;                 /* 1: a member header read ahead (stream open);
					-1: the end block was read ahead */
	uint64_t pending_size;
};

/* The volume that holds payload byte `at`. */
static size_t vol_at(const struct hfm_bundle_in *in, uint64_t at)
{
	uint64_t acc = 0;
	size_t v;

	for (v = 0; v + 1 < in->nvols && acc + in->vols[v].size <= at; v++)
		acc += in->vols[v].size;
	return v;
}

void hfm_bundle_in_span(const struct hfm_bundle_in *in, uint64_t from, uint64_t to,
			struct hfm_buf *out)
{
	size_t a, z;

	if (!in->dir) {
		hfm_buf_puts(out, "the stream");
		return;
	}
	if (!in->nvols) {
		hfm_buf_puts(out, "the payload");
		return;
	}
	a = vol_at(in, from);
	z = vol_at(in, to > from ? to - 1 : from);
	if (a == z)
		hfm_buf_printf(out, "%s (volume %zu of %zu)", in->vols[a].name, a + 1, in->nvols);
	else
		hfm_buf_printf(out, "%s to %s (volumes %zu to %zu of %zu)", in->vols[a].name,
			       in->vols[z].name, a + 1, z + 1, in->nvols);
}

void hfm_bundle_in_where(const struct hfm_bundle_in *in, struct hfm_buf *out)
{
	hfm_bundle_in_span(in, in->offset, in->offset, out);
}

/* A volume's digest differs from the manifest's: remember the first such volume. */
static void vol_damaged(struct hfm_bundle_in *in, size_t v, const char *hex)
{
	if (in->damage)
		return;
	in->damage = hfm_asprintf("%s (volume %zu of %zu) hashes to %.16s…, the manifest "
				  "says %.16s…: the volume is damaged or belongs to another "
				  "bundle", in->vols[v].name, v + 1, in->nvols, hex, in->vols[v].sha256);
}

const char *hfm_bundle_in_damage(struct hfm_bundle_in *in)
{
	/*
	 * Version 2 reads hash only the framing: something failed, so find
	 * the volume now, by its whole digest (the volumes are files).  The
	 * caller's error message stays.
	 */
	char *keep = in->dir && in->v2 && !in->located ? hfm_strdup(hfm_error_last()) : NULL;

	for (size_t v = 0; in->dir && in->v2 && !in->located && !in->damage && v < in->nvols; v++) {
		char *p = hfm_asprintf("%s/%s", in->path, in->vols[v].name);
		char hex[HFM_SHA256_HEX + 1];
		int fd = open(p, O_RDONLY | O_CLOEXEC);

		free(p);
		if (fd < 0)
			continue;
		if (hfm_hash_fd(fd, in->vols[v].size, NULL, hex, NULL) == 0 &&
		    strcmp(hex, in->vols[v].sha256))
			vol_damaged(in, v, hex);
		close(fd);
	}
	if (keep) {
		if (strcmp(keep, hfm_error_last()))
			hfm_error_set(HFM_ERROR, "%s", keep);
		free(keep);
	}
	in->located = 1;
	return in->damage;
}

uint64_t hfm_bundle_in_offset(const struct hfm_bundle_in *in)
{
	return in->offset;
}

/* Version 2: volume fv's framing is all read: check its digest, begin the next's. */
static void in_frame_close(struct hfm_bundle_in *in)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	char hex[HFM_SHA256_HEX + 1];
	unsigned dl;

	EVP_DigestFinal_ex(in->vh, d, &dl);
	hfm_hex(hex, d, dl);
	if (strcmp(hex, in->vols[in->fv].framing))
		vol_damaged(in, in->fv, hex);
	EVP_DigestInit_ex(in->vh, EVP_sha256(), NULL);
	if (++in->fv < in->nvols)
		in->fv_end += in->vols[in->fv].size;
}

/* Version 2: framing bytes consumed at payload offset in->offset. */
static void in_frame_hash(struct hfm_bundle_in *in, const unsigned char *p, size_t n)
{
	uint64_t pos = in->offset;

	if (!in->dir || !in->v2 || !in->nvols)
		return;
	while (n) {
		size_t k = n;

		while (pos >= in->fv_end && in->fv + 1 < in->nvols)
			in_frame_close(in);
		if (pos < in->fv_end && in->fv_end - pos < k)
			k = (size_t)(in->fv_end - pos);
		EVP_DigestUpdate(in->vh, p, k);
		pos += k;
		p += k;
		n -= k;
	}
}

/* The current volume is read to its end: check its size and digest, open the next. */
static int vol_done(struct hfm_bundle_in *in)
{
	const struct in_vol *v = &in->vols[in->cur];
	unsigned char d[EVP_MAX_MD_SIZE];
	char hex[HFM_SHA256_HEX + 1];
	unsigned dl;

	close(in->fd);
	in->fd = -1;
	if (in->vol_read != v->size)
		return hfm_error_set(HFM_EINVAL, "%s (volume %zu of %zu) ends after %llu bytes; "
				     "the manifest says %llu: it is truncated (copy it again)",
				     v->name, in->cur + 1, in->nvols,
				     (unsigned long long)in->vol_read, (unsigned long long)v->size);
	/*
	 * Read on: the entry the damage is in fails its own check and names
	 * itself; hfm_bundle_in_finish() reports the volume if none does.
	 */
	if (!in->v2) {
		EVP_DigestFinal_ex(in->vh, d, &dl);
		hfm_hex(hex, d, dl);
		if (strcmp(hex, v->sha256))
			vol_damaged(in, in->cur, hex);
	}
	in->cur++;
	if (in->cur == in->nvols) {
		in->eof = 1;
		return 0;
	}
	char *p = hfm_asprintf("%s/%s", in->path, in->vols[in->cur].name);
	in->fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (in->fd < 0)
		return hfm_error_set(HFM_EIO, "%s (volume %zu of %zu): %s", in->vols[in->cur].name,
				     in->cur + 1, in->nvols, strerror(errno));
	posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	in->vol_read = 0;
	if (!in->v2)
		EVP_DigestInit_ex(in->vh, EVP_sha256(), NULL);
	return 0;
}

/* Read into dst (up to n) from the source, across volumes; *got 0 at the end. */
static int src_read(struct hfm_bundle_in *in, unsigned char *dst, size_t n, size_t *got)
{
	int rc;

	*got = 0;
	while (!in->eof) {
		ssize_t k;

		if (in->fd < 0)
			return hfm_error_set(HFM_EINVAL, "%s: no volume to read", in->path);
		if (in->dir && in->vols[in->cur].size > in->vol_read)
			n = (size_t)HFM_MIN((uint64_t)n, in->vols[in->cur].size - in->vol_read);
		k = read(in->fd, dst, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			struct hfm_buf w = HFM_BUF_INIT(512);

			hfm_bundle_in_where(in, &w);
			rc = hfm_error_set(HFM_EIO, "reading %s: %s", w.ptr, strerror(errno));
			hfm_buf_dispose(&w);
			return rc;
		}
		if (k > 0) {
			if (in->dir) {
				if (!in->v2)
					EVP_DigestUpdate(in->vh, dst, (size_t)k);
				in->vol_read += (uint64_t)k;
			}
			*got = (size_t)k;
			return 0;
		}
		if (!in->dir) {
			in->eof = 1;
			break;
		}
		if ((rc = vol_done(in)))
			return rc;
	}
	return 0;
}

static int fill(struct hfm_bundle_in *in)
{
	size_t got;
	int rc;

	if (in->pos < in->len)
		return 0;
	in->pos = in->len = 0;
	if ((rc = src_read(in, in->buf, IO_BUF, &got)))
		return rc;
	in->len = got;
	return 0;
}

/* Exactly n bytes (or fewer at the end: *got says). */
static int read_exact(struct hfm_bundle_in *in, unsigned char *dst, size_t n, size_t *got)
{
	int rc;

	*got = 0;
	while (*got < n) {
		if ((rc = fill(in)))
			return rc;
		if (in->pos == in->len)
			return 0;
		size_t k = HFM_MIN(n - *got, in->len - in->pos);
		in_frame_hash(in, in->buf + in->pos, k);
		memcpy(dst + *got, in->buf + in->pos, k);
		in->pos += k;
		*got += k;
		in->offset += k;
	}
	return 0;
}

/* Skip n bytes: `framing`, or an entry's data. */
static int discard(struct hfm_bundle_in *in, uint64_t n, int framing, int *short_read)
{
	int rc;

	*short_read = 0;
	while (n) {
		if ((rc = fill(in)))
			return rc;
		if (in->pos == in->len) {
			*short_read = 1;
			return 0;
		}
		size_t k = (size_t)HFM_MIN(n, (uint64_t)(in->len - in->pos));
		if (framing)
			in_frame_hash(in, in->buf + in->pos, k);
		in->pos += k;
		in->offset += k;
		n -= k;
	}
	return 0;
}

static int truncated(struct hfm_bundle_in *in, const char *inside, uint64_t at, uint64_t size)
{
	if (inside)
		return hfm_error_set(HFM_EINVAL, "the bundle ends inside %s (after %llu of its "
				     "%llu bytes): it is truncated", inside,
				     (unsigned long long)at, (unsigned long long)size);
	return hfm_error_set(HFM_EINVAL, "the bundle ends after %llu bytes without its end "
			     "blocks: it is truncated", (unsigned long long)in->offset);
}

/* Read one member header (with its pax records): name into in->name. */
static int read_member(struct hfm_bundle_in *in, uint64_t *size, int *end)
{
	unsigned char block[HFM_TAR_BLOCK];
	char *pax_path = NULL;
	uint64_t pax_size = 0;
	int has_size = 0, rc;
	size_t got;

	*end = 0;
	for (;;) {
		struct hfm_tar_hdr h;

		if ((rc = read_exact(in, block, sizeof(block), &got)))
			goto out;
		if (got < sizeof(block)) {
			rc = truncated(in, NULL, 0, 0);
			goto out;
		}
		if ((rc = hfm_tar_parse(&h, block))) {
			struct hfm_buf w = HFM_BUF_INIT(512);
			char *why = hfm_strdup(hfm_error_last());

			hfm_bundle_in_where(in, &w);
			rc = hfm_error_set(rc, "%s, at byte %llu of the payload: %s", w.ptr,
					   (unsigned long long)(in->offset - HFM_TAR_BLOCK), why);
			free(why);
			hfm_buf_dispose(&w);
			goto out;
		}
		if (h.type == HFM_TAR_END) {
			*end = 1;
			goto out;
		}
		if (h.type == HFM_TAR_FILE) {
			snprintf(in->name, sizeof(in->name), "%s", pax_path ? pax_path : h.name);
			*size = has_size ? pax_size : h.size;
			goto out;
		}
		if (h.size > PAX_MAX) {
			rc = hfm_error_set(HFM_EINVAL, "a pax header of %llu bytes",
					   (unsigned long long)h.size);
			goto out;
		}
		char *data = hfm_malloc((size_t)h.size + 1);
		int short_read;

		rc = read_exact(in, (unsigned char *)data, (size_t)h.size, &got);
		if (!rc && got < h.size)
			rc = truncated(in, "a pax header", got, h.size);
		if (!rc)
			rc = discard(in, hfm_tar_padding(h.size), 1, &short_read);
		if (!rc && h.type == HFM_TAR_PAX) {
			free(pax_path);
			rc = hfm_tar_pax(&pax_path, &pax_size, &has_size, data, (size_t)h.size);
		}
		free(data);
		if (rc)
			goto out;
	}
out:
	free(pax_path);
	return rc;
}

int hfm_bundle_in_next(struct hfm_bundle_in *in, const char **name, uint64_t *size)
{
	int rc, end, short_read;

	if (in->pending < 0)
		return HFM_ENOENT;
	if (in->pending) {
		in->pending = 0;
		*name = in->name;
		*size = in->remain = in->member_size = in->pending_size;
		in->pad = hfm_tar_padding(in->remain);
		return 0;
	}
	uint64_t at = in->offset;

	if ((rc = discard(in, in->remain, 0, &short_read)))
		return rc;
	if (short_read)
		return truncated(in, in->name, in->member_size - in->remain + (in->offset - at),
				 in->member_size);
	in->remain = 0;
	if ((rc = discard(in, in->pad, 1, &short_read)))
		return rc;
	in->pad = 0;
	if ((rc = read_member(in, size, &end)))
		return rc;
	if (end)
		return HFM_ENOENT;
	*name = in->name;
	in->remain = in->member_size = *size;
	in->pad = hfm_tar_padding(*size);
	return 0;
}

int hfm_bundle_in_read(struct hfm_bundle_in *in, void *buf, size_t n, size_t *got)
{
	int rc;

	*got = 0;
	if (!in->remain || !n)
		return 0;
	n = (size_t)HFM_MIN((uint64_t)n, in->remain);
	if (in->pos == in->len && n >= (64u << 10)) {
		/* a large read goes straight to the caller's buffer */
		if ((rc = src_read(in, buf, n, got)))
			return rc;
	} else {
		if ((rc = fill(in)))
			return rc;
		*got = HFM_MIN(n, in->len - in->pos);
		memcpy(buf, in->buf + in->pos, *got);
		in->pos += *got;
	}
	if (!*got)
		return truncated(in, in->name, in->member_size - in->remain, in->member_size);
	in->offset += *got;
	in->remain -= *got;
	return 0;
}

int hfm_bundle_in_finish(struct hfm_bundle_in *in)
{
	int rc;

	/* after the first end block: only zeros to the end */
	for (;;) {
		if ((rc = fill(in)))
			return rc;
		if (in->pos == in->len)
			break;
		for (size_t i = in->pos; i < in->len; i++)
			if (in->buf[i])
				return hfm_error_set(HFM_EINVAL, "data after the end of the bundle's "
						     "payload (at byte %llu)",
						     (unsigned long long)(in->offset + i - in->pos));
		in_frame_hash(in, in->buf + in->pos, in->len - in->pos);
		in->offset += in->len - in->pos;
		in->pos = in->len;
	}
	if (in->dir && in->cur < in->nvols)
		return hfm_error_set(HFM_EINVAL, "the payload ends in %s, before volume %zu of %zu",
				     in->vols[in->cur].name, in->cur + 1, in->nvols);
	while (in->dir && in->v2 && in->fv < in->nvols)
		in_frame_close(in);
	if (in->damage)
		return hfm_error_set(HFM_EINVAL, "%s", in->damage);
	return 0;
}

/* Read a whole member's data (at most `max` bytes) into *out. */
static int slurp_member(struct hfm_bundle_in *in, char **out, size_t *n, uint64_t size,
			size_t max, const char *what)
{
	size_t got;
	int rc, short_read;

	if (size > max)
		return hfm_error_set(HFM_EINVAL, "%s: the %s member has %llu bytes (at most %zu)",
				     in->path, what, (unsigned long long)size, max);
	*out = hfm_malloc((size_t)size + 1);
	if ((rc = read_exact(in, (unsigned char *)*out, (size_t)size, &got)))
		return rc;
	if (got < size)
		return truncated(in, what, got, size);
	(*out)[size] = '\0';
	*n = (size_t)size;
	return discard(in, hfm_tar_padding(size), 1, &short_read);
}

static int read_file(char **out, size_t *n, const char *path, size_t max, int *missing)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	size_t got = 0;

	*missing = 0;
	if (fd < 0) {
		*missing = errno == ENOENT;
		return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		return hfm_error_set(HFM_EINVAL, "%s: larger than %zu bytes", path, max);
	}
	*out = hfm_malloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, *out + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = hfm_error_set(HFM_EIO, "%s: %s", path, k < 0 ? strerror(errno) : "short");
			break;
		}
		got += (size_t)k;
	}
	close(fd);
	(*out)[got] = '\0';
	*n = got;
	return rc;
}

int hfm_bundle_in_open(struct hfm_bundle_in **out, const char *path)
{
	struct hfm_bundle_in *in = hfm_calloc(1, sizeof(*in));
	struct stat st;
	uint64_t size;
	int rc = 0, end, missing;

	in->path = hfm_strdup(path);
	in->fd = -1;
	in->buf = hfm_malloc(IO_BUF);
	in->vh = EVP_MD_CTX_new();
	if (!in->vh)
		abort();
	if (strcmp(path, "-") && stat(path, &st) < 0) {
		rc = hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (strcmp(path, "-") && S_ISDIR(st.st_mode)) {
		char *p = hfm_asprintf("%s/manifest", path);

		in->dir = 1;
		rc = read_file(&in->manifest, &in->nmanifest, p, HFM_BUNDLE_MANIFEST_MAX, &missing);
		free(p);
		if (rc && missing)
			rc = hfm_error_set(HFM_EINVAL, "%s has no manifest: not a bundle, an export "
					   "that did not finish, or the manifest was not copied "
					   "with the volumes", path);
		if (rc)
			goto out;
		p = hfm_asprintf("%s/manifest.sig", path);
		rc = read_file(&in->sig, &in->nsig, p, 4096, &missing);
		free(p);
		if (rc && missing) {
			hfm_error_clear();
			rc = 0;
		}
		goto out;
	}
	if (!strcmp(path, "-")) {
		in->fd = STDIN_FILENO;
#ifdef F_SETPIPE_SZ
		fcntl(in->fd, F_SETPIPE_SZ, 1 << 20);
#endif
	} else {
		in->fd = open(path, O_RDONLY | O_CLOEXEC);
		in->own_fd = 1;
		if (in->fd < 0) {
			rc = hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	if ((rc = read_member(in, &size, &end)))
		goto out;
	if (end || strcmp(in->name, "manifest")) {
		rc = hfm_error_set(HFM_EINVAL, "%s is not an hfmirror bundle: its first member "
				   "is %s, not manifest", strcmp(path, "-") ? path : "the input",
				   end ? "the end" : in->name);
		goto out;
	}
	if ((rc = slurp_member(in, &in->manifest, &in->nmanifest, size, HFM_BUNDLE_MANIFEST_MAX,
			       "manifest")))
		goto out;
	if ((rc = read_member(in, &size, &end)))
		goto out;
	if (end) {
		in->pending = -1;          /* no payload at all: next() says so */
		goto out;
	}
	if (!strcmp(in->name, "manifest.sig")) {
		rc = slurp_member(in, &in->sig, &in->nsig, size, 4096, "manifest.sig");
		goto out;
	}
	in->pending = 1;
	in->pending_size = size;
out:
	if (rc) {
		hfm_bundle_in_free(in);
		return rc;
	}
	*out = in;
	return 0;
}

void hfm_bundle_in_free(struct hfm_bundle_in *in)
{
	if (!in)
		return;
	if (in->fd >= 0 && (in->own_fd || in->dir))
		close(in->fd);
	for (size_t i = 0; i < in->nvols; i++)
		free(in->vols[i].name);
	free(in->vols);
	EVP_MD_CTX_free(in->vh);
	free(in->buf);
	free(in->manifest);
	free(in->sig);
	free(in->damage);
	free(in->path);
	free(in);
}

const char *hfm_bundle_in_manifest(const struct hfm_bundle_in *in, size_t *n)
{
	*n = in->nmanifest;
	return in->manifest;
}

const char *hfm_bundle_in_sig(const struct hfm_bundle_in *in, size_t *n)
{
	*n = in->nsig;
	return in->sig;
}

int hfm_bundle_in_is_dir(const struct hfm_bundle_in *in)
{
	return in->dir;
}

int hfm_bundle_in_volumes(struct hfm_bundle_in *in, const struct hfm_bundle_manifest *m)
{
	DIR *d;
	struct dirent *de;
	size_t i;
	int rc = 0;

	if (!in->dir)
		return 0;
	if (!m->nvolumes)
		return hfm_error_set(HFM_EINVAL, "%s: the manifest lists no payload volumes",
				     in->path);
	in->vols = hfm_calloc(m->nvolumes, sizeof(*in->vols));
	in->nvols = m->nvolumes;
	for (i = 0; i < m->nvolumes; i++) {
		in->vols[i].name = hfm_strdup(m->volumes[i].name);
		in->vols[i].size = m->volumes[i].size;
		memcpy(in->vols[i].sha256, m->volumes[i].sha256, sizeof(in->vols[i].sha256));
		memcpy(in->vols[i].framing, m->volumes[i].framing, sizeof(in->vols[i].framing));
	}
	for (i = 0; i < in->nvols; i++) {
		char *p = hfm_asprintf("%s/%s", in->path, in->vols[i].name);
		struct stat st;

		if (stat(p, &st) < 0)
			rc = hfm_error_set(HFM_EINVAL, "%s (volume %zu of %zu) is missing from %s",
					   in->vols[i].name, i + 1, in->nvols, in->path);
		else if ((uint64_t)st.st_size != in->vols[i].size)
			rc = hfm_error_set(HFM_EINVAL, "%s (volume %zu of %zu) has %llu bytes; the "
					   "manifest says %llu: it is %s (copy it again)",
					   in->vols[i].name, i + 1, in->nvols,
					   (unsigned long long)st.st_size,
					   (unsigned long long)in->vols[i].size,
					   (uint64_t)st.st_size < in->vols[i].size ? "truncated"
										   : "too long");
		free(p);
		if (rc)
			return rc;
	}
	if ((d = opendir(in->path))) {
		while (!rc && (de = readdir(d))) {
			if (strncmp(de->d_name, "payload.", 8))
				continue;
			for (i = 0; i < in->nvols && strcmp(in->vols[i].name, de->d_name); i++)
				;
			if (i == in->nvols)
				rc = hfm_error_set(HFM_EINVAL, "%s/%s is not a volume of this bundle "
						   "(its manifest lists %zu: %s to %s): move it away",
						   in->path, de->d_name, in->nvols, in->vols[0].name,
						   in->vols[in->nvols - 1].name);
		}
		closedir(d);
	}
	if (rc)
		return rc;
	char *p = hfm_asprintf("%s/%s", in->path, in->vols[0].name);
	in->fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (in->fd < 0)
		return hfm_error_set(HFM_EIO, "%s: %s", in->vols[0].name, strerror(errno));
	posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	in->cur = 0;
	in->vol_read = 0;
	in->v2 = m->version >= 2;
	in->fv = 0;
	in->fv_end = in->vols[0].size;
	EVP_DigestInit_ex(in->vh, EVP_sha256(), NULL);
	return 0;
}
