/* Several threads validating through one handle: every answer right, the
 * per-thread error message really per thread, and the counters add up. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

#define THREADS 8

static hk_validator *shared;
static int rounds = 500;
static atomic_int wrong = 0;

struct job {
    int id;
};

static void *worker(void *arg) {
    const struct job *job = arg;
    const char *api = env("HK_T_API_KEY");
    const char *ai = env("HK_T_AI_TOKEN");
    const char *unknown = env("HK_T_UNKNOWN_KEY");
    const char *need_delete[] = {"delete"};
    char buf[512];
    for (int i = 0; i < rounds; i++) {
        hk_credential cred;
        if (validate(shared, HK_KIND_API_KEY, api, NULL, 0, &cred) != HK_STATUS_VALID ||
            cred.key_id != env_ll("HK_T_API_ID"))
            atomic_fetch_add(&wrong, 1);
        if (validate(shared, HK_KIND_AI_TOKEN, ai, NULL, 0, NULL) != HK_STATUS_VALID)
            atomic_fetch_add(&wrong, 1);
        if (validate(shared, HK_KIND_API_KEY, unknown, NULL, 0, NULL) != HK_STATUS_NOT_FOUND)
            atomic_fetch_add(&wrong, 1);
        /* Each thread's own last failure: odd threads a scope failure, even
         * threads a malformed key, then check its message on this thread. */
        if (job->id % 2) {
            if (validate(shared, HK_KIND_API_KEY, api, need_delete, 1, NULL) !=
                HK_STATUS_FORBIDDEN)
                atomic_fetch_add(&wrong, 1);
            hk_last_error_message(buf, sizeof buf);
            if (strstr(buf, "delete") == NULL) atomic_fetch_add(&wrong, 1);
        } else {
            if (validate(shared, HK_KIND_API_KEY, "hk_api_nope", NULL, 0, NULL) !=
                HK_STATUS_MALFORMED)
                atomic_fetch_add(&wrong, 1);
            hk_last_error_message(buf, sizeof buf);
            if (strstr(buf, "format") == NULL) atomic_fetch_add(&wrong, 1);
        }
    }
    return NULL;
}

int main(void) {
    const char *r = getenv("HK_T_THREAD_ROUNDS");
    if (r != NULL && atoi(r) > 0) rounds = atoi(r);
    shared = open_or_die(env("HK_T_DSN"), NULL);
    pthread_t threads[THREADS];
    struct job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t].id = t;
        CHECK(pthread_create(&threads[t], NULL, worker, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(threads[t], NULL) == 0);
    CHECK(atomic_load(&wrong) == 0);
    if (atomic_load(&wrong) != 0) fprintf(stderr, "%d wrong answers\n", atomic_load(&wrong));

    hk_stats stats;
    CHECK(hk_validator_stats(shared, &stats) == 0);
    CHECK(stats.validations == (uint64_t)THREADS * (uint64_t)rounds * 4u);
    CHECK(stats.cache_hits + stats.cache_misses + (uint64_t)THREADS * (uint64_t)rounds / 2u ==
          stats.validations); /* malformed keys never reach the cache */
    CHECK(stats.cache_misses <= 3u * THREADS); /* the cache serves the rest */
    CHECK(hk_validator_flush(shared, 20000) == 0);
    CHECK(hk_validator_stats(shared, &stats) == 0);
    CHECK(stats.usage_written + stats.usage_dropped == stats.validations);
    hk_validator_free(shared);
    return finish("test_threads");
}
