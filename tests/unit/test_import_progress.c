/*
 * What a long import shows (progress.h): plain lines for logs and pipes, a
 * bar redrawn in place on a terminal, nothing when quiet.  Only what does
 * not depend on time is checked: the lines per item and per phase, not the
 * ten-second status lines or the rates.
 */
#include "import_fixture.h"

#define MIB ((uint64_t)1 << 20)

/* One import phase of three items: 1000 bytes, 2 MiB, exactly 1 MiB. */
static void three_items(struct hfm_imp_progress *p)
{
	hfm_imp_progress_phase(p, "importing", 3, 1000 + 3 * MIB);
	hfm_imp_progress_item(p, "small.bin", 1000);
	hfm_imp_progress_item_done(p, "linked");
	hfm_imp_progress_item(p, "big.bin", 2 * MIB);
	hfm_imp_progress_bytes(p, MIB, 2 * MIB);
	hfm_imp_progress_item_done(p, "copied");
	hfm_imp_progress_item(p, "edge.bin", MIB);
	hfm_imp_progress_item_done(p, "present");
}

static void test_plain(void)
{
	struct fx_capture c;
	struct hfm_imp_progress *p;
	const char *t, *line;

	fx_capture_open(&c);
	p = hfm_imp_progress_new(HFM_IMP_SHOW_PLAIN, c.f);
	hfm_imp_progress_say(p, "hello %d", 42);
	TAP_IS_STR(fx_capture_new(&c), "hfmirror-import: hello 42\n",
		   "a message is one line with the program's name");
	hfm_imp_progress_phase(p, "importing", 3, 1000 + 3 * MIB);
	TAP_IS_STR(fx_capture_new(&c), "", "a phase starts silently");
	hfm_imp_progress_phase_done(p);
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
	hfm_imp_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "hfmirror-import: importing: 3 items, 3.0 MiB in ", 48),
	       "the phase's totals at its end");
	TAP_OK(strstr(t, "/s)\n") != NULL && !strchr(t, '\r'), "with the rate, one line");

	hfm_imp_progress_phase(p, "hashing", 1, 5);
	hfm_imp_progress_item(p, "x", 5);
	hfm_imp_progress_item_done(p, "hashed");
	hfm_imp_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "hfmirror-import: hashing: 1 items, 5 B in ", 42),
	       "a new phase counts from zero");
	hfm_imp_progress_free(p);
	fx_capture_close(&c);
}

static void test_quiet(void)
{
	struct fx_capture c;
	struct hfm_imp_progress *p;

	fx_capture_open(&c);
	p = hfm_imp_progress_new(HFM_IMP_SHOW_QUIET, c.f);
	hfm_imp_progress_say(p, "hello");
	three_items(p);
	hfm_imp_progress_phase_done(p);
	TAP_IS_STR(fx_capture_new(&c), "", "quiet: nothing at all");
	hfm_imp_progress_free(p);
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
	struct hfm_imp_progress *p;
	const char *t;
	char label[300];

	memset(label, 'L', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	fx_capture_open(&c);
	p = hfm_imp_progress_new(HFM_IMP_SHOW_TTY, c.f);   /* not a terminal: 80 columns */
	hfm_imp_progress_phase(p, "importing", 2, 2 * MIB);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "\r\033[Kimporting [", 15), "a phase draws its bar at once");
	TAP_OK(strstr(t, "] 0/2  0 B/2.0 MiB  ") != NULL, "items and bytes done of the total");
	hfm_imp_progress_item(p, label, MIB);
	hfm_imp_progress_say(p, "a message");
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "\r\033[Khfmirror-import: a message\n\r\033[Kimporting [") != NULL,
	       "a message clears the bar, takes its own line, and the bar comes back");
	TAP_OK(strstr(t, "LLLL") != NULL, "the bar names the current item");
	TAP_OK(bars_fit(t, 80), "cut to the terminal's width");
	hfm_imp_progress_item_done(p, "linked");
	hfm_imp_progress_item(p, "b", MIB);
	hfm_imp_progress_item_done(p, "linked");
	t = fx_capture_new(&c);
	TAP_OK(strstr(t, "] 2/2  2.0 MiB/2.0 MiB  ") != NULL, "the last item always redraws");
	hfm_imp_progress_phase_done(p);
	t = fx_capture_new(&c);
	TAP_OK(!strncmp(t, "\r\033[Khfmirror-import: importing: 2 items, 2.0 MiB in ", 52),
	       "the end clears the bar and prints the totals");
	hfm_imp_progress_say(p, "after");
	TAP_IS_STR(fx_capture_new(&c), "hfmirror-import: after\n",
		   "with no bar on screen a message is a plain line");
	hfm_imp_progress_free(p);
	fx_capture_close(&c);
}

static void bytes_is(uint64_t n, const char *want)
{
	char out[24];

	hfm_imp_human_bytes(out, sizeof(out), n);
	TAP_IS_STR(out, want, "%llu bytes", (unsigned long long)n);
}

int main(void)
{
	test_plain();
	test_quiet();
	test_tty();
	bytes_is(0, "0 B");
	bytes_is(1023, "1023 B");
	bytes_is(1024, "1.0 KiB");
	bytes_is(1536 * 1024, "1.5 MiB");
	bytes_is((uint64_t)10 << 30, "10.0 GiB");
	bytes_is((uint64_t)1 << 60, "1024.0 PiB");
	return tap_done();
}
