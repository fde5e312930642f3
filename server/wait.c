/* wait.c - refcounted one-shot waiters and lock-free-of-their-own queues. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hfm/common.h"
#include "hfm/wait.h"

/*
 * ARMED -> FIRING (callback running) -> FIRED, or ARMED -> CANCELLED.
 * cancel() waits out FIRING, so once it returns the callback is not running
 * and will never run: the owner may free what the callback touches.
 */
enum { W_ARMED, W_FIRING, W_FIRED, W_CANCELLED };

struct hfm_waiter {
	atomic_int refs;
	atomic_int state;
	void (*fn)(void *cls);
	void *cls;
};

struct hfm_waitq_node {
	struct hfm_waitq_node *next;
	struct hfm_waiter *w;
};

struct hfm_waiter *hfm_waiter_new(void (*fn)(void *cls), void *cls)
{
	struct hfm_waiter *w = hfm_calloc(1, sizeof(*w));

	atomic_init(&w->refs, 1);
	atomic_init(&w->state, W_ARMED);
	w->fn = fn;
	w->cls = cls;
	return w;
}

struct hfm_waiter *hfm_waiter_ref(struct hfm_waiter *w)
{
	atomic_fetch_add(&w->refs, 1);
	return w;
}

void hfm_waiter_unref(struct hfm_waiter *w)
{
	if (w && atomic_fetch_sub(&w->refs, 1) == 1)
		free(w);
}

void hfm_waiter_wake(struct hfm_waiter *w)
{
	int expect = W_ARMED;

	if (atomic_compare_exchange_strong(&w->state, &expect, W_FIRING)) {
		w->fn(w->cls);
		atomic_store(&w->state, W_FIRED);
	}
}

int hfm_waiter_cancel(struct hfm_waiter *w)
{
	int expect = W_ARMED;

	if (atomic_compare_exchange_strong(&w->state, &expect, W_CANCELLED))
		return 0;
	while (atomic_load(&w->state) == W_FIRING)
		sched_yield();
	return atomic_load(&w->state) == W_FIRED;
}

int hfm_waiter_fired(struct hfm_waiter *w)
{
	int s = atomic_load(&w->state);

	return s == W_FIRING || s == W_FIRED;
}

void hfm_waitq_add(struct hfm_waitq *q, struct hfm_waiter *w)
{
	struct hfm_waitq_node *n = hfm_malloc(sizeof(*n));

	n->w = hfm_waiter_ref(w);
	n->next = q->head;
	q->head = n;
}

struct hfm_waitq_node *hfm_waitq_take(struct hfm_waitq *q)
{
	struct hfm_waitq_node *l = q->head;

	q->head = NULL;
	return l;
}

void hfm_waitq_fire(struct hfm_waitq_node *l)
{
	while (l) {
		struct hfm_waitq_node *next = l->next;

		hfm_waiter_wake(l->w);
		hfm_waiter_unref(l->w);
		free(l);
		l = next;
	}
}
