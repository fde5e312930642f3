/* common.c - allocation, per-thread errors, clocks, small string helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hfm/common.h"

static HFM_NORETURN void oom(size_t n)
{
	fprintf(stderr, "hfmirror: out of memory allocating %zu bytes\n", n);
	abort();
}

void *hfm_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *hfm_calloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	if (!p)
		oom(nmemb * n);
	return p;
}

void *hfm_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

void *hfm_array_push(void *vp, size_t *n, size_t size)
{
	void **v = vp;
	char *p;

	if ((*n & (*n - 1)) == 0)
		*v = hfm_realloc(*v, (*n ? *n * 2 : 1) * size);
	p = (char *)*v + *n * size;
	memset(p, 0, size);
	(*n)++;
	return p;
}

char *hfm_strdup(const char *s)
{
	return hfm_strndup(s, strlen(s));
}

char *hfm_strndup(const char *s, size_t n)
{
	char *p = hfm_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *hfm_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&out, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return out;
}

static _Thread_local char err_msg[512];

int hfm_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	return code;
}

void hfm_error_clear(void)
{
	err_msg[0] = '\0';
}

const char *hfm_error_last(void)
{
	return err_msg;
}

const char *hfm_strerror(int code)
{
	switch (code) {
	case HFM_OK: return "ok";
	case HFM_ENOREPO: return "Repository not found";
	case HFM_ENOREV: return "Revision not found";
	case HFM_ENOENT: return "Entry not found";
	case HFM_EAGAIN: return "not ready";
	case HFM_EINVAL: return "Bad request";
	case HFM_ETOOBIG: return "Too large";
	case HFM_EUPSTREAM: return "Upstream error";
	case HFM_ETIMEOUT: return "Upstream timeout";
	case HFM_EGATED: return "Access to this repository is restricted";
	case HFM_EIO: return "Input/output error";
	case HFM_EOFFLINE: return "Not available in this mirror";
	case HFM_EDENIED: return "Repository not found";
	case HFM_ECORRUPT: return "Stored data is corrupt";
	case HFM_EUNAVAIL: return "Content is not available in this mirror";
	case HFM_EAUTH: return "Invalid credentials in Authorization header";
	case HFM_ERATE: return "Too many failed token checks";
	default: return "Internal error";
	}
}

int64_t hfm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t hfm_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void hfm_cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

int hfm_cond_wait_mono(pthread_cond_t *c, pthread_mutex_t *m, uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000),
		.tv_nsec = (long)(deadline_ns % 1000000000),
	};

	return pthread_cond_timedwait(c, m, &ts);
}

void hfm_iso_date(char *out, int64_t ms)
{
	struct tm tm;
	time_t secs;
	int msec;
	char tmp[64];

	if (ms < 0)
		ms = 0;
	secs = (time_t)(ms / 1000);
	msec = (int)(ms % 1000);
	gmtime_r(&secs, &tm);
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, msec);
	memcpy(out, tmp, HFM_ISO_DATE_LEN);
	out[HFM_ISO_DATE_LEN] = '\0';
}

int hfm_iso_date_valid(const char *s, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (n != HFM_ISO_DATE_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
			return 0;
	return 1;
}

int hfm_strieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

int hfm_strnieq(const char *a, const char *b, size_t n)
{
	return strncasecmp(a, b, n) == 0;
}

size_t hfm_utf8_next(uint32_t *cp, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c = u[0], min;
	size_t len, i;

	if (c < 0x80) {
		len = 1;
		min = 0;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (u[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	if (cp)
		*cp = c;
	return len;
}

int hfm_parse_bool(const char *s, int dflt)
{
	if (!s)
		return dflt;
	if (hfm_strieq(s, "true") || hfm_strieq(s, "1") || hfm_strieq(s, "yes") ||
	    hfm_strieq(s, "on"))
		return 1;
	if (hfm_strieq(s, "false") || hfm_strieq(s, "0") || hfm_strieq(s, "no") ||
	    hfm_strieq(s, "off"))
		return 0;
	return dflt;
}
