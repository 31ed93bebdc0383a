/* A revocation made by another process (`keygen api:revoke`) is seen by
 * this process's cached validator through the change feed. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "common.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int main(void) {
    const char *key = env("HK_T_REVOKE_KEY");
    const char *command = env("HK_T_REVOKE_CMD");
    /* Limit: 1 s target + slack for a slow (valgrind) run. */
    const double limit_ms = getenv("HK_T_REVOKE_LIMIT_MS") ? atof(getenv("HK_T_REVOKE_LIMIT_MS"))
                                                            : 3000.0;
    hk_validator *v = open_or_die(env("HK_T_DSN"), NULL); /* default 500 ms poll */
    /* Until the poller has read the feed once, a revocation committed now
     * could predate the position it starts from; the cache then does not
     * trust its entries and asks the store (refused, but not through the
     * feed: no eviction to count). Under valgrind that first poll is slow.
     * This test is about the feed, so it starts once the feed is read. */
    hk_stats started;
    for (int i = 0; i < 500; i++) {
        CHECK(hk_validator_stats(v, &started) == 0);
        if (started.feed_polls >= 1) break;
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    CHECK(started.feed_polls >= 1);

    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_VALID);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_VALID);
    hk_stats before;
    CHECK(hk_validator_stats(v, &before) == 0);
    CHECK(before.cache_hits >= 1); /* the positive answer is cached */

    fflush(NULL);
    CHECK(system(command) == 0);
    double revoked_at = now_ms();

    hk_status s = HK_STATUS_VALID;
    double waited = 0;
    struct timespec pause = {0, 10 * 1000 * 1000};
    while (waited < limit_ms + 2000) {
        s = validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL);
        waited = now_ms() - revoked_at;
        if (s != HK_STATUS_VALID) break;
        nanosleep(&pause, NULL);
    }
    CHECK_STATUS(s, HK_STATUS_REVOKED);
    CHECK(waited <= limit_ms);
    printf("test_revocation: revocation seen after %.0f ms (limit %.0f ms)\n", waited, limit_ms);
    hk_stats after;
    CHECK(hk_validator_stats(v, &after) == 0);
    /* Seen through the feed (the entry evicted), or, when the feed was not
     * fresh enough to vouch for the cached entry (a slow valgrind run
     * misses its poll deadline), through the store: the cache fails
     * closed. Either way a path that could not have seen the revocation
     * did not answer. */
    CHECK(after.feed_evictions >= 1 || after.store_queries > before.store_queries);
    printf("test_revocation: seen through %s\n",
           after.feed_evictions >= 1 ? "the feed (evicted)" : "the store (the feed was not fresh)");
    hk_validator_free(v);
    return finish("test_revocation");
}
