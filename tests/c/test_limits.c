/* Metadata and hourly rate limits through the installed library:
 * hk_last_metadata and hk_last_rate after hk_validate, per thread, and the
 * conventions they keep (snprintf-style lengths, outputs written only on
 * success, the last error left alone). hk_credential keeps its size. */
#include <pthread.h>

#include "common.h"

/* Existing binaries allocate hk_credential: its size is part of the ABI. */
_Static_assert(sizeof(hk_credential) == 5224, "hk_credential changed size");
_Static_assert(sizeof(hk_rate) == 24, "hk_rate is three int64_t");
_Static_assert(HK_METADATA_MAX == 4097, "4096 bytes of metadata and a NUL");
_Static_assert(HK_ERR_NO_RATE_LIMIT == -9, "stable error value");
_Static_assert(HK_STATUS_RATE_LIMITED == 9 && HK_STATUS_IP_DENIED == 10, "stable status values");

static const char *metadata(void) {
    static char buf[HK_METADATA_MAX];
    size_t n = hk_last_metadata(buf, sizeof buf);
    CHECK(n == strlen(buf));
    return buf;
}

static void test_limited_key(hk_validator *v) {
    const char *key = env("HK_T_LIMITED_KEY");
    long long limit = env_ll("HK_T_LIMIT");
    const char *expected = env("HK_T_METADATA");
    hk_credential cred;
    hk_rate rate;

    for (long long i = 1; i <= limit; i++) {
        CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, &cred), HK_STATUS_VALID);
        memset(&rate, 0x5a, sizeof rate);
        CHECK(hk_last_rate(&rate) == HK_OK);
        CHECK(rate.limit == limit);
        CHECK(rate.remaining == limit - i);
        CHECK(rate.retry_after == -1);
        CHECK(strcmp(metadata(), expected) == 0);
    }
    /* Over the limit: 429 with Retry-After until the next clock hour. */
    for (int i = 0; i < 2; i++) {
        CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_RATE_LIMITED);
        CHECK(hk_status_http(HK_STATUS_RATE_LIMITED) == 429);
        CHECK(hk_last_rate(&rate) == HK_OK);
        CHECK(rate.limit == limit && rate.remaining == 0);
        CHECK(rate.retry_after >= 1 && rate.retry_after <= 3600);
        /* The refused key is still matched: its metadata is there. */
        CHECK(strcmp(metadata(), expected) == 0);
        /* The accessors leave the validation's message in place. */
        char want[128];
        snprintf(want, sizeof want, "Rate limit of %lld requests per hour exceeded.", limit);
        CHECK(strcmp(last_error(), want) == 0);
    }
    if (hk_failures) {
        fprintf(stderr, "last: %lld/%lld/%lld, metadata %s\n", (long long)rate.limit,
                (long long)rate.remaining, (long long)rate.retry_after, metadata());
    }
}

static void test_unlimited_key(hk_validator *v) {
    const char *key = env("HK_T_API_KEY");
    hk_rate rate = {7, 7, 7};
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_VALID);
    CHECK(hk_last_rate(&rate) == HK_ERR_NO_RATE_LIMIT);
    CHECK(rate.limit == 7 && rate.remaining == 7 && rate.retry_after == 7); /* untouched */
    CHECK(hk_last_metadata(NULL, 0) == 0);
    CHECK(strcmp(metadata(), "") == 0);
    CHECK(strcmp(last_error(), "") == 0); /* a failing hk_last_rate sets no error */

    /* Not found, malformed: nothing matched, nothing to report. */
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_UNKNOWN_KEY"), NULL, 0, NULL),
                 HK_STATUS_NOT_FOUND);
    CHECK(hk_last_rate(&rate) == HK_ERR_NO_RATE_LIMIT);
    CHECK(strcmp(metadata(), "") == 0);
}

static void test_conventions(hk_validator *v) {
    const char *key = env("HK_T_LIMITED_KEY");
    const char *expected = env("HK_T_METADATA");
    size_t full = strlen(expected);
    /* Over the limit by now, still matched. */
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_RATE_LIMITED);
    CHECK(hk_last_metadata(NULL, 0) == full);
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(hk_last_metadata(small, sizeof small) == full); /* >= len: cut */
    CHECK(small[7] == '\0' && strncmp(small, expected, 7) == 0);
    CHECK(hk_last_rate(NULL) == HK_ERR_INVALID_ARGUMENT);
    /* A NULL validator forgets the previous validation. */
    CHECK_STATUS(validate(NULL, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_UNAVAILABLE);
    hk_rate rate;
    CHECK(hk_last_rate(&rate) == HK_ERR_NO_RATE_LIMIT);
    CHECK(hk_last_metadata(NULL, 0) == 0);
}

struct thread_arg {
    hk_validator *v;
    int rc;
    size_t metadata_len;
};

static void *other_thread(void *p) {
    struct thread_arg *a = p;
    hk_rate rate;
    /* Nothing validated on this thread yet. */
    a->rc = hk_last_rate(&rate);
    a->metadata_len = hk_last_metadata(NULL, 0);
    if (validate(a->v, HK_KIND_API_KEY, env("HK_T_API_KEY"), NULL, 0, NULL) != HK_STATUS_VALID) {
        a->rc = 1;
    }
    return NULL;
}

static void test_per_thread(hk_validator *v) {
    const char *key = env("HK_T_LIMITED_KEY");
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_RATE_LIMITED);
    struct thread_arg a = {v, 0, 99};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, &a) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(a.rc == HK_ERR_NO_RATE_LIMIT && a.metadata_len == 0);
    /* This thread's last validation is unchanged by the other's. */
    hk_rate rate;
    CHECK(hk_last_rate(&rate) == HK_OK && rate.remaining == 0);
    CHECK(strcmp(metadata(), env("HK_T_METADATA")) == 0);
}

int main(void) {
    hk_options opts = hk_options_default();
    opts.poll_interval_ms = 100;
    hk_validator *v = open_or_die(env("HK_T_DSN"), &opts);
    test_limited_key(v);
    test_unlimited_key(v);
    test_conventions(v);
    test_per_thread(v);
    hk_validator_free(v);
    return finish("test_limits");
}
