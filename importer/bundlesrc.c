/* bundlesrc.c - import a bundle: verify everything, then publish (bundlesrc.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundlesrc.h"
#include "hfm/progress.h"

#define CHECKPOINT_BYTES ((uint64_t)1 << 30)
#define BASE_SHOWN 5

/* ---- probing -------------------------------------------------------------------- */

int hfm_imp_bundle_probe(const char *path)
{
	unsigned char block[HFM_TAR_BLOCK];
	struct hfm_tar_hdr h;
	struct stat st;
	char head[16] = "";
	int fd, is = 0;

	if (!strcmp(path, "-"))
		return 1;
	if (stat(path, &st) < 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		char *m = hfm_asprintf("%s/manifest", path);

		fd = open(m, O_RDONLY | O_CLOEXEC);
		free(m);
		if (fd >= 0) {
			is = read(fd, head, 16) == 16 && !memcmp(head, "hfmirror-bundle ", 16);
			close(fd);
		}
		return is;
	}
	if (!S_ISREG(st.st_mode) || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	is = read(fd, block, sizeof(block)) == (ssize_t)sizeof(block) &&
	     hfm_tar_parse(&h, block) == 0 && h.type == HFM_TAR_FILE && !strcmp(h.name, "manifest");
	close(fd);
	hfm_error_clear();
	return is;
}

/* ---- lookups ---------------------------------------------------------------------- */

static int cmp_item(const void *a, const void *b)
{
	return strcmp((*(struct hfm_bundle_item *const *)a)->name,
		      (*(struct hfm_bundle_item *const *)b)->name);
}

/* The manifest item named `name`, or NULL. */
static struct hfm_bundle_item *bundle_item(const struct hfm_imp_bundle *b, const char *name)
{
	struct hfm_bundle_item key = { .name = (char *)name }, *kp = &key, **hit;

	hit = b->m->nitems ? bsearch(&kp, b->byname, b->m->nitems, sizeof(*b->byname), cmp_item)
			   : NULL;
	return hit ? *hit : NULL;
}

static size_t item_index(const struct hfm_imp_bundle *b, const struct hfm_bundle_item *it)
{
	return (size_t)(it - b->m->items);
}

/* ---- the plan --------------------------------------------------------------------- */

/* Is a cached metadata file of the store the same as the item? */
static int meta_present(const struct hfm_imp_bundle *b, const struct hfm_bundle_item *it)
{
	const struct hfm_bundle_repo *r = &b->m->repos[it->repo];
	char *rel = hfm_asprintf("meta/%s/%s/%s", hfm_repo_type_plural(r->id.type), r->id.name,
				 it->relpath);
	char sha[HFM_SHA256_HEX + 1];
	struct stat st;
	int fd = openat(b->store->root_fd, rel, O_RDONLY | O_CLOEXEC), same = 0;

	free(rel);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == it->size &&
	    hfm_hash_fd(fd, it->size, NULL, sha, NULL) == 0)
		same = !strcmp(sha, it->digest);
	close(fd);
	hfm_error_clear();
	return same;
}

static int object_present(const struct hfm_imp_bundle *b, const char *oid, uint64_t size)
{
	uint64_t have;
	int fd;

	if (hfm_store_object_open(&fd, &have, b->store, oid))
		return 0;
	close(fd);
	return have == size;
}

/* What each entry needs: the store has it, an earlier run staged it, or it must be read. */
static int plan_items(struct hfm_imp_bundle *b)
{
	struct hfm_bundle_manifest *m = b->m;
	int rc = 0;

	b->state = hfm_calloc(m->nitems + 1, sizeof(*b->state));
	b->byname = hfm_calloc(m->nitems + 1, sizeof(*b->byname));
	for (size_t i = 0; i < m->nitems; i++)
		b->byname[i] = &m->items[i];
	qsort(b->byname, m->nitems, sizeof(*b->byname), cmp_item);
	for (size_t i = 0; i < m->nitems && !rc; i++) {
		const struct hfm_bundle_item *it = &m->items[i];
		int staged;

		if ((it->kind == HFM_BUNDLE_OBJECT && object_present(b, it->digest, it->size)) ||
		    (it->kind == HFM_BUNDLE_META && meta_present(b, it))) {
			b->state[i] = HFM_IMP_ITEM_PRESENT;
			continue;
		}
		if ((rc = hfm_imp_stage_check(b->st, it, &staged)))
			break;
		if (staged) {
			b->state[i] = HFM_IMP_ITEM_STAGED;
			b->staged_before++;
		} else {
			b->need++;
			b->need_bytes += it->size;
		}
	}
	return rc;
}

/* A cache commit's metadata: in the bundle or in the store. */
static int commit_meta_here(const struct hfm_imp_bundle *b, const struct hfm_bundle_repo *r,
			    const char *sha, const char *file)
{
	char *name = hfm_asprintf("meta/%s/%s/commits/%s/%s", hfm_repo_type_plural(r->id.type),
				  r->id.name, sha, file);
	struct stat st;
	int here = bundle_item(b, name) ||
		   fstatat(b->store->root_fd, name, &st, 0) == 0;

	free(name);
	return here;
}

/*
 * Everything the manifest relies on and does not carry must be in the
 * store already: the base of an incremental bundle.  Checked before a byte
 * of the payload is read.
 */
static int check_base(struct hfm_imp_bundle *b)
{
	const struct hfm_bundle_manifest *m = b->m;
	struct hfm_buf shown = HFM_BUF_INIT(8192);
	size_t lacking = 0;
	int rc = 0;

	for (size_t i = 0; i < m->nrepos; i++) {
		const struct hfm_bundle_repo *r = &m->repos[i];

		for (size_t j = 0; j < r->nrevs; j++) {
			size_t k;

			if (r->kind == HFM_BUNDLE_GIT)
				continue;            /* a ref's target: checked in the pack */
			for (k = 0; k < r->ncommits && strcmp(r->commits[k].sha, r->revs[j].commit); k++)
				;
			if (k == r->ncommits)
				return hfm_error_set(HFM_EINVAL, "the manifest is inconsistent: %s@%s "
						     "names commit %s, which it does not describe",
						     r->id.name, r->revs[j].name, r->revs[j].commit);
		}
		for (size_t j = 0; j < r->ncommits; j++) {
			const struct hfm_bundle_commit *c = &r->commits[j];

			if (r->kind == HFM_BUNDLE_CACHE &&
			    (!commit_meta_here(b, r, c->sha, "info.json") ||
			     !commit_meta_here(b, r, c->sha, "tree.json"))) {
				if (lacking++ < BASE_SHOWN)
					hfm_buf_printf(&shown, "\n  %s@%.12s: its file list (tree.json, "
						       "info.json)", r->id.name, c->sha);
			}
			for (size_t k = 0; k < c->nfiles; k++) {
				const struct hfm_bundle_file *f = &c->files[k];
				const char *oid = hfm_bundle_file_object(r, f);
				struct hfm_buf name = HFM_BUF_INIT(128);
				const struct hfm_bundle_item *it;

				if (!oid)
					continue;
				hfm_buf_printf(&name, "objects/%s", oid);
				it = bundle_item(b, name.ptr);
				hfm_buf_dispose(&name);
				if (it && it->size != f->size) {
					rc = hfm_error_set(HFM_EINVAL, "the manifest is inconsistent: "
							   "object %s has %llu bytes, %s@%.12s:%s %llu",
							   oid, (unsigned long long)it->size, r->id.name,
							   c->sha, f->path, (unsigned long long)f->size);
					goto out;
				}
				if (it || object_present(b, oid, f->size))
					continue;
				if (lacking++ < BASE_SHOWN)
					hfm_buf_printf(&shown, "\n  %s@%.12s: %s (object %.16s…, %llu bytes)",
						       r->id.name, c->sha, f->path, oid,
						       (unsigned long long)f->size);
			}
		}
	}
	if (!lacking)
		goto out;
	if (lacking > BASE_SHOWN)
		hfm_buf_printf(&shown, "\n  ... and %zu more", lacking - BASE_SHOWN);
	if (m->since[0])
		rc = hfm_error_set(HFM_EINVAL, "this bundle is incremental (made since receipt %s) "
				   "and relies on %zu files this store lacks:%s\nimport the bundles "
				   "made before it first, or ask for a full bundle (hfmirror export "
				   "without --since, or --since a receipt of this store)",
				   m->since, lacking, hfm_buf_cstr(&shown));
	else
		rc = hfm_error_set(HFM_EINVAL, "the bundle relies on %zu files it does not carry "
				   "and this store lacks:%s", lacking, hfm_buf_cstr(&shown));
out:
	hfm_buf_dispose(&shown);
	return rc;
}

/* ---- reading the payload ------------------------------------------------------------ */

static void stall_hook(struct hfm_imp_bundle *b, uint64_t read)
{
	static uint64_t stall_at = (uint64_t)-1;
	static int checked;

	if (!checked) {
		const char *s = getenv("HFMIRROR_IMPORT_STALL");

		stall_at = s ? strtoull(s, NULL, 10) : (uint64_t)-1;
		checked = 1;
	}
	if (read < stall_at)
		return;
	/* the tests kill us here: what was verified so far must survive that */
	hfm_imp_stage_drain(b->st);
	hfm_imp_stage_checkpoint(b->st);
	fprintf(stderr, "hfmirror-import: stalled after %llu bytes (HFMIRROR_IMPORT_STALL)\n",
		(unsigned long long)read);
	for (;;)
		pause();
}

/* One member's data into the staging area. */
static int stage_member(struct hfm_imp_bundle *b, const struct hfm_bundle_item *it,
			const char *where, uint64_t *staged_bytes)
{
	uint64_t left = it->size, start = hfm_bundle_in_offset(b->in);
	struct hfm_buf span = HFM_BUF_INIT(512);
	int rc, rrc = 0;

	if ((rc = hfm_imp_stage_begin(b->st, it, where)))
		return rc;
	while (left && !rrc) {
		unsigned char *buf = hfm_imp_stage_buffer(b->st);
		size_t fill = 0, got;

		while (fill < HFM_IMP_STAGE_CHUNK && left) {
			if ((rrc = hfm_bundle_in_read(b->in, buf + fill, HFM_IMP_STAGE_CHUNK - fill,
						      &got)))
				break;
			fill += got;
			left -= got;
		}
		rc = hfm_imp_stage_push(b->st, buf, fill);
		*staged_bytes += fill;
		hfm_progress_bytes(b->progress, it->size - left, it->size);
		if (rc)
			break;
	}
	hfm_bundle_in_span(b->in, start, hfm_bundle_in_offset(b->in), &span);
	if (rrc) {
		/* the reader's message is the one to give: keep it over the workers' */
		char *why = hfm_strdup(hfm_error_last());

		hfm_imp_stage_end(b->st, span.ptr);
		hfm_imp_stage_drain(b->st);
		rc = hfm_error_set(rrc, "%s", why);
		free(why);
	} else if (!rc) {
		rc = hfm_imp_stage_end(b->st, span.ptr);
	}
	hfm_buf_dispose(&span);
	return rc;
}

static int read_payload(struct hfm_imp_bundle *b)
{
	unsigned char *seen = hfm_calloc(b->m->nitems + 1, 1);
	struct hfm_buf where = HFM_BUF_INIT(512);
	uint64_t staged = 0, since_checkpoint = 0;
	size_t missing = 0;
	const char *first_missing = NULL;
	int rc, at_end = 0;

	hfm_progress_phase(b->progress, "verifying", b->need, b->need_bytes);
	for (;;) {
		const struct hfm_bundle_item *it;
		const char *name;
		uint64_t size, before = staged;
		size_t idx;

		hfm_buf_reset(&where);
		hfm_bundle_in_where(b->in, &where);
		rc = hfm_bundle_in_next(b->in, &name, &size);
		if (rc == HFM_ENOENT) {
			rc = hfm_bundle_in_finish(b->in);
			at_end = 1;
			break;
		}
		if (rc)
			break;
		if (!(it = bundle_item(b, name))) {
			rc = hfm_error_set(HFM_EINVAL, "%s: the payload has %s, which the manifest does "
					   "not list (a member of another bundle?)", where.ptr, name);
			break;
		}
		idx = item_index(b, it);
		if (seen[idx]) {
			rc = hfm_error_set(HFM_EINVAL, "%s: %s is in the payload twice", where.ptr, name);
			break;
		}
		seen[idx] = 1;
		if (size != it->size) {
			rc = hfm_error_set(HFM_EINVAL, "%s: %s has %llu bytes, the manifest says %llu",
					   where.ptr, name, (unsigned long long)size,
					   (unsigned long long)it->size);
			break;
		}
		if (b->state[idx] != HFM_IMP_ITEM_NEED)
			continue;            /* the next member skips its bytes */
		hfm_buf_reset(&where);
		hfm_bundle_in_where(b->in, &where);
		hfm_progress_item(b->progress, name, size);
		if ((rc = stage_member(b, it, where.ptr, &staged)))
			break;
		b->state[idx] = HFM_IMP_ITEM_STAGED;
		hfm_progress_item_done(b->progress, "verified");
		/* between entries: the drain there waits for every entry handed over */
		stall_hook(b, hfm_bundle_in_offset(b->in));
		since_checkpoint += staged - before;
		if (since_checkpoint >= CHECKPOINT_BYTES) {
			if ((rc = hfm_imp_stage_checkpoint_start(b->st)))
				break;
			since_checkpoint = 0;
		}
	}
	{
		/*
		 * The workers may still be on the last entries: their verdict counts
		 * too, and names the entry, which a damaged volume found at the end
		 * does not.
		 */
		char *why = rc ? hfm_strdup(hfm_error_last()) : NULL;
		int wrc = hfm_imp_stage_drain(b->st);

		if (rc && !(at_end && wrc))
			hfm_error_set(rc, "%s", why);
		else if (wrc)
			rc = wrc;
		free(why);
		/* an entry failed: name the damaged volume too, if the reader saw one */
		if (rc && hfm_bundle_in_damage(b->in) &&
		    !strstr(hfm_error_last(), hfm_bundle_in_damage(b->in))) {
			why = hfm_strdup(hfm_error_last());
			hfm_error_set(rc, "%s;\n%s", why, hfm_bundle_in_damage(b->in));
			free(why);
		}
	}
	hfm_progress_phase_done(b->progress);
	for (size_t i = 0; !rc && i < b->m->nitems; i++)
		if (b->state[i] == HFM_IMP_ITEM_NEED && !seen[i] && !missing++)
			first_missing = b->m->items[i].name;
	if (!rc && missing)
		rc = hfm_error_set(HFM_EINVAL, "the bundle is incomplete: %zu of the manifest's "
				   "entries are not in its payload (the first: %s)", missing,
				   first_missing);
	free(seen);
	hfm_buf_dispose(&where);
	return rc;
}

/* ---- the run ------------------------------------------------------------------------ */

static void report_grants(const struct hfm_imp_bundle *b)
{
	const struct hfm_grants_merged *g = &b->grants;
	const char *s = b->grants_carried == 1 ? "" : "s";

	if (!b->grants_carried)
		return;
	if (b->opts->no_grants) {
		fprintf(stderr, "  grants: %zu record%s left out (--no-grants)\n", b->grants_carried, s);
		return;
	}
	fprintf(stderr, "  grants: %zu record%s: %zu granted, %zu revoked, %zu already so",
		b->grants_carried, s, g->granted, g->revoked, g->unchanged + g->changed);
	if (b->grants_dropped)
		fprintf(stderr, ", %zu of users not in --grant-users", b->grants_dropped);
	fputc('\n', stderr);
}

static void report_text(const struct hfm_imp_bundle *b)
{
	const struct hfm_bundle_manifest *m = b->m;
	char bytes[24];

	fprintf(stderr, "hfmirror-import: bundle %s (made %s, from %s%s%s) -> %s\n", m->id,
		m->created, m->source, m->since[0] ? ", since receipt " : "", m->since,
		b->store->root);
	if (b->signer[0])
		fprintf(stderr, "  signed by key %s%s\n", b->signer,
			b->trusted ? " (trusted: --trust)" : " (not checked: no --trust)");
	else
		fprintf(stderr, "  unsigned\n");
	for (size_t i = 0; i < m->nrepos; i++) {
		const struct hfm_bundle_repo *r = &m->repos[i];
		const struct hfm_imp_bundle_repo *res = &b->repos[i];

		fprintf(stderr, "  %s (%s, %s): %zu revision%s (%zu new, %zu moved), %zu commit%s",
			r->id.name, hfm_repo_type_name(r->id.type),
			r->kind == HFM_BUNDLE_GIT ? "git mirror" : "cache", r->nrevs,
			r->nrevs == 1 ? "" : "s", res->revs_new, res->revs_moved, r->ncommits,
			r->ncommits == 1 ? "" : "s");
		if (r->kind == HFM_BUNDLE_GIT)
			fprintf(stderr, "; git objects: %zu", res->git_objects);
		fputc('\n', stderr);
	}
	hfm_human_bytes(bytes, sizeof(bytes), b->bytes_new);
	fprintf(stderr, "  objects: %zu new (%s), %zu already in the store; metadata files: %zu",
		b->objects_new, bytes, b->objects_present, b->meta_files);
	if (b->staged_before)
		fprintf(stderr, "; %zu entries verified by an earlier run", b->staged_before);
	fputc('\n', stderr);
	report_grants(b);
}

static void report_json(struct hfm_buf *out, const struct hfm_imp_bundle *b, const char *error)
{
	const struct hfm_bundle_manifest *m = b->m;

	hfm_buf_puts(out, "{\"source\":");
	hfm_buf_json_str(out, b->path);
	if (m) {
		hfm_buf_printf(out, ",\"bundle\":\"%s\",\"created\":\"%s\",\"since\":", m->id, m->created);
		if (m->since[0])
			hfm_buf_printf(out, "\"%s\"", m->since);
		else
			hfm_buf_puts(out, "null");
		hfm_buf_puts(out, ",\"signed_by\":");
		if (b->signer[0])
			hfm_buf_printf(out, "\"%s\"", b->signer);
		else
			hfm_buf_puts(out, "null");
		hfm_buf_printf(out, ",\"trusted\":%s", b->trusted ? "true" : "false");
	}
	if (error) {
		hfm_buf_puts(out, ",\"error\":");
		hfm_buf_json_str(out, error);
		hfm_buf_puts(out, ",\"complete\":false}");
		return;
	}
	hfm_buf_puts(out, ",\"repos\":[");
	for (size_t i = 0; i < m->nrepos; i++) {
		const struct hfm_bundle_repo *r = &m->repos[i];

		hfm_buf_puts(out, i ? ",{\"repo\":" : "{\"repo\":");
		hfm_buf_json_str(out, r->id.name);
		hfm_buf_printf(out, ",\"type\":\"%s\",\"kind\":\"%s\",\"revs\":{",
			       hfm_repo_type_name(r->id.type), r->kind == HFM_BUNDLE_GIT ? "git" : "cache");
		for (size_t j = 0; j < r->nrevs; j++) {
			if (j)
				hfm_buf_putc(out, ',');
			hfm_buf_json_str(out, r->revs[j].name);
			hfm_buf_printf(out, ":\"%s\"", r->revs[j].commit);
		}
		hfm_buf_printf(out, "},\"revs_new\":%zu,\"revs_moved\":%zu,\"commits\":%zu,"
			       "\"git_objects\":%zu}", b->repos[i].revs_new, b->repos[i].revs_moved,
			       r->ncommits, b->repos[i].git_objects);
	}
	hfm_buf_printf(out, "],\"objects_new\":%zu,\"objects_present\":%zu,\"bytes\":%llu,"
		       "\"meta_files\":%zu,\"resumed\":%zu,", b->objects_new,
		       b->objects_present, (unsigned long long)b->bytes_new, b->meta_files,
		       b->staged_before);
	hfm_buf_printf(out, "\"grants\":{\"records\":%zu,\"merged\":%s,\"granted\":%zu,"
		       "\"revoked\":%zu,\"unchanged\":%zu,\"dropped\":%zu},\"complete\":true}",
		       b->grants_carried, b->opts->no_grants ? "false" : "true", b->grants.granted,
		       b->grants.revoked, b->grants.unchanged + b->grants.changed, b->grants_dropped);
}

static int open_and_trust(struct hfm_imp_bundle *b)
{
	struct hfm_buf err = HFM_BUF_INIT(4096);
	const char *text, *sig;
	size_t n, ns;
	int rc;

	if ((rc = hfm_bundle_in_open(&b->in, b->path)))
		return rc;
	text = hfm_bundle_in_manifest(b->in, &n);
	sig = hfm_bundle_in_sig(b->in, &ns);
	if (hfm_bundle_manifest_parse(&b->m, text, n, &err)) {
		rc = hfm_error_set(HFM_EINVAL, "%s: %s", b->path, hfm_buf_cstr(&err));
		goto out;
	}
	if (b->opts->ntrust) {
		if ((rc = hfm_bundle_verify(sig, ns, b->opts->trust, b->opts->ntrust, text, n,
					    b->signer))) {
			char *why = hfm_strdup(hfm_error_last());

			rc = hfm_error_set(rc, "%s: refused: %s", b->path, why);
			free(why);
			goto out;
		}
		b->trusted = 1;
	} else {
		hfm_bundle_sig_key(b->signer, sig, ns);
	}
	if ((rc = hfm_bundle_in_volumes(b->in, b->m))) {
		char *why = hfm_strdup(hfm_error_last());

		rc = hfm_error_set(rc, "%s: %s", b->path, why);
		free(why);
	}
out:
	hfm_buf_dispose(&err);
	return rc;
}

int hfm_imp_bundle_run(const struct hfm_imp_opts *opts, struct hfm_store *store,
		       struct hfm_progress *progress, const char *path, struct hfm_buf *json)
{
	struct hfm_imp_bundle b = { .opts = opts, .store = store, .progress = progress, .path = path };
	int rc, published = 0;
	size_t i;

	if ((rc = open_and_trust(&b)) || (rc = hfm_imp_bundle_grants_check(&b)))
		goto out;
	b.repos = hfm_calloc(b.m->nrepos + 1, sizeof(*b.repos));
	if ((rc = hfm_imp_stage_open(&b.st, store, opts->jobs)))
		goto out;
	if ((rc = plan_items(&b)) || (rc = check_base(&b)))
		goto out;
	if (b.staged_before)
		hfm_progress_say(progress, "resuming: %zu entries were verified by an earlier "
				     "run", b.staged_before);
	if ((rc = read_payload(&b)))
		goto out;
	for (i = 0; i < b.m->nrepos && !rc; i++) {
		struct hfm_buf name = HFM_BUF_INIT(HFM_PATH_MAX);

		if (b.m->repos[i].kind != HFM_BUNDLE_GIT)
			continue;
		hfm_bundle_item_name(&name, b.m, HFM_BUNDLE_PACK, (long)i, NULL, NULL);
		rc = hfm_imp_bundle_git_verify(&b, i, bundle_item(&b, name.ptr));
		hfm_buf_dispose(&name);
	}
	if (rc || (rc = hfm_imp_stage_checkpoint(b.st)))
		goto out;
	/* everything verified: publish */
	published = 1;
	if ((rc = hfm_imp_bundle_publish_objects(&b)))
		goto out;
	for (i = 0; i < b.m->nrepos && !rc; i++)
		rc = b.m->repos[i].kind == HFM_BUNDLE_GIT ? hfm_imp_bundle_git_publish(&b, i)
							  : hfm_imp_bundle_cache_publish(&b, i);
	if (!rc && syncfs(store->root_fd) < 0)
		rc = hfm_error_set(HFM_EIO, "sync %s: %s", store->root, strerror(errno));
out:
	if (rc) {
		char *why = hfm_strdup(hfm_error_last()[0] ? hfm_error_last() : hfm_strerror(rc));

		if (b.st)
			hfm_imp_stage_checkpoint(b.st);  /* what was verified is kept for a retry */
		if (!published)
			hfm_error_set(rc, "%s\nnothing was published; the store is unchanged%s", why,
				      b.st ? " (what was verified is kept for the next attempt)" : "");
		else
			hfm_error_set(rc, "%s\npublishing stopped part way: run the import again to "
				      "finish it", why);
		free(why);
	} else if (opts->display != HFM_SHOW_QUIET) {
		report_text(&b);
	}
	if (json)
		report_json(json, &b, rc ? hfm_error_last() : NULL);
	hfm_imp_stage_free(b.st, rc == 0);
	for (i = 0; b.repos && i < b.m->nrepos; i++)
		free(b.repos[i].pack);
	free(b.repos);
	hfm_imp_bundle_grants_dispose(&b);
	free(b.state);
	free(b.byname);
	hfm_bundle_manifest_free(b.m);
	hfm_bundle_in_free(b.in);
	return rc;
}
