<?php

declare(strict_types=1);

namespace Heratio\Keys\Laravel;

use Closure;
use Heratio\Keys\Result;
use Illuminate\Http\Request;

/**
 * Heratio's `api.ratelimit`, answered by the heratio_keys extension. Place
 * it after `api.auth`, as in Heratio.
 *
 * The hourly budget is counted by the extension when `api.auth` validates
 * the key (exactly the key's `rate_limit` accepted validations per clock
 * hour, UTC, across every process and host sharing the database). This
 * middleware only answers with that count:
 *
 * - over the limit: 429 `{"success":false,"error":"Too Many Requests",
 *   "message":"Rate limit of N requests per hour exceeded."}` with
 *   `Retry-After` = whole seconds to the next clock hour (Heratio sends a
 *   negative number there, a Carbon 3 sign bug; we send the positive value
 *   HTTP means) and no `X-RateLimit-*` headers;
 * - otherwise the response of the rest of the stack, whatever its status,
 *   with `X-RateLimit-Limit` and `X-RateLimit-Remaining` (keys without a
 *   limit get neither header).
 *
 * Session users, and requests no `api.auth` authenticated, pass untouched.
 */
class RateLimit
{
    /** @return mixed */
    public function handle(Request $request, Closure $next)
    {
        $result = $request->attributes->get(Authenticate::RESULT);
        if (!$request->attributes->get('api_key_id') || !$result instanceof Result) {
            return $next($request);
        }

        $limit = $result->rateLimit ?? null;
        if ($result->status === 'rate_limited') {
            return Responses::error(
                429,
                'Too Many Requests',
                'Rate limit of ' . (int) $limit . ' requests per hour exceeded.',
                ['Retry-After' => (string) self::retryAfter($result)],
            );
        }

        $response = $next($request);
        if ($limit !== null) {
            $response->headers->set('X-RateLimit-Limit', (string) $limit);
            $response->headers->set('X-RateLimit-Remaining', (string) max(0, (int) ($result->rateRemaining ?? 0)));
        }
        return $response;
    }

    /** Seconds until the next clock hour, at least 1. */
    private static function retryAfter(Result $result): int
    {
        $seconds = $result->retryAfter ?? null;
        if ($seconds === null) {
            $seconds = 3600 - time() % 3600;
        }
        return max(1, (int) $seconds);
    }
}
