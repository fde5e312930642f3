/*
 * logcap.h - a log callback (log.h) for tests: every line lands in
 * logcap_text, so a test can check what was (or was not) logged.
 * Lock logcap_lock around reading logcap_text while threads may log.
 */
#ifndef HFM_LOGCAP_H
#define HFM_LOGCAP_H

#include <pthread.h>
#include <string.h>

#include "hfm/log.h"

static pthread_mutex_t logcap_lock = PTHREAD_MUTEX_INITIALIZER;
static char logcap_text[65536];

static inline void logcap(void *cls, enum hfm_log_level level, const char *msg)
{
	size_t have, n = strlen(msg);

	(void)cls;
	(void)level;
	pthread_mutex_lock(&logcap_lock);
	have = strlen(logcap_text);
	if (have + n + 2 < sizeof(logcap_text)) {
		memcpy(logcap_text + have, msg, n);
		logcap_text[have + n] = '\n';
		logcap_text[have + n + 1] = '\0';
	}
	pthread_mutex_unlock(&logcap_lock);
}

/* 1 if `s` was logged (as part of any line). */
static inline int logcap_has(const char *s)
{
	int found;

	pthread_mutex_lock(&logcap_lock);
	found = strstr(logcap_text, s) != NULL;
	pthread_mutex_unlock(&logcap_lock);
	return found;
}

#endif
