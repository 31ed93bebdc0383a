<?php
// Routes guarded the way Heratio's are (packages/ahg-api/routes/api.php and
// friends); every one answers with the request attributes the middleware set.

declare(strict_types=1);

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Route;

$echo = function (Request $request) {
    if ($hold = (int) $request->query('hold', '0')) {
        usleep($hold * 1000); // keeps this worker busy so that others get work
    }
    return response()->json([
        'api_key_id' => $request->attributes->get('api_key_id'),
        'api_user_id' => $request->attributes->get('api_user_id'),
        'api_scopes' => $request->attributes->get('api_scopes'),
        'route' => $request->route()->uri(),
    ]);
};

// v2: the group authenticates with read and rate-limits; writes add their scope.
Route::prefix('api/v2')->middleware(['api.auth:read', 'api.ratelimit'])->group(function () use ($echo) {
    Route::get('/', $echo)->withoutMiddleware('api.auth:read'); // public root
    Route::get('whoami', $echo);
    Route::post('descriptions', $echo)->middleware('api.auth:write');
});

// v1: scoped routes without api.ratelimit.
Route::prefix('api/v1')->group(function () use ($echo) {
    Route::get('read', $echo)->middleware('api.auth:read');
    Route::post('write', $echo)->middleware('api.auth:write');
    Route::get('readwrite', $echo)->middleware('api.auth:read,write');
    Route::post('scan', $echo)->middleware('api.auth:scan:write');
});

// A bare api.auth (any valid key), and api.auth with api.ratelimit.
Route::post('api/archivematica/dip', $echo)->middleware('api.auth');
Route::get('api/limited', $echo)->middleware(['api.auth', 'api.ratelimit']);
// api.ratelimit without api.auth: passes untouched.
Route::get('api/open', $echo)->middleware('api.ratelimit');

// Routes with a session (like Heratio's RiC group); /login stands in for
// AtoM's login form.
Route::middleware('session')->group(function () use ($echo) {
    Route::get('login/{id}', function (string $id) {
        Auth::loginUsingId((int) $id);
        return response()->json(['user' => Auth::id()]);
    });
    Route::get('api/session/read', $echo)->middleware(['api.auth:read', 'api.ratelimit']);
    Route::post('api/session/write', $echo)->middleware('api.auth:write');
    Route::post('api/session/batch', $echo)->middleware('api.auth:batch');
    Route::post('api/session/any', $echo)->middleware('api.auth');
});
