/* Validation through the installed library: every status the store can
 * produce, the credential output, error reporting and the offline helpers. */
#include "common.h"

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", HK_VERSION_MAJOR, HK_VERSION_MINOR,
             HK_VERSION_PATCH);
    CHECK(strcmp(expected, HK_VERSION) == 0);
    CHECK(strcmp(hk_version(), HK_VERSION) == 0);
}

static void test_status_helpers(void) {
    static const char *const names[] = {"valid",   "malformed",       "wrong_kind",
                                        "not_found", "revoked",       "expired",
                                        "client_inactive", "forbidden", "unavailable",
                                        "rate_limited", "ip_denied"};
    static const unsigned http[] = {200, 401, 401, 401, 401, 401, 401, 403, 503, 429, 403};
    for (unsigned s = 0; s <= 10; s++) {
        CHECK(strcmp(hk_status_name((hk_status)s), names[s]) == 0);
        CHECK(hk_status_http((hk_status)s) == http[s]);
    }
    CHECK(strcmp(hk_status_name((hk_status)11), "unknown") == 0);
    CHECK(hk_status_http((hk_status)11) == 500);
    CHECK(HK_KIND_API_KEY == 1 && HK_KIND_AI_TOKEN == 2);
    CHECK(HK_STATUS_VALID == 0 && HK_STATUS_UNAVAILABLE == 8);
    CHECK(HK_STATUS_RATE_LIMITED == 9 && HK_STATUS_IP_DENIED == 10);
}

static void test_check_format(void) {
    const char *api = env("HK_T_API_KEY");
    const char *ai = env("HK_T_AI_TOKEN");
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, api, strlen(api)), HK_STATUS_VALID);
    CHECK_STATUS(hk_check_format(HK_KIND_AI_TOKEN, ai, strlen(ai)), HK_STATUS_VALID);
    CHECK_STATUS(hk_check_format(HK_KIND_AI_TOKEN, api, strlen(api)), HK_STATUS_WRONG_KIND);
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, ai, strlen(ai)), HK_STATUS_WRONG_KIND);
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, "hk_api_x", 8), HK_STATUS_MALFORMED);
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, NULL, 53), HK_STATUS_MALFORMED);
    /* The known test vector from the architecture's checksum definition. */
    const char *zeros = "hk_api_00000000000000000000000000000000000000001Wtgbr";
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, zeros, strlen(zeros)), HK_STATUS_VALID);
}

static void test_open_errors(void) {
    hk_validator *v = (hk_validator *)&v; /* sentinel: must stay untouched */
    hk_validator *const sentinel = v;
    CHECK(hk_validator_open(NULL, &v) == HK_ERR_INVALID_ARGUMENT);
    CHECK(v == sentinel);
    CHECK(strstr(last_error(), "dsn is NULL") != NULL);
    CHECK(hk_validator_open("sqlite:/x", NULL) == HK_ERR_INVALID_ARGUMENT);
    CHECK(hk_validator_open("postgres://db/x", &v) == HK_ERR_INVALID_DSN);
    CHECK(v == sentinel);
    CHECK(hk_validator_open("\xff\xfe", &v) == HK_ERR_INVALID_DSN);
    CHECK(hk_validator_open("sqlite:/nonexistent-dir/hk/keys.db", &v) == HK_ERR_UNAVAILABLE);
    CHECK(v == sentinel);
    CHECK(hk_validator_open("mysql://hk:secret-pw@127.0.0.1:1/heratio_keys", &v) ==
          HK_ERR_UNAVAILABLE);
    CHECK(v == sentinel);
    CHECK(strstr(last_error(), "secret-pw") == NULL); /* password masked */

    /* An empty SQLite file has no schema: run `keygen install`. */
    const char *empty = env("HK_T_EMPTY_DSN");
    CHECK(hk_validator_open(empty, &v) == HK_ERR_SCHEMA_OUTDATED);
    CHECK(strstr(last_error(), "keygen install") != NULL);
    CHECK(v == sentinel);

    hk_options bad = hk_options_default();
    bad.usage_queue_capacity = 0;
    CHECK(hk_validator_open_with(env("HK_T_DSN"), &bad, &v) == HK_ERR_INVALID_ARGUMENT);
    CHECK(v == sentinel);
    /* usage_log is an integer, checked: a stray byte is refused */
    bad = hk_options_default();
    bad.usage_log = 2;
    CHECK(hk_validator_open_with(env("HK_T_DSN"), &bad, &v) == HK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "usage_log") != NULL);
    CHECK(v == sentinel);
}

static void test_last_error_message(void) {
    hk_validator *v = NULL;
    CHECK(hk_validator_open("postgres://db/x", &v) != 0);
    size_t full = hk_last_error_message(NULL, 0);
    CHECK(full > 5);
    char small[5];
    memset(small, 'x', sizeof small);
    CHECK(hk_last_error_message(small, sizeof small) == full);
    CHECK(small[4] == '\0' && strlen(small) == 4);
    char big[512];
    CHECK(hk_last_error_message(big, sizeof big) == full && strlen(big) == full);
    /* A successful call clears it. */
    CHECK_STATUS(hk_check_format(HK_KIND_API_KEY, "x", 1), HK_STATUS_MALFORMED);
    hk_validator_free(NULL);
}

static void test_statuses(hk_validator *v) {
    const char *api = env("HK_T_API_KEY");
    const char *ai = env("HK_T_AI_TOKEN");
    hk_credential cred;

    /* valid, with the credential written */
    memset(&cred, 0x5a, sizeof cred);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, api, NULL, 0, &cred), HK_STATUS_VALID);
    CHECK(cred.client_id == env_ll("HK_T_CLIENT_ID"));
    CHECK(cred.key_id == env_ll("HK_T_API_ID"));
    CHECK(cred.expires_at == -1);
    CHECK(cred.kind == HK_KIND_API_KEY);
    CHECK(cred.scope_count == 2);
    CHECK(!cred.name_truncated && !cred.scopes_truncated);
    CHECK(strcmp(cred.name, "production") == 0);
    CHECK(strcmp(cred.scopes, "read,write") == 0);
    CHECK(hk_last_error_message(NULL, 0) == 0);

    /* a second time: served from the cache, same answer */
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, api, NULL, 0, &cred), HK_STATUS_VALID);

    /* required scopes held */
    const char *read_write[] = {"read", "write"};
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, api, read_write, 2, NULL), HK_STATUS_VALID);

    /* scope missing: forbidden, output untouched, message names the scope */
    const char *need_delete[] = {"read", "delete"};
    memset(&cred, 0x5a, sizeof cred);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, api, need_delete, 2, &cred), HK_STATUS_FORBIDDEN);
    CHECK(cred.client_id == 0x5a5a5a5a5a5a5a5aLL);
    CHECK(strstr(last_error(), "delete") != NULL);
    CHECK(hk_status_http(HK_STATUS_FORBIDDEN) == 403);

    /* AI token: valid as an AI token with `*`, wrong kind as an API key */
    memset(&cred, 0, sizeof cred);
    CHECK_STATUS(validate(v, HK_KIND_AI_TOKEN, ai, need_delete, 2, &cred), HK_STATUS_VALID);
    CHECK(cred.key_id == env_ll("HK_T_AI_ID"));
    CHECK(cred.kind == HK_KIND_AI_TOKEN);
    CHECK(strcmp(cred.scopes, "*") == 0 && cred.scope_count == 1);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, ai, NULL, 0, NULL), HK_STATUS_WRONG_KIND);
    CHECK_STATUS(validate(v, HK_KIND_AI_TOKEN, api, NULL, 0, NULL), HK_STATUS_WRONG_KIND);

    /* revoked, expired, unknown */
    memset(&cred, 0x5a, sizeof cred);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_REVOKED_KEY"), NULL, 0, &cred),
                 HK_STATUS_REVOKED);
    CHECK(cred.client_id == 0x5a5a5a5a5a5a5a5aLL);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_EXPIRED_KEY"), NULL, 0, &cred),
                 HK_STATUS_EXPIRED);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_UNKNOWN_KEY"), NULL, 0, &cred),
                 HK_STATUS_NOT_FOUND);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_UNKNOWN_KEY"), NULL, 0, &cred),
                 HK_STATUS_NOT_FOUND); /* cached negative answer */
    CHECK(cred.client_id == 0x5a5a5a5a5a5a5a5aLL);
    CHECK(strstr(last_error(), "Invalid or inactive API key") != NULL);

    /* malformed: bad checksum, bad length, garbage */
    char typo[128];
    snprintf(typo, sizeof typo, "%s", api);
    typo[20] = (char)(typo[20] == 'a' ? 'b' : 'a');
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, typo, NULL, 0, &cred), HK_STATUS_MALFORMED);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, "hk_api_short", NULL, 0, &cred),
                 HK_STATUS_MALFORMED);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, "", NULL, 0, &cred), HK_STATUS_MALFORMED);
    CHECK(strstr(last_error(), "Invalid API key format") != NULL);
    CHECK(cred.client_id == 0x5a5a5a5a5a5a5a5aLL);
}

static void test_stats_and_flush(hk_validator *v) {
    hk_stats stats;
    memset(&stats, 0, sizeof stats);
    CHECK(hk_validator_stats(v, &stats) == 0);
    CHECK(stats.validations == 14); /* every hk_validate call of test_statuses */
    CHECK(stats.cache_hits >= 2);
    CHECK(stats.cache_misses >= 4);
    CHECK(stats.usage_dropped == 0);
    CHECK(hk_validator_flush(v, 10000) == 0);
    CHECK(hk_validator_stats(v, &stats) == 0);
    CHECK(stats.usage_written == stats.validations);
    CHECK(stats.usage_queued == 0 || stats.usage_written + stats.usage_dropped >= stats.validations);
    CHECK(hk_validator_stats(v, NULL) == HK_ERR_INVALID_ARGUMENT);
    CHECK(hk_validator_stats(NULL, &stats) == HK_ERR_INVALID_ARGUMENT);
}

/* Lifecycle states: an IP allowlist (IPv4 and IPv6) and rotated keys. */
static void test_lifecycle(hk_validator *v) {
    const char *allow = env("HK_T_ALLOW_KEY");
    size_t len = strlen(allow);
    hk_credential cred;

    memset(&cred, 0x5a, sizeof cred);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, allow, len, NULL, 0, "192.0.2.7", NULL, &cred),
                 HK_STATUS_VALID);
    CHECK(cred.key_id == env_ll("HK_T_ALLOW_ID"));
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, allow, len, NULL, 0, "2001:db8::5", NULL, NULL),
                 HK_STATUS_VALID);
    /* outside, or no address at all: refused (closed), output untouched */
    memset(&cred, 0x5a, sizeof cred);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, allow, len, NULL, 0, "198.51.100.1", NULL, &cred),
                 HK_STATUS_IP_DENIED);
    CHECK(cred.client_id == 0x5a5a5a5a5a5a5a5aLL);
    CHECK(strstr(last_error(), "not allowed from this IP address") != NULL);
    CHECK(hk_status_http(HK_STATUS_IP_DENIED) == 403);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, allow, len, NULL, 0, "2001:db9::5", NULL, NULL),
                 HK_STATUS_IP_DENIED);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, allow, len, NULL, 0, NULL, NULL, NULL),
                 HK_STATUS_IP_DENIED);
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, allow, len, NULL, 0, "\xff\xfe", NULL, NULL),
                 HK_STATUS_IP_DENIED);
    /* a key without an allowlist is valid from anywhere, and without an IP */
    const char *api = env("HK_T_API_KEY");
    CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, api, strlen(api), NULL, 0, NULL, NULL, NULL),
                 HK_STATUS_VALID);

    /* rotation in its grace: both valid, same name, different ids */
    hk_credential old_cred, new_cred;
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_GRACED_OLD"), NULL, 0, &old_cred),
                 HK_STATUS_VALID);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_GRACED_NEW"), NULL, 0, &new_cred),
                 HK_STATUS_VALID);
    CHECK(old_cred.key_id == env_ll("HK_T_GRACED_OLD_ID") && new_cred.key_id != old_cred.key_id);
    CHECK(strcmp(old_cred.name, new_cred.name) == 0 && strcmp(new_cred.scopes, "read") == 0);
    CHECK(old_cred.expires_at > 0 && new_cred.expires_at == -1); /* old: now + grace */
    /* rotation with no grace: the old key is expired, its replacement valid */
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_ENDED_OLD"), NULL, 0, NULL),
                 HK_STATUS_EXPIRED);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_ENDED_NEW"), NULL, 0, NULL),
                 HK_STATUS_VALID);
}

static void test_options(void) {
    hk_options opts = hk_options_default();
    CHECK(opts.cache_capacity == 100000);
    CHECK(opts.poll_interval_ms == 500);
    CHECK(opts.cache_ttl_ms == 60000);
    CHECK(opts.usage_log == 1);
    opts.usage_log = 0;
    opts.cache_capacity = 16;
    opts.poll_interval_ms = 100;
    hk_validator *v = open_or_die(env("HK_T_DSN"), &opts);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, env("HK_T_API_KEY"), NULL, 0, NULL),
                 HK_STATUS_VALID);
    hk_stats stats;
    CHECK(hk_validator_stats(v, &stats) == 0);
    CHECK(stats.usage_written == 0 && stats.usage_queued == 0);
    hk_validator_free(v);
}

int main(void) {
    test_version();
    test_status_helpers();
    test_check_format();
    test_open_errors();
    test_last_error_message();
    hk_validator *v = open_or_die(env("HK_T_DSN"), NULL);
    test_statuses(v);
    test_stats_and_flush(v);
    test_lifecycle(v);
    hk_validator_free(v);
    test_options();
    return finish("test_validate");
}
