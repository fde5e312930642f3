/*
 * waitfor.h - a waiter (wait.h) a test can block on, as a suspended
 * request would: waitfor_arm() makes a fresh waiter to hand to an op that
 * may answer HFM_EAGAIN, waitfor_woken() blocks until it fired.  The wait
 * is bounded (60 s) only so that a missing wake fails the test instead of
 * hanging it; nothing is timed.
 */
#ifndef HFM_WAITFOR_H
#define HFM_WAITFOR_H

#include <pthread.h>
#include <time.h>

#include "hfm/wait.h"

struct waitfor {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int fired;
	struct hfm_waiter *w;
};

static inline void waitfor_fire(void *cls)
{
	struct waitfor *t = cls;

	pthread_mutex_lock(&t->lock);
	t->fired = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

static inline void waitfor_init(struct waitfor *t)
{
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->fired = 0;
	t->w = NULL;
}

/* Drop the current waiter (cancelled: its wake may never run now). */
static inline void waitfor_drop(struct waitfor *t)
{
	if (t->w) {
		hfm_waiter_cancel(t->w);
		hfm_waiter_unref(t->w);
		t->w = NULL;
	}
}

/* A fresh armed waiter, owned by t. */
static inline struct hfm_waiter *waitfor_arm(struct waitfor *t)
{
	waitfor_drop(t);
	pthread_mutex_lock(&t->lock);
	t->fired = 0;
	pthread_mutex_unlock(&t->lock);
	t->w = hfm_waiter_new(waitfor_fire, t);
	return t->w;
}

/* 1 once the current waiter fired (waits for it), 0 if it did not within 60 s. */
static inline int waitfor_woken(struct waitfor *t)
{
	struct timespec until;
	int fired;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&t->lock);
	while (!t->fired && pthread_cond_timedwait(&t->cv, &t->lock, &until) == 0)
		;
	fired = t->fired;
	pthread_mutex_unlock(&t->lock);
	return fired;
}

static inline void waitfor_dispose(struct waitfor *t)
{
	waitfor_drop(t);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->lock);
}

#endif
