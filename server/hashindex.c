/* hashindex.c - append-only, checksummed (dev, ino, size, mtime) -> hashes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hfm/fsutil.h"
#include "hfm/hashindex.h"

/*
 * File layout: a 16-byte header "HFMHIDX1" + 8 reserved bytes, then records
 * of REC_SIZE bytes, little-endian:
 *   0  u32  magic 'HFMR'
 *   4  u32  flags (bit 0: binary)
 *   8  u64  dev      16 u64 ino      24 u64 size      32 i64 mtime_ns
 *  40  u8[20] sha1   60 u8[32] sha256
 *  92  u32  reserved (0)
 *  96  u64  FNV-1a of bytes 0..95
 */
#define HDR "HFMHIDX1"
#define HDR_SIZE 16
#define REC_SIZE 104
#define REC_MAGIC 0x524d4648u /* "HFMR" */

struct slot {
	struct hfm_hash_key key;   /* key.ino == 0 && key.dev == 0 -> empty */
	uint8_t sha1[20];
	uint8_t sha256[32];
	uint8_t binary;
	uint8_t used;
};

struct hfm_hashindex {
	pthread_mutex_t lock;
	char *path;
	int fd;                    /* -1: memory only; O_APPEND */
	struct slot *slots;
	size_t cap, count;
};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static size_t slot_hash(const struct hfm_hash_key *k)
{
	uint64_t h = k->dev * 0x9e3779b97f4a7c15ull ^ k->ino * 0xc2b2ae3d27d4eb4full;

	return (size_t)(h ^ (h >> 29));
}

static struct slot *find_slot(struct hfm_hashindex *idx, const struct hfm_hash_key *k)
{
	size_t i = slot_hash(k) & (idx->cap - 1);

	while (idx->slots[i].used &&
	       (idx->slots[i].key.dev != k->dev || idx->slots[i].key.ino != k->ino))
		i = (i + 1) & (idx->cap - 1);
	return &idx->slots[i];
}

static void grow(struct hfm_hashindex *idx)
{
	struct slot *old = idx->slots;
	size_t oldcap = idx->cap, i;

	idx->cap = oldcap ? oldcap * 2 : 1024;
	idx->slots = hfm_calloc(idx->cap, sizeof(struct slot));
	for (i = 0; i < oldcap; i++)
		if (old[i].used)
			*find_slot(idx, &old[i].key) = old[i];
	free(old);
}

/* Insert or overwrite; returns 1 if a new (dev, ino) was added. */
static int mem_put(struct hfm_hashindex *idx, const struct hfm_hash_key *k,
		   const uint8_t sha1[20], const uint8_t sha256[32], int binary)
{
	struct slot *s;
	int added;

	if ((idx->count + 1) * 4 > idx->cap * 3)
		grow(idx);
	s = find_slot(idx, k);
	added = !s->used;
	s->used = 1;
	s->key = *k;
	memcpy(s->sha1, sha1, 20);
	memcpy(s->sha256, sha256, 32);
	s->binary = (uint8_t)binary;
	idx->count += (size_t)added;
	return added;
}

static void encode(unsigned char *r, const struct hfm_hash_key *k, const uint8_t sha1[20],
		   const uint8_t sha256[32], int binary)
{
	memset(r, 0, REC_SIZE);
	put_u32(r, REC_MAGIC);
	put_u32(r + 4, binary ? 1 : 0);
	put_u64(r + 8, k->dev);
	put_u64(r + 16, k->ino);
	put_u64(r + 24, k->size);
	put_u64(r + 32, (uint64_t)k->mtime_ns);
	memcpy(r + 40, sha1, 20);
	memcpy(r + 60, sha256, 32);
	put_u64(r + 96, fnv1a(r, 96));
}

/*
 * Several processes (nodes of a shared store, the importer) append to one
 * file.  Every change of the file happens under an exclusive lock on it: an
 * open file description lock (local filesystems, NFSv4, CephFS, Lustre with
 * -o flock; F_SETLKW where the kernel has none), so a record is one write
 * that no other writer interleaves with, on NFS too where O_APPEND alone is
 * not atomic across clients.  A compaction renames a new file over the
 * path; a writer that finds its file replaced reopens the path first.
 */
static int lock_file(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	int rc;

	do
		rc = fcntl(fd, F_OFD_SETLKW, &fl);
	while (rc < 0 && errno == EINTR);
	if (rc < 0 && errno == EINVAL) {
		do
			rc = fcntl(fd, F_SETLKW, &fl);
		while (rc < 0 && errno == EINTR);
	}
	return rc;
}

static void unlock_file(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		fcntl(fd, F_SETLK, &fl);
}

/* Rewrite the file with one record per live entry (tmp + rename); under the lock. */
static int compact(struct hfm_hashindex *idx, const char *path)
{
	char host[64] = "";
	gethostname(host, sizeof(host) - 1);
	char *tmp = hfm_asprintf("%s.tmp.%.40s.%ld", path, host, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	unsigned char hdr[HDR_SIZE] = HDR, rec[REC_SIZE];
	int rc = -1;
	size_t i;

	if (fd < 0)
		goto out;
	if (hfm_write_all(fd, hdr, HDR_SIZE))
		goto fail;
	for (i = 0; i < idx->cap; i++) {
		struct slot *s = &idx->slots[i];
		if (!s->used)
			continue;
		encode(rec, &s->key, s->sha1, s->sha256, s->binary);
		if (hfm_write_all(fd, rec, REC_SIZE))
			goto fail;
	}
	if (fsync(fd) || rename(tmp, path))
		goto fail;
	close(fd);
	rc = 0;
	goto out;
fail:
	close(fd);
	unlink(tmp);
out:
	free(tmp);
	return rc;
}

static int mkdir_parent(const char *path)
{
	char *p = hfm_strdup(path), *s;

	for (s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				free(p);
				return -1;
			}
			*s = '/';
		}
	}
	free(p);
	return 0;
}

static int rec_valid(const unsigned char *rec)
{
	return get_u32(rec) == REC_MAGIC && get_u64(rec + 96) == fnv1a(rec, 96);
}

/*
 * The first `n` bytes of a file whose header is not HDR: is it an index
 * whose header a crash tore (each byte HDR's or zero: a write cut short, or
 * blocks allocated but never written) or whose first record is intact?
 * Then it is rebuilt; anything else is someone's file and is left alone.
 */
static int torn_header(const unsigned char *p, size_t n)
{
	static const unsigned char hdr[HDR_SIZE] = HDR;
	size_t i;

	if (n >= HDR_SIZE + REC_SIZE && rec_valid(p + HDR_SIZE))
		return 1;
	for (i = 0; i < n && i < HDR_SIZE; i++)
		if (p[i] != hdr[i] && p[i] != 0)
			return 0;
	return 1;
}

/*
 * Read every record of the `n` bytes at `p` (the header skipped).  A record
 * that does not check (torn by a crash mid-append, bit rot) is skipped and
 * the reader finds the next one that does, byte by byte, so a torn record
 * in the middle costs only itself.  Returns how many damaged stretches.
 */
static size_t load(struct hfm_hashindex *idx, const unsigned char *p, size_t n, size_t *records)
{
	size_t off = HDR_SIZE, bad = 0;
	int in_bad = 0;

	while (off + REC_SIZE <= n) {
		const unsigned char *rec = p + off;
		if (!rec_valid(rec)) {
			bad += !in_bad;
			in_bad = 1;
			off++;
			continue;
		}
		in_bad = 0;
		struct hfm_hash_key k = {
			get_u64(rec + 8), get_u64(rec + 16), get_u64(rec + 24),
			(int64_t)get_u64(rec + 32)
		};
		mem_put(idx, &k, rec + 40, rec + 60, get_u32(rec + 4) & 1);
		(*records)++;
		off += REC_SIZE;
	}
	if (off < n && !in_bad)
		bad++;                   /* a torn record at the end */
	return bad;
}

/* Open (or reopen after another process compacted) the file for appends. */
static int open_append(const char *path)
{
	return open(path, O_RDWR | O_APPEND | O_CLOEXEC);
}

int hfm_hashindex_open(struct hfm_hashindex **out, const char *path, const char **warning)
{
	struct hfm_hashindex *idx = hfm_calloc(1, sizeof(*idx));
	static const unsigned char hdr[HDR_SIZE] = HDR;
	size_t records = 0, bad = 0;
	unsigned char *map = NULL;
	int rebuild = 0, fd = -1;
	struct stat st;

	pthread_mutex_init(&idx->lock, NULL);
	idx->fd = -1;
	grow(idx);
	if (warning)
		*warning = "";
	*out = idx;
	if (!path)
		return 0;
	idx->path = hfm_strdup(path);
	if (mkdir_parent(path) < 0 ||
	    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		if (warning)
			*warning = "cannot open the hash index file; hashes are kept in memory only";
		return 0;
	}
	if (lock_file(fd, F_WRLCK) < 0 || fstat(fd, &st) < 0)
		goto unusable;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			goto unusable;
	}
	if (st.st_size >= HDR_SIZE && !memcmp(map, HDR, 8)) {
		bad = load(idx, map, (size_t)st.st_size, &records);
	} else if (st.st_size > 0 && torn_header(map, (size_t)st.st_size)) {
		/* a crash while the file was made: rebuilt from what checks */
		load(idx, map, (size_t)st.st_size, &records);
		rebuild = 1;
		if (warning)
			*warning = "the hash index's header was torn (a crash while it was made); "
				   "rebuilt from its intact records";
	} else if (st.st_size > 0) {
		if (warning)
			*warning = "the hash index file is not an hfmirror index (left alone); "
				   "hashes are kept in memory only";
		munmap(map, (size_t)st.st_size);
		close(fd);
		return 0;
	}
	if (map)
		munmap(map, (size_t)st.st_size);
	if (bad && warning)
		*warning = "the hash index had damaged records; they were dropped";
	if (st.st_size == 0) {
		if (hfm_write_all(fd, hdr, HDR_SIZE))
			goto unusable;
	} else if (rebuild || bad || records > 2 * idx->count + 1024) {
		/* compact when damaged or mostly dead, so appends land on a clean end */
		if (compact(idx, path) < 0)
			goto unusable;
	}
	unlock_file(fd);
	close(fd);
	/* from here on, every record is one O_APPEND write under the lock */
	if ((idx->fd = open_append(path)) < 0)
		goto unusable;
	return 0;
unusable:
	if (fd >= 0)
		close(fd);
	if (idx->fd >= 0)
		close(idx->fd);
	idx->fd = -1;
	if (warning)
		*warning = "cannot write the hash index file; hashes are kept in memory only";
	return 0;
}

/*
 * Append one record, with the file locked: reopened first if another
 * process compacted it (renamed a new file over the path), and padded to a
 * record boundary if a writer died mid-record, so the next reader finds
 * every later record where it expects it.
 */
static int append(struct hfm_hashindex *idx, const unsigned char *rec)
{
	static const unsigned char zeros[REC_SIZE];
	struct stat fst, pst;
	int rc = -1;

	for (int tries = 0; tries < 4; tries++) {
		if (lock_file(idx->fd, F_WRLCK) < 0)
			return -1;
		if (fstat(idx->fd, &fst) == 0 && stat(idx->path, &pst) == 0 &&
		    fst.st_ino == pst.st_ino && fst.st_dev == pst.st_dev)
			break;
		unlock_file(idx->fd);
		int nfd = open_append(idx->path);
		if (nfd < 0)
			return -1;
		close(idx->fd);
		idx->fd = nfd;
		fst.st_size = -1;
	}
	if (fst.st_size < HDR_SIZE)
		goto out;
	size_t torn = (size_t)(fst.st_size - HDR_SIZE) % REC_SIZE;
	if (torn && hfm_write_all(idx->fd, zeros, REC_SIZE - torn))
		goto out;
	rc = hfm_write_all(idx->fd, rec, REC_SIZE) ? -1 : 0;
out:
	unlock_file(idx->fd);
	return rc;
}

void hfm_hashindex_free(struct hfm_hashindex *idx)
{
	if (!idx)
		return;
	if (idx->fd >= 0)
		close(idx->fd);
	pthread_mutex_destroy(&idx->lock);
	free(idx->path);
	free(idx->slots);
	free(idx);
}

void hfm_hash_key_from_stat(struct hfm_hash_key *k, const struct stat *st)
{
	k->dev = (uint64_t)st->st_dev;
	k->ino = (uint64_t)st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
}

int hfm_hashindex_get(struct hfm_hashindex *idx, const struct hfm_hash_key *k,
		      struct hfm_hash_rec *out)
{
	struct slot *s;
	int rc = HFM_ENOENT;

	pthread_mutex_lock(&idx->lock);
	s = find_slot(idx, k);
	if (s->used && s->key.size == k->size && s->key.mtime_ns == k->mtime_ns) {
		hfm_hex(out->sha1, s->sha1, 20);
		hfm_hex(out->sha256, s->sha256, 32);
		out->binary = s->binary;
		rc = 0;
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

int hfm_hashindex_put(struct hfm_hashindex *idx, const struct hfm_hash_key *k,
		      const struct hfm_hash_rec *rec)
{
	uint8_t sha1[20], sha256[32];
	unsigned char r[REC_SIZE];
	int rc = 0;

	if (hfm_unhex(sha1, rec->sha1, 20) || hfm_unhex(sha256, rec->sha256, 32))
		return HFM_EINVAL;
	pthread_mutex_lock(&idx->lock);
	mem_put(idx, k, sha1, sha256, rec->binary);
	if (idx->fd >= 0) {
		encode(r, k, sha1, sha256, rec->binary);
		if (append(idx, r))
			rc = HFM_EIO;
	}
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

size_t hfm_hashindex_count(struct hfm_hashindex *idx)
{
	size_t n;

	pthread_mutex_lock(&idx->lock);
	n = idx->count;
	pthread_mutex_unlock(&idx->lock);
	return n;
}
