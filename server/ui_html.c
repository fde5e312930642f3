/* ui_html.c - the web UI's builders: page shell, escaping, links, Markdown (see ui.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmark.h>

#include "hfm/ui.h"

const char hfm_ui_css[] =
	":root{--fg:#1f2328;--mute:#656d76;--line:#d8dee4;--bg2:#f6f8fa;--acc:#0969da}"
	"*{box-sizing:border-box}"
	"body{font:14px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);margin:0}"
	"header{border-bottom:1px solid var(--line);background:var(--bg2)}"
	"header .in,main{max-width:72em;margin:0 auto;padding:.6em 1em}"
	"header a{margin-right:1.2em;font-weight:600}header a.on{text-decoration:underline}"
	"a{color:var(--acc);text-decoration:none}a:hover{text-decoration:underline}"
	"h1{font-size:1.5em;margin:.6em 0 .2em;word-break:break-all}h2{font-size:1.15em;margin:1.2em 0 .4em}"
	"table{border-collapse:collapse;width:100%}"
	"th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid var(--line);vertical-align:top}"
	"th{font-weight:600;color:var(--mute)}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
	"td.name{word-break:break-all}"
	".mute{color:var(--mute)}.tag{display:inline-block;background:var(--bg2);border:1px solid var(--line);"
	"border-radius:1em;padding:0 .5em;margin:0 .2em .2em 0;font-size:.85em}"
	".badge{font-size:.75em;border:1px solid var(--acc);color:var(--acc);border-radius:.3em;padding:0 .3em}"
	"form.search{display:flex;gap:.5em;flex-wrap:wrap;margin:1em 0}"
	"form.search input[type=search]{flex:1;min-width:12em;padding:.35em .5em}"
	"pre,code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}"
	"pre{background:var(--bg2);padding:.6em .8em;overflow-x:auto;border-radius:.3em}"
	"pre.cmd{user-select:all;margin:.2em 0 .6em}"
	".cmds dt{color:var(--mute);font-size:.9em}.cmds dd{margin:0}"
	".readme{border:1px solid var(--line);border-radius:.4em;padding:0 1.2em;margin-top:1em}"
	".readme img{max-width:100%}"
	".refs a{margin-right:.8em}.refs a.on{font-weight:600;text-decoration:underline}.crumbs{margin:.6em 0}"
	"dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1.2em}dl.kv dd{margin:0}"
	".ok{color:#1a7f37}.bad{color:#cf222e}\n";

void hfm_ui_text(struct hfm_buf *b, const char *s)
{
	hfm_buf_html(b, s ? s : "");
}

void hfm_ui_begin(struct hfm_buf *b, const char *title, const char *nav)
{
	hfm_buf_puts(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
	hfm_ui_text(b, title);
	hfm_buf_puts(b, " - hfmirror</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/-/ui.css\"></head><body>"
			"<header><div class=\"in\"><a href=\"/\"");
	if (!strcmp(nav, ""))
		hfm_buf_puts(b, " class=\"on\"");
	hfm_buf_puts(b, ">hfmirror</a><a href=\"/-/status\"");
	if (!strcmp(nav, "status"))
		hfm_buf_puts(b, " class=\"on\"");
	hfm_buf_puts(b, ">Status</a></div></header><main>");
}

void hfm_ui_end(struct hfm_buf *b)
{
	hfm_buf_puts(b, "</main></body></html>\n");
}

void hfm_ui_size(struct hfm_buf *b, uint64_t n)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		hfm_buf_printf(b, "%llu B", (unsigned long long)n);
	else
		hfm_buf_printf(b, "%.1f %s", v, u[i]);
}

void hfm_ui_date(struct hfm_buf *b, int64_t ms)
{
	if (ms <= 0) {
		hfm_buf_puts(b, "&mdash;");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[40];
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M UTC", &tm);
	hfm_buf_puts(b, s);
}

/* Percent-encoded, then escaped for the attribute (encoding leaves only & safe chars, but '&' cannot occur). */
static void seg_enc(struct hfm_buf *b, const char *s, int keep_slash)
{
	struct hfm_buf e = HFM_BUF_INIT(HFM_PATH_MAX * 4);
	hfm_buf_urlenc(&e, s, keep_slash);
	hfm_ui_text(b, hfm_buf_cstr(&e));
	hfm_buf_dispose(&e);
}

void hfm_ui_repo_href(struct hfm_buf *b, enum hfm_repo_type t, const char *name,
		      const char *kind, const char *rev, const char *path)
{
	hfm_buf_puts(b, " href=\"/");
	hfm_buf_puts(b, hfm_repo_type_prefix(t));
	seg_enc(b, name, 1);
	if (kind) {
		hfm_buf_putc(b, '/');
		hfm_buf_puts(b, kind);
		hfm_buf_putc(b, '/');
		seg_enc(b, rev, 0);
		if (path && *path) {
			hfm_buf_putc(b, '/');
			seg_enc(b, path, 1);
		}
	}
	hfm_buf_putc(b, '"');
}

void hfm_ui_command(struct hfm_buf *b, const char *label, const char *text)
{
	hfm_buf_puts(b, "<dt>");
	hfm_ui_text(b, label);
	hfm_buf_puts(b, "</dt><dd><pre class=\"cmd\"><code>");
	hfm_ui_text(b, text);
	hfm_buf_puts(b, "</code></pre></dd>");
}

void hfm_ui_markdown(struct hfm_buf *b, const char *text, size_t len)
{
	/* front matter (---\n...\n---) is metadata: shown as code, as the Hub does */
	if (len >= 4 && !strncmp(text, "---", 3) && (text[3] == '\n' || text[3] == '\r')) {
		const char *p = text + 3, *end = text + len;
		while ((p = memchr(p, '\n', (size_t)(end - p))) && p + 1 < end) {
			p++;
			if (end - p >= 3 && !strncmp(p, "---", 3)) {
				const char *eol = memchr(p, '\n', (size_t)(end - p));
				size_t n = eol ? (size_t)(eol - text) : (size_t)(end - text);
				char *fm = hfm_malloc(n + 1);
				memcpy(fm, text, n);
				fm[n] = '\0';
				hfm_buf_puts(b, "<pre class=\"meta\"><code>");
				hfm_ui_text(b, fm);
				hfm_buf_puts(b, "</code></pre>");
				free(fm);
				len = eol ? (size_t)(end - eol - 1) : 0;
				text = eol ? eol + 1 : end;
				break;
			}
		}
	}
	/* CMARK_OPT_SAFE is cmark's default since 0.29 (raw HTML and javascript:
	 * links dropped); it is named so the intent survives an older cmark */
	char *html = cmark_markdown_to_html(text, len, CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8);
	if (html) {
		hfm_buf_puts(b, html);
		free(html);
	}
}
