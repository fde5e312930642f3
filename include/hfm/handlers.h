/*
 * handlers.h - what the server runs for each routed request.
 *
 * hfm_handle() is called by the HTTP layer (http.c) once the request is
 * complete (body read), and again from the top each time the request was
 * suspended and its waiter fired.  It must answer with one hfm_reply_*()
 * call and return 0, or return HFM_EAGAIN after a source armed the request's
 * waiter.  Any other return without a reply becomes the Hub's error for that
 * code (hfm_reply_error).
 *
 * The handlers live in h_files.c (resolve/raw), h_api.c (the JSON API),
 * ui.c (the web page) and h_misc.c (health, metrics); they talk to sources
 * only through source.h, via the repo lookup in repo.c.
 */
#ifndef HFM_HANDLERS_H
#define HFM_HANDLERS_H

#include "catalog.h"
#include "http.h"
#include "reply.h"

int hfm_handle(struct hfm_req *r);

int hfm_h_file(struct hfm_req *r);        /* /resolve/, /raw/ */
int hfm_h_api(struct hfm_req *r);         /* /api/... */
int hfm_h_ui(struct hfm_req *r);          /* /, /{repo}, /{repo}/tree/... */

#endif
