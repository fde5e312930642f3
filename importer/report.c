/* report.c - the text summary and the JSON line of an import. */
#include <string.h>

#include "report.h"

#define TEXT_MISSING_MAX 20

static const char *hint(const struct hfm_imp_job *job)
{
	switch (job->kind) {
	case HFM_IMP_SRC_CLONE:
		return "fetch them into the clone (git lfs fetch --all) and run again";
	case HFM_IMP_SRC_HFCACHE:
		return "download them into the cache and run again";
	default:
		return "run again once the files are readable";
	}
}

void hfm_imp_report_text(FILE *out, const struct hfm_imp_job *job, int all)
{
	size_t missing = hfm_imp_job_missing(job), shown = 0, i;
	char b[24];

	hfm_human_bytes(b, sizeof(b), job->bytes);
	fprintf(out, "hfmirror-import: %s (%s) -> %s\n", job->id.name,
		hfm_repo_type_name(job->id.type), job->mirror_path);
	fprintf(out, "  refs: %zu (%zu new, %zu moved)", job->nrefs, job->refs_new,
		job->refs_moved);
	if (job->kind == HFM_IMP_SRC_CLONE)
		fprintf(out, "; git objects: %zu new", job->git_objects);
	fputc('\n', out);
	fprintf(out, "  LFS objects: %zu linked, %zu copied (%s), %zu already in the store, "
		"%zu missing\n", job->linked, job->copied, b, job->present, missing);
	if (job->ncorrupt)
		fprintf(out, "  corrupt files: %zu (not imported)\n", job->ncorrupt);
	for (i = 0; i < job->ncorrupt; i++)
		fprintf(out, "    %s: %s\n", job->corrupt[i].path, job->corrupt[i].reason);
	if (!missing)
		return;
	fprintf(out, "  missing LFS objects (%s):\n", hint(job));
	for (i = 0; i < job->lfs.n; i++) {
		const struct hfm_imp_lfs *e = &job->lfs.v[i];

		if (e->state != HFM_IMP_LFS_MISSING && e->state != HFM_IMP_LFS_PENDING)
			continue;
		if (!all && shown == TEXT_MISSING_MAX) {
			fprintf(out, "    ... and %zu more (--json lists them all)\n",
				missing - shown);
			break;
		}
		hfm_human_bytes(b, sizeof(b), e->size);
		fprintf(out, "    %s %10s  %s\n", e->oid, b, e->where);
		shown++;
	}
}

static void key(struct hfm_buf *out, const char *k)
{
	hfm_buf_json_str(out, k);
	hfm_buf_putc(out, ':');
}

static void key_u64(struct hfm_buf *out, const char *k, uint64_t v)
{
	hfm_buf_putc(out, ',');
	key(out, k);
	hfm_buf_put_u64(out, v);
}

void hfm_imp_report_json(struct hfm_buf *out, const struct hfm_imp_job *job, const char *error)
{
	char hex[GIT_OID_HEXSZ + 1];
	size_t i, n;

	hfm_buf_putc(out, '{');
	key(out, "source");
	hfm_buf_json_str(out, job->source ? job->source : "");
	if (job->id.name[0]) {
		hfm_buf_putc(out, ',');
		key(out, "repo");
		hfm_buf_json_str(out, job->id.name);
		hfm_buf_putc(out, ',');
		key(out, "type");
		hfm_buf_json_str(out, hfm_repo_type_name(job->id.type));
	}
	if (error) {
		hfm_buf_putc(out, ',');
		key(out, "error");
		hfm_buf_json_str(out, error);
		hfm_buf_puts(out, ",\"complete\":false}");
		return;
	}
	hfm_buf_putc(out, ',');
	key(out, "mirror");
	hfm_buf_json_str(out, job->mirror_path);
	hfm_buf_puts(out, ",\"refs\":{");
	for (i = 0; i < job->nrefs; i++) {
		if (i)
			hfm_buf_putc(out, ',');
		key(out, job->refs[i].name);
		git_oid_tostr(hex, sizeof(hex), &job->refs[i].target);
		hfm_buf_json_str(out, hex);
	}
	hfm_buf_putc(out, '}');
	if (job->kind == HFM_IMP_SRC_CLONE)
		key_u64(out, "git_objects", job->git_objects);
	key_u64(out, "refs_new", job->refs_new);
	key_u64(out, "refs_moved", job->refs_moved);
	key_u64(out, "objects_linked", job->linked);
	key_u64(out, "objects_copied", job->copied);
	key_u64(out, "objects_present", job->present);
	key_u64(out, "bytes", job->bytes);
	hfm_buf_puts(out, ",\"missing\":[");
	for (i = 0, n = 0; i < job->lfs.n; i++) {
		const struct hfm_imp_lfs *e = &job->lfs.v[i];

		if (e->state != HFM_IMP_LFS_MISSING && e->state != HFM_IMP_LFS_PENDING)
			continue;
		if (n++)
			hfm_buf_putc(out, ',');
		hfm_buf_putc(out, '{');
		key(out, "oid");
		hfm_buf_json_str(out, e->oid);
		key_u64(out, "size", e->size);
		hfm_buf_putc(out, ',');
		key(out, "path");
		hfm_buf_json_str(out, e->where);
		hfm_buf_putc(out, '}');
	}
	hfm_buf_puts(out, "],\"corrupt\":[");
	for (i = 0; i < job->ncorrupt; i++) {
		if (i)
			hfm_buf_putc(out, ',');
		hfm_buf_putc(out, '{');
		key(out, "oid");
		hfm_buf_json_str(out, job->corrupt[i].oid);
		hfm_buf_putc(out, ',');
		key(out, "path");
		hfm_buf_json_str(out, job->corrupt[i].path);
		hfm_buf_putc(out, ',');
		key(out, "reason");
		hfm_buf_json_str(out, job->corrupt[i].reason);
		hfm_buf_putc(out, '}');
	}
	hfm_buf_puts(out, "],\"complete\":");
	hfm_buf_puts(out, hfm_imp_job_missing(job) ? "false}" : "true}");
}
