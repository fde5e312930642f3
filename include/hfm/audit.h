/*
 * audit.h - who downloaded what: one JSON line per file download, in its
 * own file (`--audit-log FILE`, `[auth] audit-log`).
 *
 *   {"time":"2026-12-04T16:00:00.000Z","user":"alice","repo":"models/acme/tiny",
 *    "revision":"main","commit":"<40 hex>","path":"model.safetensors",
 *    "bytes":300000,"complete":true,"status":200,"client":"10.0.0.7"}
 *
 * `user` is the local user or "anonymous"; `bytes` the body bytes sent;
 * `complete` whether the answer went out whole.  A line is written when the
 * transfer ends (the transport's end hook, http.h).  Tokens never appear.
 *
 * Rotation: hfm_audit_reopen() (SIGHUP) opens the path again, for
 * logrotate; with max_bytes, a write that takes the file past it first
 * renames FILE to FILE.1 (FILE.1 to FILE.2, ... up to `keep`).
 *
 * Threading: hfm_audit_write() from any thread; lines are whole (one
 * write() each, under the audit's mutex).
 */
#ifndef HFM_AUDIT_H
#define HFM_AUDIT_H

#include <stdint.h>

#include "buf.h"

struct hfm_audit;

struct hfm_audit_rec {
	const char *user;                /* NULL: anonymous */
	const char *repo;                /* "models/org/name" */
	const char *revision, *commit, *path;
	uint64_t bytes;
	int complete;
	unsigned status;
	const char *client;              /* address */
};

/* Open (append, create 0640) `path`; max_bytes 0 = never rotate by size; keep 0 = 5. */
int hfm_audit_open(struct hfm_audit **out, const char *path, uint64_t max_bytes, unsigned keep);
void hfm_audit_free(struct hfm_audit *a);
/* Open the path again (after an outside rotation); the old file stays on error. */
int hfm_audit_reopen(struct hfm_audit *a);
void hfm_audit_write(struct hfm_audit *a, const struct hfm_audit_rec *r);
/* The line for r (no newline), for tests and for the writer. */
void hfm_audit_format(struct hfm_buf *out, const struct hfm_audit_rec *r, int64_t now_ms);

#endif
