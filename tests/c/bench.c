/* Cost of hk_validate on a cache hit, from C: N keys cached, then the
 * median (and p99) of many single calls on random cached keys.
 * Usage: bench DSN KEYS_FILE [SAMPLES] */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "common.h"

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static size_t next_index(size_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

/* n == 1: the same key every call (hot in the CPU caches); otherwise a
 * random one of n cached keys (closer to many clients). */
static void measure(hk_validator *v, char **keys, size_t n, size_t samples, const char *label) {
    long long *t = malloc(samples * sizeof *t);
    long long *empty = malloc(samples * sizeof *empty);
    const char *scopes[] = {"read"};
    size_t bad = 0;
    for (size_t i = 0; i < samples; i++) {
        const char *key = keys[next_index(n)];
        long long t0 = now_ns();
        hk_status s = hk_validate(v, HK_KIND_API_KEY, key, 53, scopes, 1, "192.0.2.7",
                                  "/api/informationobjects", NULL);
        t[i] = now_ns() - t0;
        bad += s != HK_STATUS_VALID;
    }
    for (size_t i = 0; i < samples; i++) {
        long long t0 = now_ns();
        empty[i] = now_ns() - t0;
    }
    qsort(t, samples, sizeof *t, cmp_ll);
    qsort(empty, samples, sizeof *empty, cmp_ll);
    printf("%s: hk_validate cache hit, %zu keys drawn from, %zu calls: median %lld ns, p99 %lld ns "
           "(timer overhead median %lld ns, included), %zu not valid\n",
           label, n, samples, t[samples / 2], t[samples * 99 / 100], empty[samples / 2], bad);
    free(t);
    free(empty);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench DSN KEYS_FILE [SAMPLES]\n");
        return 2;
    }
    size_t samples = argc > 3 ? (size_t)atoll(argv[3]) : 1000000;
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

    for (int usage = 1; usage >= 0; usage--) {
        hk_options opts = hk_options_default();
        opts.cache_capacity = 2 * (uint64_t)n;
        opts.usage_log = usage;
        hk_validator *v = open_or_die(argv[1], &opts);
        long long t0 = now_ns();
        for (size_t i = 0; i < n; i++)
            CHECK_STATUS(hk_validate(v, HK_KIND_API_KEY, keys[i], 53, NULL, 0, NULL, NULL, NULL),
                         HK_STATUS_VALID);
        printf("filled the cache with %zu keys in %.1f s\n", n, (double)(now_ns() - t0) / 1e9);
        measure(v, keys, n, samples, usage ? "usage_log=on,  random key" : "usage_log=off, random key");
        measure(v, keys, 1, samples, usage ? "usage_log=on,  same key  " : "usage_log=off, same key  ");
        hk_stats stats;
        hk_validator_stats(v, &stats);
        printf("  stats: validations %llu, hits %llu, misses %llu, usage dropped %llu\n",
               (unsigned long long)stats.validations, (unsigned long long)stats.cache_hits,
               (unsigned long long)stats.cache_misses, (unsigned long long)stats.usage_dropped);
        hk_validator_free(v);
    }
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
    return finish("bench");
}
