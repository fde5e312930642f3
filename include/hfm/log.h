/*
 * log.h - how library modules report what they did without choosing where
 * it goes.
 *
 * A module that has something to say (an upstream transfer failed, a cached
 * blob failed verification) takes a log callback in its options and calls it
 * with a level and one formatted line.  The daemon routes it to stderr or
 * syslog; tests capture it.  A NULL callback drops the line.
 *
 * Lines never contain secrets: no Authorization values, no cookies, and
 * upstream URLs are logged without their query string (CDN URLs carry
 * signatures there).  The callback may be called from any thread, also
 * concurrently, and must not call back into the module that logs.
 */
#ifndef HFM_LOG_H
#define HFM_LOG_H

#include "common.h"

enum hfm_log_level { HFM_LOG_ERROR, HFM_LOG_WARN, HFM_LOG_INFO, HFM_LOG_DEBUG };

typedef void (*hfm_log_fn)(void *cls, enum hfm_log_level level, const char *msg);

/* Format and deliver one line; a no-op when fn is NULL.  Lines are cut at 1 KiB. */
void hfm_log(hfm_log_fn fn, void *cls, enum hfm_log_level level, const char *fmt, ...)
	HFM_PRINTF(4, 5);

#endif
