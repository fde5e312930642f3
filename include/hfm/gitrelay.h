/*
 * gitrelay.h - git smart-HTTP requests relayed to the upstream hub, for
 * repos that only the online cache has (no git history on this mirror).
 *
 * One relayed request is one upstream transfer (upstream.h, on its own
 * libcurl thread): GET info/refs or POST git-upload-pack with the client's
 * body as it came (gzip included), its Authorization, Git-Protocol and
 * User-Agent.  The answer is a body stream read through a bounded buffer
 * (256 KiB; upstream is paused while it is full), so memory does not grow
 * with the pack.
 *
 * The HTTP status must be known before ours is sent (a 401 makes git ask
 * for credentials), and waiting for it suspends the request, which then
 * runs again from the top.  So the relay keeps each transfer until the run
 * that finds its status takes it: keyed by the request (the transport's
 * struct hfm_req, stable across the runs of one request) and what is
 * relayed.  A transfer nobody takes (the request timed out) is dropped
 * after 15 minutes.
 *
 * Threads: any server thread may call hfm_gitrelay_run(); a stream is read
 * by one thread at a time.
 */
#ifndef HFM_GITRELAY_H
#define HFM_GITRELAY_H

#include "source.h"
#include "upstream.h"

struct hfm_gitrelay;

/* Relay to `upstream_url` ("https://huggingface.co"); `o` may be NULL. */
int hfm_gitrelay_new(struct hfm_gitrelay **out, const char *upstream_url,
		     const struct hfm_up_opts *o);
void hfm_gitrelay_free(struct hfm_gitrelay *g);

struct hfm_gitrelay_req {
	const void *key;                 /* the HTTP request */
	const char *path;                /* "/acme/tiny.git/info/refs?service=..." */
	int post;                        /* POST body, else GET */
	const void *body;
	size_t body_len;
	const char *authorization;       /* the client's header, or NULL */
	const char *const *headers;      /* "Name: value" lines to pass on, NULL-terminated */
};

struct hfm_gitrelay_answer {
	long status;                     /* upstream's */
	char content_type[128];
	char www_authenticate[256];      /* "" if none */
	struct hfm_stream *body;         /* the caller owns it (hfm_stream_free) */
};

/*
 * 0 with *out filled once upstream sent its status line; HFM_EAGAIN with
 * `w` armed while it has not; HFM_ETIMEOUT / HFM_EUPSTREAM when it failed
 * before answering.  The body stream ends (read returns 0) when upstream's
 * does, or fails if upstream's breaks off.
 */
int hfm_gitrelay_run(struct hfm_gitrelay_answer *out, struct hfm_gitrelay *g,
		     const struct hfm_gitrelay_req *rq, struct hfm_waiter *w);

#endif
