/* Shared mode from C (hk_validator_open_ex with HK_OPEN_SHARED_CACHE) and
 * hk_validator_host_stats, with the faults the host region must survive:
 *   - unknown flag bits refused; a private validator is not shared;
 *   - a forked child leads, the parent finds the child's fills in the host
 *     cache; the child is killed with SIGKILL and the parent takes over the
 *     lead (and the feed poll) within a few poll intervals;
 *   - random bytes written into the region file in place (cache slots, then
 *     the header): a refused key is never accepted, valid keys still are,
 *     damaged slots are counted, a damaged header makes the region rebuilt;
 *   - a region file readable by others (and, as root, one of another user)
 *     is refused: the validator opens with its own cache and says why.
 * The regions live in a private directory (HERATIO_KEYS_REGION_DIR) that
 * this program creates and removes. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

_Static_assert(HK_OPEN_SHARED_CACHE == 1u, "stable flag value");
_Static_assert(HK_ERR_NOT_SHARED == -10, "stable error value");
_Static_assert(sizeof(hk_host_stats) == 72, "hk_host_stats keeps its size");

#define POLL_MS 50

static char region_dir[256];

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static hk_validator *open_shared(const char *dsn) {
    hk_options o = hk_options_default();
    o.poll_interval_ms = POLL_MS;
    o.usage_flush_interval_ms = 100;
    hk_validator *v = NULL;
    int rc = hk_validator_open_ex(dsn, &o, HK_OPEN_SHARED_CACHE, &v);
    if (rc != 0 || v == NULL) {
        fprintf(stderr, "hk_validator_open_ex failed: %d: %s\n", rc, last_error());
        exit(1);
    }
    return v;
}

/* The one *.region file in region_dir (this program's DSN), or "" . */
static const char *region_path(void) {
    static char path[512];
    path[0] = '\0';
    DIR *d = opendir(region_dir);
    if (d == NULL) return path;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 7 && strcmp(e->d_name + n - 7, ".region") == 0) {
            snprintf(path, sizeof path, "%s/%s", region_dir, e->d_name);
            break;
        }
    }
    closedir(d);
    return path;
}

/* Writes `len` pseudo-random bytes at `offset` of the file, in place (never
 * truncating: the file is mapped by the validators). */
static int scribble(const char *path, long long offset, size_t len, unsigned long long seed) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    unsigned char buf[65536];
    unsigned long long x = seed | 1;
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done < sizeof buf ? len - done : sizeof buf;
        for (size_t i = 0; i < chunk; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        if (pwrite(fd, buf, chunk, (off_t)(offset + (long long)done)) != (ssize_t)chunk) {
            close(fd);
            return -1;
        }
        done += chunk;
    }
    close(fd);
    return 0;
}

/* Validates the refused key `rounds` times: it must never be accepted; and
 * the valid key must be. */
static void still_correct(hk_validator *v, const char *valid, const char *revoked, int rounds) {
    int accepted = 0, refused_valid = 0;
    for (int i = 0; i < rounds; i++) {
        accepted += validate(v, HK_KIND_API_KEY, revoked, NULL, 0, NULL) == HK_STATUS_VALID;
        refused_valid += validate(v, HK_KIND_API_KEY, valid, NULL, 0, NULL) != HK_STATUS_VALID;
    }
    CHECK(accepted == 0);
    CHECK(refused_valid == 0);
}

int main(void) {
    const char *dsn = env("HK_T_DSN");
    const char *key = env("HK_T_API_KEY");
    const char *revoked = env("HK_T_REVOKED_KEY");
    const char *unknown = env("HK_T_UNKNOWN_KEY");
    snprintf(region_dir, sizeof region_dir, "%s/hk-c-shared.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(region_dir) == NULL) return 2;
    /* Before any validator exists, so no thread reads the environment. */
    setenv("HERATIO_KEYS_REGION_DIR", region_dir, 1);

    /* --- flags ----------------------------------------------------------- */
    hk_validator *v = NULL;
    CHECK(hk_validator_open_ex(dsn, NULL, 2u, &v) == HK_ERR_INVALID_ARGUMENT);
    CHECK(v == NULL);
    CHECK(strstr(last_error(), "unknown flags 0x2") != NULL);
    CHECK(hk_validator_open_ex(dsn, NULL, HK_OPEN_SHARED_CACHE | 0x80000000u, &v) ==
          HK_ERR_INVALID_ARGUMENT);
    CHECK(v == NULL);
    CHECK(hk_validator_open_ex(NULL, NULL, HK_OPEN_SHARED_CACHE, &v) == HK_ERR_INVALID_ARGUMENT);
    CHECK(hk_validator_open_ex(dsn, NULL, HK_OPEN_SHARED_CACHE, NULL) == HK_ERR_INVALID_ARGUMENT);
    CHECK(hk_validator_host_stats(NULL, NULL) == HK_ERR_INVALID_ARGUMENT);

    /* --- a private validator is not shared -------------------------------- */
    CHECK(hk_validator_open_ex(dsn, NULL, 0, &v) == HK_OK);
    hk_host_stats h;
    memset(&h, 0xab, sizeof h);
    hk_host_stats untouched = h;
    CHECK(hk_validator_host_stats(v, &h) == HK_ERR_NOT_SHARED);
    CHECK(memcmp(&h, &untouched, sizeof h) == 0);
    CHECK(strstr(last_error(), "without HK_OPEN_SHARED_CACHE") != NULL);
    CHECK(hk_validator_host_stats(v, NULL) == HK_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_VALID);
    hk_validator_free(v);
    CHECK(region_path()[0] == '\0'); /* private mode touched no region */

    /* --- a child leads; the parent follows, then takes over --------------- */
    int ready[2];
    if (pipe(ready) != 0) return 2;
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
        close(ready[0]);
        hk_validator *c = open_shared(dsn);
        hk_host_stats ch;
        int ok = validate(c, HK_KIND_API_KEY, key, NULL, 0, NULL) == HK_STATUS_VALID &&
                 validate(c, HK_KIND_API_KEY, unknown, NULL, 0, NULL) == HK_STATUS_NOT_FOUND &&
                 hk_validator_host_stats(c, &ch) == HK_OK && ch.leader == 1 &&
                 ch.leader_pid == (uint32_t)getpid();
        if (write(ready[1], ok ? "L" : "F", 1) != 1) _exit(3);
        for (;;) { /* until SIGKILL */
            (void)validate(c, HK_KIND_API_KEY, key, NULL, 0, NULL);
            sleep_ms(5);
        }
    }
    close(ready[1]);
    char said = 0;
    CHECK(read(ready[0], &said, 1) == 1 && said == 'L');
    close(ready[0]);

    v = open_shared(dsn);
    CHECK(hk_validator_host_stats(v, &h) == HK_OK);
    CHECK(h.leader == 0);
    CHECK(h.leader_pid == (uint32_t)child);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, key, NULL, 0, NULL), HK_STATUS_VALID);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, unknown, NULL, 0, NULL), HK_STATUS_NOT_FOUND);
    hk_stats s;
    CHECK(hk_validator_stats(v, &s) == HK_OK);
    CHECK(s.cache_hits == 2);
    CHECK(s.store_queries == 0); /* both answers came from the child's fills */
    CHECK(hk_validator_host_stats(v, &h) == HK_OK);
    CHECK(h.hits >= 2 && h.fills >= 2 && h.entries >= 2);

    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    double killed = now_ms(), took = -1;
    while (now_ms() - killed < 10000) {
        if (hk_validator_host_stats(v, &h) == HK_OK && h.leader == 1) {
            took = now_ms() - killed;
            break;
        }
        sleep_ms(2);
    }
    CHECK(took >= 0);
    CHECK(h.leader_pid == (uint32_t)getpid());
    printf("test_shared: leadership taken over %.0f ms after SIGKILL (poll %d ms)\n", took, POLL_MS);
    CHECK(hk_validator_stats(v, &s) == HK_OK);
    unsigned long long polls = s.feed_polls;
    sleep_ms(10 * POLL_MS);
    CHECK(hk_validator_stats(v, &s) == HK_OK);
    CHECK(s.feed_polls > polls); /* the new leader polls the feed */
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, revoked, NULL, 0, NULL), HK_STATUS_REVOKED);
    /* What the killed child queued is written by its successor. */
    CHECK(hk_validator_flush(v, 10000) == HK_OK);
    CHECK(hk_validator_host_stats(v, &h) == HK_OK);
    CHECK(h.queued == 0 && h.written >= 3);

    /* --- random bytes in the cache slots ------------------------------------ */
    const char *region = region_path();
    CHECK(region[0] != '\0');
    struct stat before;
    CHECK(stat(region, &before) == 0);
    CHECK((before.st_mode & 0777) == 0600);
    still_correct(v, key, revoked, 3); /* both answers cached */
    /* The header ends before 4 KiB and the 131072 default slots span 64 MiB
     * after it: [4 KiB, 64 MiB) lies within the slots. */
    CHECK(scribble(region, 4096, (64u << 20) - 4096, 0x9e3779b97f4a7c15ULL) == 0);
    still_correct(v, key, revoked, 200);
    CHECK_STATUS(validate(v, HK_KIND_API_KEY, unknown, NULL, 0, NULL), HK_STATUS_NOT_FOUND);
    /* The leader (this process) checks a slice of the table's checksums
     * every poll: the whole table within 32 polls. */
    for (int i = 0; i < 400; i++) {
        CHECK(hk_validator_host_stats(v, &h) == HK_OK);
        if (h.corrupt > 0) {
            break;
        }
        sleep_ms(POLL_MS);
    }
    printf("test_shared: after scribbling the slots: %llu slots found damaged and cleared\n",
           (unsigned long long)h.corrupt);
    CHECK(h.corrupt > 0);

    /* --- random bytes in the header: the region is rebuilt ------------------ */
    CHECK(scribble(region, 0, 64, 0x2545f4914f6cdd1dULL) == 0);
    still_correct(v, key, revoked, 50);
    struct stat after;
    int rebuilt = 0;
    for (int i = 0; i < 400 && !rebuilt; i++) {
        rebuilt = stat(region, &after) == 0 && after.st_ino != before.st_ino;
        if (!rebuilt) sleep_ms(5);
    }
    CHECK(rebuilt);
    still_correct(v, key, revoked, 50);
    CHECK(hk_validator_host_stats(v, &h) == HK_OK); /* still shared: the new region */
    CHECK(h.leader == 1);
    hk_validator_free(v);

    /* --- a region others may read is refused -------------------------------- */
    CHECK(chmod(region, 0644) == 0);
    v = open_shared(dsn);
    CHECK(hk_validator_host_stats(v, &h) == HK_ERR_NOT_SHARED);
    CHECK(strstr(last_error(), "own cache") != NULL && strstr(last_error(), "private") != NULL);
    still_correct(v, key, revoked, 5);
    hk_validator_free(v);
    CHECK(chmod(region, 0600) == 0);
    if (geteuid() == 0) { /* a region of another user */
        CHECK(chown(region, 65534, 65534) == 0);
        v = open_shared(dsn);
        CHECK(hk_validator_host_stats(v, &h) == HK_ERR_NOT_SHARED);
        CHECK(strstr(last_error(), "uid 65534") != NULL);
        still_correct(v, key, revoked, 5);
        hk_validator_free(v);
    }

    /* --- clean up the region directory -------------------------------------- */
    DIR *d = opendir(region_dir);
    struct dirent *e;
    char path[600];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", region_dir, e->d_name);
        unlink(path);
    }
    if (d != NULL) closedir(d);
    rmdir(region_dir);
    return finish("test_shared");
}
