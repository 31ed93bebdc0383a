<?php
// heratio/keys-laravel in a real Laravel application (Debian's Laravel 8),
// served by php-fpm (4 workers) behind nginx, against keys imported from a
// Heratio-shaped ahg_api_key table on MariaDB.
// Usage: php test.php EXT_SO KEYGEN TMPDIR

declare(strict_types=1);

require __DIR__ . '/lib.php';

[, $ext, $keygen, $tmp] = $argv;
T::$group = 'laravel';
const WORKERS = 4;
$package = realpath(__DIR__ . '/../../php/laravel');

// A clock hour must not end under the rate-limit checks.
$left = 3600 - time() % 3600;
if ($left < 120) {
    echo "  (waiting {$left} s for the next clock hour, so that no rate window ends mid-test)\n";
    sleep($left + 1);
}

// === The Heratio database: AtoM's user table and ahg_api_key (install.sql) ===
$base = env_or_die('HERATIO_KEYS_TEST_MYSQL_DSN');
$u = parse_url($base);
$admin = new PDO(sprintf('mysql:host=%s;port=%d', $u['host'], $u['port'] ?? 3306), urldecode($u['user'] ?? ''), urldecode($u['pass'] ?? ''));
$admin->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
$heratioDb = 'hk_test_heratio_' . getmypid();
$admin->exec("CREATE DATABASE `$heratioDb`");
register_shutdown_function(static function () use ($admin, $heratioDb): void {
    try {
        $admin->exec("DROP DATABASE IF EXISTS `$heratioDb`");
    } catch (Throwable) {
    }
});
$admin->exec("USE `$heratioDb`");
$admin->exec(<<<'SQL'
CREATE TABLE `user` (
  id INT NOT NULL PRIMARY KEY,
  username VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
  email VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
  password_hash VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
  salt VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
  active TINYINT DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
SQL);
$admin->exec(<<<'SQL'
CREATE TABLE IF NOT EXISTS ahg_api_key (
  id INT AUTO_INCREMENT PRIMARY KEY,
  user_id INT NOT NULL,
  name VARCHAR(100) NOT NULL,
  api_key VARCHAR(64) NOT NULL UNIQUE,
  api_key_prefix VARCHAR(8) NOT NULL,
  scopes JSON DEFAULT NULL,
  rate_limit INT DEFAULT 1000,
  expires_at DATETIME DEFAULT NULL,
  last_used_at DATETIME DEFAULT NULL,
  is_active TINYINT(1) DEFAULT 1,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  INDEX idx_api_key (api_key),
  INDEX idx_api_key_prefix (api_key_prefix),
  INDEX idx_user_id (user_id),
  INDEX idx_is_active (is_active)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
SQL);
foreach ([100 => 'admin', 101 => 'editor', 102 => 'contributor', 300 => 'researcher'] as $id => $name) {
    $admin->prepare('INSERT INTO `user` (id, username, email) VALUES (?, ?, ?)')->execute([$id, $name, "$name@archive.example.org"]);
}

$future = gmdate('Y-m-d H:i:s', time() + 365 * 86400);
// name => [heratio id, user_id, shape, scopes (JSON text or null), rate_limit, expires_at, is_active]
$rows = [
    'legacy' => [501, 100, 'random', '["read","write"]', 1000, null, 1],
    'research' => [502, 300, 'research', '["read","search"]', 1000, null, 1],
    'inactive' => [503, 100, 'random', '["read"]', 1000, null, 0],
    'expired' => [504, 100, 'random', '["read"]', 1000, '2020-01-01 00:00:00', 1],
    'future' => [505, 102, 'research', '["read"]', 1000, $future, 1],
    'nullscopes' => [506, 102, 'random', null, 1000, null, 1],
    'emptyscopes' => [507, 102, 'research', '[]', 1000, null, 1],
    'writeonly' => [508, 102, 'random', '["write"]', 1000, null, 1],
    'readonly' => [509, 101, 'random', '["read"]', 10, null, 1],
    'limit3' => [510, 101, 'research', '["read"]', 3, null, 1],
    'hammer' => [511, 101, 'random', '["read"]', 40, null, 1],
    'revoke' => [512, 100, 'random', '["read"]', 1000, null, 1],
    'scan' => [513, 100, 'research', '["scan:write"]', 1000, null, 1],
    'nulllimit' => [514, 100, 'random', '["read"]', null, null, 1],
];
$keys = [];
$insert = $admin->prepare('INSERT INTO ahg_api_key (id, user_id, name, api_key, api_key_prefix, scopes, rate_limit, expires_at, is_active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
foreach ($rows as $name => [$id, $user, $shape, $scopes, $limit, $expires, $active]) {
    $raw = $shape === 'random' ? heratio_random_key() : heratio_research_key();
    $keys[$name] = $raw;
    $insert->execute([$id, $user, $name, hash('sha256', $raw), substr($raw, 0, 8), $scopes, $limit, $expires, $active]);
}
$heratioDsn = preg_replace('#/[^/?]*(\?.*)?$#', "/$heratioDb", $base);

// === Our store, and the import ===
$store = Store::create('mysql', $tmp, $keygen);
$t0 = microtime(true);
[$code, $out, $err] = run([$keygen, '--dsn', $store->dsn, '--json', 'import:heratio', '--from', $heratioDsn]);
$import = json_decode($out, true);
if (!T::check('keygen import:heratio succeeds', $code === 0 && is_array($import), "exit $code: $err $out")) {
    T::finish();
}
printf("  (import of %d rows: %.2f s)\n", count($rows), microtime(true) - $t0);
T::eq('import: every row imported', count($rows), $import['imported'] ?? null);

// Our own keys next to the imported ones, and an AI token.
$client = $store->client('Harvester');
$native = $store->generate('api', $client, 'native', '--scopes', 'read,write');
$nativeLimited = $store->generate('api', $client, 'native-limited', '--scopes', 'read', '--rate-limit', '5');
$aiToken = $store->generate('ai', $client, 'assistant');

$keygenValidations = 0;
$ourId = function (string $key) use ($store, &$keygenValidations): int {
    $keygenValidations++;
    [, $out] = run([$store->keygen, '--dsn', $store->dsn, '--json', 'api:validate', $key]);
    return (int) (json_decode($out, true)['key_id'] ?? 0);
};

// === The app, php-fpm and nginx ===
$app = "$tmp/app";
build_app($app, $package);
$dir = "$tmp/fpm";
@mkdir($dir, 0755, true);
[$fpm, $nginx, $port] = deploy($dir, $app, $ext, $store->dsn, WORKERS);

$validations = 0; // requests that reached api.auth without a session user
$send = function (string $method, string $path, array $headers = [], bool $validates = true) use (&$port, &$validations): Resp {
    $r = http($port, $method, $path, $headers);
    if ($validates && $r->worker() !== 0) {
        $validations++;
    }
    return $r;
};

$deadline = microtime(true) + 20;
while (($ready = http($port, 'GET', '/api/open'))->status !== 200 && microtime(true) < $deadline) {
    usleep(100_000);
}
if (!T::check('Laravel answers through nginx + php-fpm', $ready->status === 200, $ready->describe() . "\n" . @file_get_contents("$dir/fpm.log") . @file_get_contents("$app/storage/logs/laravel.log"))) {
    T::finish();
}
$manifest = (string) @file_get_contents("$app/bootstrap/cache/packages.php");
T::check('the service provider was auto-discovered from composer.json (extra.laravel.providers)', str_contains($manifest, 'Heratio\\\\Keys\\\\Laravel\\\\HeratioKeysServiceProvider'), $manifest);

$required = '{"success":false,"error":"Unauthorized","message":"API key required. Use X-API-Key header or Authorization: Bearer."}';
$invalid = '{"success":false,"error":"Unauthorized","message":"Invalid or inactive API key."}';
$expired = '{"success":false,"error":"Unauthorized","message":"API key has expired."}';
$scope = fn (string $s) => '{"success":false,"error":"Forbidden","message":"Scope \'' . $s . '\' required."}';
$tooMany = fn (int $n) => '{"success":false,"error":"Too Many Requests","message":"Rate limit of ' . $n . ' requests per hour exceeded."}';

/** Status, exact body and Content-Type. */
function expect(string $name, Resp $r, int $status, ?string $body = null): void
{
    $ok = $r->status === $status && ($body === null || $r->body === $body) && $r->header('Content-Type') === 'application/json';
    T::check($name, $ok, $r->describe());
}

/** The attributes the echo route returns. */
function attrs(string $name, Resp $r, mixed $keyId, mixed $userId, array $scopes): void
{
    $j = $r->json();
    T::check($name, $r->status === 200 && is_array($j) && $j['api_key_id'] === $keyId && $j['api_user_id'] === $userId && $j['api_scopes'] === $scopes, $r->describe());
}

// --- Reading the key: header order and the Bearer rule (Heratio's) ----------
T::$group = 'laravel/key';
$legacy = $keys['legacy'];
expect('no key → 401 "API key required…"', $send('GET', '/api/v1/read'), 401, $required);
expect('X-API-Key: (empty) does not fall through to X-REST-API-Key → 401 required', $send('GET', '/api/v1/read', ['X-API-Key: ', 'X-REST-API-Key' => $legacy]), 401, $required);
expect('X-API-Key: 0 → 401 required (falsy, as in Heratio)', $send('GET', '/api/v1/read', ['X-API-Key' => '0']), 401, $required);
expect('Authorization: bearer (lower case) → 401 required', $send('GET', '/api/v1/read', ['Authorization' => "bearer $legacy"]), 401, $required);
expect('Authorization: Basic → 401 required', $send('GET', '/api/v1/read', ['Authorization' => 'Basic ' . base64_encode('a:b')]), 401, $required);
expect('Authorization: "Bearer " alone → 401 required', $send('GET', '/api/v1/read', ['Authorization: Bearer ']), 401, $required);
expect('Authorization: Bearer + two spaces → 401 invalid (token taken verbatim)', $send('GET', '/api/v1/read', ['Authorization' => "Bearer  $legacy"]), 401, $invalid);
attrs('Authorization: Bearer → 200', $send('GET', '/api/v1/read', ['Authorization' => "Bearer $legacy"]), 501, 100, ['read', 'write']);
attrs('X-REST-API-Key → 200', $send('GET', '/api/v1/read', ['X-REST-API-Key' => $legacy]), 501, 100, ['read', 'write']);
attrs('x-api-key (header names are case-insensitive) → 200', $send('GET', '/api/v1/read', ['x-api-key' => $legacy]), 501, 100, ['read', 'write']);
attrs('X-API-Key wins over a bad X-REST-API-Key and Bearer', $send('GET', '/api/v1/read', ['X-API-Key' => $legacy, 'X-REST-API-Key' => 'nope', 'Authorization' => 'Bearer nope']), 501, 100, ['read', 'write']);
expect('a bad X-API-Key does not fall through to a good Bearer → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => 'nope', 'Authorization' => "Bearer $legacy"]), 401, $invalid);
expect('?api_key= is not read → 401 required', $send('GET', '/api/v1/read?api_key=' . $legacy), 401, $required);

// --- Every status ------------------------------------------------------------
T::$group = 'laravel/status';
expect('unknown Heratio-shaped key → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => heratio_random_key()]), 401, $invalid);
expect('unknown research key → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => heratio_research_key()]), 401, $invalid);
expect('garbage key (malformed) → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => 'abc def']), 401, $invalid);
expect('unknown hk_api_ key → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => 'hk_api_' . str_repeat('A', 43)]), 401, $invalid);
expect('an AI token as API key (wrong_kind) → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => $aiToken['key']]), 401, $invalid);
expect('is_active = 0 (revoked by the import) → 401 invalid', $send('GET', '/api/v1/read', ['X-API-Key' => $keys['inactive']]), 401, $invalid);
expect('expired → 401 "API key has expired."', $send('GET', '/api/v1/read', ['X-API-Key' => $keys['expired']]), 401, $expired);
attrs('research key (rk_) → 200 with Heratio ids', $send('GET', '/api/v1/read', ['X-API-Key' => $keys['research']]), 502, 300, ['read', 'search']);
attrs('expiry in the future → 200', $send('GET', '/api/v1/read', ['X-API-Key' => $keys['future']]), 505, 102, ['read']);
attrs('our own key: api_key_id/api_user_id are our key and client ids', $send('GET', '/api/v1/read', ['X-API-Key' => $native['key']]), $native['id'], $client, ['read', 'write']);

// --- Scopes ------------------------------------------------------------------
T::$group = 'laravel/scopes';
attrs('NULL scopes pass a bare api.auth', $send('POST', '/api/archivematica/dip', ['X-API-Key' => $keys['nullscopes']]), 506, 102, []);
expect("NULL scopes fail api.auth:read → 403 Scope 'read'", $send('GET', '/api/v1/read', ['X-API-Key' => $keys['nullscopes']]), 403, $scope('read'));
attrs('[] scopes pass a bare api.auth', $send('POST', '/api/archivematica/dip', ['X-API-Key' => $keys['emptyscopes']]), 507, 102, []);
expect("[] scopes fail api.auth:write → 403 Scope 'write'", $send('POST', '/api/v1/write', ['X-API-Key' => $keys['emptyscopes']]), 403, $scope('write'));
expect("read-only key on api.auth:write → 403 Scope 'write'", $send('POST', '/api/v1/write', ['X-API-Key' => $keys['research']]), 403, $scope('write'));
expect("api.auth:read,write with read only → 403 Scope 'write'", $send('GET', '/api/v1/readwrite', ['X-API-Key' => $keys['research']]), 403, $scope('write'));
expect("api.auth:read,write with write only → 403 Scope 'read' (first missing, in order)", $send('GET', '/api/v1/readwrite', ['X-API-Key' => $keys['writeonly']]), 403, $scope('read'));
attrs('api.auth:read,write with both → 200', $send('GET', '/api/v1/readwrite', ['X-API-Key' => $legacy]), 501, 100, ['read', 'write']);
attrs('api.auth:scan:write is the one scope scan:write', $send('POST', '/api/v1/scan', ['X-API-Key' => $keys['scan']]), 513, 100, ['scan:write']);
expect("… which read,write does not hold → 403 Scope 'scan:write'", $send('POST', '/api/v1/scan', ['X-API-Key' => $legacy]), 403, $scope('scan:write'));
expect("stacked group api.auth:read rejects a write-only key first → 403 Scope 'read'", $send('POST', '/api/v2/descriptions', ['X-API-Key' => $keys['writeonly']]), 403, $scope('read'));

// --- api.ratelimit -----------------------------------------------------------
T::$group = 'laravel/ratelimit';
$r = $send('GET', '/api/v2/whoami', ['X-API-Key' => $legacy]);
attrs('v2 group (api.auth:read + api.ratelimit) → 200', $r, 501, 100, ['read', 'write']);
T::check('X-RateLimit-Limit is the imported rate_limit, X-RateLimit-Remaining below it', $r->header('X-RateLimit-Limit') === '1000' && (int) $r->header('X-RateLimit-Remaining') < 1000 && ctype_digit((string) $r->header('X-RateLimit-Remaining')), $r->describe());
T::check('no X-RateLimit-Reset header (Heratio has none)', $r->header('X-RateLimit-Reset') === null, $r->describe());
$r = $send('GET', '/api/v2/whoami', ['X-API-Key' => $keys['nulllimit']]);
T::check('rate_limit NULL in Heratio → X-RateLimit-Limit 1000 (Heratio\'s default)', $r->status === 200 && $r->header('X-RateLimit-Limit') === '1000', $r->describe());
$r = $send('GET', '/api/v2/whoami', ['X-API-Key' => $nativeLimited['key']]);
T::check('our key generated with --rate-limit 5 → X-RateLimit-Limit 5, Remaining 4', $r->status === 200 && $r->header('X-RateLimit-Limit') === '5' && $r->header('X-RateLimit-Remaining') === '4', $r->describe());
$r = $send('GET', '/api/v2/whoami', ['X-API-Key' => $native['key']]);
T::check('our key without a limit → no X-RateLimit-* headers', $r->status === 200 && $r->header('X-RateLimit-Limit') === null && $r->header('X-RateLimit-Remaining') === null, $r->describe());
$r = $send('GET', '/api/v1/read', ['X-API-Key' => $legacy]);
T::check('no X-RateLimit-* headers on a route without api.ratelimit', $r->status === 200 && $r->header('X-RateLimit-Limit') === null && $r->header('X-RateLimit-Remaining') === null, $r->describe());
$r = $send('GET', '/api/open', ['X-API-Key' => $legacy], false);
T::check('api.ratelimit without api.auth passes untouched (no headers, no validation)', $r->status === 200 && $r->header('X-RateLimit-Limit') === null && $r->json()['api_key_id'] === null, $r->describe());
$r = $send('GET', '/api/v2/', ['X-API-Key' => $legacy], false);
T::check('v2 root withoutMiddleware(api.auth:read): public, api.ratelimit a no-op', $r->status === 200 && $r->header('X-RateLimit-Limit') === null, $r->describe());

// limit 3: three accepted with Remaining 2, 1, 0, then 429 until the hour ends.
$seq = [];
for ($i = 0; $i < 5; $i++) {
    $seq[] = $send('GET', '/api/v2/whoami', ['X-API-Key' => $keys['limit3']]);
}
T::eq('limit 3: statuses 200, 200, 200, 429, 429', [200, 200, 200, 429, 429], array_map(fn ($r) => $r->status, $seq));
T::eq('limit 3: X-RateLimit-Limit 3 on each accepted response', ['3', '3', '3'], array_map(fn ($r) => $r->header('X-RateLimit-Limit'), array_slice($seq, 0, 3)));
T::eq('limit 3: X-RateLimit-Remaining 2, 1, 0', ['2', '1', '0'], array_map(fn ($r) => $r->header('X-RateLimit-Remaining'), array_slice($seq, 0, 3)));
$refused = $seq[3];
expect('429 body: "Rate limit of 3 requests per hour exceeded."', $refused, 429, $tooMany(3));
$expectedRetry = 3600 - (int) floor($refused->at) % 3600;
$retry = $refused->header('Retry-After');
T::check('Retry-After: whole seconds to the next clock hour (positive)', ctype_digit((string) $retry) && (int) $retry >= 1 && abs((int) $retry - $expectedRetry) <= 2, "Retry-After $retry, expected ≈ $expectedRetry");
T::check('no X-RateLimit-* headers on the 429', $refused->header('X-RateLimit-Limit') === null && $refused->header('X-RateLimit-Remaining') === null, $refused->describe());
attrs('over its limit, a route without api.ratelimit still answers (as in Heratio)', $send('GET', '/api/v1/read', ['X-API-Key' => $keys['limit3']]), 510, 101, ['read']);

// Stacked api.auth:read (group) + api.auth:write (route): one validation,
// counted once; the inner 403 still carries the rate-limit headers.
$r = $send('POST', '/api/v2/descriptions', ['X-API-Key' => $keys['readonly']]);
expect("stacked: read-only key → inner 403 Scope 'write'", $r, 403, $scope('write'));
T::check('stacked: the inner 403 carries X-RateLimit-Limit 10, Remaining 9 (counted once)', $r->header('X-RateLimit-Limit') === '10' && $r->header('X-RateLimit-Remaining') === '9', $r->describe());
$r = $send('GET', '/api/v2/whoami', ['X-API-Key' => $keys['readonly']]);
T::check('stacked: the next request sees Remaining 8', $r->status === 200 && $r->header('X-RateLimit-Remaining') === '8', $r->describe());
$r = $send('POST', '/api/v2/descriptions', ['X-API-Key' => $legacy]);
attrs('stacked: read+write key → 200', $r, 501, 100, ['read', 'write']);
T::check('stacked: rate-limit headers on the 200', $r->header('X-RateLimit-Limit') === '1000', $r->describe());

// --- Session users take precedence (AtoM's ACL through SessionScopes) --------
T::$group = 'laravel/session';
$login = function (int $id) use ($port): string {
    $r = http($port, 'GET', "/login/$id");
    foreach ($r->headers['set-cookie'] ?? [] as $c) {
        if (str_starts_with($c, 'laravel_session=')) {
            return 'Cookie: ' . strstr($c, ';', true);
        }
    }
    return '';
};
$asAdmin = $login(100);
$asContributor = $login(102);
$asResearcher = $login(300);
T::check('logged in through the session guard', $asAdmin !== '' && $asContributor !== '' && $asResearcher !== '');
$r = $send('GET', '/api/session/read', [$asAdmin, 'X-API-Key' => 'not-a-key'], false);
attrs('admin session: key header ignored, api_key_id null, Heratio admin scopes', $r, null, 100, ['read', 'write', 'delete', 'publish:write', 'batch']);
T::check('session: not rate-limited (no X-RateLimit-* headers)', $r->header('X-RateLimit-Limit') === null, $r->describe());
attrs('contributor session: read, write', $send('POST', '/api/session/write', [$asContributor], false), null, 102, ['read', 'write']);
expect("contributor session on api.auth:batch → 403 Scope 'batch'", $send('POST', '/api/session/batch', [$asContributor], false), 403, $scope('batch'));
expect("researcher session (no ACL grant) → 403 Scope 'read'", $send('GET', '/api/session/read', [$asResearcher, 'X-API-Key' => $legacy], false), 403, $scope('read'));
attrs('researcher session passes a bare api.auth with no scopes', $send('POST', '/api/session/any', [$asResearcher], false), null, 300, []);
attrs('no session cookie on a session route: the key is used', $send('GET', '/api/session/read', ['X-API-Key' => $legacy]), 501, 100, ['read', 'write']);
expect('no session cookie and no key → 401 required', $send('POST', '/api/session/any', []), 401, $required);

// --- Revocation: every worker, within a second --------------------------------
T::$group = 'laravel/revocation';
$revokeId = $ourId($keys['revoke']);
$auth = ['X-API-Key' => $keys['revoke']];
$pids = [];
for ($i = 0; $i < 30 && count($pids) < WORKERS; $i++) {
    foreach (http_many($port, array_fill(0, 8, ['GET', '/api/limited?hold=40', $auth])) as $r) {
        if ($r->worker()) {
            $validations++;
        }
        if ($r->status === 200) {
            $pids[$r->worker()] = true;
        }
    }
}
T::eq('the key is accepted by every worker first', WORKERS, count($pids));
$t0 = microtime(true);
$store->keygen('api:revoke', (string) $revokeId);
$committed = microtime(true);
$firstReject = [];
$flapped = false;
$acceptedAfter = 0;
while (microtime(true) - $t0 < 10 && count($firstReject) < count($pids)) {
    $burst = http_many($port, array_fill(0, 8, ['GET', '/api/limited?hold=20', $auth]));
    usort($burst, fn ($a, $b) => (float) $a->header('X-Time') <=> (float) $b->header('X-Time'));
    foreach ($burst as $r) {
        if (!$r->worker()) {
            continue;
        }
        $validations++;
        $pid = $r->worker();
        if ($r->status === 200) {
            $acceptedAfter++;
            $flapped = $flapped || isset($firstReject[$pid]);
        } elseif ($r->status === 401 && $r->body === $invalid && !isset($firstReject[$pid])) {
            $firstReject[$pid] = (float) $r->header('X-Time') - $t0;
        }
    }
}
$slowest = $firstReject ? max($firstReject) : INF;
T::eq('after keygen api:revoke every worker answers 401 invalid', count($pids), count(array_intersect_key($firstReject, $pids)));
T::check('no worker accepts it again', !$flapped);
T::check('revocation seen by every worker within 1 s of keygen starting', $slowest < 1.0, sprintf('%.3f s', $slowest));
printf("  REVOCATION_MS %d (keygen itself took %d ms; %d accepted after it started)\n", (int) round($slowest * 1000), (int) round(($committed - $t0) * 1000), $acceptedAfter);

// --- 4 workers hammer one key with limit 40 -----------------------------------
T::$group = 'laravel/hammer';
$auth = ['X-API-Key' => $keys['hammer']];
$accepted = 0;
$refusedN = 0;
$acceptors = [];
$refusers = [];
$badRefusals = [];
$quiet = 0;
for ($burst = 0; $burst < 80 && $quiet < 3; $burst++) {
    $ok = 0;
    foreach (http_many($port, array_fill(0, 16, ['GET', '/api/limited?hold=5', $auth])) as $r) {
        if (!$r->worker()) {
            continue;
        }
        $validations++;
        if ($r->status === 200) {
            $ok++;
            $accepted++;
            $acceptors[$r->worker()] = true;
        } elseif ($r->status === 429) {
            $refusedN++;
            $refusers[$r->worker()] = true;
            $expectedRetry = 3600 - (int) floor($r->at) % 3600;
            $retry = $r->header('Retry-After');
            if ($r->body !== $tooMany(40) || !ctype_digit((string) $retry) || abs((int) $retry - $expectedRetry) > 2 || $r->header('X-RateLimit-Limit') !== null) {
                $badRefusals[] = $r->describe();
            }
        } else {
            $badRefusals[] = $r->describe();
        }
    }
    $quiet = $ok === 0 ? $quiet + 1 : 0;
}
T::eq('exactly the limit (40) accepted across the workers', 40, $accepted);
T::check('accepted by more than one worker', count($acceptors) > 1, count($acceptors) . ' workers');
T::eq('then 429 from every worker', WORKERS, count($refusers));
T::check('every refusal: exact body, Retry-After to the next hour, no X-RateLimit-*', $badRefusals === [], implode("\n", array_slice($badRefusals, 0, 3)));
printf("  HAMMER accepted %d of limit 40 by %d workers, then %d refused by %d workers\n", $accepted, count($acceptors), $refusedN, count($refusers));

// --- Any SAPI: the kernel under the php CLI (no $_SERVER headers), the session
// scope hook overridden, and an unreachable store answered 503. ----------------
T::$group = ''; // run_cases names its checks
[$other] = run_cases('laravel/cli', [PHP_BINARY, '-n', ...php_ini_args($ext), '-d', "heratio_keys.dsn={$store->dsn}", __DIR__ . '/cli.php', $app, 'store', $legacy], ['HK_TEST_SESSION_SCOPES' => 'custom']);
foreach ($other as $line) {
    if (preg_match('/^VALIDATIONS (\d+)$/', $line, $m)) {
        $validations += (int) $m[1];
    }
}
build_app("$tmp/app-down", $package); // its own log: this run must write a warning there
run_cases('laravel/cli-down', [PHP_BINARY, '-n', ...php_ini_args($ext), '-d', 'heratio_keys.dsn=mysql://nobody:x@127.0.0.1:1/none', __DIR__ . '/cli.php', "$tmp/app-down", 'down', $legacy]);

// --- Usage rows: one per validation -------------------------------------------
T::$group = 'laravel/usage';
T::check('php-fpm stopped gracefully (SIGQUIT)', $fpm->stop());
$nginx->stop();
$rows = $store->usageRows();
T::eq('usage_log rows + usage_rejected counts = key validations (requests through api.auth without a session, keygen api:validate)', $validations + $keygenValidations, $rows);
$endpoint = $store->pdo->query("SELECT COUNT(*) FROM usage_log WHERE endpoint = '/api/v2/descriptions' AND ip = '127.0.0.1'")->fetchColumn();
T::eq('usage_log endpoint is the request path, ip the client address', 3, (int) $endpoint);
$cliRows = $store->pdo->query("SELECT COUNT(*) FROM usage_log WHERE endpoint = '/api/v1/read' AND ip = '192.0.2.7'")->fetchColumn();
T::eq('usage_log: the CLI request recorded with its Request object\'s address', 1, (int) $cliRows);
$log = (string) @file_get_contents("$dir/fpm.log") . (string) @file_get_contents("$app/storage/logs/laravel.log");
T::check('no PHP warning, error or crash in the FPM and Laravel logs', !preg_match('/SIGSEGV|SIGABRT|exited on signal|PHP (Warning|Fatal)|\.ERROR|\.WARNING/', $log), substr($log, 0, 3000));

T::finish();
