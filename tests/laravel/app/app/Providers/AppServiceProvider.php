<?php

declare(strict_types=1);

namespace App\Providers;

use App\Auth\StaticUsers;
use Heratio\Keys\Laravel\SessionScopes;
use Illuminate\Http\Request;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        // The documented hook: an application maps its own users to scopes.
        if (env('HK_TEST_SESSION_SCOPES') === 'custom') {
            $this->app->bind(SessionScopes::class, fn () => new class extends SessionScopes {
                public function scopesFor(object $user, Request $request): array
                {
                    return ['read', 'custom:' . ($user->username ?? '?')];
                }
            });
        }
    }

    public function boot(): void
    {
        $this->app['auth']->provider('static', fn () => new StaticUsers());
    }
}
