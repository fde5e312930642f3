/*
 * ui.h - the web UI's building blocks (ui_html.c), used by its pages
 * (ui.c: home, repo, status).  Server-rendered HTML, one stylesheet we
 * serve (/-/ui.css), no scripts, no external assets.
 *
 * Escaping is the builders' job, so a page never writes a name raw:
 * hfm_ui_text() for text and attribute values (HTML-escapes & < > " '),
 * hfm_ui_repo_href() and friends for links (each path segment
 * percent-encoded, then the whole URL attribute-escaped).  Everything
 * appends to a capped hfm_buf; its err says whether the page fit.
 */
#ifndef HFM_UI_H
#define HFM_UI_H

#include <stdint.h>

#include "buf.h"
#include "path.h"

#define HFM_UI_PAGE_MAX (64u << 20)

/* <!doctype html> ... <body>, the header with the nav; `nav` = the active item ("", "status"). */
void hfm_ui_begin(struct hfm_buf *b, const char *title, const char *nav);
void hfm_ui_end(struct hfm_buf *b);

/* Escaped text (also fine inside a quoted attribute). */
void hfm_ui_text(struct hfm_buf *b, const char *s);

/* "1.2 MiB" */
void hfm_ui_size(struct hfm_buf *b, uint64_t n);
/* "2026-12-04 16:11 UTC", or "—" for 0 */
void hfm_ui_date(struct hfm_buf *b, int64_t ms);

/*
 * href="/[datasets/|spaces/]org/name[/kind/rev[/path]]": kind is "tree" or
 * "resolve" or NULL (the repo page); rev one segment (%2F inside),
 * path's segments each encoded.
 */
void hfm_ui_repo_href(struct hfm_buf *b, enum hfm_repo_type t, const char *name,
		      const char *kind, const char *rev, const char *path);

/*
 * A command to copy: <pre class="cmd"><code>text</code></pre>, escaped.
 * The page has no script: the text is selectable (user-select: all).
 */
void hfm_ui_command(struct hfm_buf *b, const char *label, const char *text);

/*
 * A README rendered by libcmark with raw HTML dropped and unsafe links
 * (javascript:, data: ...) removed.  A YAML front matter block is shown
 * as code, not rendered.
 */
void hfm_ui_markdown(struct hfm_buf *b, const char *text, size_t len);

/* The stylesheet served at /-/ui.css. */
extern const char hfm_ui_css[];

#endif
