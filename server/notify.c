/* notify.c - sd_notify(3) for the daemon's start, reloads and stop (notify.h). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "hfm/notify.h"

#ifdef HFM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

int hfm_notify(const char *fmt, ...)
{
#ifdef HFM_HAVE_SYSTEMD
	char state[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	/* 0: keep $NOTIFY_SOCKET, the reload and stop messages need it too */
	return sd_notify(0, state);
#else
	(void)fmt;
	return 0;
#endif
}

int hfm_notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return hfm_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
			  (unsigned long long)ts.tv_sec * 1000000ull +
				  (unsigned long long)ts.tv_nsec / 1000ull);
}
