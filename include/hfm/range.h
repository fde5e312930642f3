/*
 * range.h - the HTTP Range header, as Hub clients use it.
 *
 * Only single byte ranges are honoured (`a-b`, `a-`, `-n`), which is all any
 * Hub client sends.  Following RFC 9110 §14.2, a header we do not honour
 * (another unit, bad syntax, `5-2`, several ranges) is ignored and the whole
 * file is sent with 200; a valid range that starts past the end is
 * unsatisfiable (416 with `Content-Range: bytes * /size`, without the space).
 */
#ifndef HFM_RANGE_H
#define HFM_RANGE_H

#include <stdint.h>

enum hfm_range_kind {
	HFM_RANGE_NONE = 0,        /* no header, or one we ignore: 200, full body */
	HFM_RANGE_PARTIAL,         /* 206 with [start, start+len) */
	HFM_RANGE_UNSATISFIABLE,   /* 416 */
	HFM_RANGE_EMPTY_FILE,      /* valid range on a 0-byte file: 200 + bytes * /0 */
};

/*
 * Parse `header` (may be NULL) against a representation of `size` bytes.
 * For HFM_RANGE_PARTIAL, *start and *len describe the bytes to send
 * (len >= 1, start + len <= size).
 */
enum hfm_range_kind hfm_range_parse(const char *header, uint64_t size,
				    uint64_t *start, uint64_t *len);

#endif
