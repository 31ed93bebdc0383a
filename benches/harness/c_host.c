/* One of the C processes of the host benchmark (benches/harness/host.py): a
 * validating process that lives as long as the host under test, driven by
 * commands on standard input, one per line, answering JSON lines on standard
 * output (each with a "type"):
 *
 *   c_host DSN KEYS_FILE N_KEYS private|shared [CACHE_CAPACITY]
 *
 *   load RATE ENDPOINT [N]  validate random keys (of the first N, default
 *                        N_KEYS) at RATE per second, usage endpoint
 *                        ENDPOINT, until `idle`
 *   idle                 stop; answers {"type":"idle","validations":n,
 *                        "not_valid":m} for the load just ended
 *   fill FROM TO         validate keys FROM..TO-1 once each; answers
 *                        {"type":"fill",...} when done
 *   watch KEY TIMEOUT_MS validate KEY every millisecond until it is
 *                        refused (or the timeout); answers
 *                        {"type":"watch","refused_at":unix seconds,...};
 *                        other commands are served meanwhile
 *   stats                {"type":"stats", the hk_stats members, "host":
 *                        hk_host_stats members or null, "not_shared": why}
 *   host                 {"type":"host","leader":0|1,"leader_pid":n}
 *   quit                 frees the validator (writing queued usage), answers,
 *                        exits
 *
 * Shared mode opens with hk_validator_open_ex(..., HK_OPEN_SHARED_CACHE).
 */
#define _POSIX_C_SOURCE 200809L
#include <heratio_keys.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static size_t pick(size_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

static hk_validator *v;
static char **keys;
static size_t n_keys;
static const char *const scopes[] = {"read"};

static hk_status check(const char *key, const char *endpoint) {
    return hk_validate(v, HK_KIND_API_KEY, key, strlen(key), scopes, 1, "127.0.0.1", endpoint, NULL);
}

static void reply_stats(void) {
    hk_stats s;
    hk_host_stats h;
    if (hk_validator_stats(v, &s) != HK_OK) memset(&s, 0, sizeof s);
    printf("{\"type\":\"stats\",\"pid\":%d,\"validations\":%llu,\"cache_hits\":%llu,"
           "\"cache_misses\":%llu,\"cache_entries\":%llu,\"store_queries\":%llu,\"store_errors\":%llu,"
           "\"feed_polls\":%llu,\"feed_errors\":%llu,\"usage_written\":%llu,\"usage_dropped\":%llu,\"host\":",
           (int)getpid(), (unsigned long long)s.validations, (unsigned long long)s.cache_hits,
           (unsigned long long)s.cache_misses, (unsigned long long)s.cache_entries,
           (unsigned long long)s.store_queries, (unsigned long long)s.store_errors,
           (unsigned long long)s.feed_polls, (unsigned long long)s.feed_errors,
           (unsigned long long)s.usage_written, (unsigned long long)s.usage_dropped);
    if (hk_validator_host_stats(v, &h) == HK_OK) {
        printf("{\"leader\":%u,\"leader_pid\":%u,\"hits\":%llu,\"misses\":%llu,\"fills\":%llu,"
               "\"entries\":%llu,\"corrupt\":%llu,\"queued\":%llu,\"dropped\":%llu,\"written\":%llu}}\n",
               h.leader, h.leader_pid, (unsigned long long)h.hits, (unsigned long long)h.misses,
               (unsigned long long)h.fills, (unsigned long long)h.entries, (unsigned long long)h.corrupt,
               (unsigned long long)h.queued, (unsigned long long)h.dropped, (unsigned long long)h.written);
    } else {
        char why[512];
        hk_last_error_message(why, sizeof why);
        for (char *c = why; *c; c++)
            if (*c == '"' || *c == '\\') *c = '\'';
        printf("null,\"not_shared\":\"%s\"}\n", why);
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: c_host DSN KEYS_FILE N_KEYS private|shared [CACHE_CAPACITY]\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    if (f == NULL) return 2;
    size_t want = (size_t)atoll(argv[3]), cap = 1024;
    keys = malloc(cap * sizeof *keys);
    char line[4096];
    while (n_keys < want && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strlen(line) != 53) continue;
        if (n_keys == cap) keys = realloc(keys, (cap *= 2) * sizeof *keys);
        keys[n_keys] = malloc(54);
        memcpy(keys[n_keys++], line, 54);
    }
    fclose(f);
    if (n_keys == 0) return 2;
    uint32_t flags = strcmp(argv[4], "shared") == 0 ? HK_OPEN_SHARED_CACHE : 0;
    hk_options o = hk_options_default();
    if (argc > 5) o.cache_capacity = (uint64_t)atoll(argv[5]);
    if (hk_validator_open_ex(argv[1], &o, flags, &v) != HK_OK) {
        char msg[512];
        hk_last_error_message(msg, sizeof msg);
        fprintf(stderr, "open: %s\n", msg);
        return 1;
    }
    rng ^= (unsigned long long)getpid() << 20;
    printf("{\"type\":\"ready\",\"pid\":%d}\n", (int)getpid());
    fflush(stdout);

    double load_rate = 0, load_since = 0;
    size_t load_n = n_keys;
    unsigned long long load_done = 0, load_bad = 0;
    char endpoint[256] = "/c/";
    char watched[128] = "";
    double watch_until = 0, watch_since = 0;
    unsigned long long watch_n = 0;
    char buf[8192];
    size_t used = 0;
    for (;;) {
        int timeout = watched[0] ? 1 : load_rate > 0 ? 10 : -1;
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        int ready = poll(&p, 1, timeout);
        if (ready > 0) {
            ssize_t got = read(STDIN_FILENO, buf + used, sizeof buf - 1 - used);
            if (got <= 0) break; /* the harness went away */
            used += (size_t)got;
            buf[used] = '\0';
            char *start = buf, *nl;
            while ((nl = strchr(start, '\n')) != NULL) {
                *nl = '\0';
                char cmd[32] = "", a[256] = "", b[256] = "", c[32] = "";
                sscanf(start, "%31s %255s %255s %31s", cmd, a, b, c);
                if (strcmp(cmd, "load") == 0) {
                    load_rate = atof(a);
                    snprintf(endpoint, sizeof endpoint, "%s", b[0] ? b : "/c/");
                    load_n = c[0] ? (size_t)atoll(c) : n_keys;
                    if (load_n < 1 || load_n > n_keys) load_n = n_keys;
                    load_since = mono();
                    load_done = load_bad = 0;
                } else if (strcmp(cmd, "idle") == 0) {
                    printf("{\"type\":\"idle\",\"pid\":%d,\"validations\":%llu,\"not_valid\":%llu}\n",
                           (int)getpid(), load_done, load_bad);
                    load_rate = 0;
                } else if (strcmp(cmd, "fill") == 0) {
                    size_t from = (size_t)atoll(a), to = (size_t)atoll(b), valid = 0;
                    if (to > n_keys) to = n_keys;
                    double t = mono();
                    for (size_t i = from; i < to; i++) valid += check(keys[i], "/c/fill") == HK_STATUS_VALID;
                    printf("{\"type\":\"fill\",\"pid\":%d,\"keys\":%zu,\"valid\":%zu,\"s\":%.3f}\n", (int)getpid(),
                           to > from ? to - from : 0, valid, mono() - t);
                } else if (strcmp(cmd, "watch") == 0) {
                    snprintf(watched, sizeof watched, "%s", a);
                    watch_since = mono();
                    watch_until = watch_since + atof(b) / 1000.0;
                    watch_n = 0;
                    hk_status first = check(watched, "/c/watch");
                    watch_n++;
                    printf("{\"type\":\"watching\",\"pid\":%d,\"first\":\"%s\"}\n", (int)getpid(), hk_status_name(first));
                    if (first != HK_STATUS_VALID) watched[0] = '\0';
                } else if (strcmp(cmd, "stats") == 0) {
                    reply_stats();
                } else if (strcmp(cmd, "host") == 0) {
                    hk_host_stats h;
                    if (hk_validator_host_stats(v, &h) == HK_OK)
                        printf("{\"type\":\"host\",\"pid\":%d,\"leader\":%u,\"leader_pid\":%u,\"at\":%.6f}\n",
                               (int)getpid(), h.leader, h.leader_pid, wall());
                    else
                        printf("{\"type\":\"host\",\"pid\":%d,\"leader\":null,\"leader_pid\":null,\"at\":%.6f}\n",
                               (int)getpid(), wall());
                } else if (strcmp(cmd, "quit") == 0) {
                    hk_validator_free(v);
                    printf("{\"type\":\"bye\",\"pid\":%d}\n", (int)getpid());
                    fflush(stdout);
                    return 0;
                }
                fflush(stdout);
                start = nl + 1;
            }
            used = (size_t)(buf + used - start);
            memmove(buf, start, used);
        } else if (ready < 0) {
            continue;
        }
        if (watched[0]) {
            hk_status s = check(watched, "/c/watch");
            watch_n++;
            if (s != HK_STATUS_VALID || mono() >= watch_until) {
                printf("{\"type\":\"watch\",\"pid\":%d,\"status\":\"%s\",\"refused_at\":%.6f,\"validations\":%llu}\n",
                       (int)getpid(), hk_status_name(s), wall(), watch_n);
                fflush(stdout);
                watched[0] = '\0';
            }
        }
        if (load_rate > 0) {
            unsigned long long due = (unsigned long long)(load_rate * (mono() - load_since));
            for (; load_done < due; load_done++)
                load_bad += check(keys[pick(load_n)], endpoint) != HK_STATUS_VALID;
        }
    }
    hk_validator_free(v);
    return 0;
}
