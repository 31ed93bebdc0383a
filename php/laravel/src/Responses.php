<?php

declare(strict_types=1);

namespace Heratio\Keys\Laravel;

use Illuminate\Http\JsonResponse;
use Symfony\Component\HttpFoundation\Response;

/**
 * Heratio's error bodies: `{"success":false,"error":…,"message":…}` through
 * Laravel's own JSON response (encoding options 0: `/` escaped as `\/`,
 * non-ASCII as `\uXXXX`; `Content-Type: application/json`), so the bytes
 * are the ones Heratio's middleware sends.
 *
 * @internal
 */
final class Responses
{
    public static function unauthorized(string $message): JsonResponse
    {
        return self::error(401, 'Unauthorized', $message);
    }

    /** @param string|null $error null: the HTTP reason phrase of $status */
    public static function error(int $status, ?string $error, string $message, array $headers = []): JsonResponse
    {
        return response()->json([
            'success' => false,
            'error' => $error ?? (Response::$statusTexts[$status] ?? 'Error'),
            'message' => $message,
        ], $status, $headers);
    }
}
