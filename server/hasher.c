/* hasher.c - urgent and background hashing workers over the hash index. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hfm/hasher.h"

#define NBUCKETS 4096
#define FAIL_MEMORY_NS (5ull * 1000000000ull)

enum job_state { J_BACKGROUND, J_URGENT, J_RUNNING, J_FAILED };

struct job {
	struct hfm_hash_key key;
	char *path;
	enum job_state state;
	uint64_t failed_at;
	struct hfm_waitq waiters;
	struct job *hnext;               /* bucket chain */
	struct job *qprev, *qnext;       /* the queue of its state */
};

struct queue {
	struct job *head, *tail;
};

struct hfm_hasher {
	pthread_mutex_t lock;
	pthread_cond_t urgent_cv, bg_cv;
	struct hfm_hashindex *idx;
	struct job *buckets[NBUCKETS];
	struct queue urgent, background;
	int stopping;
	int nthreads;
	pthread_t *threads;
};

static size_t bucket(const struct hfm_hash_key *k)
{
	uint64_t h = k->dev * 0x9e3779b97f4a7c15ull ^ k->ino * 0xc2b2ae3d27d4eb4full ^
		     (uint64_t)k->mtime_ns ^ k->size;

	return (size_t)((h ^ (h >> 31)) % NBUCKETS);
}

static int key_eq(const struct hfm_hash_key *a, const struct hfm_hash_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

static struct job *find_job(struct hfm_hasher *h, const struct hfm_hash_key *k)
{
	struct job *j;

	for (j = h->buckets[bucket(k)]; j; j = j->hnext)
		if (key_eq(&j->key, k))
			return j;
	return NULL;
}

static void unhash(struct hfm_hasher *h, struct job *j)
{
	struct job **pp = &h->buckets[bucket(&j->key)];

	while (*pp != j)
		pp = &(*pp)->hnext;
	*pp = j->hnext;
}

static void q_push(struct queue *q, struct job *j)
{
	j->qnext = NULL;
	j->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = j;
	else
		q->head = j;
	q->tail = j;
}

static void q_remove(struct queue *q, struct job *j)
{
	if (j->qprev)
		j->qprev->qnext = j->qnext;
	else
		q->head = j->qnext;
	if (j->qnext)
		j->qnext->qprev = j->qprev;
	else
		q->tail = j->qprev;
	j->qprev = j->qnext = NULL;
}

static void job_free(struct job *j)
{
	free(j->path);
	free(j);
}

/* Hash the file behind `path`, checking it is still the file `k` names. */
static int hash_file(const char *path, const struct hfm_hash_key *k, struct hfm_hash_rec *rec)
{
	struct hfm_hash_key now;
	struct stat st;
	int fd, rc, binary = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hfm_error_set(HFM_EIO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		close(fd);
		return hfm_error_set(HFM_EIO, "cannot stat %s: %s", path, strerror(errno));
	}
	hfm_hash_key_from_stat(&now, &st);
	if (!key_eq(&now, k)) {
		close(fd);
		return hfm_error_set(HFM_EIO, "%s changed while queued for hashing", path);
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = hfm_hash_fd(fd, k->size, rec->sha1, rec->sha256, &binary);
	if (rc == 0 && fstat(fd, &st) == 0) {
		hfm_hash_key_from_stat(&now, &st);
		if (!key_eq(&now, k))
			rc = hfm_error_set(HFM_EIO, "%s changed while being hashed", path);
	}
	rec->binary = (uint8_t)binary;
	close(fd);
	return rc;
}

struct worker_arg {
	struct hfm_hasher *h;
	int background;
};

static void *worker(void *arg)
{
	struct worker_arg *wa = arg;
	struct hfm_hasher *h = wa->h;
	int background = wa->background;

	free(wa);
	if (background) {
		/* be nice to request traffic: lowest CPU and best-effort idle I/O */
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#ifdef SYS_ioprio_set
		syscall(SYS_ioprio_set, 1 /* WHO_PROCESS */, (int)syscall(SYS_gettid),
			(3 << 13) /* IOPRIO_CLASS_IDLE */);
#endif
	}
	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct job *j = NULL;
		struct hfm_hash_rec rec;
		struct hfm_waitq_node *wake;
		char *path;
		int rc;

		while (!h->stopping) {
			if (h->urgent.head) {
				j = h->urgent.head;
				q_remove(&h->urgent, j);
				break;
			}
			if (background && h->background.head) {
				j = h->background.head;
				q_remove(&h->background, j);
				break;
			}
			pthread_cond_wait(background ? &h->bg_cv : &h->urgent_cv, &h->lock);
		}
		if (h->stopping)
			break;
		j->state = J_RUNNING;
		path = hfm_strdup(j->path);
		pthread_mutex_unlock(&h->lock);

		memset(&rec, 0, sizeof(rec));
		rc = hash_file(path, &j->key, &rec);
		if (rc == 0)
			hfm_hashindex_put(h->idx, &j->key, &rec);
		free(path);

		pthread_mutex_lock(&h->lock);
		wake = hfm_waitq_take(&j->waiters);
		if (rc == 0) {
			unhash(h, j);
			job_free(j);
		} else {
			j->state = J_FAILED;
			j->failed_at = hfm_mono_ns();
		}
		pthread_mutex_unlock(&h->lock);
		hfm_waitq_fire(wake);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct hfm_hasher *hfm_hasher_new(struct hfm_hashindex *idx, int urgent_threads, int background)
{
	struct hfm_hasher *h = hfm_calloc(1, sizeof(*h));
	int i;

	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->urgent_cv, NULL);
	pthread_cond_init(&h->bg_cv, NULL);
	h->idx = idx;
	if (urgent_threads < 1)
		urgent_threads = 1;
	h->nthreads = urgent_threads + (background ? 1 : 0);
	h->threads = hfm_calloc((size_t)h->nthreads, sizeof(pthread_t));
	for (i = 0; i < h->nthreads; i++) {
		struct worker_arg *wa = hfm_malloc(sizeof(*wa));

		wa->h = h;
		wa->background = i >= urgent_threads;
		if (pthread_create(&h->threads[i], NULL, worker, wa))
			abort();
	}
	return h;
}

void hfm_hasher_free(struct hfm_hasher *h)
{
	size_t b;
	int i;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	pthread_cond_broadcast(&h->urgent_cv);
	pthread_cond_broadcast(&h->bg_cv);
	pthread_mutex_unlock(&h->lock);
	for (i = 0; i < h->nthreads; i++)
		pthread_join(h->threads[i], NULL);
	for (b = 0; b < NBUCKETS; b++) {
		struct job *j = h->buckets[b];
		while (j) {
			struct job *next = j->hnext;
			hfm_waitq_fire(hfm_waitq_take(&j->waiters));
			job_free(j);
			j = next;
		}
	}
	free(h->threads);
	pthread_cond_destroy(&h->urgent_cv);
	pthread_cond_destroy(&h->bg_cv);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static struct job *new_job(struct hfm_hasher *h, const char *path,
			   const struct hfm_hash_key *k, enum job_state state)
{
	struct job *j = hfm_calloc(1, sizeof(*j));
	size_t b = bucket(k);

	j->key = *k;
	j->path = hfm_strdup(path);
	j->state = state;
	j->hnext = h->buckets[b];
	h->buckets[b] = j;
	if (state == J_URGENT) {
		q_push(&h->urgent, j);
		pthread_cond_signal(&h->urgent_cv);
	} else {
		q_push(&h->background, j);
		pthread_cond_signal(&h->bg_cv);
	}
	return j;
}

int hfm_hasher_get(struct hfm_hasher *h, const char *path, const struct stat *st,
		   struct hfm_hash_rec *out, struct hfm_waiter *w, uint64_t *inline_budget)
{
	struct hfm_hash_key k;
	struct job *j;
	int rc;

	hfm_hash_key_from_stat(&k, st);
	if (hfm_hashindex_get(h->idx, &k, out) == 0)
		return 0;
	if (!w || (k.size <= HFM_HASH_INLINE_MAX &&
		   (!inline_budget || *inline_budget >= k.size))) {
		if (w && inline_budget)
			*inline_budget -= k.size;
		rc = hash_file(path, &k, out);
		if (rc == 0)
			hfm_hashindex_put(h->idx, &k, out);
		return rc;
	}
	pthread_mutex_lock(&h->lock);
	j = find_job(h, &k);
	if (j && j->state == J_FAILED) {
		if (hfm_mono_ns() - j->failed_at < FAIL_MEMORY_NS) {
			pthread_mutex_unlock(&h->lock);
			return hfm_error_set(HFM_EIO, "%s could not be hashed", path);
		}
		unhash(h, j);
		job_free(j);
		j = NULL;
	}
	if (!j) {
		/* it may have finished between the index lookup and the lock */
		if (hfm_hashindex_get(h->idx, &k, out) == 0) {
			pthread_mutex_unlock(&h->lock);
			return 0;
		}
		j = new_job(h, path, &k, J_URGENT);
	} else if (j->state == J_BACKGROUND) {
		q_remove(&h->background, j);
		j->state = J_URGENT;
		q_push(&h->urgent, j);
		pthread_cond_signal(&h->urgent_cv);
	}
	hfm_waitq_add(&j->waiters, w);
	pthread_mutex_unlock(&h->lock);
	return HFM_EAGAIN;
}

void hfm_hasher_prefetch(struct hfm_hasher *h, const char *path, const struct stat *st)
{
	struct hfm_hash_key k;
	struct hfm_hash_rec rec;

	hfm_hash_key_from_stat(&k, st);
	if (hfm_hashindex_get(h->idx, &k, &rec) == 0)
		return;
	pthread_mutex_lock(&h->lock);
	if (!find_job(h, &k) && !h->stopping)
		new_job(h, path, &k, J_BACKGROUND);
	pthread_mutex_unlock(&h->lock);
}
