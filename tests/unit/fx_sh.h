/*
 * fx_sh.h - shell commands for unit tests whose fixtures git makes (git
 * computes the answers the code under test must give): run one and get its
 * status, or its output.  A command that fails says so as a TAP comment.
 */
#ifndef HFM_FX_SH_H
#define HFM_FX_SH_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"

/* Run a shell command; its exit status (0 is success). */
HFM_PRINTF(1, 2) static inline int fx_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc)
		printf("# command failed (%d): %s\n", rc, cmd);
	return rc;
}

static inline char *fx_sh_vtext(char *out, size_t n, const char *fmt, va_list ap)
{
	char cmd[8192];
	size_t len = 0;
	FILE *p;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	if ((p = popen(cmd, "r"))) {
		len = fread(out, 1, n - 1, p);
		pclose(p);
	}
	if (len && out[len - 1] == '\n')
		len--;
	out[len] = '\0';
	return out;
}

/* All of a command's output, without its last newline, cut to `n` - 1 bytes. */
HFM_PRINTF(3, 4) static inline char *fx_sh_text(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fx_sh_vtext(out, n, fmt, ap);
	va_end(ap);
	return out;
}

/* The first line of a command's output, without its newline ("" if none). */
HFM_PRINTF(3, 4) static inline char *fx_sh_line(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fx_sh_vtext(out, n, fmt, ap);
	va_end(ap);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

#endif
