/*
 * progress.h - what a long job (an import, a sync) shows while it works.
 *
 * On a terminal: one line redrawn in place (at most ten times a second)
 * with a bar, items and bytes done of the phase's total, the rate, the time
 * left at that rate and the item being worked on.  Elsewhere (a log, a
 * pipe): plain lines, one per finished item of 1 MiB or more, one every ten
 * seconds during a long item, and one at the end of each phase.  Quiet:
 * nothing.  Everything goes to the FILE given (stderr), never to stdout,
 * which --json owns.  Every line starts with the program's name.
 *
 * Two ways to report: one item at a time (hfm_progress_item, _bytes,
 * _item_done), or, for work that runs in parallel, the totals so far
 * (hfm_progress_set) from the one thread that owns the display.
 *
 * Messages (hfm_progress_say) are printed on their own line without
 * tearing the bar.  Not thread-safe: one thread drives a display.
 */
#ifndef HFM_PROGRESS_H
#define HFM_PROGRESS_H

#include <stdint.h>
#include <stdio.h>
#include "hfm/common.h"

enum hfm_display {
	HFM_SHOW_QUIET = 0,
	HFM_SHOW_PLAIN = 1,
	HFM_SHOW_TTY = 2,
};

struct hfm_progress;

/* The display for `out`: quiet if asked, a bar on a terminal (not "dumb"), else lines. */
enum hfm_display hfm_display_for(FILE *out, int quiet);

/* `prog` ("hfmirror-import") starts every line; it is copied. */
struct hfm_progress *hfm_progress_new(enum hfm_display mode, FILE *out, const char *prog);
void hfm_progress_free(struct hfm_progress *p);

/* Start a phase ("importing", "hashing") of `items` items and `bytes` bytes. */
void hfm_progress_phase(struct hfm_progress *p, const char *what, uint64_t items,
			uint64_t bytes);
/* Start one item of `size` bytes; `label` is copied. */
void hfm_progress_item(struct hfm_progress *p, const char *label, uint64_t size);
/* An hfm_progress_fn: `done` bytes of the current item were read.  payload: p. */
void hfm_progress_bytes(void *p, uint64_t done, uint64_t total);
/* The current item is finished; `verb` says how ("linked", "copied", ...). */
void hfm_progress_item_done(struct hfm_progress *p, const char *verb);
/*
 * Parallel work: `items` finished and `bytes` done so far in this phase
 * (bytes of unfinished items included), `label` (copied; NULL = none) for
 * what is under way.  Redraws at most ten times a second on a terminal, a
 * status line every ten seconds otherwise.
 */
void hfm_progress_set(struct hfm_progress *p, uint64_t items, uint64_t bytes,
		      const char *label);
/* End the phase: clears the bar; plain mode prints the phase's totals. */
void hfm_progress_phase_done(struct hfm_progress *p);

/* A message line (prefixed with the program name), unless quiet. */
void hfm_progress_say(struct hfm_progress *p, const char *fmt, ...) HFM_PRINTF(2, 3);

/* "12.3 MiB" into out (at least 16 bytes). */
void hfm_human_bytes(char *out, size_t n, uint64_t bytes);
/* "42s", "3m07s", "2h05m" into out (at least 16 bytes). */
void hfm_human_duration(char *out, size_t n, uint64_t seconds);

#endif
