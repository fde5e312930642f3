/* log.c - the one formatter behind every module's log callback. */
#include <stdio.h>

#include "hfm/log.h"

void hfm_log(hfm_log_fn fn, void *cls, enum hfm_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(cls, level, line);
}
