<?php

declare(strict_types=1);

namespace Heratio\Keys\Laravel;

use Illuminate\Support\ServiceProvider;

/**
 * Registers the middleware aliases `api.auth` ({@see Authenticate}) and
 * `api.ratelimit` ({@see RateLimit}), the names Heratio's routes use.
 *
 * Discovered automatically (composer.json `extra.laravel.providers`). When
 * another provider registers the same aliases in its own boot() (Heratio's
 * `AhgApiServiceProvider`), the one that boots last wins: remove those two
 * lines there, or see docs/heratio.md for the order.
 */
class HeratioKeysServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        $router = $this->app['router'];
        $router->aliasMiddleware('api.auth', Authenticate::class);
        $router->aliasMiddleware('api.ratelimit', RateLimit::class);
    }
}
