<?php

declare(strict_types=1);

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

/**
 * No route middleware aliases here: api.auth and api.ratelimit come from
 * heratio/keys-laravel's service provider (package auto-discovery).
 */
class Kernel extends HttpKernel
{
    protected $middleware = [
        Middleware\WorkerHeader::class,
    ];

    protected $middlewareGroups = [
        // What Heratio's RiC routes add to have a session on an API route.
        'session' => [
            \Illuminate\Cookie\Middleware\EncryptCookies::class,
            \Illuminate\Cookie\Middleware\AddQueuedCookiesToResponse::class,
            \Illuminate\Session\Middleware\StartSession::class,
        ],
    ];

    protected $routeMiddleware = [];
}
