<?php
// The same application under the php CLI SAPI: requests built with
// Request::create (no web server, nothing in $_SERVER but a decoy key).
// Usage: php cli.php APP_DIR store|down KEY  (prints ok/FAIL lines)

declare(strict_types=1);

[, $appDir, $mode, $key] = $argv;
require "$appDir/bootstrap/autoload.php";
$application = require "$appDir/bootstrap/app.php";
$kernel = $application->make(Illuminate\Contracts\Http\Kernel::class);
$kernel->bootstrap();

function check(string $name, bool $ok, string $detail = ''): void
{
    echo ($ok ? 'ok ' : 'FAIL ') . $name . ($ok ? '' : " -- $detail") . "\n";
}

function handle($kernel, string $method, string $path, array $server): Symfony\Component\HttpFoundation\Response
{
    $request = Illuminate\Http\Request::create($path, $method, [], [], [], $server + ['REMOTE_ADDR' => '192.0.2.7']);
    $response = $kernel->handle($request);
    $kernel->terminate($request, $response);
    return $response;
}

// A decoy in the superglobal: the middleware must read the Request object.
$_SERVER['HTTP_X_API_KEY'] = 'decoy';

if ($mode === 'store') {
    $r = handle($kernel, 'GET', '/api/v1/read', ['HTTP_X_API_KEY' => $key]);
    $j = json_decode((string) $r->getContent(), true);
    check('php CLI: the key from the Request object, not $_SERVER → 200 with Heratio ids', $r->getStatusCode() === 200 && ($j['api_key_id'] ?? null) === 501 && ($j['api_user_id'] ?? null) === 100, $r->getStatusCode() . ' ' . $r->getContent());
    echo "VALIDATIONS 1\n";

    $application['auth']->guard()->setUser(new Illuminate\Auth\GenericUser(['id' => 102, 'username' => 'contributor']));
    $r = handle($kernel, 'GET', '/api/session/read', ['HTTP_X_API_KEY' => $key]);
    $j = json_decode((string) $r->getContent(), true);
    check('SessionScopes bound by the app decides a session user\'s scopes', $r->getStatusCode() === 200 && ($j['api_scopes'] ?? null) === ['read', 'custom:contributor'] && array_key_exists('api_key_id', (array) $j) && $j['api_key_id'] === null && ($j['api_user_id'] ?? null) === 102, $r->getStatusCode() . ' ' . $r->getContent());
} else {
    $body = '{"success":false,"error":"Service Unavailable","message":"API key validation is temporarily unavailable."}';
    foreach (['first', 'second'] as $n) {
        $r = handle($kernel, 'GET', '/api/v1/read', ['HTTP_X_API_KEY' => $key]);
        check("unreachable store, $n request → 503 with a Heratio-style body (not a 500)", $r->getStatusCode() === 503 && $r->getContent() === $body && $r->headers->get('Content-Type') === 'application/json', $r->getStatusCode() . ' ' . $r->getContent());
    }
    $log = (string) @file_get_contents("$appDir/storage/logs/laravel.log");
    check('the extension\'s warning went to the Laravel log', str_contains($log, 'WARNING') && str_contains($log, 'heratio_keys'), $log);
}
