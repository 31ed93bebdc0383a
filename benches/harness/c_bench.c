/* Cost of hk_validate from C on cached keys (usage_log on, as in
 * production): fills the cache with every key of KEYS_FILE, then times
 * PASSES passes over the keys in random order.
 *   c_bench DSN KEYS_FILE PASSES [shared]
 * With "shared", the validator shares the host region
 * (hk_validator_open_ex with HK_OPEN_SHARED_CACHE): the cache is the
 * region's table, filled by this process on the first pass.
 * Prints one JSON object: per-call clock_gettime timings (p50/p99, timer
 * included, timer cost reported) and the median pass mean (no timer in the
 * loop). */
#define _POSIX_C_SOURCE 200809L
#include <heratio_keys.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static size_t next_index(size_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

static void shuffle(size_t *order, size_t n) {
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = next_index(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static long long pct(const long long *sorted, size_t n, double p) {
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (i < 1) i = 1;
    if (i > n) i = n;
    return sorted[i - 1];
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: c_bench DSN KEYS_FILE PASSES [shared]\n");
        return 2;
    }
    size_t passes = (size_t)atoll(argv[3]);
    if (passes < 1) passes = 1;
    FILE *f = fopen(argv[2], "r");
    if (f == NULL) return 2;
    size_t cap = 1024, n = 0;
    char **keys = malloc(cap * sizeof *keys);
    char line[128];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strlen(line) != 53) continue;
        if (n == cap) keys = realloc(keys, (cap *= 2) * sizeof *keys);
        keys[n] = malloc(54);
        memcpy(keys[n++], line, 54);
    }
    fclose(f);
    if (n == 0) return 2;

    hk_options opts = hk_options_default();
    opts.cache_capacity = 2 * (uint64_t)n;
    opts.usage_log = true;
    hk_validator *v = NULL;
    int shared = argc > 4 && strcmp(argv[4], "shared") == 0;
    if (hk_validator_open_ex(argv[1], &opts, shared ? HK_OPEN_SHARED_CACHE : 0, &v) != 0) {
        char msg[512];
        hk_last_error_message(msg, sizeof msg);
        fprintf(stderr, "open: %s\n", msg);
        return 1;
    }
    const char *scopes[] = {"read"};
    size_t bad = 0;
    long long t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        bad += hk_validate(v, HK_KIND_API_KEY, keys[i], 53, scopes, 1, "127.0.0.1", "/api/bench", NULL) != HK_STATUS_VALID;
    double fill_s = (double)(now_ns() - t0) / 1e9;

    size_t *order = malloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = i;
    size_t calls = n * passes;
    long long *t = malloc(calls * sizeof *t);
    for (size_t p = 0, c = 0; p < passes; p++) {
        shuffle(order, n);
        for (size_t i = 0; i < n; i++, c++) {
            const char *key = keys[order[i]];
            long long a = now_ns();
            hk_status s = hk_validate(v, HK_KIND_API_KEY, key, 53, scopes, 1, "127.0.0.1", "/api/bench", NULL);
            t[c] = now_ns() - a;
            bad += s != HK_STATUS_VALID;
        }
    }
    size_t mpasses = passes < 3 ? 3 : passes;
    double *pass_ns = malloc(mpasses * sizeof *pass_ns);
    double *pass_cpu = malloc(mpasses * sizeof *pass_cpu);
    double *pass_thread = malloc(mpasses * sizeof *pass_thread);
    for (size_t p = 0; p < mpasses; p++) {
        shuffle(order, n);
        long long a = now_ns();
        long long pc = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), tc = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
        for (size_t i = 0; i < n; i++)
            bad += hk_validate(v, HK_KIND_API_KEY, keys[order[i]], 53, scopes, 1, "127.0.0.1", "/api/bench", NULL) != HK_STATUS_VALID;
        pass_thread[p] = (double)(cpu_ns(CLOCK_THREAD_CPUTIME_ID) - tc) / (double)n;
        pass_cpu[p] = (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - pc) / (double)n;
        pass_ns[p] = (double)(now_ns() - a) / (double)n;
    }
    long long *empty = malloc(calls * sizeof *empty);
    for (size_t i = 0; i < calls; i++) {
        long long a = now_ns();
        empty[i] = now_ns() - a;
    }
    qsort(t, calls, sizeof *t, cmp_ll);
    qsort(empty, calls, sizeof *empty, cmp_ll);
    qsort(pass_ns, mpasses, sizeof *pass_ns, cmp_d);
    qsort(pass_cpu, mpasses, sizeof *pass_cpu, cmp_d);
    qsort(pass_thread, mpasses, sizeof *pass_thread, cmp_d);
    hk_stats st;
    hk_validator_stats(v, &st);
    hk_host_stats hs;
    int is_shared = hk_validator_host_stats(v, &hs) == HK_OK;
    printf("{\"shared\":%s,\"host_entries\":%llu,\"host_corrupt\":%llu,", is_shared ? "true" : "false",
           is_shared ? (unsigned long long)hs.entries : 0ULL, is_shared ? (unsigned long long)hs.corrupt : 0ULL);
    printf("\"keys\":%zu,\"passes\":%zu,\"calls\":%zu,\"fill_s\":%.3f,\"p50_ns\":%lld,\"p99_ns\":%lld,"
           "\"timer_p50_ns\":%lld,\"pass_mean_median_ns\":%.1f,\"pass_cpu_median_ns\":%.1f,"
           "\"pass_thread_cpu_median_ns\":%.1f,\"not_valid\":%zu,"
           "\"cache_hits\":%llu,\"cache_misses\":%llu,\"usage_dropped\":%llu}\n",
           n, passes, calls, fill_s, pct(t, calls, 50), pct(t, calls, 99), pct(empty, calls, 50),
           pass_ns[mpasses / 2], pass_cpu[mpasses / 2], pass_thread[mpasses / 2], bad, (unsigned long long)st.cache_hits,
           (unsigned long long)st.cache_misses, (unsigned long long)st.usage_dropped);
    hk_validator_free(v);
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
    free(order);
    free(t);
    free(empty);
    free(pass_ns);
    free(pass_cpu);
    free(pass_thread);
    return bad != 0;
}
