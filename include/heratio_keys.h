/*
 * heratio_keys.h - C API of libheratio_keys (heratio-keys).
 *
 * Validates Heratio API keys (hk_api_...) and AI tokens (hk_ai_...) in
 * process, behind a cache kept correct by the store's change feed.
 *
 *     hk_validator *v = NULL;
 *     if (hk_validator_open("sqlite:/var/lib/heratio/keys.db", &v) != 0) {
 *         char msg[256];
 *         hk_last_error_message(msg, sizeof msg);
 *         fprintf(stderr, "heratio_keys: %s\n", msg);
 *         return 1;
 *     }
 *     const char *need[] = { "read" };
 *     hk_credential cred;
 *     hk_status s = hk_validate(v, HK_KIND_API_KEY, key, strlen(key),
 *                               need, 1, client_ip, uri, &cred);
 *     hk_rate rate;                           // keys with an hourly limit
 *     if (hk_last_rate(&rate) == HK_OK)
 *         rate_headers(rate.limit, rate.remaining, rate.retry_after);
 *     if (s != HK_STATUS_VALID)
 *         respond(hk_status_http(s), hk_status_name(s));
 *     hk_validator_free(v);
 *
 * Build: cc app.c $(pkg-config --cflags --libs heratio_keys)
 * Static: cc app.c $(pkg-config --cflags --libs-only-L heratio_keys)
 *           -Wl,-Bstatic -lheratio_keys -Wl,-Bdynamic
 *           $(pkg-config --variable=static_libs heratio_keys)
 *         (one command line; installing and linking: docs/c-api.md)
 *
 * API conventions
 * ---------------
 * Ownership:  hk_validator is opaque. hk_validator_open,
 *             hk_validator_open_with and hk_validator_open_ex create it;
 *             hk_validator_free (NULL-safe) destroys it exactly once, after
 *             writing buffered usage records. hk_credential, hk_rate,
 *             hk_stats, hk_host_stats and hk_options are plain structs the
 *             caller owns (the stack is fine); the library never allocates
 *             memory the caller must free. hk_version and hk_status_name
 *             return static strings. Input pointers are read only during
 *             the call, never kept.
 * Threading:  one hk_validator may be used by any number of threads at once
 *             (hk_validate, hk_check_format, hk_validator_stats,
 *             hk_validator_host_stats,
 *             hk_validator_flush); the cache is shared and lookups do not
 *             serialise. Only hk_validator_free needs exclusive access: call
 *             it when no other call on the handle is running. Each validator
 *             runs two background threads (feed poller, usage flusher; one
 *             host thread in shared mode) and, on MySQL, one I/O thread:
 *             open one per process.
 * Shared:     hk_validator_open_ex(dsn, opts, HK_OPEN_SHARED_CACHE, &v)
 *             shares one cache, one feed poller and one usage writer with
 *             every process of the same OS user validating against the same
 *             DSN (PHP-FPM workers included), through a 0600 region file in
 *             $HERATIO_KEYS_REGION_DIR, else /dev/shm; whichever process
 *             holds the region's lock leads (polls, writes usage), and
 *             another takes over within a poll interval when it exits or is
 *             killed. Every process sharing a region must use the same
 *             region sizes: C programs use the library's defaults, as does
 *             PHP unless heratio_keys.shared_cache_slots /
 *             shared_queue_records are changed. If the region cannot be used
 *             (another owner, readable by others, no room), the validator
 *             opens anyway with its own cache; hk_validator_host_stats then
 *             answers HK_ERR_NOT_SHARED and hk_last_error_message says why.
 *             Trust boundary: any process of that OS user can read and write
 *             the region, as it can read the DSN (see docs/shared-cache.md).
 * fork():     background threads and connections belong to the process that
 *             started them. In a forked child, the first call on an inherited
 *             handle starts fresh ones and leaves the parent's alone;
 *             hk_validator_free in the child is safe. Opening the validator
 *             after fork, in the worker, is best. While a validator's threads
 *             are inside SQLite, fork() waits for them (each statement has
 *             a 5 s busy timeout; at most 15 s, then it goes ahead), so the
 *             child never inherits a held SQLite lock.
 * Errors:     functions returning int return 0 (HK_OK) or a negative
 *             hk_error; hk_validate and hk_check_format return an hk_status.
 *             Output parameters are written only on success (hk_validate
 *             writes *out only when it returns HK_STATUS_VALID).
 *             hk_last_error_message(buf, len) describes the last call on the
 *             calling thread that did not succeed (for hk_validate, the
 *             message for the HTTP client, e.g. "Scope 'write' required.");
 *             a successful call clears it; the hk_last_* accessors below
 *             leave it as it is. Like snprintf it returns the full length:
 *             a result >= len means the copy was cut, and
 *             hk_last_error_message(NULL, 0) asks for the length. Messages
 *             never contain a key or a password.
 * Per thread: besides its message, what the last hk_validate on the
 *             calling thread found stays readable on that thread until its
 *             next hk_validate (on any handle): the matched credential's
 *             metadata (hk_last_metadata, snprintf-style: a JSON object in
 *             compact form, "" when no credential was matched or it has
 *             none; HK_METADATA_MAX bytes always hold it) and its hourly
 *             budget (hk_last_rate: HK_OK and *out when that validation was
 *             counted against a rate limit, i.e. it returned HK_STATUS_VALID
 *             or HK_STATUS_RATE_LIMITED for a limited credential;
 *             HK_ERR_NO_RATE_LIMIT, *out untouched, otherwise). These
 *             accessors only read: they neither set nor clear the last
 *             error. hk_credential cannot grow (callers allocate it), so
 *             what a validation reports beyond it comes this way.
 * Bad input:  answered, never a crash:
 *             - key NULL; key_len not the key's length; embedded NUL,
 *               non-UTF-8, a megabyte of bytes; kind not 1 or 2:
 *               HK_STATUS_MALFORMED. Exactly key_len bytes are read; no NUL
 *               terminator is needed or looked for.
 *             - v NULL in hk_validate: HK_STATUS_UNAVAILABLE (fail closed).
 *             - required scopes that cannot be used: scopes NULL with
 *               scopes_len > 0, a NULL or non-UTF-8 element, a name that is
 *               not a scope name ("*", or 1-64 characters of
 *               A-Z a-z 0-9 _ . : -), more than 64 of them:
 *               HK_STATUS_FORBIDDEN (fail closed: the library cannot know
 *               what was required).
 *             - ip / endpoint NULL: not recorded; non-UTF-8 bytes are
 *               replaced, over-long values cut (45 / 255 bytes).
 *             - NULL dsn / out in hk_validator_open*, NULL v / out in the
 *               other int functions, flag bits hk_validator_open_ex does not
 *               know: HK_ERR_INVALID_ARGUMENT.
 *             - hk_status / hk_kind values the library does not know:
 *               hk_status_name gives "unknown", hk_status_http 500.
 *             Enum-typed arguments are received as uint32_t by the library,
 *             so an out-of-range value is a checked case, not undefined
 *             behaviour.
 * Panics:     no panic ever unwinds into C. A library bug caught at the
 *             boundary becomes HK_STATUS_UNAVAILABLE from hk_validate,
 *             HK_STATUS_MALFORMED from hk_check_format and HK_ERR_INTERNAL
 *             from the int functions, with a message.
 * Stability:  enum values are explicit and never renumbered or reused; later
 *             statuses take numbers after 10, so keep a default: branch. The
 *             soname (libheratio_keys.so.0) changes on any incompatible ABI
 *             change, independently of the crate version. hk_credential,
 *             hk_rate and hk_host_stats keep their size; hk_options may only
 *             grow at its end, together with a soname change: always
 *             initialise it with hk_options_default(). What opening needs
 *             beyond hk_options comes as hk_validator_open_ex flags
 *             (HK_OPEN_*): new flags take new bits, and a library refuses
 *             bits it does not know. hk_error codes are likewise explicit;
 *             later ones take numbers below -10.
 */

#ifndef HERATIO_KEYS_H
#define HERATIO_KEYS_H

/* Generated by cbindgen from the heratio-keys-ffi crate (ffi/src, ffi/build.rs). Do not edit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version of this header; hk_version() returns the library's. */
#define HK_VERSION_MAJOR 0
#define HK_VERSION_MINOR 1
#define HK_VERSION_PATCH 0
#define HK_VERSION "0.1.0"


// `hk_validator_open_ex` flag: share the host's cache, change-feed poller
// and usage writer with every other process of this OS user validating
// against the same DSN (PHP-FPM workers, other C programs) through a
// memory-mapped region, instead of keeping them per process. If the region
// cannot be used, the validator runs with its own cache and
// `hk_validator_host_stats` says why. See `docs/shared-cache.md`.
#define HK_OPEN_SHARED_CACHE 1

// Size of `hk_credential.name`: holds any label the store accepts
// (255 characters of up to 4 UTF-8 bytes) plus the terminating NUL.
#define HK_NAME_MAX 1024

// Size of `hk_credential.scopes`: holds the largest scope list the store
// accepts (64 scopes of 64 bytes, 63 commas) plus the terminating NUL.
#define HK_SCOPES_MAX 4160

// A buffer of this many bytes always holds `hk_last_metadata`'s answer:
// the largest metadata the store accepts (4096 bytes of compact JSON) and
// the terminating NUL.
#define HK_METADATA_MAX 4097

// The outcome of a validation. Values are stable and never reused; later
// statuses take new numbers after 10, so keep a `default:` branch.
enum hk_status
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // Accepted (HTTP 200).
  HK_STATUS_VALID = 0,
  // Wrong length, prefix, alphabet or checksum; also a NULL key (HTTP 401).
  HK_STATUS_MALFORMED = 1,
  // A well-formed credential of the other kind (HTTP 401).
  HK_STATUS_WRONG_KIND = 2,
  // Well-formed but unknown (HTTP 401).
  HK_STATUS_NOT_FOUND = 3,
  // Revoked, by itself or by its client's deactivation (HTTP 401).
  HK_STATUS_REVOKED = 4,
  // Past its expiry time (HTTP 401).
  HK_STATUS_EXPIRED = 5,
  // Its client is deactivated (HTTP 401).
  HK_STATUS_CLIENT_INACTIVE = 6,
  // Valid, but lacks a required scope (HTTP 403).
  HK_STATUS_FORBIDDEN = 7,
  // The store cannot be reached and no cached answer may be used; also a
  // NULL validator handle or an internal error (HTTP 503).
  HK_STATUS_UNAVAILABLE = 8,
  // Over its per-hour request limit (HTTP 429).
  HK_STATUS_RATE_LIMITED = 9,
  // The key has an IP allowlist and the request's IP is outside it or
  // unknown (HTTP 403).
  HK_STATUS_IP_DENIED = 10,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum hk_status hk_status;
#else
typedef uint32_t hk_status;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// Which family a credential belongs to. Values are stable and never reused.
enum hk_kind
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // `hk_api_…`: REST API clients.
  HK_KIND_API_KEY = 1,
  // `hk_ai_…`: AI servers.
  HK_KIND_AI_TOKEN = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum hk_kind hk_kind;
#else
typedef uint32_t hk_kind;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// Return codes of the functions returning `int` (`hk_validator_open`,
// `hk_validator_open_with`, `hk_validator_open_ex`, `hk_validator_stats`,
// `hk_validator_host_stats`, `hk_validator_flush`, `hk_last_rate`): 0 on
// success, one of these negative values otherwise. Values are stable and
// never reused; later codes take numbers below -10.
// `hk_last_error_message` gives the details (except for `hk_last_rate`,
// which leaves it to describe the validation).
typedef enum hk_error {
  // Success.
  HK_OK = 0,
  // A required pointer is NULL (`dsn`, `out`, the validator), or an
  // option is out of range.
  HK_ERR_INVALID_ARGUMENT = -1,
  // The DSN is not `sqlite:PATH` or `mysql://USER:PASS@HOST:PORT/DB`
  // (or is not UTF-8).
  HK_ERR_INVALID_DSN = -2,
  // The store cannot be reached (connection refused, bad credentials,
  // file not openable). Retrying later may succeed.
  HK_ERR_UNAVAILABLE = -3,
  // The schema is missing or older than this library: run `keygen install`.
  HK_ERR_SCHEMA_OUTDATED = -4,
  // The schema is newer than this library understands: upgrade the library.
  HK_ERR_SCHEMA_TOO_NEW = -5,
  // The store answered with an error other than an outage.
  HK_ERR_STORE = -6,
  // A bug inside the library (including a caught panic) or a resource
  // failure such as being unable to start a thread.
  HK_ERR_INTERNAL = -7,
  // `hk_validator_flush` did not finish within its timeout (the store may
  // be down; the records stay queued).
  HK_ERR_TIMEOUT = -8,
  // `hk_last_rate`: the last `hk_validate` on this thread counted no
  // request against an hourly rate limit (the credential is unlimited,
  // none was matched, or it was refused for another reason first).
  HK_ERR_NO_RATE_LIMIT = -9,
  // `hk_validator_host_stats`: the validator does not share the host
  // region (it was opened without `HK_OPEN_SHARED_CACHE`, or the region
  // could not be used and it runs with its own cache);
  // `hk_last_error_message` says which, and why.
  HK_ERR_NOT_SHARED = -10,
} hk_error;

// A validator: store connection, cache, change-feed poller and usage
// flusher. Opaque and thread-safe: open one per process, share it between
// threads, free it once with `hk_validator_free`.
typedef struct hk_validator hk_validator;

// Tuning knobs for `hk_validator_open_with`. Always start from
// `hk_options_default()` and change the fields you need.
typedef struct hk_options {
  // Most cached digests, positive and negative together (default 100000).
  uint64_t cache_capacity;
  // Backstop lifetime of a cached credential, in ms (default 60000).
  uint64_t cache_ttl_ms;
  // Lifetime of a cached "not found" answer, in ms (default 60000).
  uint64_t negative_ttl_ms;
  // How often the change feed is read, in ms (default 500; minimum 10).
  uint64_t poll_interval_ms;
  // Fail-closed bound, in ms (default 10000): when the feed has not been
  // read for longer, cached positive answers older than this are not
  // served.
  uint64_t stale_bound_ms;
  // Usage records buffered (default 65536); when they are all waiting, a
  // validation waits for room while the writer writes (1 s at most).
  uint64_t usage_queue_capacity;
  // Longest time a usage record waits before being written, in ms
  // (default 1000).
  uint64_t usage_flush_interval_ms;
  // How long `hk_validator_free` keeps retrying to write buffered usage,
  // in ms (default 5000).
  uint64_t shutdown_flush_timeout_ms;
  // 1 (the default) to write validations to `usage_log`, 0 not to. Any
  // other value is refused with `HK_ERR_INVALID_ARGUMENT` (an integer,
  // not a C `bool`: a stray byte from C must be an error, not undefined
  // behaviour).
  uint8_t usage_log;
} hk_options;

// The credential a successful `hk_validate` matched. Written only when
// `hk_validate` returns `HK_STATUS_VALID`; owns no heap memory (nothing to
// free). Strings are NUL-terminated UTF-8, cut at a character boundary if
// they would not fit (which a store written by `keygen` never causes).
typedef struct hk_credential {
  // The owning client's id (`client.id`).
  int64_t client_id;
  // The key's or token's id (`api_key.id` / `ai_token.id`).
  int64_t key_id;
  // Expiry, in milliseconds since the Unix epoch (UTC); -1 if it never
  // expires.
  int64_t expires_at;
  // The credential's kind (the kind that was asked for).
  hk_kind kind;
  // Number of scopes in `scopes`.
  uint32_t scope_count;
  // True if `name` was cut to fit.
  bool name_truncated;
  // True if `scopes` was cut to fit.
  bool scopes_truncated;
  // The label given at generation (`production`, …).
  char name[HK_NAME_MAX];
  // The granted scopes, comma-separated in grant order (`read,write`);
  // `*` means every scope. Scope names never contain a comma.
  char scopes[HK_SCOPES_MAX];
} hk_credential;

// The hourly budget of a rate-limited credential as the last
// `hk_validate` on this thread left it (`hk_last_rate`). A plain struct the
// caller owns; its size is fixed: any later information comes through a
// new function, never by growing it.
typedef struct hk_rate {
  // Most accepted requests per clock hour (UTC): `X-RateLimit-Limit`.
  int64_t limit;
  // Requests left this hour after this one, as far as this process
  // knows (0 when refused): `X-RateLimit-Remaining`.
  int64_t remaining;
  // When the validation returned `HK_STATUS_RATE_LIMITED`: seconds until
  // the next clock hour, when the budget renews (1 to 3600), for
  // `Retry-After`. -1 when the request was within the limit.
  int64_t retry_after;
} hk_rate;

// A snapshot of a validator's counters (`hk_validator_stats`).
typedef struct hk_stats {
  // Validations answered.
  uint64_t validations;
  // Answers served from the cache.
  uint64_t cache_hits;
  // Answers that needed a store query.
  uint64_t cache_misses;
  // Entries cached now (approximate).
  uint64_t cache_entries;
  // Store lookups issued.
  uint64_t store_queries;
  // Store lookups that failed.
  uint64_t store_errors;
  // Successful change-feed polls.
  uint64_t feed_polls;
  // Failed change-feed polls.
  uint64_t feed_errors;
  // Digests evicted because of change-feed rows.
  uint64_t feed_evictions;
  // Milliseconds since the feed was last read successfully; -1 if never.
  int64_t feed_lag_ms;
  // Usage records waiting in the queue.
  uint64_t usage_queued;
  // Usage records written.
  uint64_t usage_written;
  // Usage records dropped (queue full while its writer had stopped, or
  // unwritable at shutdown).
  uint64_t usage_dropped;
  // Failed usage batch writes (retried).
  uint64_t usage_write_errors;
} hk_stats;

// The host region as this process sees it (`hk_validator_host_stats`):
// its role, and the counters every process sharing the region adds to.
// A plain struct the caller owns; its size is fixed: later information
// comes through a new function, never by growing it.
typedef struct hk_host_stats {
  // 1 when this process leads the host now (polls the change feed and
  // writes the usage queue for every process), else 0.
  uint32_t leader;
  // The leading process's id, as the region last recorded it.
  uint32_t leader_pid;
  // Validations answered from the host cache, all processes.
  uint64_t hits;
  // Validations that needed a store query, all processes.
  uint64_t misses;
  // Answers stored in the host cache.
  uint64_t fills;
  // Occupied host cache slots now.
  uint64_t entries;
  // Host cache slots found damaged (read as misses).
  uint64_t corrupt;
  // Usage records queued host-wide and not yet written.
  uint64_t queued;
  // Usage records the host queue could not take (full) or lost (a
  // process died while writing one).
  uint64_t dropped;
  // Usage records written from the host queue.
  uint64_t written;
} hk_host_stats;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The defaults of every option (those of `hk_validator_open`).
struct hk_options hk_options_default(void);

// Opens a validator on `dsn` (`sqlite:PATH` or
// `mysql://USER:PASS@HOST:PORT/DB`) with the default options. Same as
// `hk_validator_open_with(dsn, NULL, out)`.
//
// Returns 0 and stores the handle in `*out`, or a negative `hk_error`
// (`*out` untouched; `hk_last_error_message` says why).
//
// # Safety
//
// `dsn` is NULL or a NUL-terminated string; `out` is NULL or writable.
int hk_validator_open(const char *dsn, struct hk_validator **out);

// Opens a validator on `dsn` with `opts` (NULL: defaults), checking that the
// store is reachable and its schema current. Background threads start now.
// Same as `hk_validator_open_ex(dsn, opts, 0, out)`.
//
// Returns 0 and stores the handle in `*out`, or a negative `hk_error`:
// `HK_ERR_INVALID_ARGUMENT` (NULL `dsn` or `out`, option out of range),
// `HK_ERR_INVALID_DSN`, `HK_ERR_UNAVAILABLE`, `HK_ERR_SCHEMA_OUTDATED`,
// `HK_ERR_SCHEMA_TOO_NEW`, `HK_ERR_STORE` or `HK_ERR_INTERNAL`. On error
// `*out` is untouched and `hk_last_error_message` says why (DSN password
// masked).
//
// # Safety
//
// `dsn` is NULL or a NUL-terminated string; `opts` is NULL or points to an
// `hk_options`; `out` is NULL or writable.
int hk_validator_open_with(const char *dsn,
                           const struct hk_options *opts,
                           struct hk_validator **out);

// As `hk_validator_open_with`, with `flags`: 0, or `HK_OPEN_SHARED_CACHE`
// to share the host's cache, feed poller and usage writer with the other
// processes of this OS user on the same DSN. A flag bit this library does
// not know is refused with `HK_ERR_INVALID_ARGUMENT` (a program built for
// a newer library fails to open rather than silently running without
// what it asked for). A region that cannot be used is not an error: the
// validator opens with its own cache, and `hk_validator_host_stats`
// answers `HK_ERR_NOT_SHARED` with the reason.
//
// # Safety
//
// As `hk_validator_open_with`.
int hk_validator_open_ex(const char *dsn,
                         const struct hk_options *opts,
                         uint32_t flags,
                         struct hk_validator **out);

// Frees a validator after writing its buffered usage records (retrying for
// up to `shutdown_flush_timeout_ms` if the store is down) and stopping its
// threads. NULL is ignored. The handle must not be used afterwards, by any
// thread.
//
// # Safety
//
// `v` is NULL or a handle from `hk_validator_open*` not yet freed, with no
// call on it in progress.
void hk_validator_free(struct hk_validator *v);

// Validates `key_len` bytes at `key` as a credential of `kind`, requiring
// each of the `scopes_len` scopes in `scopes`; `ip` and `endpoint` go to
// the usage log. `scopes` (when `scopes_len` is 0), `ip`, `endpoint` and
// `out` may be NULL.
//
// Returns the status. On `HK_STATUS_VALID` only, `*out` (if not NULL)
// receives the matched credential; otherwise it is untouched and
// `hk_last_error_message` gives the message for the HTTP client and
// `hk_last_error_detail` the operator's detail (why the store failed).
// Whatever the status, `hk_last_metadata` and `hk_last_rate` then give the
// matched credential's metadata and hourly budget, until the thread's next
// `hk_validate`.
//
// Bad arguments are answered, never a crash (see "Bad input" at the top
// of this header): a NULL `v` is `HK_STATUS_UNAVAILABLE`, an unknown
// `kind` or unusable key bytes `HK_STATUS_MALFORMED`, and a scope list
// that cannot be used (unreadable, or a name that is not a scope name)
// `HK_STATUS_FORBIDDEN`, fail closed.
//
// # Safety
//
// `v` is NULL or a live handle; `key` is NULL or points to `key_len`
// readable bytes; `scopes` is NULL or points to `scopes_len` pointers, each
// NULL or NUL-terminated; `ip` and `endpoint` are NULL or NUL-terminated;
// `out` is NULL or writable.
hk_status hk_validate(struct hk_validator *v,
                      hk_kind kind,
                      const char *key,
                      size_t key_len,
                      const char *const *scopes,
                      size_t scopes_len,
                      const char *ip,
                      const char *endpoint,
                      struct hk_credential *out);

// Waits up to `timeout_ms` for every usage record queued so far to be
// written. Returns 0, `HK_ERR_TIMEOUT` (records stay queued),
// `HK_ERR_INVALID_ARGUMENT` for a NULL validator. Validation never needs
// this; it is for tests and orderly hand-overs.
//
// # Safety
//
// `v` is NULL or a live handle.
int hk_validator_flush(const struct hk_validator *v, uint32_t timeout_ms);

// Copies the metadata of the credential matched by the last `hk_validate`
// on *this thread* into `buf`: a JSON object in compact form (keys in
// sorted order), NUL-terminated, cut at a character boundary to fit `len`
// bytes. The empty string when that validation matched no credential or
// the credential has no metadata. A credential is matched for
// `HK_STATUS_VALID` and also for `HK_STATUS_FORBIDDEN`,
// `HK_STATUS_REVOKED`, `HK_STATUS_EXPIRED`, `HK_STATUS_CLIENT_INACTIVE`,
// `HK_STATUS_RATE_LIMITED` and `HK_STATUS_IP_DENIED`.
//
// Returns the metadata's full length in bytes (without the NUL), like
// `snprintf`: a result `>= len` means the copy was cut (and is not valid
// JSON); a buffer of `HK_METADATA_MAX` bytes is always enough. `buf` may be
// NULL when `len` is 0, to ask for the length. Neither sets nor clears the
// last error.
//
// # Safety
//
// `buf` is NULL or points to `len` writable bytes.
size_t hk_last_metadata(char *buf, size_t len);

// Writes to `*out` the hourly budget of the credential the last
// `hk_validate` on *this thread* counted against its rate limit: that call
// returned `HK_STATUS_VALID` or `HK_STATUS_RATE_LIMITED` for a credential
// with a limit.
//
// Returns 0 (`*out` written), `HK_ERR_NO_RATE_LIMIT` when that validation
// counted nothing (the credential is unlimited, none was matched, or it
// was refused for another reason first; `*out` untouched), or
// `HK_ERR_INVALID_ARGUMENT` for a NULL `out`. Neither sets nor clears the
// last error: `hk_last_error_message` still describes the validation.
//
// # Safety
//
// `out` is NULL or points to a writable `hk_rate`.
int hk_last_rate(struct hk_rate *out);

// The offline check: length, prefix, alphabet and checksum of `key_len`
// bytes at `key`; no store, no usage record. Returns `HK_STATUS_VALID`,
// `HK_STATUS_WRONG_KIND` (well-formed for the other kind) or
// `HK_STATUS_MALFORMED` (also for a NULL key or an unknown kind).
//
// # Safety
//
// `key` is NULL or points to `key_len` readable bytes.
hk_status hk_check_format(hk_kind kind, const char *key, size_t key_len);

// Fills `*out` with a snapshot of the validator's counters. Returns 0, or
// `HK_ERR_INVALID_ARGUMENT` for a NULL argument (`*out` untouched).
//
// # Safety
//
// `v` is NULL or a live handle; `out` is NULL or writable.
int hk_validator_stats(const struct hk_validator *v, struct hk_stats *out);

// Fills `*out` with the host region's counters as this process sees them.
// Returns 0; `HK_ERR_NOT_SHARED` when the validator does not share the
// host region (opened without `HK_OPEN_SHARED_CACHE`, or the region could
// not be used and it runs with its own cache: `hk_last_error_message` says
// which, with the reason); `HK_ERR_INVALID_ARGUMENT` for a NULL argument.
// `*out` is written only on success.
//
// # Safety
//
// `v` is NULL or a live handle; `out` is NULL or writable.
int hk_validator_host_stats(const struct hk_validator *v, struct hk_host_stats *out);

// The stable name of a status (`"valid"`, `"wrong_kind"`, …), as in the
// usage log, the CLI and the PHP extension; `"unknown"` for a value this
// library does not know. Static storage: never free it.
const char *hk_status_name(hk_status s);

// The HTTP status a server should answer with: 200 (valid), 403
// (forbidden, ip_denied), 429 (rate_limited), 503 (unavailable), 401
// otherwise; 500 for a value this library does not know.
uint16_t hk_status_http(hk_status s);

// The library version, `"MAJOR.MINOR.PATCH"` (equal to `HK_VERSION` when
// header and library match). Static storage: never free it.
const char *hk_version(void);

// Copies the message describing the last call on *this thread* that did not
// succeed (an `int` function returning non-zero, `hk_validate` returning
// anything but `HK_STATUS_VALID`) into `buf`, NUL-terminated and cut at a
// character boundary to fit `len` bytes. A successful call clears it.
//
// Returns the message's full length in bytes (without the NUL), like
// `snprintf`: a result `>= len` means it was cut. `buf` may be NULL when
// `len` is 0, to ask for the length. Messages never contain a key or a
// password.
//
// # Safety
//
// `buf` is NULL or points to `len` writable bytes.
size_t hk_last_error_message(char *buf, size_t len);

// Like `hk_last_error_message`, but the operator's detail of the same
// failure: for `hk_validate` answering `HK_STATUS_UNAVAILABLE`, why the
// store could not answer (which store, which host and port, the driver's
// words — for logs, never for an HTTP client); for other failures the same
// text as `hk_last_error_message`. Never contains a key or a password.
//
// # Safety
//
// `buf` is NULL or points to `len` writable bytes.
size_t hk_last_error_detail(char *buf, size_t len);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* HERATIO_KEYS_H */
