/* ttlmap.c - remembered answers that expire (see ttlmap.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/common.h"
#include "hfm/ttlmap.h"

struct slot {
	char key[HFM_TTLMAP_KEY_MAX + 1];
	char why[HFM_TTLMAP_WHY_MAX + 1];
	int rc;
	uint64_t until_ns;               /* expired (or free) at or before now */
};

struct hfm_ttlmap {
	pthread_mutex_t lock;
	unsigned n, next;
	struct slot v[];
};

struct hfm_ttlmap *hfm_ttlmap_new(unsigned slots)
{
	struct hfm_ttlmap *m = hfm_calloc(1, sizeof(*m) + (size_t)slots * sizeof(struct slot));

	pthread_mutex_init(&m->lock, NULL);
	m->n = slots;
	return m;
}

void hfm_ttlmap_free(struct hfm_ttlmap *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Under m->lock: the live slot for key, or NULL. */
static struct slot *find(struct hfm_ttlmap *m, const char *key, uint64_t now)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m->v[i].until_ns > now && !strncmp(m->v[i].key, key, HFM_TTLMAP_KEY_MAX))
			return &m->v[i];
	return NULL;
}

void hfm_ttlmap_put(struct hfm_ttlmap *m, const char *key, int rc, const char *why,
		    uint64_t ttl_ns)
{
	uint64_t now = hfm_mono_ns();
	struct slot *s;

	pthread_mutex_lock(&m->lock);
	s = find(m, key, now);
	for (unsigned i = 0; i < m->n && !s; i++)
		if (m->v[i].until_ns <= now)
			s = &m->v[i];
	if (!s)
		s = &m->v[m->next++ % m->n];
	snprintf(s->key, sizeof(s->key), "%s", key);
	snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
	s->rc = rc;
	s->until_ns = now + ttl_ns;
	pthread_mutex_unlock(&m->lock);
}

int hfm_ttlmap_get(struct hfm_ttlmap *m, const char *key, int *rc, char *why, size_t cap)
{
	struct slot *s;

	pthread_mutex_lock(&m->lock);
	s = find(m, key, hfm_mono_ns());
	if (s) {
		*rc = s->rc;
		if (why && cap)
			snprintf(why, cap, "%s", s->why);
	}
	pthread_mutex_unlock(&m->lock);
	return s != NULL;
}
