/* progress.c - a progress bar on a terminal, plain lines elsewhere. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"

#define REDRAW_NS (100ull * 1000 * 1000)
#define PLAIN_EVERY_NS (10ull * 1000 * 1000 * 1000)
#define PLAIN_ITEM_MIN (1ull << 20)

struct hfm_imp_progress {
	enum hfm_imp_display mode;
	FILE *out;
	char *phase;
	uint64_t items, items_done;
	uint64_t bytes, bytes_done;      /* bytes_done: finished items only */
	uint64_t started_ns;
	char *label;                     /* current item */
	uint64_t item_size, item_done;
	uint64_t item_started_ns;
	uint64_t last_draw_ns;
	int drawn;                       /* a bar is on screen */
};

struct hfm_imp_progress *hfm_imp_progress_new(enum hfm_imp_display mode, FILE *out)
{
	struct hfm_imp_progress *p = hfm_calloc(1, sizeof(*p));

	p->mode = mode;
	p->out = out;
	return p;
}

void hfm_imp_progress_free(struct hfm_imp_progress *p)
{
	if (!p)
		return;
	free(p->phase);
	free(p->label);
	free(p);
}

void hfm_imp_human_bytes(char *out, size_t n, uint64_t bytes)
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

static void clear_bar(struct hfm_imp_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", p->out);
		p->drawn = 0;
	}
}

static int term_width(const struct hfm_imp_progress *p)
{
	struct winsize ws;

	if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* Bytes per second over the phase so far. */
static uint64_t rate(const struct hfm_imp_progress *p, uint64_t done, uint64_t now)
{
	uint64_t ns = now - p->started_ns;

	return ns < 1000000 ? 0 : (uint64_t)((double)done * 1e9 / (double)ns);
}

static void draw(struct hfm_imp_progress *p, uint64_t now)
{
	uint64_t done = p->bytes_done + p->item_done;
	char line[512], d[24], t[24], r[24];
	int width = term_width(p), bar = 20, fill, n, room;

	hfm_imp_human_bytes(d, sizeof(d), done);
	hfm_imp_human_bytes(t, sizeof(t), p->bytes);
	hfm_imp_human_bytes(r, sizeof(r), rate(p, done, now));
	fill = p->bytes ? (int)((double)done * bar / (double)p->bytes) : 0;
	fill = HFM_MIN(fill, bar);
	n = snprintf(line, sizeof(line), "%s [%.*s%*s] %llu/%llu  %s/%s  %s/s  ", p->phase,
		     fill, "####################", bar - fill, "",
		     (unsigned long long)p->items_done, (unsigned long long)p->items, d, t, r);
	room = width - 1 - n;
	if (p->label && room > 8 && n < (int)sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "%.*s", room, p->label);
	fprintf(p->out, "\r\033[K%s", line);
	fflush(p->out);
	p->drawn = 1;
	p->last_draw_ns = now;
}

static void plain_status(struct hfm_imp_progress *p, uint64_t now)
{
	char d[24], t[24], r[24];

	hfm_imp_human_bytes(d, sizeof(d), p->item_done);
	hfm_imp_human_bytes(t, sizeof(t), p->item_size);
	hfm_imp_human_bytes(r, sizeof(r),
			    rate(p, p->bytes_done + p->item_done, now));
	fprintf(p->out, "hfmirror-import: %s %llu/%llu %s: %s of %s (%s/s)\n", p->phase,
		(unsigned long long)p->items_done + 1, (unsigned long long)p->items,
		p->label ? p->label : "", d, t, r);
	fflush(p->out);
	p->last_draw_ns = now;
}

void hfm_imp_progress_phase(struct hfm_imp_progress *p, const char *what, uint64_t items,
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
	if (p->mode == HFM_IMP_SHOW_TTY)
		draw(p, p->started_ns);
}

void hfm_imp_progress_item(struct hfm_imp_progress *p, const char *label, uint64_t size)
{
	free(p->label);
	p->label = hfm_strdup(label);
	p->item_size = size;
	p->item_done = 0;
	p->item_started_ns = hfm_mono_ns();
	if (p->mode == HFM_IMP_SHOW_TTY)
		draw(p, p->item_started_ns);
}

void hfm_imp_progress_bytes(void *payload, uint64_t done, uint64_t total)
{
	struct hfm_imp_progress *p = payload;
	uint64_t now;

	p->item_done = HFM_MIN(done, p->item_size);
	if (p->mode == HFM_IMP_SHOW_QUIET)
		return;
	now = hfm_mono_ns();
	if (p->mode == HFM_IMP_SHOW_TTY && now - p->last_draw_ns >= REDRAW_NS)
		draw(p, now);
	else if (p->mode == HFM_IMP_SHOW_PLAIN && now - p->last_draw_ns >= PLAIN_EVERY_NS)
		plain_status(p, now);
}

void hfm_imp_progress_item_done(struct hfm_imp_progress *p, const char *verb)
{
	uint64_t now = hfm_mono_ns();

	p->items_done++;
	p->bytes_done += p->item_size;
	p->item_done = 0;
	if (p->mode == HFM_IMP_SHOW_TTY && (now - p->last_draw_ns >= REDRAW_NS ||
				       p->items_done == p->items)) {
		draw(p, now);
	} else if (p->mode == HFM_IMP_SHOW_PLAIN && p->item_size >= PLAIN_ITEM_MIN) {
		char s[24];

		hfm_imp_human_bytes(s, sizeof(s), p->item_size);
		fprintf(p->out, "hfmirror-import: %s %llu/%llu %s %s (%s, %.1fs)\n", p->phase,
			(unsigned long long)p->items_done, (unsigned long long)p->items, verb,
			p->label ? p->label : "", s,
			(double)(now - p->item_started_ns) / 1e9);
		fflush(p->out);
		p->last_draw_ns = now;
	}
}

void hfm_imp_progress_phase_done(struct hfm_imp_progress *p)
{
	uint64_t now = hfm_mono_ns();
	char b[24], r[24];

	clear_bar(p);
	if (p->mode == HFM_IMP_SHOW_QUIET || !p->phase)
		return;
	hfm_imp_human_bytes(b, sizeof(b), p->bytes_done);
	hfm_imp_human_bytes(r, sizeof(r), rate(p, p->bytes_done, now));
	fprintf(p->out, "hfmirror-import: %s: %llu items, %s in %.1fs (%s/s)\n", p->phase,
		(unsigned long long)p->items_done, b, (double)(now - p->started_ns) / 1e9, r);
	fflush(p->out);
}

void hfm_imp_progress_say(struct hfm_imp_progress *p, const char *fmt, ...)
{
	int redraw = p->drawn;
	va_list ap;

	if (p->mode == HFM_IMP_SHOW_QUIET)
		return;
	clear_bar(p);
	fputs("hfmirror-import: ", p->out);
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputc('\n', p->out);
	if (redraw)
		draw(p, hfm_mono_ns());
	fflush(p->out);
}
