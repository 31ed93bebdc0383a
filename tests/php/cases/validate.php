<?php
// Runs inside `php -d extension=heratio_keys.so -d heratio_keys.dsn=...`.
// Keys come from the driver in $HK_KEYS (JSON). Prints "ok NAME" or
// "FAIL NAME: detail" per check, then "STATS {json}".

declare(strict_types=1);

use Heratio\Keys\Result;

require __DIR__ . '/common.php';

$k = case_keys();

function is_result(Result $r, string $status, int $http, ?string $message = null): array
{
    $got = "$r->status/$r->httpStatus/" . var_export($r->valid, true) . "/$r->message";
    $ok = $r->status === $status && $r->httpStatus === $http && $r->valid === ($status === 'valid')
        && ($message === null || $r->message === $message);
    return [$ok, "expected $status/$http" . ($message !== null ? "/$message" : '') . ", got $got"];
}

function expect(string $name, Result $r, string $status, int $http, ?string $message = null): void
{
    [$ok, $detail] = is_result($r, $status, $http, $message);
    t($name, $ok, $detail);
}

function throws(string $name, callable $f, string $class, ?string $contains = null): void
{
    try {
        $f();
        t($name, false, "no $class thrown");
    } catch (Throwable $e) {
        $ok = $e instanceof $class && ($contains === null || str_contains($e->getMessage(), $contains));
        t($name, $ok, get_class($e) . ': ' . $e->getMessage());
    }
}

$validations = 0; // counted by hand to compare with usage_log
$v = function (string $fn, ...$args) use (&$validations): Result {
    $validations++;
    return $fn(...$args);
};

// --- every status ---------------------------------------------------------
$r = $v('heratio_keys_validate_api_key', $k['rw'], [], '192.0.2.7', '/api/informationobjects');
expect('valid API key', $r, 'valid', 200, 'API key accepted.');
t('valid: credential fields', $r->clientId === $k['client'] && $r->keyId === $k['rw_id'] && $r->name === 'production' && $r->scopes === ['read', 'write'], json_encode($r));
expect('valid AI token', $v('heratio_keys_validate_ai_token', $k['ai']), 'valid', 200, 'AI token accepted.');
expect('malformed: garbage', $v('heratio_keys_validate_api_key', 'not-a-key'), 'malformed', 401, 'Invalid API key format.');
expect('malformed: empty', $v('heratio_keys_validate_api_key', ''), 'malformed', 401);
$typo = substr($k['rw'], 0, -1) . (substr($k['rw'], -1) === 'A' ? 'B' : 'A');
expect('malformed: checksum typo', $v('heratio_keys_validate_api_key', $typo), 'malformed', 401);
expect('wrong_kind: AI token as API key', $v('heratio_keys_validate_api_key', $k['ai']), 'wrong_kind', 401, 'An AI token cannot be used as an API key.');
expect('wrong_kind: API key as AI token', $v('heratio_keys_validate_ai_token', $k['rw']), 'wrong_kind', 401, 'An API key cannot be used as an AI token.');
expect('not_found', $v('heratio_keys_validate_api_key', $k['unknown']), 'not_found', 401, 'Invalid or inactive API key.');
$r = $v('heratio_keys_validate_api_key', $k['revoked']);
expect('revoked', $r, 'revoked', 401, 'Invalid or inactive API key.');
t('revoked: credential identified', $r->keyId === $k['revoked_id'], json_encode($r));
expect('expired', $v('heratio_keys_validate_api_key', $k['expired']), 'expired', 401, 'API key has expired.');
expect('client_inactive', $v('heratio_keys_validate_api_key', $k['inactive']), 'client_inactive', 401, 'Invalid or inactive API key.');
expect('client deactivated via keygen (cascade revokes)', $v('heratio_keys_validate_api_key', $k['deactivated']), 'revoked', 401);

// --- scopes -----------------------------------------------------------------
expect('scope held', $v('heratio_keys_validate_api_key', $k['rw'], ['read']), 'valid', 200);
expect('all scopes held', $v('heratio_keys_validate_api_key', $k['rw'], ['read', 'write']), 'valid', 200);
$r = $v('heratio_keys_validate_api_key', $k['rw'], ['read', 'delete']);
expect('scope missing -> forbidden 403', $r, 'forbidden', 403, "Scope 'delete' required.");
t('forbidden: credential still identified', $r->keyId === $k['rw_id'] && $r->scopes === ['read', 'write'], json_encode($r));
expect('* grants any scope', $v('heratio_keys_validate_api_key', $k['star'], ['admin', 'batch']), 'valid', 200);
expect('read-only key lacks write', $v('heratio_keys_validate_api_key', $k['ro'], ['write']), 'forbidden', 403, "Scope 'write' required.");
expect('AI token scopes', $v('heratio_keys_validate_ai_token', $k['ai'], ['ai:describe']), 'valid', 200);
expect('AI token missing scope', $v('heratio_keys_validate_ai_token', $k['ai'], ['write']), 'forbidden', 403);
throws('invalid scope name throws Heratio\Keys\Exception', fn () => heratio_keys_validate_api_key($k['rw'], ['read ']), Heratio\Keys\Exception::class, 'invalid scope');
throws('empty scope name throws', fn () => heratio_keys_validate_api_key($k['rw'], ['']), Heratio\Keys\Exception::class);
throws('scope with NUL throws', fn () => heratio_keys_validate_api_key($k['rw'], ["re\0ad"]), Heratio\Keys\Exception::class);
// Scopes are read from the caller's array in place: past 8 of them on the
// heap, an associative or holey array by its values, references followed.
$many = array_merge(['read'], array_map(fn ($i) => "s$i", range(1, 11)));
expect('12 scopes, * grants them all', $v('heratio_keys_validate_api_key', $k['star'], $many), 'valid', 200);
expect('12 scopes, one not held', $v('heratio_keys_validate_api_key', $k['rw'], array_merge(['read', 'write'], $many)), 'forbidden', 403, "Scope 's1' required.");
expect('associative scopes: values count', $v('heratio_keys_validate_api_key', $k['rw'], ['a' => 'read', 9 => 'delete']), 'forbidden', 403, "Scope 'delete' required.");
$holey = ['read', 'delete', 'write'];
unset($holey[1]);
expect('holey scopes array', $v('heratio_keys_validate_api_key', $k['rw'], $holey), 'valid', 200);
$scope = 'delete';
$byRef = ['read', &$scope];
expect('scope by reference', $v('heratio_keys_validate_api_key', $k['rw'], $byRef), 'forbidden', 403, "Scope 'delete' required.");
throws('65 scopes throw', fn () => heratio_keys_validate_api_key($k['rw'], array_map(fn ($i) => "s$i", range(1, 65))), Heratio\Keys\Exception::class, 'at most 64');
throws('int after 65 strings -> TypeError', fn () => heratio_keys_validate_api_key($k['rw'], array_merge(array_map(fn ($i) => "s$i", range(1, 65)), [1])), TypeError::class);
$e = null;
try { heratio_keys_validate_api_key($k['rw'], [str_repeat('a', 1 << 20)]); } catch (Heratio\Keys\Exception $e) {}
t('1 MB scope name throws, with a short message', $e !== null && str_contains($e->getMessage(), 'invalid scope') && strlen($e->getMessage()) < 300, $e ? strlen($e->getMessage()) . ' bytes' : 'no exception');
throws('non-UTF-8 scope -> TypeError', fn () => heratio_keys_validate_api_key($k['rw'], ["\xff"]), TypeError::class);
t('Heratio\Keys\Exception extends \Exception', is_subclass_of(Heratio\Keys\Exception::class, Exception::class));

// --- hostile input ----------------------------------------------------------
expect('NUL byte appended to a valid key', $v('heratio_keys_validate_api_key', $k['rw'] . "\0"), 'malformed', 401);
expect('NUL byte inside a key', $v('heratio_keys_validate_api_key', substr_replace($k['rw'], "\0", 20, 1)), 'malformed', 401);
expect('non-UTF-8 key', $v('heratio_keys_validate_api_key', "hk_api_\xff\xfe"), 'malformed', 401);
$big = str_repeat('A', 1 << 20);
$t0 = hrtime(true);
expect('1 MB key', $v('heratio_keys_validate_api_key', $big), 'malformed', 401);
t('1 MB key rejected in under 50 ms', (hrtime(true) - $t0) < 50e6, sprintf('%.1f ms', (hrtime(true) - $t0) / 1e6));
expect('1 MB key with a valid prefix', $v('heratio_keys_validate_api_key', $k['rw'] . $big), 'malformed', 401);
expect('non-UTF-8 ip and endpoint are accepted', $v('heratio_keys_validate_api_key', $k['rw'], [], "\xff", "/x\xff"), 'valid', 200);
expect('1 MB endpoint (truncated in the log)', $v('heratio_keys_validate_api_key', $k['rw'], [], null, '/' . $big), 'valid', 200);

// --- wrong PHP types --------------------------------------------------------
throws('int key -> TypeError', fn () => heratio_keys_validate_api_key(123), TypeError::class);
throws('null key -> TypeError', fn () => heratio_keys_validate_api_key(null), TypeError::class);
throws('array key -> TypeError', fn () => heratio_keys_validate_api_key([]), TypeError::class);
throws('object key -> TypeError', fn () => heratio_keys_validate_ai_token(new stdClass()), TypeError::class);
throws('string scopes -> TypeError', fn () => heratio_keys_validate_api_key($k['rw'], 'read'), TypeError::class);
throws('int in scopes -> TypeError', fn () => heratio_keys_validate_api_key($k['rw'], [1]), TypeError::class);
throws('array ip -> TypeError', fn () => heratio_keys_validate_api_key($k['rw'], [], []), TypeError::class);
throws('no arguments -> ArgumentCountError', fn () => heratio_keys_validate_api_key(), ArgumentCountError::class);
throws('too many arguments -> ArgumentCountError', fn () => heratio_keys_validate_api_key('a', [], null, null, 5), ArgumentCountError::class);
throws('authenticate: unknown kind -> Heratio\Keys\Exception', fn () => heratio_keys_authenticate([], 'web'), Heratio\Keys\Exception::class, 'invalid kind');
throws('authenticate: scopes not an array -> TypeError', fn () => heratio_keys_authenticate('read'), TypeError::class);
$e = null;
try { heratio_keys_authenticate([], str_repeat('w', 1 << 20)); } catch (Heratio\Keys\Exception $e) {}
t('authenticate: a 1 MB kind is refused with a short message', $e !== null && strlen($e->getMessage()) < 200, $e ? strlen($e->getMessage()) . ' bytes' : 'no exception');
throws('authenticate: kind not a string -> TypeError', fn () => heratio_keys_authenticate([], 1), TypeError::class);

// --- the Result is read-only ------------------------------------------------
$r = heratio_keys_validate_api_key('x');
$validations++;
throws('Result: property write -> Error', function () use ($r) { $r->valid = true; }, Error::class, 'readonly');
throws('Result: dynamic property -> Error', function () use ($r) { $r->extra = 1; }, Error::class);
throws('Result: unset -> Error', function () use ($r) { unset($r->status); }, Error::class);
throws('Result: cannot be instantiated', fn () => new Result(), Throwable::class);
t('Result: still unchanged', $r->valid === false && $r->status === 'malformed');
t('Result: class is final', (new ReflectionClass(Result::class))->isFinal());
$j = json_decode(json_encode($r), true);
t('Result: json_encode exposes the fields', $j['status'] === 'malformed' && $j['httpStatus'] === 401 && array_key_exists('clientId', $j), json_encode($r));

// --- authenticate: each header form, precedence, none ------------------------
$auth = function (array $server, array $scopes = [], string $kind = 'api') use (&$validations): Result {
    foreach (['HTTP_X_API_KEY', 'HTTP_X_REST_API_KEY', 'HTTP_AUTHORIZATION', 'REDIRECT_HTTP_AUTHORIZATION', 'REMOTE_ADDR', 'REQUEST_URI'] as $h) {
        unset($_SERVER[$h]);
    }
    foreach ($server as $h => $val) {
        $_SERVER[$h] = $val;
    }
    $validations++;
    return heratio_keys_authenticate($scopes, $kind);
};
$r = $auth(['HTTP_X_API_KEY' => $k['rw'], 'REMOTE_ADDR' => '198.51.100.9', 'REQUEST_URI' => '/api/v1/auth-test?secret=1']);
expect('authenticate: X-API-Key', $r, 'valid', 200);
t('authenticate: X-API-Key identifies the key', $r->keyId === $k['rw_id']);
expect('authenticate: X-REST-API-Key', $auth(['HTTP_X_REST_API_KEY' => $k['rw']]), 'valid', 200);
expect('authenticate: Authorization: Bearer', $auth(['HTTP_AUTHORIZATION' => 'Bearer ' . $k['rw']]), 'valid', 200);
expect('authenticate: bearer scheme case-insensitive', $auth(['HTTP_AUTHORIZATION' => 'bearer ' . $k['rw']]), 'valid', 200);
expect('authenticate: REDIRECT_HTTP_AUTHORIZATION (Apache rewrite)', $auth(['REDIRECT_HTTP_AUTHORIZATION' => 'Bearer ' . $k['rw']]), 'valid', 200);
$none = 'API key required. Use X-API-Key header or Authorization: Bearer.';
expect('authenticate: no key', $auth([]), 'malformed', 401, $none);
expect('authenticate: Basic auth is no key', $auth(['HTTP_AUTHORIZATION' => 'Basic dXNlcjpwYXNz']), 'malformed', 401, $none);
expect('authenticate: empty X-API-Key is no key', $auth(['HTTP_X_API_KEY' => '']), 'malformed', 401, $none);
$r = $auth(['HTTP_X_API_KEY' => $k['revoked'], 'HTTP_AUTHORIZATION' => 'Bearer ' . $k['rw']]);
expect('authenticate: X-API-Key takes precedence over Bearer', $r, 'revoked', 401);
$r = $auth(['HTTP_X_API_KEY' => $k['rw'], 'HTTP_X_REST_API_KEY' => $k['revoked']]);
expect('authenticate: X-API-Key takes precedence over X-REST-API-Key', $r, 'valid', 200);
expect('authenticate: X-REST-API-Key before Bearer', $auth(['HTTP_X_REST_API_KEY' => $k['revoked'], 'HTTP_AUTHORIZATION' => 'Bearer ' . $k['rw']]), 'revoked', 401);
expect('authenticate: scopes', $auth(['HTTP_X_API_KEY' => $k['rw']], ['delete']), 'forbidden', 403, "Scope 'delete' required.");
expect('authenticate: kind ai', $auth(['HTTP_AUTHORIZATION' => 'Bearer ' . $k['ai']], [], 'ai'), 'valid', 200);
expect('authenticate: kind ai, no token', $auth([], [], 'ai'), 'malformed', 401, 'AI token required. Use X-API-Key header or Authorization: Bearer.');
expect('authenticate: API key where AI token expected', $auth(['HTTP_X_API_KEY' => $k['rw']], [], 'ai'), 'wrong_kind', 401);
expect('authenticate: header with NUL', $auth(['HTTP_X_API_KEY' => $k['rw'] . "\0x"]), 'malformed', 401);
expect('authenticate: array in header slot is no key', $auth(['HTTP_X_API_KEY' => ['x']]), 'malformed', 401, $none);
$savedServer = $_SERVER;
$_SERVER = [];
$validations++;
expect('authenticate: empty $_SERVER', heratio_keys_authenticate(), 'malformed', 401, $none);
$_SERVER = $savedServer;
if (getenv('HTTP_X_API_KEY') !== false) {
    // The driver also passes a key through the environment, which the CLI
    // SAPI copies into the engine's $_SERVER.
    unset($_SERVER['HTTP_X_API_KEY']);
    $_SERVER['HTTP_X_API_KEY'] = getenv('HTTP_X_API_KEY');
    $validations++;
    expect('authenticate: key from the environment', heratio_keys_authenticate(), 'valid', 200);
}

// --- ini, version, stats ----------------------------------------------------
t('ini_set of heratio_keys.dsn is refused (PHP_INI_SYSTEM)', @ini_set('heratio_keys.dsn', 'sqlite:/tmp/other.db') === false);
t('ini_get heratio_keys.cache_ttl', ini_get('heratio_keys.cache_ttl') === '60', var_export(ini_get('heratio_keys.cache_ttl'), true));
t('ini_get heratio_keys.poll_interval_ms', ini_get('heratio_keys.poll_interval_ms') === (string) $k['poll_ms']);
t('heratio_keys_version', heratio_keys_version() === phpversion('heratio_keys') && preg_match('/^\d+\.\d+\.\d+/', heratio_keys_version()) === 1, heratio_keys_version());
$s = heratio_keys_stats();
$hostKeys = ['host_leader', 'host_leader_pid', 'host_hits', 'host_misses', 'host_fills', 'host_entries', 'host_corrupt', 'host_queued', 'host_dropped', 'host_written'];
$expectKeys = ['pid', 'open', 'dsn', 'open_failures', 'last_error', 'validations', 'cache_hits', 'cache_misses', 'cache_entries', 'store_queries', 'store_errors', 'feed_polls', 'feed_errors', 'feed_evictions', 'feed_lag_ms', 'usage_queued', 'usage_written', 'usage_dropped', 'usage_write_errors', 'shared', 'shared_error', 'shared_region', ...$hostKeys];
t('stats: keys', array_keys($s) === $expectKeys, json_encode(array_keys($s)));
// heratio_keys.shared_cache is On by default: this lone process shares the
// host region (in the driver's private HERATIO_KEYS_REGION_DIR) and leads it.
$regionDir = getenv('HERATIO_KEYS_REGION_DIR');
t('ini_get heratio_keys.shared_cache is On by default', ini_get('heratio_keys.shared_cache') === '1', var_export(ini_get('heratio_keys.shared_cache'), true));
t('stats: shared, no error, region in HERATIO_KEYS_REGION_DIR', $s['shared'] === true && $s['shared_error'] === null && is_string($s['shared_region']) && ($regionDir === false || str_starts_with($s['shared_region'], $regionDir . '/')), json_encode([$s['shared'], $s['shared_error'], $s['shared_region']]));
t('stats: region file is 0600', is_string($s['shared_region']) && (fileperms($s['shared_region']) & 0777) === 0600);
t('stats: the lone process leads the host', $s['host_leader'] === 1 && $s['host_leader_pid'] === getmypid(), json_encode([$s['host_leader'], $s['host_leader_pid']]));
t('stats: host counters are integers, hits and fills seen', array_filter($hostKeys, fn ($k) => !is_int($s[$k])) === [] && $s['host_hits'] > 0 && $s['host_fills'] > 0 && $s['host_entries'] > 0, json_encode(array_intersect_key($s, array_flip($hostKeys))));
t('stats: open, this pid', $s['open'] === true && $s['pid'] === getmypid());
t('stats: validations counted', $s['validations'] === $validations, "stats {$s['validations']} vs $validations");
t('stats: cache hits', $s['cache_hits'] > 0 && $s['cache_misses'] > 0);
t('stats: DSN password masked', !str_contains((string) $s['dsn'], (string) $k['password_probe']), (string) $s['dsn']);

// --- cache hit cost ---------------------------------------------------------
$key = $k['rw'];
heratio_keys_validate_api_key($key);
$n = (int) ($k['loop'] ?? 50000);
$t0 = hrtime(true);
for ($i = 0; $i < $n; $i++) {
    heratio_keys_validate_api_key($key);
}
$ns = (hrtime(true) - $t0) / $n;
$validations += $n + 1;
t('cache-hit loop answered', heratio_keys_validate_api_key($key)->valid);
$validations++;
$s = heratio_keys_stats();
echo 'NS_PER_CALL ' . round($ns) . "\n";
echo 'VALIDATIONS ' . $validations . "\n";
echo 'DROPPED ' . $s['usage_dropped'] . "\n";
