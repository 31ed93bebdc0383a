/* Shared helpers of the C tests: checks that count, and the fixture read
 * from the environment (set by tests/c/run.sh). */
#ifndef HK_TEST_COMMON_H
#define HK_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <heratio_keys.h>

static int hk_checks = 0;
static int hk_failures = 0;

#define CHECK(cond)                                                                \
    do {                                                                           \
        hk_checks++;                                                               \
        if (!(cond)) {                                                             \
            hk_failures++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                          \
    } while (0)

#define CHECK_STATUS(got, want)                                                    \
    do {                                                                           \
        hk_status got_ = (got);                                                    \
        hk_checks++;                                                               \
        if (got_ != (hk_status)(want)) {                                           \
            hk_failures++;                                                         \
            fprintf(stderr, "%s:%d: %s: got %s, want %s\n", __FILE__, __LINE__,    \
                    #got, hk_status_name(got_), hk_status_name(want));             \
        }                                                                          \
    } while (0)

/* A required fixture variable; exits 2 if it is missing. */
static inline const char *env(const char *name) {
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0') {
        fprintf(stderr, "missing environment variable %s (run tests/c/run.sh)\n", name);
        exit(2);
    }
    return value;
}

static inline long long env_ll(const char *name) { return atoll(env(name)); }

static inline const char *last_error(void) {
    static char buf[1024];
    hk_last_error_message(buf, sizeof buf);
    return buf;
}

/* Validates a NUL-terminated key (its strlen as key_len). */
static inline hk_status validate(hk_validator *v, hk_kind kind, const char *key,
                          const char *const *scopes, size_t n, hk_credential *out) {
    return hk_validate(v, kind, key, strlen(key), scopes, n, "192.0.2.7", "/api/test", out);
}

static inline hk_validator *open_or_die(const char *dsn, const hk_options *opts) {
    hk_validator *v = NULL;
    int rc = hk_validator_open_with(dsn, opts, &v);
    if (rc != 0 || v == NULL) {
        fprintf(stderr, "hk_validator_open_with failed: %d: %s\n", rc, last_error());
        exit(1);
    }
    return v;
}

/* Prints the summary line parsed by run.sh and returns the exit status. */
static inline int finish(const char *program) {
    printf("%s: %d checks, %d failed\n", program, hk_checks, hk_failures);
    return hk_failures == 0 ? 0 : 1;
}

#endif
