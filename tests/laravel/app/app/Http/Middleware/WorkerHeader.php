<?php

declare(strict_types=1);

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/** Test instrumentation on every response: which php-fpm worker answered, and when. */
class WorkerHeader
{
    public function handle(Request $request, Closure $next)
    {
        $response = $next($request);
        $response->headers->set('X-Worker', (string) getmypid());
        $response->headers->set('X-Time', sprintf('%.6f', microtime(true)));
        return $response;
    }
}
