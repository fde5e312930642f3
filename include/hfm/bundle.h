/*
 * bundle.h - the manifest of a bundle: what `hfmirror export` writes and
 * `hfmirror-import` verifies before it publishes anything (docs/airgap.md).
 *
 * A bundle carries repos from one store to another across an air gap: the
 * manifest (this module), an optional Ed25519 signature of the manifest, and
 * a payload of entries (bundleio.h): every object, cached metadata file and
 * git pack the receiving store lacks.  The manifest says what each entry must
 * hash to, so every byte is checked against an id the sender signed:
 *
 *   objects/<oid>                     a blob, named by its Hub id (sha256
 *                                     for LFS content, git blob sha1 else)
 *   meta/<types>/<name>/<relpath>     a cached API answer of the online
 *                                     cache (src_cache.h), by its sha256
 *   packs/<types>/<name>.pack         a git pack for a mirror, by its sha256
 *
 * The manifest is UTF-8 text, one record a line, fields separated by one
 * space; a field that could hold a space, '%' or a control byte (paths,
 * names, revisions) is percent-encoded.  Version 2:
 *
 *   hfmirror-bundle 2                 first line; a larger version is refused
 *   id <32 hex>                       this bundle
 *   created <YYYY-MM-DDTHH:MM:SS.mmmZ>
 *   tool <text>                       who wrote it ("hfmirror 0.1.0")
 *   source <text>                     where from (host:store), informational
 *   since <32 hex>                    incremental: the receipt it leaves out
 *   volume <name> <size> <sha256> <framing sha256>
 *                                     directory bundles: each payload volume,
 *                                     in order (none in a tar stream): the
 *                                     sha256 of all its bytes, and of its
 *                                     framing: every byte of it that is not
 *                                     an entry's data (tar headers, pax
 *                                     records, padding, the end blocks), in
 *                                     order.  A reader checks the framing
 *                                     digest; the entries' data is verified
 *                                     by their own digests, so each byte is
 *                                     hashed once.  The whole-volume digest
 *                                     names the damaged volume when an entry
 *                                     that spans several fails.  (Version 1:
 *                                     no framing digest; the whole-volume
 *                                     one is checked.)
 *   object <oid> <size>               a carried object
 *   repo <type> <name> cache|git      the records below belong to this repo:
 *     meta <relpath> <size> <sha256>  a carried metadata file; relpath is
 *                                     refs.json, access or commits/<sha>/...
 *     pack <size> <sha256>            (git) the carried pack
 *     head <branch>                   (git) what HEAD names
 *     shallow <sha>                   (git) a commit whose parents are absent
 *     rev <rev> <commit>              a revision (cache: "main", "v1.0";
 *                                     git: a full ref name) and its commit
 *     commit <sha>                    a commit the revisions name, then its
 *       file <path> <oid> <size> <lfs sha256|-> [absent]
 *                                     files: git blob id, size, the LFS oid
 *                                     when LFS; "absent" when the bundle does
 *                                     not carry the content on purpose
 *     grant <user> <via> <time>       (cache) the outside's grant of this repo
 *     revoke <user> <via> <time>      to a local user (grants.h), or its
 *                                     revoke: user and via are names, time
 *                                     the record's (YYYY-MM-DDTHH:MM:SS.mmmZ,
 *                                     or - unknown); one per user and repo
 *   x-<anything> ...                  an extension: ignored by readers that
 *                                     do not know it
 *   end                               last line (a cut manifest is refused)
 *
 * Any other unknown record is refused: a record that must not be skipped
 * (grant, revoke) is refused by a reader that cannot honour it, instead of
 * serving without it.
 *
 * Grants: an export carries every record of the store's meta/grants.jsonl
 * (grants and revokes alike) for each cache repo it carries, incremental
 * bundles too (they are small, and the merge is idempotent: the later
 * record wins, grants.h); the importer merges them into the inside's file
 * before the repo's revisions switch (bundlesrc_grants.c).  Git mirrors
 * carry none: nothing gates them.
 *
 * A file needs an object unless it is empty or absent (git repos: only LFS
 * files; the rest is in the pack): its LFS oid, else its git blob id.  The
 * receiving store must then hold that object already or get it from this
 * bundle (an incremental bundle relies on what its receipt listed).
 *
 * A manifest is owned by its creator; hfm_bundle_manifest_free() frees it
 * and everything it points to.  Not thread-safe; readers may share it once
 * built.
 */
#ifndef HFM_BUNDLE_H
#define HFM_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "path.h"

#define HFM_BUNDLE_VERSION 2     /* written; 1 is still read */
#define HFM_BUNDLE_ID_HEX 32
#define HFM_BUNDLE_MANIFEST_MAX ((size_t)1 << 30)

enum hfm_bundle_kind {
	HFM_BUNDLE_CACHE = 0,        /* the online cache's meta/ + objects/ */
	HFM_BUNDLE_GIT = 1,          /* a bare mirror under mirrors/ */
};

enum hfm_bundle_item_kind {
	HFM_BUNDLE_OBJECT = 0,
	HFM_BUNDLE_META = 1,
	HFM_BUNDLE_PACK = 2,
};

/* One payload entry. */
struct hfm_bundle_item {
	enum hfm_bundle_item_kind kind;
	char *name;                      /* payload member name, see above */
	uint64_t size;
	char digest[HFM_SHA256_HEX + 1]; /* object: its oid; meta, pack: sha256 */
	long repo;                       /* meta, pack: index in repos; object: -1 */
	char *relpath;                   /* meta: below the repo's meta dir */
};

struct hfm_bundle_file {
	char *path;
	char oid[HFM_SHA1_HEX + 1];      /* git blob id (of the pointer, for LFS) */
	uint64_t size;                   /* content size */
	char lfs[HFM_SHA256_HEX + 1];    /* "" unless LFS */
	int absent;
};

struct hfm_bundle_commit {
	char sha[HFM_SHA1_HEX + 1];
	struct hfm_bundle_file *files;
	size_t nfiles, capfiles;
};

struct hfm_bundle_rev {
	char *name;
	char commit[HFM_SHA1_HEX + 1];
};

/* A grant or revoke record of a repo (grants.h). */
struct hfm_bundle_grant {
	char *user;
	char *via;
	char time[HFM_ISO_DATE_LEN + 1];     /* "" when the outside did not know */
	int revoked;
};

struct hfm_bundle_repo {
	struct hfm_repo_id id;
	enum hfm_bundle_kind kind;
	struct hfm_bundle_rev *revs;
	size_t nrevs;
	struct hfm_bundle_commit *commits;
	size_t ncommits;
	char *head;                      /* git: branch name, or NULL */
	char (*shallow)[HFM_SHA1_HEX + 1];
	size_t nshallow;
	struct hfm_bundle_grant *grants;     /* cache repos */
	size_t ngrants;
};

struct hfm_bundle_volume {
	char *name;                      /* "payload.000" */
	uint64_t size;
	char sha256[HFM_SHA256_HEX + 1];
	char framing[HFM_SHA256_HEX + 1];    /* version 2; "" in version 1 */
};

struct hfm_bundle_manifest {
	int version;
	char id[HFM_BUNDLE_ID_HEX + 1];
	char created[HFM_ISO_DATE_LEN + 1];
	char *tool;
	char *source;
	char since[HFM_BUNDLE_ID_HEX + 1];   /* "" unless incremental */
	struct hfm_bundle_volume *volumes;
	size_t nvolumes;
	struct hfm_bundle_repo *repos;
	size_t nrepos;
	struct hfm_bundle_item *items;   /* in payload order */
	size_t nitems;
};

/* ---- building (the exporter) ---------------------------------------------- */

/* A new manifest with a random id and the current time. */
struct hfm_bundle_manifest *hfm_bundle_manifest_new(const char *tool, const char *source);
void hfm_bundle_manifest_free(struct hfm_bundle_manifest *m);

/* Append records; strings are copied.  Each returns what it added. */
struct hfm_bundle_repo *hfm_bundle_add_repo(struct hfm_bundle_manifest *m,
					    const struct hfm_repo_id *id,
					    enum hfm_bundle_kind kind);
void hfm_bundle_add_rev(struct hfm_bundle_repo *r, const char *name, const char *commit);
struct hfm_bundle_commit *hfm_bundle_add_commit(struct hfm_bundle_repo *r, const char *sha);
/* Remove commit i and its files (the later commits move down one). */
void hfm_bundle_drop_commit(struct hfm_bundle_repo *r, size_t i);
void hfm_bundle_add_file(struct hfm_bundle_commit *c, const char *path, const char *oid,
			 uint64_t size, const char *lfs, int absent);
/* time: an ISO date or "" (unknown). */
void hfm_bundle_add_grant(struct hfm_bundle_repo *r, const char *user, const char *via,
			  const char *time, int revoked);
/*
 * A payload entry.  OBJECT: `digest` is the oid (repo -1, relpath NULL);
 * META: repo index and relpath; PACK: repo index.  The member name is made
 * here.
 */
struct hfm_bundle_item *hfm_bundle_add_item(struct hfm_bundle_manifest *m,
					    enum hfm_bundle_item_kind kind, long repo,
					    const char *relpath, uint64_t size,
					    const char *digest);
void hfm_bundle_add_volume(struct hfm_bundle_manifest *m, const char *name, uint64_t size,
			   const char *sha256, const char *framing);

/* The payload member name of an item ("objects/<oid>", "meta/...", "packs/..."). */
void hfm_bundle_item_name(struct hfm_buf *out, const struct hfm_bundle_manifest *m,
			  enum hfm_bundle_item_kind kind, long repo, const char *relpath,
			  const char *digest);

/* The object a file needs: its LFS oid or git blob id, or NULL (none). */
const char *hfm_bundle_file_object(const struct hfm_bundle_repo *r,
				   const struct hfm_bundle_file *f);

/* ---- text ------------------------------------------------------------------ */

/* The manifest's text (the bytes that are signed). */
int hfm_bundle_manifest_format(struct hfm_buf *out, const struct hfm_bundle_manifest *m);

/*
 * Parse a manifest: a pure function of its bytes.  Every field is checked
 * (ids are lowercase hex of the right length, names are valid repo names,
 * paths valid repo paths, relpaths below commits/<sha>/ of a commit of the
 * repo, sizes numbers, no payload name twice).  0 with *out, or HFM_EINVAL
 * with "manifest:LINE: why" in `err`.
 */
int hfm_bundle_manifest_parse(struct hfm_bundle_manifest **out, const char *text, size_t n,
			      struct hfm_buf *err);

/* ---- signatures ---------------------------------------------------------------- */

/*
 * Sign `msg` with the Ed25519 private key in the PEM file `key_pem`
 * (openssl genpkey -algorithm ed25519).  `out` gets the signature file:
 *
 *   hfmirror-bundle-signature 1
 *   key ed25519 <64 hex: the raw public key>
 *   sig <128 hex>
 *
 * 0, or HFM_EINVAL/HFM_EIO with a message.
 */
int hfm_bundle_sign(struct hfm_buf *out, const char *key_pem, const void *msg, size_t n);

/*
 * Check that `sig` (a signature file, may be NULL) signs `msg` with one of
 * the public keys in the PEM files `trusted` (openssl pkey -pubout).  0 when
 * it does; HFM_EDENIED with a message that says why not (unsigned, signed by
 * another key, bad signature); HFM_EINVAL/HFM_EIO when a key cannot be read.
 * `who` (may be NULL) gets the signing key's short id (16 hex).
 */
int hfm_bundle_verify(const char *sig, size_t siglen, const char *const *trusted, size_t ntrusted,
		      const void *msg, size_t n, char who[17]);

/* The short id (16 hex) of the key a signature file names, or "" if none. */
void hfm_bundle_sig_key(char who[17], const char *sig, size_t siglen);

/* ---- field encoding (shared with the receipt, receipt.h) ---------------------------- */

/* Append `s` percent-encoded for a record field (space, '%', controls, DEL). */
void hfm_bundle_put_field(struct hfm_buf *out, const char *s);
/* Decode a field; NULL for a bad escape or a NUL.  Caller frees. */
char *hfm_bundle_field_decode(const char *s, size_t n);
/* 32 random lowercase hex digits. */
void hfm_bundle_random_id(char out[HFM_BUNDLE_ID_HEX + 1]);

#endif
