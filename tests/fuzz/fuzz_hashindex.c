/*
 * fuzz_hashindex: hfm_hashindex_open() on any file, the reader of the one
 * binary file hfmirror keeps across restarts.
 *
 * Each input is tried twice: as it is (mostly bad records: the reader must
 * skip them) and "repaired", with the header, every record's magic and its
 * checksum made right, so that arbitrary keys and hashes reach the table.
 *
 * Promises checked (hashindex.h): a damaged file costs records, never a
 * crash or a wrong answer; of repaired records the last per (dev, ino) wins
 * and is answered exactly; an index whose header a crash tore (the bytes a
 * prefix of the header or zeros, or an intact first record) is rebuilt; a
 * file that is not an index is left alone; after
 * the open, appends land on a clean end: a record put now is there at the
 * next open, with everything the first open kept.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/common.h"
#include "hfm/hash.h"
#include "hfm/hashindex.h"
#include "fuzz.h"

#define HDR_SIZE 16
#define REC_SIZE 104

static char dir[64], path[96];

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void key_of(struct hfm_hash_key *k, const uint8_t *rec)
{
	k->dev = get_u64(rec + 8);
	k->ino = get_u64(rec + 16);
	k->size = get_u64(rec + 24);
	k->mtime_ns = (int64_t)get_u64(rec + 32);
}

static void cleanup(void)
{
	char tmp[200], host[64] = "";

	unlink(path);
	gethostname(host, sizeof(host) - 1);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%.40s.%ld", path, host, (long)getpid());
	unlink(tmp);
	rmdir(dir);
}

static int rec_ok(const uint8_t *r)
{
	return !memcmp(r, "HFMR", 4) && get_u64(r + 96) == fnv1a(r, 96);
}

/* The header a crash tore: each byte the header's or zero, or the first record intact. */
static int torn_header(const uint8_t *data, size_t size)
{
	static const uint8_t hdr[HDR_SIZE] = "HFMHIDX1";

	if (size >= HDR_SIZE + REC_SIZE && rec_ok(data + HDR_SIZE))
		return 1;
	for (size_t i = 0; i < size && i < HDR_SIZE; i++)
		if (data[i] != hdr[i] && data[i] != 0)
			return 0;
	return 1;
}

static void setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(dir, sizeof(dir), "%s/hfm-fuzz-XXXXXX", base);
	FUZZ_CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/index", dir);
	atexit(cleanup);
}

static void write_file(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	close(fd);
}

/* Whether the file still holds exactly `data`. */
static int file_is(const uint8_t *data, size_t size)
{
	uint8_t *got = malloc(size + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, got, size + 1) : -1;
	int same = n == (ssize_t)size && (size == 0 || !memcmp(got, data, size));

	if (fd >= 0)
		close(fd);
	free(got);
	return same;
}

/* Repaired records: the count of distinct (dev, ino), and each answered. */
static void check_records(struct hfm_hashindex *idx, const uint8_t *data, size_t size)
{
	size_t nrec = size < HDR_SIZE ? 0 : (size - HDR_SIZE) / REC_SIZE, i, j, distinct = 0;

	for (i = 0; i < nrec; i++) {
		const uint8_t *r = data + HDR_SIZE + i * REC_SIZE;
		struct hfm_hash_key k;
		struct hfm_hash_rec got;
		char sha1[HFM_SHA1_HEX + 1], sha256[HFM_SHA256_HEX + 1];
		int later = 0;

		key_of(&k, r);
		for (j = i + 1; j < nrec && !later; j++) {
			const uint8_t *s = data + HDR_SIZE + j * REC_SIZE;
			later = !memcmp(r + 8, s + 8, 16);
		}
		if (later)
			continue;       /* a later record for the same file wins */
		distinct++;
		FUZZ_CHECK(hfm_hashindex_get(idx, &k, &got) == 0);
		hfm_hex(sha1, r + 40, 20);
		hfm_hex(sha256, r + 60, 32);
		FUZZ_CHECK(!strcmp(got.sha1, sha1) && !strcmp(got.sha256, sha256));
		FUZZ_CHECK(got.binary == (r[4] & 1));
	}
	FUZZ_CHECK(hfm_hashindex_count(idx) == distinct);
}

static void one(const uint8_t *data, size_t size, int repaired)
{
	static const struct hfm_hash_key mine = { 0xfeedu, 0xbeefu, 42, 7 };
	static const struct hfm_hash_rec rec = {
		"0123456789abcdef0123456789abcdef01234567",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1
	};
	struct hfm_hashindex *idx = NULL;
	struct hfm_hash_rec got;
	const char *warning = NULL;
	size_t kept, full = size < HDR_SIZE ? 0 : (size - HDR_SIZE) / REC_SIZE;
	int ours = size == 0 || (size >= HDR_SIZE && !memcmp(data, "HFMHIDX1", 8)) ||
		   torn_header(data, size);

	write_file(data, size);
	FUZZ_CHECK(hfm_hashindex_open(&idx, path, &warning) == 0);
	FUZZ_CHECK(idx && warning);
	kept = hfm_hashindex_count(idx);
	FUZZ_CHECK(kept <= full);
	if (!ours) {
		FUZZ_CHECK(kept == 0 && *warning);
		hfm_hashindex_free(idx);
		FUZZ_CHECK(file_is(data, size));
		return;
	}
	if (repaired)
		check_records(idx, data, size);
	FUZZ_CHECK(hfm_hashindex_put(idx, &mine, &rec) == 0);
	hfm_hashindex_free(idx);

	FUZZ_CHECK(hfm_hashindex_open(&idx, path, &warning) == 0);
	FUZZ_CHECK(*warning == '\0');
	FUZZ_CHECK(hfm_hashindex_get(idx, &mine, &got) == 0);
	FUZZ_CHECK(!strcmp(got.sha1, rec.sha1) && !strcmp(got.sha256, rec.sha256) &&
		   got.binary == 1);
	FUZZ_CHECK(hfm_hashindex_count(idx) == kept + 1 ||
		   hfm_hashindex_count(idx) == kept);   /* the input may hold `mine` */
	hfm_hashindex_free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;
	size_t i;

	if (!dir[0])
		setup();
	one(data, size, 0);

	fixed = malloc(size + 1);
	memcpy(fixed, data, size);
	if (size >= 8)
		memcpy(fixed, "HFMHIDX1", 8);
	for (i = HDR_SIZE; i + REC_SIZE <= size; i += REC_SIZE) {
		memcpy(fixed + i, "HFMR", 4);
		put_u64(fixed + i + 96, fnv1a(fixed + i, 96));
	}
	one(fixed, size, 1);
	free(fixed);
	return 0;
}
