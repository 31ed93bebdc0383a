<?php
// Cost of a cached validation of a rate-limited key against an unlimited
// one, in one process, like benches/harness/php_loop.php: whole passes
// without a timer inside the loop, an empty loop subtracted, the two keys
// alternating pass by pass so that both see the same machine load.
// Runs inside `php -d extension=heratio_keys.so -d heratio_keys.dsn=...`;
// $HK_KEYS holds {"unlimited": KEY, "limited": KEY, "calls": N, "passes": P}.
// Prints "ok NAME" lines, NS_UNLIMITED / NS_LIMITED (median of the pass
// means), RESERVATIONS_PER_1000, and CALL_* per-call percentiles.

declare(strict_types=1);

require __DIR__ . '/common.php';

$k = case_keys();
$calls = (int) $k['calls'];
$passes = (int) $k['passes'];

function pass(string $key, int $calls): float
{
    $scopes = ['read'];
    $t = hrtime(true);
    for ($i = 0; $i < $calls; $i++) {
        $r = heratio_keys_validate_api_key($key, $scopes);
    }
    $full = hrtime(true) - $t;
    $t = hrtime(true);
    for ($i = 0; $i < $calls; $i++) {
        $r = strlen($key);
    }
    $empty = hrtime(true) - $t;
    return ($full - $empty) / $calls;
}

/** Per-call timings (hrtime around each call, timer included). */
function calls(string $key, int $calls): array
{
    $scopes = ['read'];
    $ns = [];
    for ($i = 0; $i < $calls; $i++) {
        $t = hrtime(true);
        $r = heratio_keys_validate_api_key($key, $scopes);
        $ns[] = hrtime(true) - $t;
    }
    return $ns;
}

function pct(array $sorted, float $p): float
{
    $i = (int) ceil($p / 100 * count($sorted));
    return (float) $sorted[max(1, min(count($sorted), $i)) - 1];
}

function median(array $xs): float
{
    sort($xs);
    $n = count($xs);
    return $n % 2 ? $xs[intdiv($n, 2)] : ($xs[$n / 2 - 1] + $xs[$n / 2]) / 2;
}

// Warm both: the cache fill, the first reservation.
$u = heratio_keys_validate_api_key($k['unlimited'], ['read']);
$l = heratio_keys_validate_api_key($k['limited'], ['read']);
echo ($u->valid && $u->rateLimit === null ? 'ok' : 'FAIL') . " cost: the unlimited key is valid and unlimited\n";
echo ($l->valid && $l->rateLimit !== null ? 'ok' : 'FAIL') . " cost: the limited key is valid and limited\n";

$unlimited = [];
$limited = [];
$queries = 0;
for ($p = 0; $p < $passes; $p++) {
    $unlimited[] = pass($k['unlimited'], $calls);
    $before = heratio_keys_stats()['store_queries'];
    $limited[] = pass($k['limited'], $calls);
    $queries += heratio_keys_stats()['store_queries'] - $before;
}
// Per call: most calls of the limited key take a reserved request from the
// local lease; one in a block waits for the store.
$perUnlimited = [];
$perLimited = [];
for ($p = 0; $p < 3; $p++) {
    array_push($perUnlimited, ...calls($k['unlimited'], $calls));
    array_push($perLimited, ...calls($k['limited'], $calls));
}
sort($perUnlimited);
sort($perLimited);
$last = heratio_keys_validate_api_key($k['limited'], ['read']);
echo ($last->valid ? 'ok' : 'FAIL') . " cost: the limited key is still within its limit after the loop\n";
printf("NS_UNLIMITED %d\n", round(median($unlimited)));
printf("NS_LIMITED %d\n", round(median($limited)));
printf("RESERVATIONS_PER_1000 %.1f\n", 1000 * $queries / ($calls * $passes));
printf("CALL_UNLIMITED p50 %d p99 %d\n", pct($perUnlimited, 50), pct($perUnlimited, 99));
printf("CALL_LIMITED p50 %d p99 %d p99.9 %d\n", pct($perLimited, 50), pct($perLimited, 99), pct($perLimited, 99.9));
