/* range.c - single byte-range parsing (RFC 9110 §14). */
#include <string.h>

#include "hfm/common.h"
#include "hfm/range.h"

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parse decimal digits; -1 if none or on overflow. */
static int parse_u64(const char **pp, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

enum hfm_range_kind hfm_range_parse(const char *header, uint64_t size,
				    uint64_t *start, uint64_t *len)
{
	const char *p;
	uint64_t a = 0, b = 0;
	int has_a, has_b;

	if (!header)
		return HFM_RANGE_NONE;
	p = skip_ows(header);
	if (!hfm_strnieq(p, "bytes", 5))
		return HFM_RANGE_NONE;
	p = skip_ows(p + 5);
	if (*p != '=')
		return HFM_RANGE_NONE;
	p = skip_ows(p + 1);

	has_a = parse_u64(&p, &a) == 0;
	p = skip_ows(p);
	if (*p != '-')
		return HFM_RANGE_NONE;
	p = skip_ows(p + 1);
	has_b = parse_u64(&p, &b) == 0;
	p = skip_ows(p);
	if (*p != '\0')
		return HFM_RANGE_NONE; /* a list or trailing junk: ignore */
	if (!has_a && !has_b)
		return HFM_RANGE_NONE;
	if (has_a && has_b && b < a)
		return HFM_RANGE_NONE; /* invalid: RFC says ignore */

	if (size == 0)
		return HFM_RANGE_EMPTY_FILE;

	if (!has_a) {
		/* suffix: the last b bytes */
		if (b == 0)
			return HFM_RANGE_UNSATISFIABLE;
		if (b > size)
			b = size;
		*start = size - b;
		*len = b;
		return HFM_RANGE_PARTIAL;
	}
	if (a >= size)
		return HFM_RANGE_UNSATISFIABLE;
	if (!has_b || b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return HFM_RANGE_PARTIAL;
}
