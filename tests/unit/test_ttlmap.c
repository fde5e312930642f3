/*
 * Remembered answers that expire: get what was put, replace a key's answer,
 * expiry, a full map replacing slots in turn (never keeping an expired
 * answer), and long keys and messages cut to size.
 */
#include <string.h>
#include <time.h>

#include "hfm/ttlmap.h"
#include "tap.h"

int main(void)
{
	struct hfm_ttlmap *m = hfm_ttlmap_new(4);
	char why[HFM_TTLMAP_WHY_MAX + 1], key[16], big[HFM_TTLMAP_KEY_MAX + 50];
	int rc = 99;

	TAP_OK(!hfm_ttlmap_get(m, "a", &rc, why, sizeof(why)), "empty: nothing");
	hfm_ttlmap_put(m, "a", -3, "upstream answered 500", 60000000000ull);
	TAP_OK(hfm_ttlmap_get(m, "a", &rc, why, sizeof(why)), "put, then get");
	TAP_IS_INT(rc, -3, "the code");
	TAP_IS_STR(why, "upstream answered 500", "the message");
	TAP_OK(!hfm_ttlmap_get(m, "ab", &rc, NULL, 0), "another key: nothing");

	hfm_ttlmap_put(m, "a", 0, NULL, 60000000000ull);
	TAP_OK(hfm_ttlmap_get(m, "a", &rc, why, sizeof(why)) && rc == 0 && !why[0],
	       "a second put replaces the answer (no message)");

	hfm_ttlmap_put(m, "short", -1, "x", 1000000);      /* 1 ms */
	struct timespec ts = { 0, 20000000 };
	nanosleep(&ts, NULL);
	TAP_OK(!hfm_ttlmap_get(m, "short", &rc, NULL, 0), "an expired answer is gone");

	/* 4 slots: six live keys, the first ones are replaced in turn */
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		hfm_ttlmap_put(m, key, i, NULL, 60000000000ull);
	}
	int live = 0;
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		if (hfm_ttlmap_get(m, key, &rc, NULL, 0)) {
			live++;
			TAP_IS_INT(rc, i, "a kept answer is its own (%s)", key);
		}
	}
	TAP_IS_INT(live, 4, "a full map keeps as many answers as it has slots");
	TAP_OK(hfm_ttlmap_get(m, "k5", &rc, NULL, 0), "the newest answer is kept");

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	hfm_ttlmap_put(m, big, 7, big, 60000000000ull);
	TAP_OK(hfm_ttlmap_get(m, big, &rc, why, sizeof(why)) && rc == 7, "a long key is found");
	TAP_IS_INT((int)strlen(why), HFM_TTLMAP_WHY_MAX, "a long message is cut to size");

	hfm_ttlmap_free(m);
	hfm_ttlmap_free(NULL);
	return tap_done();
}
