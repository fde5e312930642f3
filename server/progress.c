/* progress.c - a progress bar on a terminal, plain lines elsewhere. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hfm/progress.h"

#define REDRAW_NS (100ull * 1000 * 1000)
#define PLAIN_EVERY_NS (10ull * 1000 * 1000 * 1000)
#define PLAIN_ITEM_MIN (1ull << 20)

struct hfm_progress {
	enum hfm_display mode;
	FILE *out;
	char *prog;
	char *phase;
	uint64_t items, items_done;
	uint64_t bytes, bytes_done;      /* bytes_done: finished items only (or hfm_progress_set's) */
	uint64_t started_ns;
	char *label;                     /* current item */
	uint64_t item_size, item_done;
	uint64_t item_started_ns;
	uint64_t last_draw_ns;
	int drawn;                       /* a bar is on screen */
};

enum hfm_display hfm_display_for(FILE *out, int quiet)
{
	const char *term = getenv("TERM");

	if (quiet)
		return HFM_SHOW_QUIET;
	if (isatty(fileno(out)) && !(term && !strcmp(term, "dumb")))
		return HFM_SHOW_TTY;
	return HFM_SHOW_PLAIN;
}

struct hfm_progress *hfm_progress_new(enum hfm_display mode, FILE *out, const char *prog)
{
	struct hfm_progress *p = hfm_calloc(1, sizeof(*p));

	p->mode = mode;
	p->out = out;
	p->prog = hfm_strdup(prog);
	return p;
}

void hfm_progress_free(struct hfm_progress *p)
{
	if (!p)
		return;
	free(p->prog);
	free(p->phase);
	free(p->label);
	free(p);
}

void hfm_human_bytes(char *out, size_t n, uint64_t bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < HFM_ARRAY_SIZE(unit)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, n, "%.1f %s", v, unit[u]);
}

void hfm_human_duration(char *out, size_t n, uint64_t s)
{
	if (s < 60)
		snprintf(out, n, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, n, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(out, n, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
}

static void clear_bar(struct hfm_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", p->out);
		p->drawn = 0;
	}
}

static int term_width(const struct hfm_progress *p)
{
	struct winsize ws;

	if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* Bytes per second over the phase so far. */
static uint64_t rate(const struct hfm_progress *p, uint64_t done, uint64_t now)
{
	uint64_t ns = now - p->started_ns;

	return ns < 1000000 ? 0 : (uint64_t)((double)done * 1e9 / (double)ns);
}

/* "  ETA 3m07s" at the phase's rate, or "" while there is none to go by. */
static void eta(char *out, size_t n, const struct hfm_progress *p, uint64_t done, uint64_t now)
{
	uint64_t r = rate(p, done, now);
	char d[16];

	out[0] = '\0';
	if (r && done && p->bytes > done) {
		hfm_human_duration(d, sizeof(d), (p->bytes - done + r - 1) / r);
		snprintf(out, n, "  ETA %s", d);
	}
}

static void draw(struct hfm_progress *p, uint64_t now)
{
	uint64_t done = p->bytes_done + p->item_done;
	char line[512], d[24], t[24], r[24], e[32];
	int width = term_width(p), bar = 20, fill, n, room;

	hfm_human_bytes(d, sizeof(d), done);
	hfm_human_bytes(t, sizeof(t), p->bytes);
	hfm_human_bytes(r, sizeof(r), rate(p, done, now));
	eta(e, sizeof(e), p, done, now);
	fill = p->bytes ? (int)((double)done * bar / (double)p->bytes) : 0;
	fill = HFM_MIN(fill, bar);
	n = snprintf(line, sizeof(line), "%s [%.*s%*s] %llu/%llu  %s/%s  %s/s%s  ", p->phase,
		     fill, "####################", bar - fill, "",
		     (unsigned long long)p->items_done, (unsigned long long)p->items, d, t, r, e);
	room = width - 1 - n;
	if (p->label && room > 8 && n < (int)sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "%.*s", room, p->label);
	else if (n > width - 1 && width - 1 < (int)sizeof(line))
		line[width - 1] = '\0';
	fprintf(p->out, "\r\033[K%s", line);
	fflush(p->out);
	p->drawn = 1;
	p->last_draw_ns = now;
}

/* The ten-second line during a long item (or of parallel work). */
static void plain_status(struct hfm_progress *p, uint64_t now, int whole)
{
	uint64_t done = p->bytes_done + p->item_done;
	char d[24], t[24], r[24], e[32];

	hfm_human_bytes(r, sizeof(r), rate(p, done, now));
	if (whole) {
		hfm_human_bytes(d, sizeof(d), done);
		hfm_human_bytes(t, sizeof(t), p->bytes);
		eta(e, sizeof(e), p, done, now);
		fprintf(p->out, "%s: %s %llu/%llu: %s of %s (%s/s%s)\n", p->prog, p->phase,
			(unsigned long long)p->items_done, (unsigned long long)p->items, d, t, r, e);
	} else {
		hfm_human_bytes(d, sizeof(d), p->item_done);
		hfm_human_bytes(t, sizeof(t), p->item_size);
		fprintf(p->out, "%s: %s %llu/%llu %s: %s of %s (%s/s)\n", p->prog, p->phase,
			(unsigned long long)p->items_done + 1, (unsigned long long)p->items,
			p->label ? p->label : "", d, t, r);
	}
	fflush(p->out);
	p->last_draw_ns = now;
}

void hfm_progress_phase(struct hfm_progress *p, const char *what, uint64_t items,
			uint64_t bytes)
{
	free(p->phase);
	p->phase = hfm_strdup(what);
	p->items = items;
	p->bytes = bytes;
	p->items_done = p->bytes_done = 0;
	free(p->label);
	p->label = NULL;
	p->item_size = p->item_done = 0;
	p->started_ns = p->last_draw_ns = hfm_mono_ns();
	if (p->mode == HFM_SHOW_TTY)
		draw(p, p->started_ns);
}

void hfm_progress_item(struct hfm_progress *p, const char *label, uint64_t size)
{
	free(p->label);
	p->label = hfm_strdup(label);
	p->item_size = size;
	p->item_done = 0;
	p->item_started_ns = hfm_mono_ns();
	if (p->mode == HFM_SHOW_TTY)
		draw(p, p->item_started_ns);
}

void hfm_progress_bytes(void *payload, uint64_t done, uint64_t total)
{
	struct hfm_progress *p = payload;
	uint64_t now;

	p->item_done = HFM_MIN(done, p->item_size);
	if (p->mode == HFM_SHOW_QUIET)
		return;
	now = hfm_mono_ns();
	if (p->mode == HFM_SHOW_TTY && now - p->last_draw_ns >= REDRAW_NS)
		draw(p, now);
	else if (p->mode == HFM_SHOW_PLAIN && now - p->last_draw_ns >= PLAIN_EVERY_NS)
		plain_status(p, now, 0);
}

void hfm_progress_item_done(struct hfm_progress *p, const char *verb)
{
	uint64_t now = hfm_mono_ns();

	p->items_done++;
	p->bytes_done += p->item_size;
	p->item_done = 0;
	if (p->mode == HFM_SHOW_TTY && (now - p->last_draw_ns >= REDRAW_NS ||
				       p->items_done == p->items)) {
		draw(p, now);
	} else if (p->mode == HFM_SHOW_PLAIN && p->item_size >= PLAIN_ITEM_MIN) {
		char s[24];

		hfm_human_bytes(s, sizeof(s), p->item_size);
		fprintf(p->out, "%s: %s %llu/%llu %s %s (%s, %.1fs)\n", p->prog, p->phase,
			(unsigned long long)p->items_done, (unsigned long long)p->items, verb,
			p->label ? p->label : "", s,
			(double)(now - p->item_started_ns) / 1e9);
		fflush(p->out);
		p->last_draw_ns = now;
	}
}

void hfm_progress_set(struct hfm_progress *p, uint64_t items, uint64_t bytes, const char *label)
{
	uint64_t now = hfm_mono_ns();
	int changed = items != p->items_done;

	p->items_done = items;
	p->bytes_done = HFM_MIN(bytes, p->bytes);
	p->item_done = 0;
	if (!label || !p->label || strcmp(label, p->label)) {
		free(p->label);
		p->label = label ? hfm_strdup(label) : NULL;
	}
	if (p->mode == HFM_SHOW_TTY && (now - p->last_draw_ns >= REDRAW_NS ||
				       (changed && items == p->items)))
		draw(p, now);
	else if (p->mode == HFM_SHOW_PLAIN && now - p->last_draw_ns >= PLAIN_EVERY_NS)
		plain_status(p, now, 1);
}

void hfm_progress_phase_done(struct hfm_progress *p)
{
	uint64_t now = hfm_mono_ns();
	char b[24], r[24];

	clear_bar(p);
	if (p->mode == HFM_SHOW_QUIET || !p->phase)
		return;
	hfm_human_bytes(b, sizeof(b), p->bytes_done);
	hfm_human_bytes(r, sizeof(r), rate(p, p->bytes_done, now));
	fprintf(p->out, "%s: %s: %llu items, %s in %.1fs (%s/s)\n", p->prog, p->phase,
		(unsigned long long)p->items_done, b, (double)(now - p->started_ns) / 1e9, r);
	fflush(p->out);
}

void hfm_progress_say(struct hfm_progress *p, const char *fmt, ...)
{
	int redraw = p->drawn;
	va_list ap;

	if (p->mode == HFM_SHOW_QUIET)
		return;
	clear_bar(p);
	fprintf(p->out, "%s: ", p->prog);
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputc('\n', p->out);
	if (redraw)
		draw(p, hfm_mono_ns());
	fflush(p->out);
}
