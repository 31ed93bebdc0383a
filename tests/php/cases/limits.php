<?php
// Runs inside `php -d extension=heratio_keys.so -d heratio_keys.dsn=...`:
// Result::$metadata, $rateLimit, $rateRemaining, $retryAfter. Keys come
// from the driver in $HK_KEYS (JSON). Prints "ok NAME" or "FAIL NAME: detail".

declare(strict_types=1);

use Heratio\Keys\Result;

require __DIR__ . '/common.php';

$k = case_keys();

function show(Result $r): string
{
    return json_encode($r, JSON_PRESERVE_ZERO_FRACTION | JSON_UNESCAPED_UNICODE);
}

/** Sorts keys at every level, to compare arrays whatever their key order. */
function ksort_deep(mixed $v): mixed
{
    if (!is_array($v)) {
        return $v;
    }
    $v = array_map('ksort_deep', $v);
    if (!array_is_list($v)) {
        ksort($v);
    }
    return $v;
}

function throws_readonly(string $name, callable $f): void
{
    try {
        $f();
        t($name, false, 'no Error thrown');
    } catch (Error $e) {
        t($name, str_contains($e->getMessage(), 'readonly'), get_class($e) . ': ' . $e->getMessage());
    }
}

$limit = $k['limit'];
$retryWindow = static fn (): int => 3600 - time() % 3600; // seconds to the next UTC hour

// --- a key without limit or metadata -------------------------------------------
$r = heratio_keys_validate_api_key($k['plain']);
t('unlimited key: valid', $r->valid, show($r));
t('unlimited key: metadata [] and no rate fields', $r->metadata === [] && $r->rateLimit === null && $r->rateRemaining === null && $r->retryAfter === null, show($r));
$r = heratio_keys_validate_api_key('not-a-key');
t('nothing matched: metadata [] and no rate fields', $r->metadata === [] && $r->rateLimit === null && $r->rateRemaining === null && $r->retryAfter === null, show($r));

// --- metadata without a limit ---------------------------------------------------
$r = heratio_keys_validate_api_key($k['meta']);
t('metadata-only key: the object as an array, no rate fields', $r->valid && $r->metadata === ['team' => 'harvest'] && $r->rateLimit === null && $r->rateRemaining === null, show($r));

// --- nested metadata, round trip --------------------------------------------------
// Keys come sorted (the store keeps compact JSON with sorted keys); values
// as json_decode($json, true) gives them.
$expected = [
    42 => 'numeric key',
    'big' => 18446744073709551615,       // beyond int: float, as json_decode
    'empty_list' => [],
    'empty_object' => [],
    'flag' => false,
    'heratio_key_id' => 7,
    'heratio_user_id' => 3,
    'neg' => -5,
    'nested' => ['list' => [1, 'two', null, true, 2.5, ['deep' => ['x']]], 'ratio' => 0.25],
    'unicode' => "\u{c5}land \u{2603} \"quoted\" \\ /",
];
$r = heratio_keys_validate_api_key($k['limited'], ['read']);
t('metadata: nested round trip, exact types and sorted keys', $r->metadata === $expected, var_export($r->metadata, true));
t('metadata: equal to json_decode($json, true) of what was stored', ksort_deep($r->metadata) === ksort_deep(json_decode($k['metadata_json'], true)), var_export($r->metadata, true));
t('metadata: "42" is an integer key, as in any PHP array', array_key_exists(42, $r->metadata) && is_int(array_key_first($r->metadata)));
t('metadata: 2^64-1 is a float', is_float($r->metadata['big']));
t('metadata: a fresh array on each read', $r->metadata === $r->metadata);
$copy = $r->metadata;
$copy['flag'] = true;
t('metadata: modifying a copy leaves the result alone', $r->metadata['flag'] === false);

// --- rate limit ---------------------------------------------------------------------
t('limited key: first request counted', $r->valid && $r->rateLimit === $limit && $r->rateRemaining === $limit - 1 && $r->retryAfter === null, show($r));
$f = heratio_keys_validate_api_key($k['limited'], ['write']);
t('limited key: forbidden is not counted (rateLimit set, rateRemaining null)', $f->status === 'forbidden' && $f->rateLimit === $limit && $f->rateRemaining === null && $f->retryAfter === null && $f->metadata === $expected, show($f));
$remaining = [$r->rateRemaining];
for ($i = 2; $i <= $limit; $i++) {
    $r = heratio_keys_validate_api_key($k['limited']);
    $remaining[] = $r->valid ? $r->rateRemaining : "$r->status";
}
t("limited key: rateRemaining counts down to 0 over $limit requests", $remaining === range($limit - 1, 0), json_encode($remaining));
for ($i = 0; $i < 3; $i++) {
    $r = heratio_keys_validate_api_key($k['limited'], [], '192.0.2.44', '/api/limited');
    $window = $retryWindow();
    t("over the limit ($i): rate_limited, 429, not valid", $r->status === 'rate_limited' && $r->httpStatus === 429 && $r->valid === false, show($r));
    t("over the limit ($i): Heratio's message", $r->message === "Rate limit of $limit requests per hour exceeded.", $r->message);
    t("over the limit ($i): retryAfter in 1..3600, the seconds to the next UTC hour", is_int($r->retryAfter) && $r->retryAfter >= 1 && $r->retryAfter <= 3600 && abs($r->retryAfter - $window) <= 2, "retryAfter " . var_export($r->retryAfter, true) . ", expected about $window");
    t("over the limit ($i): rateLimit, rateRemaining 0, key and metadata still identified", $r->rateLimit === $limit && $r->rateRemaining === 0 && $r->keyId === $k['limited_id'] && $r->metadata === $expected, show($r));
}
$j = json_decode(json_encode($r), true);
t('json_encode: the four new fields', $j['metadata']['heratio_user_id'] === 3 && $j['rateLimit'] === $limit && $j['rateRemaining'] === 0 && $j['retryAfter'] === $r->retryAfter, json_encode($r));

// --- read-only ---------------------------------------------------------------------
throws_readonly('Result: metadata is read-only', function () use ($r) { $r->metadata = []; });
throws_readonly('Result: metadata is read-only (any type)', function () use ($r) { $r->metadata = 'x'; });
throws_readonly('Result: rateLimit is read-only', function () use ($r) { $r->rateLimit = 1; });
throws_readonly('Result: rateRemaining is read-only', function () use ($r) { $r->rateRemaining = 1; });
throws_readonly('Result: retryAfter is read-only', function () use ($r) { $r->retryAfter = null; });
t('Result: unchanged after the attempts', $r->rateRemaining === 0 && $r->metadata === $expected);

// --- heratio_keys_authenticate -----------------------------------------------------
foreach (['HTTP_X_API_KEY', 'HTTP_X_REST_API_KEY', 'HTTP_AUTHORIZATION', 'REDIRECT_HTTP_AUTHORIZATION'] as $h) {
    unset($_SERVER[$h]);
}
$_SERVER['HTTP_AUTHORIZATION'] = 'Bearer ' . $k['auth_limited'];
$_SERVER['REMOTE_ADDR'] = '198.51.100.44';
$_SERVER['REQUEST_URI'] = '/api/v1/limited?page=2';
$seen = [];
for ($i = 0; $i < $limit; $i++) {
    $a = heratio_keys_authenticate(['read']);
    $seen[] = $a->valid ? $a->rateRemaining : $a->status;
    if ($i === 0) {
        t('authenticate: metadata and rateLimit', $a->metadata === ['heratio_key_id' => 11, 'heratio_user_id' => 5] && $a->rateLimit === $limit && $a->retryAfter === null, show($a));
    }
}
t('authenticate: rateRemaining counts down', $seen === range($limit - 1, 0), json_encode($seen));
$a = heratio_keys_authenticate(['read']);
t('authenticate: 429 rate_limited with retryAfter', $a->status === 'rate_limited' && $a->httpStatus === 429 && $a->retryAfter >= 1 && $a->retryAfter <= 3600 && $a->rateRemaining === 0 && $a->rateLimit === $limit, show($a));
t('authenticate: metadata of the refused key', $a->metadata === ['heratio_key_id' => 11, 'heratio_user_id' => 5], show($a));
