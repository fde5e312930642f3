/*
 * What a long job shows (progress.h): plain lines for logs and pipes, a
 * bar redrawn in place on a terminal, nothing when quiet.  Only what does
 * not depend on time is checked: the lines per item and per phase, not the
 * ten-second status lines, the rates or the time left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/progress.h"
#include "tap.h"

/* Output kept in memory. */
struct fx_capture {
	FILE *f;
	char *text;
	size_t len;
	size_t seen;   /* bytes of text already returned by fx_capture_new() */
};

static void fx_capture_open(struct fx_capture *c)
{
	memset(c, 0, sizeof(*c));
	c->f = open_memstream(&c->text, &c->len);
}

/* What was written since the last call (all of it the first time). */
static const char *fx_capture_new(struct fx_capture *c)
{
	size_t from = c->seen;

	fflush(c->f);
	c->seen = c->len;
	return c->text ? c->text + from : "";
}

static void fx_capture_close(struct fx_capture *c)
{
	fclose(c->f);
	free(c->text);
	memset(c, 0, sizeof(*c));
}

#define MIB ((uint64_t)1 << 20)

/* One import phase of three items: 1000 bytes, 2 MiB, exactly 1 MiB. */
static void three_items(struct hfm_progress *p)
{
	hfm_progress_phase(p, "importing", 3, 1000 + 3 * MIB);
	hfm_progress_item(p, "small.bin", 1000);
	hfm_progress_item_done(p, "linked");
	hfm_progress_item(p, "big.bin", 2 * MIB);
	hfm_progress_bytes(p, MIB, 2 * MIB);
	hfm_progress_item_done(p, "copied");
	hfm_progress_item(p, "edge.bin", MIB);
	hfm_progress_item_done(p, "present");
}

static void test_plain(void)
{
	struct fx_capture c;
	struct hfm_progress *p;
	const char *t, *line;

	fx_capture_open(&c);
	p = hfm_progress_new(HFM_SHOW_PLAIN, c.f, "hfmirror-import");
	hfm_progress_say(p, "hello %d", 42);
	TAP_IS_STR(fx_capture_new(&c), "hfmirror-import: hello 42\n",
		   "a message is one line with the program's name");
	hfm_progress_phase(p, "importing", 3, 1000 + 3 * MIB);
	TAP_IS_STR(fx_capture_new(&c), "", "a phase starts silently");
	hfm_progress_phase_done(p);
	fx_capture_new(&c);

	three_items(p);
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "small.bin") == NULL, "an item under 1 MiB gets no line");
	line = strstr(t, "hfmirror-import: importing 2/3 copied big.bin (2.0 MiB, ");
	TAP_OK(line != NULL, "a large item gets a line: count, verb, label, size");
	TAP_OK(line && strstr(line, "s)\n") != NULL, "ending with the time it took");
	TAP_OK(strstr(t, "hfmirror-import: importing 3/3 present edge.bin (1.0 MiB, ") != NULL,
	       "1 MiB exactly is large");
	TAP_OK(strchr(t, '\r') == NULL && strchr(t, '\033') == NULL, "no terminal controls");
	hfm_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "hfmirror-import: importing: 3 items, 3.0 MiB in ", 48),
	       "the phase's totals at its end");
	TAP_OK(strstr(t, "/s)\n") != NULL && !strchr(t, '\r'), "with the rate, one line");

	hfm_progress_phase(p, "hashing", 1, 5);
	hfm_progress_item(p, "x", 5);
	hfm_progress_item_done(p, "hashed");
	hfm_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "hfmirror-import: hashing: 1 items, 5 B in ", 42),
	       "a new phase counts from zero");
	hfm_progress_free(p);
	fx_capture_close(&c);
}

static void test_quiet(void)
{
	struct fx_capture c;
	struct hfm_progress *p;

	fx_capture_open(&c);
	p = hfm_progress_new(HFM_SHOW_QUIET, c.f, "hfmirror-import");
	hfm_progress_say(p, "hello");
	three_items(p);
	hfm_progress_phase_done(p);
	TAP_IS_STR(fx_capture_new(&c), "", "quiet: nothing at all");
	hfm_progress_free(p);
	fx_capture_close(&c);
}

/* Every drawn bar (the text after each "\r\033[K") fits in `width` - 1. */
static int bars_fit(const char *t, int width)
{
	const char *s = t;

	while ((s = strstr(s, "\r\033[K"))) {
		size_t n;

		s += 4;
		n = strcspn(s, "\r\n");
		if (s[n] != '\n' && (int)n > width - 1)
			return 0;
	}
	return 1;
}

static void test_tty(void)
{
	struct fx_capture c;
	struct hfm_progress *p;
	const char *t;
	char label[300];

	memset(label, 'L', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	fx_capture_open(&c);
	p = hfm_progress_new(HFM_SHOW_TTY, c.f, "hfmirror-import");   /* not a terminal: 80 columns */
	hfm_progress_phase(p, "importing", 2, 2 * MIB);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "\r\033[Kimporting [", 15), "a phase draws its bar at once");
	TAP_OK(strstr(t, "] 0/2  0 B/2.0 MiB  ") != NULL, "items and bytes done of the total");
	hfm_progress_item(p, label, MIB);
	hfm_progress_say(p, "a message");
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "\r\033[Khfmirror-import: a message\n\r\033[Kimporting [") != NULL,
	       "a message clears the bar, takes its own line, and the bar comes back");
	TAP_OK(strstr(t, "LLLL") != NULL, "the bar names the current item");
	TAP_OK(bars_fit(t, 80), "cut to the terminal's width");
	hfm_progress_item_done(p, "linked");
	hfm_progress_item(p, "b", MIB);
	hfm_progress_item_done(p, "linked");
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "] 2/2  2.0 MiB/2.0 MiB  ") != NULL, "the last item always redraws");
	hfm_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "\r\033[Khfmirror-import: importing: 2 items, 2.0 MiB in ", 52),
	       "the end clears the bar and prints the totals");
	hfm_progress_say(p, "after");
	TAP_IS_STR(fx_capture_new(&c), "hfmirror-import: after\n",
		   "with no bar on screen a message is a plain line");
	hfm_progress_free(p);
	fx_capture_close(&c);
}

/* Parallel work reports its totals; the last item always redraws. */
static void test_set(void)
{
	struct fx_capture c;
	struct hfm_progress *p;
	const char *t;

	fx_capture_open(&c);
	p = hfm_progress_new(HFM_SHOW_TTY, c.f, "hfmirror");
	hfm_progress_phase(p, "fetching", 2, 2 * MIB);
	fx_capture_new(&c);
	hfm_progress_set(p, 2, 2 * MIB, "2 files");
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "] 2/2  2.0 MiB/2.0 MiB  ") != NULL, "set: the totals given");
	TAP_OK(strstr(t, "ETA") == NULL, "set: no time left when nothing is left");
	TAP_OK(strstr(t, "2 files") != NULL, "set: the label");
	hfm_progress_set(p, 2, 3 * MIB, NULL);
	hfm_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "hfmirror: fetching: 2 items, 2.0 MiB in ") != NULL,
	       "set: bytes never exceed the phase's total; the program's name given");
	hfm_progress_free(p);
	fx_capture_close(&c);

	fx_capture_open(&c);
	p = hfm_progress_new(HFM_SHOW_PLAIN, c.f, "hfmirror");
	hfm_progress_phase(p, "fetching", 2, 2 * MIB);
	hfm_progress_set(p, 1, MIB, "a");
	TAP_IS_STR(fx_capture_new(&c), "", "set, plain: no line before ten seconds");
	hfm_progress_free(p);
	fx_capture_close(&c);
}

static void duration_is(uint64_t s, const char *want)
{
	char out[16];

	hfm_human_duration(out, sizeof(out), s);
	TAP_IS_STR(out, want, "%llu seconds", (unsigned long long)s);
}

static void bytes_is(uint64_t n, const char *want)
{
	char out[24];

	hfm_human_bytes(out, sizeof(out), n);
	TAP_IS_STR(out, want, "%llu bytes", (unsigned long long)n);
}

int main(void)
{
	test_plain();
	test_quiet();
	test_tty();
	test_set();
	duration_is(0, "0s");
	duration_is(59, "59s");
	duration_is(187, "3m07s");
	duration_is(7500, "2h05m");
	bytes_is(0, "0 B");
	bytes_is(1023, "1023 B");
	bytes_is(1024, "1.0 KiB");
	bytes_is(1536 * 1024, "1.5 MiB");
	bytes_is((uint64_t)10 << 30, "10.0 GiB");
	bytes_is((uint64_t)1 << 60, "1024.0 PiB");
	return tap_done();
}
