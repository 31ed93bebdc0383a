<?php
// Per-validation cost from PHP, over the same keys file.
//   php php_loop.php baseline MYSQL_DSN KEYS_FILE PASSES
//   php -d extension=heratio_keys.so -d heratio_keys.dsn=DSN php_loop.php ext DSN KEYS_FILE PASSES
//   php -d extension=... php_loop.php hot DSN KEYS_FILE PASSES
//     (one hot key: heratio_keys_authenticate(['read']) beside PHP's own
//     hash('sha256') of the same key, passes alternating, same process)
// Prints one JSON object. Timings: per-call hrtime around each call
// (p50/p99, timer included) and, for the extension, the mean of whole
// passes minus an empty loop over the same keys (no timer in the loop).

declare(strict_types=1);
require __DIR__ . '/www/middleware.php';

[, $mode, $dsn, $keysFile, $passes] = $argv;
$passes = max(1, (int) $passes);
$keys = array_values(array_filter(array_map('trim', file($keysFile)), fn ($k) => strlen($k) === 53));
$n = count($keys);
mt_srand(42);

function pct(array $sorted, float $p): float
{
    $i = (int) ceil($p / 100 * count($sorted));
    return (float) $sorted[max(1, min(count($sorted), $i)) - 1];
}

function summary(array $ns): array
{
    sort($ns);
    return ['calls' => count($ns), 'p50_ns' => pct($ns, 50), 'p99_ns' => pct($ns, 99), 'mean_ns' => array_sum($ns) / max(1, count($ns))];
}

$out = ['mode' => $mode, 'keys' => $n, 'passes' => $passes];
if ($mode === 'baseline') {
    // What Heratio's middleware does per request today (see www/middleware.php).
    $pdo = baseline_pdo($dsn, false);
    $valid = 0;
    $ns = [];
    for ($p = 0; $p < $passes; $p++) {
        $order = $keys;
        shuffle($order);
        foreach ($order as $k) {
            $t = hrtime(true);
            $r = baseline_validate($pdo, $k, '127.0.0.1', '/api/bench');
            $ns[] = hrtime(true) - $t;
            $valid += $r['valid'] ? 1 : 0;
        }
    }
    $out += summary($ns) + ['valid' => $valid];
} elseif ($mode === 'hot') {
    // The HTTP middleware's call on a key every worker has cached, against
    // the cheapest thing PHP code can do with that key, in whole passes
    // (no timer inside a loop), each minus an empty loop; median of passes.
    $key = $keys[0];
    $_SERVER['HTTP_X_API_KEY'] = $key;
    $_SERVER['REMOTE_ADDR'] = '127.0.0.1';
    $_SERVER['REQUEST_URI'] = '/api/informationobjects?page=1';
    $scopes = ['read'];
    $r = heratio_keys_authenticate($scopes);
    if (!$r->valid) {
        fwrite(STDERR, "hot key not valid: {$r->status}\n");
        exit(1);
    }
    // 5000 calls a pass, then a pause: the usage queue (65 536 records in
    // the host ring) is written between passes, so no pass times the
    // cheaper path of a dropped record.
    $m = 5000;
    $auth = $hash = [];
    for ($p = 0; $p < max(5, $passes); $p++) {
        $t = hrtime(true);
        for ($i = 0; $i < $m; $i++) {
        }
        $empty = hrtime(true) - $t;
        $t = hrtime(true);
        for ($i = 0; $i < $m; $i++) {
            $r = heratio_keys_authenticate($scopes);
        }
        $auth[] = (hrtime(true) - $t - $empty) / $m;
        $t = hrtime(true);
        for ($i = 0; $i < $m; $i++) {
            $h = hash('sha256', $key);
        }
        $hash[] = (hrtime(true) - $t - $empty) / $m;
        usleep(600_000);
    }
    sort($auth);
    sort($hash);
    $out += ['calls_per_pass' => $m, 'authenticate_ns' => pct($auth, 50), 'hash_sha256_ns' => pct($hash, 50),
        'ratio' => pct($auth, 50) / max(1, pct($hash, 50)), 'valid' => $r->valid, 'stats' => heratio_keys_stats()];
} else {
    if (!function_exists('heratio_keys_validate_api_key')) {
        fwrite(STDERR, "heratio_keys extension not loaded\n");
        exit(1);
    }
    // First pass: every key misses the cache once (one indexed query each).
    $valid = 0;
    $miss = [];
    foreach ($keys as $k) {
        $t = hrtime(true);
        $r = heratio_keys_validate_api_key($k, ['read'], '127.0.0.1', '/api/bench');
        $miss[] = hrtime(true) - $t;
        $valid += $r->valid ? 1 : 0;
    }
    $out['miss'] = summary($miss);
    // Per-call timings over random cached keys.
    $ns = [];
    for ($p = 0; $p < $passes; $p++) {
        $order = $keys;
        shuffle($order);
        foreach ($order as $k) {
            $t = hrtime(true);
            $r = heratio_keys_validate_api_key($k, ['read'], '127.0.0.1', '/api/bench');
            $ns[] = hrtime(true) - $t;
            $valid += $r->valid ? 1 : 0;
        }
    }
    $out += summary($ns) + ['valid' => $valid];
    // Pass means, no timer inside the loop, empty-loop cost subtracted.
    $passNs = [];
    $passCpu = [];
    $cpu = static function (): int {
        $r = getrusage();
        return ($r['ru_utime.tv_sec'] + $r['ru_stime.tv_sec']) * 1_000_000_000 + ($r['ru_utime.tv_usec'] + $r['ru_stime.tv_usec']) * 1000;
    };
    $scopes = ['read'];
    for ($p = 0; $p < max(3, $passes); $p++) {
        $order = $keys;
        shuffle($order);
        $c = $cpu();
        $t = hrtime(true);
        foreach ($order as $k) {
            $r = heratio_keys_validate_api_key($k, $scopes, '127.0.0.1', '/api/bench');
        }
        $full = hrtime(true) - $t;
        $fullCpu = $cpu() - $c;
        $c = $cpu();
        $t = hrtime(true);
        foreach ($order as $k) {
            $r = strlen($k);
        }
        $empty = hrtime(true) - $t;
        $emptyCpu = $cpu() - $c;
        $passNs[] = ($full - $empty) / $n;
        $passCpu[] = ($fullCpu - $emptyCpu) / $n;
    }
    sort($passNs);
    sort($passCpu);
    $out['pass_mean_median_ns'] = pct($passNs, 50);
    // Process CPU time (getrusage, background threads included) per call.
    $out['pass_cpu_median_ns'] = pct($passCpu, 50);
    $out['stats'] = heratio_keys_stats();
}
echo json_encode($out), "\n";
