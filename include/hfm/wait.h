/*
 * wait.h - waking a request that is waiting for something.
 *
 * A source that cannot answer yet (a file still being hashed, bytes still
 * coming from upstream) registers the request's waiter on a wait queue and
 * returns HFM_EAGAIN.  The HTTP layer then suspends the connection; when the
 * work is done, whoever finished it wakes the queue (hfm_waitq_take() under
 * its lock, hfm_waitq_fire() after) and the request runs again from the top,
 * finding the result ready.
 *
 * Waiters are reference counted because the two sides live on different
 * threads and either may go first: a queue holds a reference until it fires,
 * the request holds one until it completes or gives up (timeout).  Waking is
 * idempotent and safe from any thread, also after the request gave up.
 *
 * A wait queue has no lock of its own: it is protected by the lock of the
 * object it belongs to.  hfm_waitq_take() detaches the list under that lock;
 * hfm_waitq_fire() then wakes the detached list after the lock is released,
 * so wake callbacks never run under a source's lock.
 */
#ifndef HFM_WAIT_H
#define HFM_WAIT_H

struct hfm_waiter;

/* Create a waiter whose wake calls fn(cls) at most once.  Refcount = 1. */
struct hfm_waiter *hfm_waiter_new(void (*fn)(void *cls), void *cls);
struct hfm_waiter *hfm_waiter_ref(struct hfm_waiter *w);
void hfm_waiter_unref(struct hfm_waiter *w);
/* Fire the callback unless already fired or cancelled. */
void hfm_waiter_wake(struct hfm_waiter *w);
/*
 * Make later wakes no-ops.  Returns 1 if the waiter had already fired, 0 if
 * this call cancelled it.  Either way the callback is not running when this
 * returns (a callback in progress is waited for), so the owner may then free
 * what the callback uses.  Must not be called from the callback itself.
 */
int hfm_waiter_cancel(struct hfm_waiter *w);
/* 1 once the waiter has fired. */
int hfm_waiter_fired(struct hfm_waiter *w);

struct hfm_waitq_node;
struct hfm_waitq {
	struct hfm_waitq_node *head;
};
#define HFM_WAITQ_INIT { 0 }

/* Add w (takes a reference).  Call under the owner's lock. */
void hfm_waitq_add(struct hfm_waitq *q, struct hfm_waiter *w);
/* Detach all nodes (under the owner's lock); returns the detached list. */
struct hfm_waitq_node *hfm_waitq_take(struct hfm_waitq *q);
/* Wake and release a detached list (without the owner's lock). */
void hfm_waitq_fire(struct hfm_waitq_node *list);

#endif
