/* test_bundle.c - the bundle manifest, signatures, tar framing and volumes. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hfm/bundle.h"
#include "hfm/bundleio.h"
#include "tap.h"

static char tmpdir[] = "/tmp/hfm-bundle-XXXXXX";

static struct hfm_bundle_manifest *sample(void)
{
	struct hfm_bundle_manifest *m = hfm_bundle_manifest_new("hfmirror test", "host:/store a");
	struct hfm_repo_id id = { HFM_MODEL, "acme/tiny" }, gid = { HFM_DATASET, "gpt2" };
	struct hfm_bundle_repo *r = hfm_bundle_add_repo(m, &id, HFM_BUNDLE_CACHE);
	struct hfm_bundle_commit *c;
	const char *sha = "0123456789abcdef0123456789abcdef01234567";
	const char *lfs = "aa23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	hfm_bundle_add_rev(r, "main", sha);
	hfm_bundle_add_rev(r, "refs/pr/1", sha);
	c = hfm_bundle_add_commit(r, sha);
	hfm_bundle_add_file(c, "config.json", "1111111111111111111111111111111111111111", 20, NULL, 0);
	hfm_bundle_add_file(c, "sub dir/100% w.bin", "2222222222222222222222222222222222222222",
			    5000, lfs, 0);
	hfm_bundle_add_file(c, "big.bin", "3333333333333333333333333333333333333333", 7,
			    NULL, 1);
	hfm_bundle_add_item(m, HFM_BUNDLE_META, 0, "commits/0123456789abcdef0123456789abcdef01234567/tree.json",
			    10, "bb23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	hfm_bundle_add_item(m, HFM_BUNDLE_OBJECT, -1, NULL, 5000, lfs);
	hfm_bundle_add_grant(r, "alice", "admin", "2026-12-04T16:00:00.000Z", 0);
	hfm_bundle_add_grant(r, "bob", "upstream", "", 1);
	r = hfm_bundle_add_repo(m, &gid, HFM_BUNDLE_GIT);
	r->head = hfm_strdup("main");
	hfm_bundle_add_rev(r, "refs/heads/main", sha);
	hfm_bundle_add_item(m, HFM_BUNDLE_PACK, 1, NULL, 99,
			    "cc23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	return m;
}

static void test_manifest(void)
{
	struct hfm_bundle_manifest *m = sample(), *p = NULL;
	struct hfm_buf t = HFM_BUF_INIT(1 << 20), t2 = HFM_BUF_INIT(1 << 20), err = HFM_BUF_INIT(1024);

	TAP_IS_INT(hfm_bundle_manifest_format(&t, m), 0, "format");
	TAP_OK(strstr(t.ptr, "file sub%20dir/100%25%20w.bin ") != NULL, "paths are percent-encoded");
	TAP_OK(strstr(t.ptr, "source host:/store%20a\n") != NULL, "so is free text");
	TAP_IS_INT(hfm_bundle_manifest_parse(&p, t.ptr, t.len, &err), 0, "parse: %s", hfm_buf_cstr(&err));
	if (p) {
		TAP_IS_INT(hfm_bundle_manifest_format(&t2, p), 0, "format again");
		TAP_IS_STR(t2.ptr, t.ptr, "parse and format round-trip");
		TAP_IS_STR(p->repos[0].commits[0].files[1].path, "sub dir/100% w.bin", "decoded path");
		TAP_IS_INT(p->repos[0].commits[0].files[2].absent, 1, "absent flag");
		TAP_IS_STR(hfm_bundle_file_object(&p->repos[0], &p->repos[0].commits[0].files[1]),
			   p->repos[0].commits[0].files[1].lfs, "an LFS file needs its LFS object");
		TAP_OK(hfm_bundle_file_object(&p->repos[0], &p->repos[0].commits[0].files[2]) == NULL,
		       "an absent file needs none");
		TAP_IS_STR(p->items[1].name, "meta/models/acme/tiny/commits/0123456789abcdef0123456789abcdef01234567/tree.json",
			   "meta member name");
		TAP_IS_STR(p->items[2].name, "packs/datasets/gpt2.pack", "pack member name");
		TAP_OK(p->repos[0].ngrants == 2 && !strcmp(p->repos[0].grants[0].user, "alice") &&
		       !p->repos[0].grants[0].revoked && !strcmp(p->repos[0].grants[0].via, "admin") &&
		       !strcmp(p->repos[0].grants[0].time, "2026-12-04T16:00:00.000Z"),
		       "a grant record");
		TAP_OK(p->repos[0].ngrants == 2 && p->repos[0].grants[1].revoked &&
		       !p->repos[0].grants[1].time[0], "a revoke record, its time unknown");
	}
	TAP_OK(strstr(t.ptr, "grant alice admin 2026-12-04T16:00:00.000Z\nrevoke bob upstream -\n") != NULL,
	       "grant and revoke records");
	hfm_bundle_manifest_free(p);

	/* refusals, each with its line */
	static const struct { const char *edit_from, *edit_to, *want, *what; } bad[] = {
		{ "hfmirror-bundle 2\n", "hfmirror-bundle 3\n", "manifest:1: format version 3", "a newer version" },
		{ "end\n", "", "no end record", "a cut-off manifest" },
		{ "end\n", "end", "no newline", "a cut-off last line" },
		{ "tool ", "frobnicate x\ntool ", "unknown record \"frobnicate\"", "an unknown record" },
		{ "tool ", "grant alice admin -\ntool ", "grant before any repo record", "a grant of no repo" },
		{ "head main\n", "head main\ngrant alice admin -\n", "grant in a git repo", "a grant of a git repo" },
		{ "grant alice admin 2026-12-04T16:00:00.000Z", "grant alice admin 2026-12-04", "the time is not",
		  "a grant with a bad time" },
		{ "grant alice ", "grant al/ice ", "is not a user name", "a grant to a bad name" },
		{ "grant alice admin ", "grant alice %20admin ", "is not a way of granting", "a bad via" },
		{ "grant alice admin 2026-12-04T16:00:00.000Z", "grant alice admin", "grant: 2 fields",
		  "a grant without its time" },
		{ "revoke bob ", "revoke alice ", "alice has two records", "two records of one user" },
		{ "rev main ", "rev main  ", "empty field", "two spaces" },
		{ "object aa2345", "object AA2345", "lowercase hex", "an uppercase oid" },
		{ "meta commits/", "meta ../commits/", "is not refs.json", "a meta path that escapes" },
		{ "repo model acme/tiny", "repo model acme/../x", "not a repo name", "a bad repo name" },
		{ "file config.json", "file ../config.json", "not a valid repo path", "a bad file path" },
		{ "rev refs/heads/main", "rev main", "not a full ref name", "a git rev that is not a ref" },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(bad); i++) {
		char *at = strstr(t.ptr, bad[i].edit_from);
		struct hfm_buf e = HFM_BUF_INIT(1 << 20);

		if (!at) {
			TAP_OK(0, "fixture has '%s'", bad[i].edit_from);
			continue;
		}
		hfm_buf_put(&e, t.ptr, (size_t)(at - t.ptr));
		hfm_buf_puts(&e, bad[i].edit_to);
		hfm_buf_puts(&e, at + strlen(bad[i].edit_from));
		hfm_buf_reset(&err);
		p = NULL;
		TAP_IS_INT(hfm_bundle_manifest_parse(&p, e.ptr, e.len, &err), HFM_EINVAL, "refused: %s",
			   bad[i].what);
		TAP_OK(strstr(hfm_buf_cstr(&err), bad[i].want) != NULL, "  says '%s' (%s)", bad[i].want,
		       hfm_buf_cstr(&err));
		hfm_bundle_manifest_free(p);
		hfm_buf_dispose(&e);
	}
	/* an extension record is ignored */
	{
		struct hfm_buf e = HFM_BUF_INIT(1 << 20);
		char *at = strstr(t.ptr, "end\n");

		hfm_buf_put(&e, t.ptr, (size_t)(at - t.ptr));
		hfm_buf_puts(&e, "x-grant acme/tiny someone\nend\n");
		p = NULL;
		TAP_IS_INT(hfm_bundle_manifest_parse(&p, e.ptr, e.len, &err), 0, "x- records are ignored");
		hfm_bundle_manifest_free(p);
		hfm_buf_dispose(&e);
	}
	hfm_bundle_manifest_free(m);
	hfm_buf_dispose(&t);
	hfm_buf_dispose(&t2);
	hfm_buf_dispose(&err);
}

static int sh(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_sign(void)
{
	char cmd[2048], key[256], pub[256], key2[256], pub2[256], who[17];
	const char *msg = "hfmirror-bundle 1\nid x\nend\n";
	struct hfm_buf sig = HFM_BUF_INIT(4096);
	const char *trusted[2];

	snprintf(key, sizeof(key), "%s/k.pem", tmpdir);
	snprintf(pub, sizeof(pub), "%s/k.pub", tmpdir);
	snprintf(key2, sizeof(key2), "%s/k2.pem", tmpdir);
	snprintf(pub2, sizeof(pub2), "%s/k2.pub", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm ed25519 -out %s 2>/dev/null && "
		 "openssl pkey -in %s -pubout -out %s && "
		 "openssl genpkey -algorithm ed25519 -out %s 2>/dev/null && "
		 "openssl pkey -in %s -pubout -out %s", key, key, pub, key2, key2, pub2);
	if (sh(cmd)) {
		TAP_OK(0, "openssl makes Ed25519 keys");
		return;
	}
	TAP_IS_INT(hfm_bundle_sign(&sig, key, msg, strlen(msg)), 0, "sign: %s", hfm_error_last());
	trusted[0] = pub;
	TAP_IS_INT(hfm_bundle_verify(sig.ptr, sig.len, trusted, 1, msg, strlen(msg), who), 0,
		   "verifies with its public key");
	TAP_IS_INT(strlen(who), 16, "names the key");
	trusted[0] = key;
	TAP_IS_INT(hfm_bundle_verify(sig.ptr, sig.len, trusted, 1, msg, strlen(msg), NULL), 0,
		   "and with the private key file");
	trusted[0] = pub2;
	TAP_IS_INT(hfm_bundle_verify(sig.ptr, sig.len, trusted, 1, msg, strlen(msg), NULL),
		   HFM_EDENIED, "another key is refused");
	TAP_OK(strstr(hfm_error_last(), "not a trusted key") != NULL, "  %s", hfm_error_last());
	trusted[1] = pub;
	TAP_IS_INT(hfm_bundle_verify(sig.ptr, sig.len, trusted, 2, msg, strlen(msg), NULL), 0,
		   "any of several trusted keys");
	trusted[0] = pub;
	TAP_IS_INT(hfm_bundle_verify(sig.ptr, sig.len, trusted, 1, "hfmirror-bundle 1\nid y\nend\n",
				     strlen(msg), NULL), HFM_EDENIED, "a changed manifest is refused");
	TAP_OK(strstr(hfm_error_last(), "changed after it was signed") != NULL, "  %s", hfm_error_last());
	TAP_IS_INT(hfm_bundle_verify(NULL, 0, trusted, 1, msg, strlen(msg), NULL), HFM_EDENIED,
		   "an unsigned bundle is refused");
	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 "
		 "-out %s/rsa.pem 2>/dev/null", tmpdir);
	if (!sh(cmd)) {
		char rsa[256];

		hfm_buf_reset(&sig);
		snprintf(rsa, sizeof(rsa), "%s/rsa.pem", tmpdir);
		TAP_IS_INT(hfm_bundle_sign(&sig, rsa, msg, strlen(msg)), HFM_EINVAL, "an RSA key is refused");
		TAP_OK(strstr(hfm_error_last(), "not an Ed25519 key") != NULL, "  %s", hfm_error_last());
	}
	hfm_buf_dispose(&sig);
}

static void test_tar(void)
{
	struct hfm_buf h = HFM_BUF_INIT(1 << 20);
	struct hfm_tar_hdr t;
	char longname[300];
	char *path = NULL;
	uint64_t size = 0;
	int has = 0;

	TAP_IS_INT(hfm_tar_header(&h, "objects/abc", 12345, 1700000000), 0, "a short member");
	TAP_IS_INT(h.len, 512, "is one block");
	TAP_IS_INT(hfm_tar_parse(&t, (unsigned char *)h.ptr), 0, "parses");
	TAP_IS_STR(t.name, "objects/abc", "name");
	TAP_IS_INT(t.size, 12345, "size");
	h.ptr[0] ^= 1;
	TAP_IS_INT(hfm_tar_parse(&t, (unsigned char *)h.ptr), HFM_EINVAL, "a flipped bit fails the checksum");
	hfm_buf_reset(&h);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	TAP_IS_INT(hfm_tar_header(&h, longname, (uint64_t)9 << 30, 0), 0, "a long name, a 9 GiB size");
	TAP_IS_INT(h.len, 3 * 512, "pax header, its data, the header");
	TAP_IS_INT(hfm_tar_parse(&t, (unsigned char *)h.ptr), 0, "pax header parses");
	TAP_IS_INT(t.type, HFM_TAR_PAX, "is a pax header");
	TAP_IS_INT(hfm_tar_pax(&path, &size, &has, h.ptr + 512, t.size), 0, "pax records parse");
	TAP_IS_STR(path, longname, "pax path");
	TAP_OK(has && size == (uint64_t)9 << 30, "pax size");
	TAP_IS_INT(hfm_tar_parse(&t, (unsigned char *)h.ptr + 1024), 0, "base-256 size parses");
	TAP_OK(t.size == (uint64_t)9 << 30, "base-256 size");
	free(path);
	if (!sh("command -v tar >/dev/null")) {
		char cmd[1024], f[256];
		int fd;

		/* GNU tar reads what we write */
		snprintf(f, sizeof(f), "%s/t.tar", tmpdir);
		fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		hfm_buf_reset(&h);
		hfm_tar_header(&h, longname, 3, 0);
		hfm_buf_put(&h, "abc", 3);
		static const char zeros[509 + 1024];
		hfm_buf_put(&h, zeros, sizeof(zeros));
		write(fd, h.ptr, h.len);
		close(fd);
		snprintf(cmd, sizeof(cmd), "test \"$(tar -xOf %s 2>&1)\" = abc", f);
		TAP_IS_INT(sh(cmd), 0, "GNU tar extracts our member");
	}
	hfm_buf_dispose(&h);
}

/* Write a bundle with three members through `o`. */
static void write_members(struct hfm_bundle_out *o, const unsigned char *big, size_t nbig)
{
	char name[300];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	hfm_bundle_out_begin(o, "objects/small", 5);
	hfm_bundle_out_write(o, "hello", 5);
	hfm_bundle_out_end(o);
	hfm_bundle_out_begin(o, "objects/big", nbig);
	hfm_bundle_out_write(o, big, nbig);
	hfm_bundle_out_end(o);
	hfm_bundle_out_begin(o, name, 0);
	hfm_bundle_out_end(o);
}

/* Read every member back; 0 when it matches write_members(), else the rc. */
static int read_members(struct hfm_bundle_in *in, const unsigned char *big, size_t nbig)
{
	const char *name;
	uint64_t size;
	unsigned char *got = malloc(nbig + 1);
	size_t n, total;
	int rc;

	if ((rc = hfm_bundle_in_next(in, &name, &size)) || strcmp(name, "objects/small") || size != 5)
		goto out;
	if ((rc = hfm_bundle_in_next(in, &name, &size)) || strcmp(name, "objects/big") || size != nbig)
		goto out;
	for (total = 0; total < nbig; total += n)
		if ((rc = hfm_bundle_in_read(in, got + total, nbig - total, &n)))
			goto out;
	if (memcmp(got, big, nbig)) {
		rc = -100;
		goto out;
	}
	if ((rc = hfm_bundle_in_next(in, &name, &size)) || strlen(name) != 299 || size)
		goto out;
	rc = hfm_bundle_in_next(in, &name, &size);
	rc = rc == HFM_ENOENT ? hfm_bundle_in_finish(in) : rc ? rc : -101;
out:
	free(got);
	return rc;
}

static void test_volumes(void)
{
	size_t nbig = (3u << 20) + 77;
	unsigned char *big = malloc(nbig);
	struct hfm_bundle_manifest *m = sample();
	struct hfm_bundle_out *o = NULL;
	struct hfm_bundle_in *in = NULL;
	struct hfm_buf t = HFM_BUF_INIT(1 << 20);
	char dir[256], p[300], p2[300];
	struct stat st;
	int fd;

	for (size_t i = 0; i < nbig; i++)
		big[i] = (unsigned char)(i * 7 + (i >> 13));
	snprintf(dir, sizeof(dir), "%s/b", tmpdir);
	mkdir(dir, 0755);
	TAP_IS_INT(hfm_bundle_out_dir(&o, dir, 1 << 20), 0, "a directory writer, 1 MiB volumes");
	write_members(o, big, nbig);
	TAP_IS_INT(hfm_bundle_out_finish(o, m), 0, "finish");
	hfm_bundle_out_free(o);
	TAP_IS_INT(m->nvolumes, 4, "four volumes");
	TAP_IS_STR(m->volumes[3].name, "payload.003", "numbered from 000");
	TAP_OK(m->volumes[0].size == 1 << 20 && m->volumes[3].size < 1 << 20, "each at most 1 MiB");
	hfm_bundle_manifest_format(&t, m);
	hfm_bundle_write_file(dir, "manifest", t.ptr, t.len);

	TAP_IS_INT(hfm_bundle_in_open(&in, dir), 0, "open the directory");
	TAP_IS_INT(hfm_bundle_in_is_dir(in), 1, "a directory bundle");
	TAP_IS_INT(hfm_bundle_in_volumes(in, m), 0, "its volume set is complete");
	TAP_IS_INT(read_members(in, big, nbig), 0, "members read back across volumes: %s", hfm_error_last());
	hfm_bundle_in_free(in);

	/* a missing volume */
	snprintf(p, sizeof(p), "%s/payload.002", dir);
	snprintf(p2, sizeof(p2), "%s/aside", dir);
	rename(p, p2);
	hfm_bundle_in_open(&in, dir);
	TAP_IS_INT(hfm_bundle_in_volumes(in, m), HFM_EINVAL, "a missing volume is refused");
	TAP_OK(strstr(hfm_error_last(), "payload.002 (volume 3 of 4) is missing") != NULL, "  %s",
	       hfm_error_last());
	hfm_bundle_in_free(in);
	rename(p2, p);
	/* a short volume */
	stat(p, &st);
	truncate(p, st.st_size - 1);
	hfm_bundle_in_open(&in, dir);
	TAP_IS_INT(hfm_bundle_in_volumes(in, m), HFM_EINVAL, "a short volume is refused");
	TAP_OK(strstr(hfm_error_last(), "truncated") != NULL, "  %s", hfm_error_last());
	hfm_bundle_in_free(in);
	truncate(p, st.st_size);
	/* an extra volume */
	snprintf(p2, sizeof(p2), "%s/payload.004", dir);
	close(open(p2, O_WRONLY | O_CREAT, 0644));
	hfm_bundle_in_open(&in, dir);
	TAP_IS_INT(hfm_bundle_in_volumes(in, m), HFM_EINVAL, "an extra volume is refused");
	TAP_OK(strstr(hfm_error_last(), "payload.004 is not a volume of this bundle") != NULL, "  %s",
	       hfm_error_last());
	hfm_bundle_in_free(in);
	unlink(p2);
	/* a damaged volume: the (restored) zero byte is now wrong, payload.002's digest fails */
	hfm_bundle_in_open(&in, dir);
	hfm_bundle_in_volumes(in, m);
	TAP_IS_INT(read_members(in, big, nbig) != 0, 1, "a damaged volume is refused");
	TAP_OK(hfm_bundle_in_damage(in) &&
	       strstr(hfm_bundle_in_damage(in), "payload.002 (volume 3 of 4) hashes to") != NULL,
	       "  the damaged volume is named: %s", hfm_bundle_in_damage(in));
	{
		struct hfm_buf span = HFM_BUF_INIT(256);

		hfm_bundle_in_span(in, 0, (3u << 20), &span);
		TAP_IS_STR(span.ptr, "payload.000 to payload.002 (volumes 1 to 3 of 4)", "a span of volumes");
		hfm_buf_dispose(&span);
	}
	hfm_bundle_in_free(in);
	/* damage in no member's data (a padding byte): every member reads, the end says so */
	snprintf(dir, sizeof(dir), "%s/b2", tmpdir);
	mkdir(dir, 0755);
	hfm_bundle_out_dir(&o, dir, 1 << 20);
	write_members(o, big, nbig);
	hfm_bundle_manifest_free(m);
	m = sample();
	hfm_bundle_out_finish(o, m);
	hfm_bundle_out_free(o);
	hfm_buf_reset(&t);
	hfm_bundle_manifest_format(&t, m);
	hfm_bundle_write_file(dir, "manifest", t.ptr, t.len);
	snprintf(p2, sizeof(p2), "%s/payload.000", dir);
	fd = open(p2, O_WRONLY);
	TAP_IS_INT(pwrite(fd, "x", 1, 600), 1, "a byte of padding changed");
	close(fd);
	hfm_bundle_in_open(&in, dir);
	hfm_bundle_in_volumes(in, m);
	TAP_IS_INT(read_members(in, big, nbig), HFM_EINVAL, "a damaged padding byte fails at the end");
	TAP_OK(strstr(hfm_error_last(), "payload.000 (volume 1 of 4) hashes to") != NULL, "  %s",
	       hfm_error_last());
	hfm_bundle_in_free(in);

	/* a stream: manifest first, then the payload */
	snprintf(p, sizeof(p), "%s/s.tar", tmpdir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	hfm_bundle_out_fd(&o, fd);
	hfm_bundle_out_begin(o, "manifest", t.len);
	hfm_bundle_out_write(o, t.ptr, t.len);
	hfm_bundle_out_end(o);
	write_members(o, big, nbig);
	TAP_IS_INT(hfm_bundle_out_finish(o, NULL), 0, "a stream");
	hfm_bundle_out_free(o);
	close(fd);
	TAP_IS_INT(hfm_bundle_in_open(&in, p), 0, "open the tar file");
	if (in) {
		size_t n;
		const char *mt = hfm_bundle_in_manifest(in, &n);

		TAP_OK(n == t.len && !memcmp(mt, t.ptr, n), "the manifest comes first");
		TAP_OK(hfm_bundle_in_sig(in, &n) == NULL, "unsigned");
		TAP_IS_INT(read_members(in, big, nbig), 0, "then the members");
		hfm_bundle_in_free(in);
	}
	stat(p, &st);
	truncate(p, st.st_size - 3000);
	TAP_IS_INT(hfm_bundle_in_open(&in, p), 0, "a truncated tar file opens");
	if (in) {
		TAP_IS_INT(read_members(in, big, nbig) != 0, 1, "but reading it fails");
		TAP_OK(strstr(hfm_error_last(), "truncated") != NULL, "  %s", hfm_error_last());
		hfm_bundle_in_free(in);
	}
	hfm_bundle_manifest_free(m);
	hfm_buf_dispose(&t);
	free(big);
}

int main(void)
{
	char cmd[300];

	if (!mkdtemp(tmpdir))
		return 1;
	test_manifest();
	test_sign();
	test_tar();
	test_volumes();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	sh(cmd);
	return tap_done();
}
