/* audit.c - the download audit log (see audit.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfm/audit.h"
#include "hfm/fsutil.h"

struct hfm_audit {
	char *path;
	uint64_t max_bytes;
	unsigned keep;
	pthread_mutex_t lock;
	int fd;                          /* under lock */
	uint64_t size;
};

static int open_log(struct hfm_audit *a)
{
	struct stat st;
	int fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	if (fd < 0)
		return hfm_error_set(HFM_EIO, "audit log %s: %s", a->path, strerror(errno));
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	a->size = fstat(fd, &st) ? 0 : (uint64_t)st.st_size;
	return 0;
}

int hfm_audit_open(struct hfm_audit **out, const char *path, uint64_t max_bytes, unsigned keep)
{
	struct hfm_audit *a = hfm_calloc(1, sizeof(*a));
	int rc;

	a->path = hfm_strdup(path);
	a->max_bytes = max_bytes;
	a->keep = keep ? keep : 5;
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	if ((rc = open_log(a))) {
		hfm_audit_free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

void hfm_audit_free(struct hfm_audit *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a);
}

int hfm_audit_reopen(struct hfm_audit *a)
{
	pthread_mutex_lock(&a->lock);
	int rc = open_log(a);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* FILE.N-1 -> FILE.N ... FILE -> FILE.1, then a fresh FILE (under lock). */
static void rotate(struct hfm_audit *a)
{
	for (unsigned i = a->keep; i >= 1; i--) {
		char *from = i == 1 ? hfm_strdup(a->path) : hfm_asprintf("%s.%u", a->path, i - 1);
		char *to = hfm_asprintf("%s.%u", a->path, i);
		rename(from, to);
		free(from);
		free(to);
	}
	open_log(a);
}

void hfm_audit_format(struct hfm_buf *b, const struct hfm_audit_rec *r, int64_t now_ms)
{
	char d[HFM_ISO_DATE_LEN + 1];

	hfm_iso_date(d, now_ms);
	hfm_buf_printf(b, "{\"time\":\"%s\",\"user\":", d);
	hfm_buf_json_str(b, r->user ? r->user : "anonymous");
	hfm_buf_puts(b, ",\"repo\":");
	hfm_buf_json_str(b, r->repo ? r->repo : "");
	hfm_buf_puts(b, ",\"revision\":");
	hfm_buf_json_str(b, r->revision ? r->revision : "");
	hfm_buf_puts(b, ",\"commit\":");
	hfm_buf_json_str(b, r->commit ? r->commit : "");
	hfm_buf_puts(b, ",\"path\":");
	hfm_buf_json_str(b, r->path ? r->path : "");
	hfm_buf_printf(b, ",\"bytes\":%llu,\"complete\":%s,\"status\":%u,\"client\":",
		       (unsigned long long)r->bytes, r->complete ? "true" : "false", r->status);
	hfm_buf_json_str(b, r->client ? r->client : "-");
	hfm_buf_putc(b, '}');
}

void hfm_audit_write(struct hfm_audit *a, const struct hfm_audit_rec *r)
{
	struct hfm_buf b = HFM_BUF_INIT(16384);

	hfm_audit_format(&b, r, hfm_now_ms());
	hfm_buf_putc(&b, '\n');
	if (b.err)
		goto cleanup;
	pthread_mutex_lock(&a->lock);
	if (a->max_bytes && a->size && a->size + b.len > a->max_bytes)
		rotate(a);
	if (a->fd >= 0 && !hfm_write_all(a->fd, b.ptr, b.len))
		a->size += b.len;
	pthread_mutex_unlock(&a->lock);
cleanup:
	hfm_buf_dispose(&b);
}
