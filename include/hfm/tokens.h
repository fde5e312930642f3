/*
 * tokens.h - local users, their groups and their access tokens.
 *
 * The tokens file (`--tokens FILE`, `[auth] tokens`) is JSON lines
 * (jsonl.h), two kinds of records:
 *
 *   {"user":"alice","groups":["vision"],"fullname":"Alice Smith","hub":"alice-hf"}
 *   {"token":"tk_5e1f0c2a9b3d","user":"alice","sha256":"<64 hex>","created":"2026-12-04T16:00:00.000Z"}
 *
 * A token record names a declared user and holds the SHA-256 (hex) of the
 * token, never the token: a token is 34 random letters after "hf_" (over
 * 190 bits from getrandom), so an unsalted hash cannot be reversed and the
 * file is no secret worth stealing.  `hub` (optional) is the user's name on
 * the upstream hub: with `[auth] upstream-tokens`, a request whose Hub token
 * the upstream's whoami-v2 names so is this user (auth.h).  `token` is the
 * token's id, what `hfmirror token list` shows and `revoke` takes.  When a token was last
 * used is kept beside the file, in FILE.used (the server writes it, at
 * most once a minute; the admin's file is only written by the CLI).
 *
 * The server's view (struct hfm_tokens) checks a presented token against
 * every record with CRYPTO_memcmp() over the hashes, never stopping early,
 * and rereads the file on the first check after it changed (one stat()
 * per check): a revoke is in force from the next request.  A file that no
 * longer reads is reported and treated as empty (no token is valid) until
 * it reads again: a broken edit fails closed.
 *
 * Threading: hfm_tokens_check() from any thread; the file functions
 * (hfm_tokfile_*) are the CLI's, single-threaded.
 */
#ifndef HFM_TOKENS_H
#define HFM_TOKENS_H

#include <stddef.h>

#include "buf.h"
#include "ident.h"
#include "log.h"
#include "path.h"              /* hfm_user_name_ok: names of users and groups */

#define HFM_TOKEN_LETTERS 34             /* after "hf_": 34 * log2(52) = 193.8 bits */
#define HFM_TOKEN_LEN (3 + HFM_TOKEN_LETTERS)
#define HFM_TOKEN_ID_LEN 15              /* "tk_" + 12 hex */

/* ---- the file, as records (the CLI) ------------------------------------------ */

struct hfm_user_rec {
	char *name;
	char *fullname;                  /* NULL if none */
	char *hub;                       /* the user's name upstream, or NULL */
	char **groups;
	size_t ngroups;
};

struct hfm_token_rec {
	char *id;
	char *user;
	char *sha256;                    /* 64 lowercase hex */
	char *created;                   /* ISO date as written, or NULL */
};

struct hfm_tokfile {
	struct hfm_user_rec *users;
	size_t nusers;
	struct hfm_token_rec *tokens;
	size_t ntokens;
};

/*
 * Read `path` into f (zeroed first).  A missing file is an empty one (0).
 * HFM_EINVAL with "FILE:LINE: key: why" lines in err for every problem;
 * HFM_EIO when it cannot be read.  hfm_tokfile_dispose() in every case.
 */
int hfm_tokfile_read(struct hfm_tokfile *f, const char *path, struct hfm_buf *err);
void hfm_tokfile_dispose(struct hfm_tokfile *f);
/* The file's text: users first, then tokens, one record a line. */
void hfm_tokfile_format(struct hfm_buf *out, const struct hfm_tokfile *f);

/*
 * A new token for `user` (declared now if new): its plain text in token[]
 * (to be shown once) and its id in id[].  ngroups > 0 sets the user's
 * groups to `groups`; 0 keeps them.  HFM_EINVAL for a bad user or group name.
 */
int hfm_tokfile_add(struct hfm_tokfile *f, char token[HFM_TOKEN_LEN + 1],
		    char id[HFM_TOKEN_ID_LEN + 1], const char *user, const char *fullname,
		    const char *const *groups, size_t ngroups);
/* Set the hub name of declared `user` (NULL clears it); HFM_EINVAL for a bad name. */
int hfm_tokfile_set_hub(struct hfm_tokfile *f, const char *user, const char *hub);
/* Drop the token `id`; HFM_ENOENT if there is none. */
int hfm_tokfile_revoke(struct hfm_tokfile *f, const char *id);

/* "FILE.used": when each token id was last used, as {"token":…,"last_used":…} lines. */
char *hfm_tokens_used_path(const char *path);

/* ---- the server's view ---------------------------------------------------------- */

struct hfm_tokens;

/*
 * Watch `path`.  The first read must succeed (HFM_EINVAL / HFM_EIO and err
 * as hfm_tokfile_read(); a missing file is empty).  Later problems go to
 * `log` (may be NULL).
 */
int hfm_tokens_open(struct hfm_tokens **out, const char *path, hfm_log_fn log, void *log_cls,
		    struct hfm_buf *err);
void hfm_tokens_free(struct hfm_tokens *t);

/*
 * The identity of `token` (the text after "Bearer "): 0 with *who filled
 * (the caller disposes it), or HFM_ENOENT when no record has its hash.
 * Rereads the file first if it changed.
 */
int hfm_tokens_check(struct hfm_ident *who, struct hfm_tokens *t, const char *token);

/*
 * The local user whose `hub` is `hub_name` (the upstream's whoami name):
 * 0 with *who filled (no token id), or HFM_ENOENT.  Rereads the file first
 * if it changed.
 */
int hfm_tokens_hub_user(struct hfm_ident *who, struct hfm_tokens *t, const char *hub_name);

/* How many hash comparisons the checks made so far (tests: every record, every time). */
unsigned long long hfm_tokens_compares(struct hfm_tokens *t);

#endif
