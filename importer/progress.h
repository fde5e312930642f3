/*
 * progress.h - what a long import shows while it works.
 *
 * On a terminal: one line redrawn in place (at most ten times a second)
 * with a bar, items and bytes done of the phase's total, the rate and the
 * item being worked on.  Elsewhere (a log, a pipe): plain lines, one per
 * finished item of 1 MiB or more, one every ten seconds during a long item,
 * and one at the end of each phase.  Quiet: nothing.  Everything goes to
 * the FILE given (stderr), never to stdout, which --json owns.
 *
 * Messages (hfm_imp_progress_say) are printed on their own line without
 * tearing the bar.  Not thread-safe: one import runs on one thread.
 */
#ifndef HFM_IMP_PROGRESS_H
#define HFM_IMP_PROGRESS_H

#include <stdint.h>
#include <stdio.h>
#include "hfm/common.h"

enum hfm_imp_display {
	HFM_IMP_SHOW_QUIET = 0,
	HFM_IMP_SHOW_PLAIN = 1,
	HFM_IMP_SHOW_TTY = 2,
};

struct hfm_imp_progress;

struct hfm_imp_progress *hfm_imp_progress_new(enum hfm_imp_display mode, FILE *out);
void hfm_imp_progress_free(struct hfm_imp_progress *p);

/* Start a phase ("importing", "hashing") of `items` items and `bytes` bytes. */
void hfm_imp_progress_phase(struct hfm_imp_progress *p, const char *what, uint64_t items,
			    uint64_t bytes);
/* Start one item of `size` bytes; `label` is copied. */
void hfm_imp_progress_item(struct hfm_imp_progress *p, const char *label, uint64_t size);
/* An hfm_progress_fn: `done` bytes of the current item were read.  payload: p. */
void hfm_imp_progress_bytes(void *p, uint64_t done, uint64_t total);
/* The current item is finished; `verb` says how ("linked", "copied", ...). */
void hfm_imp_progress_item_done(struct hfm_imp_progress *p, const char *verb);
/* End the phase: clears the bar; plain mode prints the phase's totals. */
void hfm_imp_progress_phase_done(struct hfm_imp_progress *p);

/* A message line (prefixed with the program name), unless quiet. */
void hfm_imp_progress_say(struct hfm_imp_progress *p, const char *fmt, ...) HFM_PRINTF(2, 3);

/* "12.3 MiB" into out (at least 16 bytes). */
void hfm_imp_human_bytes(char *out, size_t n, uint64_t bytes);

#endif
