/*
 * stage.h - where a bundle import puts what it verified before it publishes
 * anything: <store>/tmp/bundle-staging/, on the store's filesystem so that
 * publishing is a rename.
 *
 *   lock                 flock: one bundle import at a time in a store
 *   objects/<2 hex>/<oid>  an object that hashed to its id
 *   sha256/<sha256>      a metadata file or a git pack that hashed to the
 *                        manifest's digest
 *   durable              the names above that were on disk (syncfs) when
 *                        written here, one a line
 *   git/                 scratch repositories for indexing packs
 *
 * An entry is written under its name and hashed as it is written; one that
 * does not match its id is removed.  A name that `durable` does not list
 * is never trusted (it is hashed again first: see hfm_imp_stage_check), so
 * neither a file a killed run left half written nor one it did not get to
 * verify is ever published.
 *
 * Staged entries are named by their content, so any bundle that carries the
 * same content uses them: an import refused half way (a truncated stream, a
 * missing volume) and retried with the same bundle, or with a new export of
 * the same repos, reads again only what it had not verified.
 *
 * Entries are verified by a pool of worker threads: the reading thread
 * writes each entry, in pieces of CHUNK bytes from a fixed set of buffers,
 * and hands each piece to the entry's worker, which hashes it; so hashing
 * runs beside the reading and writing (a large entry's too), entries are
 * verified in parallel across cores while the payload is read in order,
 * and memory is bounded.  Nothing is renamed here: a rename per entry costs
 * more than the entry's write on a busy directory.  A later run trusts a
 * staged file without reading it again if `durable` lists it (the
 * checkpoint makes it so), and hashes it again otherwise (it was written
 * after the last checkpoint, and a crash of the machine could have lost
 * it).  The staging area is removed after a publish; one left by a refused
 * or interrupted import is used by the next bundle import, unless it was
 * last used more than a week before (then it is removed).
 *
 * Threads: one thread calls everything here; the workers are internal.
 */
#ifndef HFM_IMP_STAGE_H
#define HFM_IMP_STAGE_H

#include <stdint.h>

#include "hfm/bundle.h"
#include "hfm/store.h"

#define HFM_IMP_STAGE_CHUNK ((size_t)256 << 10)

struct hfm_imp_stage;

/*
 * Open (create) the store's staging area and start `workers` (0: one per
 * CPU).  Waits for another bundle import into the store to end.
 */
int hfm_imp_stage_open(struct hfm_imp_stage **out, struct hfm_store *store, unsigned workers);
/* Stop the workers; `remove`: delete the staging area (after a publish). */
void hfm_imp_stage_free(struct hfm_imp_stage *st, int remove);

/* Where `it` is staged, relative to the staging directory ("objects/<oid>", "sha256/<digest>"). */
#define HFM_IMP_STAGE_KEY_MAX 80
void hfm_imp_stage_key(char out[HFM_IMP_STAGE_KEY_MAX], const struct hfm_bundle_item *it);

/* The staging directory's fd and path. */
int hfm_imp_stage_fd(const struct hfm_imp_stage *st);
const char *hfm_imp_stage_path(const struct hfm_imp_stage *st);
unsigned hfm_imp_stage_workers(const struct hfm_imp_stage *st);

/*
 * Is `it` staged already, with its size?  *trusted when `durable` lists it;
 * otherwise it is hashed again now (0 and *staged = 0 if it fails: removed).
 */
int hfm_imp_stage_check(struct hfm_imp_stage *st, const struct hfm_bundle_item *it, int *staged);

/*
 * Stream one entry: begin (with `where` for messages: the volume it starts
 * in), then buffers from hfm_imp_stage_buffer() filled and handed back with
 * push, then end (`where`, may be NULL: the volumes it spans, for the
 * verdict's message).  Errors of the workers come back from any later call.
 */
int hfm_imp_stage_begin(struct hfm_imp_stage *st, const struct hfm_bundle_item *it,
			const char *where);
unsigned char *hfm_imp_stage_buffer(struct hfm_imp_stage *st);
int hfm_imp_stage_push(struct hfm_imp_stage *st, unsigned char *buf, size_t n);
int hfm_imp_stage_end(struct hfm_imp_stage *st, const char *where);
/* Wait until every entry handed over is verified; the first failure, if any. */
int hfm_imp_stage_drain(struct hfm_imp_stage *st);

/*
 * Make what was verified durable and record it (see above).  _start does it
 * on a thread of its own while the caller reads on (the syncfs waits for the
 * disk; the reading need not): it first waits for the one before, and gives
 * that one's failure.  hfm_imp_stage_checkpoint() waits for it too, then
 * makes durable what is left, before it returns.
 */
int hfm_imp_stage_checkpoint_start(struct hfm_imp_stage *st);
int hfm_imp_stage_checkpoint(struct hfm_imp_stage *st);

/* Remove a directory tree (rm -rf; symlinks are not followed); errors ignored. */
void hfm_imp_stage_rmtree(const char *path);

#endif
