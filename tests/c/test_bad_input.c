/* Hostile and careless input: NULL pointers, key_len not matching the
 * string, embedded NUL, non-UTF-8, a 1 MB key, unknown enum values, broken
 * scope arrays. Every case must be answered with a status, never a crash. */
#include "common.h"

static const hk_credential *untouched(hk_credential *c) {
    memset(c, 0x5a, sizeof *c);
    return c;
}

static int is_untouched(const hk_credential *c) {
    const unsigned char *p = (const unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++)
        if (p[i] != 0x5a) return 0;
    return 1;
}

int main(void) {
    const char *api = env("HK_T_API_KEY");
    const size_t len = strlen(api);
    hk_validator *v = open_or_die(env("HK_T_DSN"), NULL);
    hk_credential cred;

    /* NULL handle, NULL key (with and without a length) */
    untouched(&cred);
    CHECK_STATUS(hk_validate(NULL, HK_KIND_API_KEY, api, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_UNAVAILABLE);
    CHECK(strstr(last_error(), "NULL") != NULL);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, NULL, 0, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, NULL, 53, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK(is_untouched(&cred));

    /* key_len is authoritative: a prefix of a real key, or the key plus the
     * bytes that follow it in the same buffer, are both malformed. */
    char buf[256];
    snprintf(buf, sizeof buf, "%sXYZ trailing bytes", api);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, buf, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_VALID);
    untouched(&cred);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, buf, len - 1, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, buf, len + 3, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, buf, strlen(buf), NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    /* the terminating NUL counted in key_len */
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len + 1, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK(is_untouched(&cred));

    /* embedded NUL: same length as a key, NUL in the middle */
    char nul[64];
    memcpy(nul, api, len);
    nul[10] = '\0';
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, nul, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, nul, len), HK_STATUS_MALFORMED);

    /* non-UTF-8: invalid bytes where the body should be */
    char bad[64];
    memcpy(bad, api, len);
    bad[15] = (char)0xff;
    bad[16] = (char)0xc3;
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, bad, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    /* valid UTF-8 but not ASCII, same byte length */
    memcpy(bad, api, len);
    bad[15] = (char)0xc3;
    bad[16] = (char)0xa9; /* é */
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, bad, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK(is_untouched(&cred));

    /* 1 MB: garbage, and a real key followed by 1 MB of bytes */
    const size_t big = 1024 * 1024;
    char *huge = malloc(big);
    CHECK(huge != NULL);
    if (huge != NULL) {
        memset(huge, 'a', big);
        CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, huge, big, NULL, 0, NULL, NULL, &cred),
                     HK_STATUS_MALFORMED);
        memcpy(huge, api, len);
        CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, huge, big, NULL, 0, NULL, NULL, &cred),
                     HK_STATUS_MALFORMED);
        CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, huge, big), HK_STATUS_MALFORMED);
        CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, huge, len, NULL, 0, NULL, NULL, NULL),
                     HK_STATUS_VALID);
        free(huge);
    }
    CHECK(is_untouched(&cred));

    /* enum values C can pass but the API does not define */
    CHECK_STATUS(hk_validate(v, (hk_kind)0, api, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_validate(v, (hk_kind)3, api, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_validate(v, (hk_kind)0xffffffffu, api, len, NULL, 0, NULL, NULL, &cred),
                 HK_STATUS_MALFORMED);
    CHECK(strstr(last_error(), "unknown kind") != NULL);
    CHECK_STATUS(hk_check_format((hk_kind)7, api, len), HK_STATUS_MALFORMED);
    CHECK(strcmp(hk_status_name((hk_status)0xffffffffu), "unknown") == 0);

    /* broken scope arrays fail closed (forbidden), even for a valid key */
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, NULL, 2, NULL, NULL, &cred),
                 HK_STATUS_FORBIDDEN);
    const char *with_null[] = {"read", NULL};
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, with_null, 2, NULL, NULL, &cred),
                 HK_STATUS_FORBIDDEN);
    CHECK(strstr(last_error(), "scopes[1] is NULL") != NULL);
    const char *not_utf8[] = {"r\xff" "ad"};
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, not_utf8, 1, NULL, NULL, &cred),
                 HK_STATUS_FORBIDDEN);
    const char *empty_scope[] = {""};
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, empty_scope, 1, NULL, NULL, &cred),
                 HK_STATUS_FORBIDDEN);
    CHECK(is_untouched(&cred));
    /* scopes may be NULL when there are none */
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, NULL, 0, NULL, NULL, NULL),
                 HK_STATUS_VALID);

    /* odd usage-log details are recorded, not refused */
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, NULL, 0, "\xff\xfe not an ip",
                             "/\xc3(bad utf-8", NULL),
                 HK_STATUS_VALID);
    char long_endpoint[4096];
    memset(long_endpoint, 'e', sizeof long_endpoint - 1);
    long_endpoint[sizeof long_endpoint - 1] = '\0';
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, len, NULL, 0, long_endpoint,
                             long_endpoint, NULL),
                 HK_STATUS_VALID);

    /* other entry points with NULL */
    CHECK(hk_validator_flush(NULL, 0) == HK_ERR_INVALID_ARGUMENT);
    CHECK(hk_validator_stats(NULL, NULL) == HK_ERR_INVALID_ARGUMENT);
    CHECK(hk_last_error_message(NULL, 100) > 0); /* NULL buffer: length only */
    CHECK(hk_last_error_detail(NULL, 0) > 0);
    hk_validator_free(NULL);

    CHECK(hk_validator_flush(v, 10000) == 0);
    hk_stats stats;
    CHECK(hk_validator_stats(v, &stats) == 0);
    CHECK(stats.usage_dropped == 0 && stats.usage_written == stats.validations);
    hk_validator_free(v);
    return finish("test_bad_input");
}
