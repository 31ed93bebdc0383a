<?php

/**
 * Stubs for the heratio_keys extension (IDEs, PHPStan, Psalm).
 *
 * Kept in sync with the compiled extension by tests/php (Reflection of the
 * loaded extension is compared with this file).
 *
 * @generate-class-entries
 */

namespace Heratio\Keys {
    /**
     * The outcome of a validation. Read-only: writing a property throws
     * \Error; the class cannot be instantiated from PHP.
     */
    final class Result
    {
        /** Whether the credential was accepted. */
        public readonly bool $valid;
        /**
         * valid, malformed, wrong_kind, not_found, revoked, expired,
         * client_inactive, forbidden, unavailable, rate_limited or ip_denied.
         */
        public readonly string $status;
        /** 200, 401, 403, 429 (rate_limited) or 503. */
        public readonly int $httpStatus;
        /** Safe to send to the HTTP client; never contains the key. */
        public readonly string $message;
        /** The owning client, when a credential was matched. */
        public readonly ?int $clientId;
        /** The credential's id, when one was matched. */
        public readonly ?int $keyId;
        /** The credential's label (production, staging, ...), when one was matched. */
        public readonly ?string $name;
        /** @var list<string> Scopes the matched credential holds ([] when none). */
        public readonly array $scopes;
        /**
         * The matched credential's metadata object, as json_decode($json, true)
         * gives it ([] when it has none or none was matched).
         *
         * @var array<array-key, mixed>
         */
        public readonly array $metadata;
        /** Most accepted requests per clock hour (UTC); null: unlimited, or none matched. */
        public readonly ?int $rateLimit;
        /** Requests left this hour, when this validation was counted against the limit. */
        public readonly ?int $rateRemaining;
        /** Seconds until the hourly budget renews (1..3600), when rate_limited. */
        public readonly ?int $retryAfter;
    }

    /** Thrown for misuse: an unknown $kind or an invalid scope name. */
    class Exception extends \Exception
    {
    }
}

namespace {
    /**
     * Validates an API key (hk_api_...).
     *
     * @param list<string> $scopes scopes the key must hold (each, or *)
     * @param string|null $ip client IP: checked against the key's IP allowlist
     *        (a key with one is refused, ip_denied, when no IP is given) and
     *        written to the usage log
     * @param string|null $endpoint endpoint, for the usage log
     * @throws \Heratio\Keys\Exception for an invalid scope name
     */
    function heratio_keys_validate_api_key(string $key, array $scopes = [], ?string $ip = null, ?string $endpoint = null): \Heratio\Keys\Result {}

    /**
     * Validates an AI token (hk_ai_...).
     *
     * @param list<string> $scopes scopes the token must hold (each, or *)
     * @throws \Heratio\Keys\Exception for an invalid scope name
     */
    function heratio_keys_validate_ai_token(string $key, array $scopes = [], ?string $ip = null, ?string $endpoint = null): \Heratio\Keys\Result {}

    /**
     * Authenticates the current request: the key from X-API-Key, then
     * X-REST-API-Key, then Authorization: Bearer; IP from REMOTE_ADDR;
     * endpoint from REQUEST_URI (query string removed).
     *
     * @param list<string> $scopes
     * @param "api"|"ai" $kind
     * @throws \Heratio\Keys\Exception for an unknown kind or an invalid scope name
     */
    function heratio_keys_authenticate(array $scopes = [], string $kind = 'api'): \Heratio\Keys\Result {}

    /** The extension's version. */
    function heratio_keys_version(): string {}

    /**
     * Counters of this process's validator: pid, open, dsn (password masked),
     * open_failures, last_error, validations, cache_hits, cache_misses,
     * cache_entries, store_queries, store_errors, feed_polls, feed_errors,
     * feed_evictions, feed_lag_ms, usage_queued, usage_written,
     * usage_dropped, usage_write_errors; then the host region
     * (heratio_keys.shared_cache): shared (bool: this worker uses it),
     * shared_error (?string: why not, when it was asked for), shared_region
     * (?string: the region file), and the host's counters host_leader (0/1:
     * this worker leads), host_leader_pid, host_hits, host_misses,
     * host_fills, host_entries, host_corrupt, host_queued, host_dropped,
     * host_written — every key always present, the host_* ones null when
     * this worker does not share the region.
     *
     * @return array<string, int|bool|string|null>
     */
    function heratio_keys_stats(): array {}
}
