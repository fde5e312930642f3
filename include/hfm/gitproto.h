/*
 * gitproto.h - git's wire format as smart HTTP carries it: pkt-lines,
 * side-band framing, and the requests a client sends to git-upload-pack in
 * protocol v0/v1 and v2 (gitprotocol-pack(5), gitprotocol-v2(5),
 * gitprotocol-http(5)).
 *
 * Pure functions over buffers: no repository, no socket.  The handlers
 * (h_git.c) parse a request body with hfm_upload_req_parse() and write
 * answers with the hfm_pkt_*() writers; the pack stream (gitpack.h) frames
 * pack bytes with hfm_pkt_band().
 *
 * Bounds: a request body is at most HFM_GIT_REQ_MAX bytes once inflated
 * (git gzips bodies over 1 KiB); each of want/have/shallow holds at most
 * HFM_GIT_OIDS_MAX ids; a longer request is HFM_ETOOBIG.  Everything a
 * client sends is checked: a malformed pkt-line, an id that is not 40 hex,
 * a line out of place is HFM_EINVAL with a message fit for an "ERR" line.
 */
#ifndef HFM_GITPROTO_H
#define HFM_GITPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HFM_PKT_MAX 65520                      /* LARGE_PACKET_MAX, length included */
#define HFM_PKT_PAYLOAD_MAX (HFM_PKT_MAX - 4)
#define HFM_GIT_REQ_MAX (8u << 20)             /* inflated request body */
#define HFM_GIT_OIDS_MAX 100000                /* per want/have/shallow list */
#define HFM_GIT_PREFIXES_MAX 1024              /* ls-refs ref-prefix lines */

/* ---- writing -------------------------------------------------------------- */

/* One data pkt-line of n <= HFM_PKT_PAYLOAD_MAX bytes.  Sticky buf errors. */
int hfm_pkt_put(struct hfm_buf *b, const void *data, size_t n);
int hfm_pkt_printf(struct hfm_buf *b, const char *fmt, ...) HFM_PRINTF(2, 3);
int hfm_pkt_flush(struct hfm_buf *b);          /* 0000 */
int hfm_pkt_delim(struct hfm_buf *b);          /* 0001 (v2) */
/*
 * `data` on side-band `band` (1 pack, 2 progress, 3 error), split into
 * packets of at most `max_payload` bytes of data each (65515 for
 * side-band-64k and v2, 999 for side-band).
 */
int hfm_pkt_band(struct hfm_buf *b, int band, const void *data, size_t n, size_t max_payload);

/* ---- reading ------------------------------------------------------------ */

enum hfm_pkt {
	HFM_PKT_EOF = 0,                             /* no more bytes */
	HFM_PKT_DATA,
	HFM_PKT_FLUSH,                               /* 0000 */
	HFM_PKT_DELIM,                               /* 0001 */
	HFM_PKT_END,                                 /* 0002 response-end */
};

struct hfm_pkt_reader {
	const char *p;
	size_t left;
};

/*
 * The next packet.  For data, *line and *len are its payload with one trailing
 * LF removed (they point into the reader's buffer).  HFM_EINVAL with a
 * message for a bad length field or a packet cut short.
 */
int hfm_pkt_read(enum hfm_pkt *kind, const char **line, size_t *len, struct hfm_pkt_reader *r);

/* ---- upload-pack requests ------------------------------------------------ */

struct hfm_git_oid {
	unsigned char id[20];
};

struct hfm_oidv {
	struct hfm_git_oid *v;
	size_t n, cap;
};
void hfm_oidv_push(struct hfm_oidv *o, const struct hfm_git_oid *id);
void hfm_oidv_dispose(struct hfm_oidv *o);
/* "0123…" (40 hex, lowercase or not) to raw; HFM_EINVAL if it is not. */
int hfm_git_oid_parse(struct hfm_git_oid *out, const char *hex, size_t n);

enum hfm_git_cmd {
	HFM_GIT_CMD_NONE = 0,   /* v2: an empty request (a lone flush) */
	HFM_GIT_CMD_UPLOAD,     /* v0/v1: wants, then haves */
	HFM_GIT_CMD_LS_REFS,    /* v2 */
	HFM_GIT_CMD_FETCH,      /* v2 */
};

struct hfm_upload_req {
	int version;                     /* 0 or 2, as given to the parser */
	enum hfm_git_cmd cmd;

	/* fetch (v2) and upload (v0) */
	struct hfm_oidv wants, haves, shallows;
	int depth;                       /* deepen N; 0 = not asked */
	int64_t deepen_since;            /* deepen-since T; 0 = not asked */
	int deepen_relative;
	int deepen_not;                  /* asked (we refuse it) */
	int done;                        /* the client said "done" */
	int negotiating;                 /* v0: a have section followed the wants */
	int sideband;                    /* 0, 1 = side-band, 2 = side-band-64k (v2: 2) */
	int multi_ack;                   /* v0: 0, 1 = multi_ack, 2 = multi_ack_detailed */
	int no_done, no_progress, ofs_delta, thin_pack, include_tag, wait_for_done;

	/* ls-refs (v2) */
	int symrefs, peel, unborn;
	char **prefixes;                 /* none: every ref */
	size_t nprefixes;
	int all_refs;                    /* more prefixes than the bound: every ref */
};

/*
 * Parse an upload-pack request body (already inflated) of protocol
 * `version` (0 for v0/v1, 2).  0 with *out filled, or HFM_EINVAL /
 * HFM_ETOOBIG with a message.  Unknown v0 capabilities are ignored (git
 * does); v2 capabilities other than agent, object-format=sha1,
 * server-option and session-id are ignored, and an unknown v2 argument is
 * an error.  Always call hfm_upload_req_dispose().
 */
int hfm_upload_req_parse(struct hfm_upload_req *out, const char *body, size_t n, int version);
void hfm_upload_req_dispose(struct hfm_upload_req *r);

/*
 * Inflate a gzip (Content-Encoding: gzip) body into `out`, whose cap bounds
 * the result.  HFM_EINVAL for data that is not gzip, HFM_ETOOBIG past the cap.
 */
int hfm_git_gunzip(struct hfm_buf *out, const void *in, size_t n);

/*
 * The protocol version a request asked for in its Git-Protocol header
 * ("version=2:other=x"): 2 or 0.
 */
int hfm_git_protocol_version(const char *header);

#endif
