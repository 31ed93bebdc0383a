<?php
// Deployment test: php-fpm (4 workers) behind nginx, both started here on
// loopback ports from a temp dir and stopped by pid.
// Usage: php fpm.php sqlite|mysql EXT_SO KEYGEN TMPDIR [bench-seconds]

declare(strict_types=1);

require __DIR__ . '/lib.php';
require __DIR__ . '/fpmlib.php';

[, $kind, $ext, $keygen, $tmp] = $argv;
$benchSeconds = (int) ($argv[5] ?? 0);
T::$group = "fpm/$kind";
const WORKERS = 4;

echo "== PHP-FPM + nginx on $kind ==\n";
$store = Store::create($kind, $tmp, $keygen);
$client = $store->client('ApiClient');
$key = $store->generate('api', $client, 'production', '--scopes', 'read,write');

$regionDir = region_dir($tmp);

/** php-fpm (static pool of WORKERS) and nginx in front of it. */
function deploy(string $dir, string $dsn, int $maxRequests): array
{
    global $ext, $regionDir;
    return deploy_fpm($ext, $dir, $dsn, ['workers' => WORKERS, 'max_requests' => $maxRequests, 'region_dir' => $regionDir]);
}

$served = 0; // requests that reached PHP (each validates once → one usage row)
$count = function (array $responses) use (&$served): array {
    foreach ($responses as [, $body]) {
        if (is_array($body) && isset($body['pid'])) {
            $served++;
        }
    }
    return $responses;
};

function wait_ready(int $port, callable $count): bool
{
    $deadline = microtime(true) + 15;
    while (microtime(true) < $deadline) {
        $r = $count(http_many($port, [['/api/ready', []]]));
        if ($r[0][0] === 401) {
            return true;
        }
        usleep(100_000);
    }
    return false;
}

$auth = ['X-API-Key' => $key['key']];

// === Phase 1: no recycling. Every worker accepts; revocation reaches all. ====
$dir = "$tmp/fpm1";
[$fpm, $nginx, $port] = deploy($dir, $store->dsn, 0);
if (!T::check('php-fpm and nginx answer', wait_ready($port, $count), substr(@file_get_contents("$dir/fpm.log") . @file_get_contents("$dir/nginx-error.log"), -2000))) {
    T::finish();
}

$pids = [];
$all200 = true;
for ($burst = 0; $burst < 30 && count($pids) < WORKERS; $burst++) {
    foreach ($count(http_many($port, array_fill(0, 12, ["/api/informationobjects?hold=40", $auth]))) as [$status, $body]) {
        $all200 = $all200 && $status === 200 && ($body['success'] ?? false) === true;
        if (isset($body['pid'])) {
            $pids[$body['pid']] = true;
        }
    }
}
T::check('valid key: 200 from every request', $all200);
T::eq('valid key accepted by every worker (distinct getmypid())', WORKERS, count($pids));

$forms = $count(http_many($port, [
    ['/api/x', ['X-REST-API-Key' => $key['key']]],
    ['/api/x', ['Authorization' => 'Bearer ' . $key['key']]],
    ['/api/x?scope=delete', $auth],
    ['/api/x', []],
    ['/api/x', ['X-API-Key' => 'hk_api_nope']],
]));
T::check('X-REST-API-Key → 200', $forms[0][0] === 200, json_encode($forms[0]));
T::check('Authorization: Bearer → 200', $forms[1][0] === 200, json_encode($forms[1]));
T::check("missing scope → 403 Scope 'delete' required.", $forms[2][0] === 403 && $forms[2][1]['error'] === "Scope 'delete' required.", json_encode($forms[2]));
T::check('no key → 401 API key required', $forms[3][0] === 401 && $forms[3][1]['error'] === 'API key required. Use X-API-Key header or Authorization: Bearer.', json_encode($forms[3]));
T::check('bad key → 401 JSON', $forms[4][0] === 401 && $forms[4][1]['success'] === false, json_encode($forms[4]));

// Revoke through the CLI; every worker must start rejecting.
// Measured from the moment keygen is started (an upper bound: it includes
// keygen's own start-up and commit).
$t0 = microtime(true);
$store->keygen('api:revoke', (string) $key['id']);
$firstReject = [];
$flapped = false;
$accepted = 0;
while (microtime(true) - $t0 < 15 && count($firstReject) < count($pids)) {
    $burst = $count(http_many($port, array_fill(0, 12, ['/api/informationobjects?hold=20', $auth])));
    // In the order the workers answered (the endpoint reports its clock).
    usort($burst, fn ($a, $b) => ($a[1]['t'] ?? 0) <=> ($b[1]['t'] ?? 0));
    foreach ($burst as [$status, $body]) {
        $pid = $body['pid'] ?? null;
        $at = (float) ($body['t'] ?? microtime(true));
        if ($pid === null) {
            continue;
        }
        if ($status === 200) {
            $accepted++;
            if (isset($firstReject[$pid])) {
                $flapped = true; // accepted again after rejecting once
            }
        } elseif ($status === 401 && !isset($firstReject[$pid])) {
            $firstReject[$pid] = $at - $t0;
        }
    }
}
$propagation = $firstReject ? max($firstReject) : INF;
T::eq('after api:revoke every worker rejects the key', count($pids), count(array_intersect_key($firstReject, $pids)));
T::check('no worker accepts again after rejecting', !$flapped);
T::check('revocation honoured by all workers within 10 s', $propagation < 10.0, sprintf('%.3f s', $propagation));
printf("  REVOCATION_MS %d (slowest worker; %d accepted after revoke; per worker: %s)\n", (int) round($propagation * 1000), $accepted, implode(', ', array_map(fn ($s) => sprintf('%.0f ms', $s * 1000), $firstReject)));

T::check('php-fpm stopped gracefully (SIGQUIT)', $fpm->stop());
$nginx->stop();
T::eq('usage_log: exactly one row per request after the workers stopped', $served, $store->usageRows());
$log = (string) @file_get_contents("$dir/fpm.log");
T::check('no crash or warning in the FPM log', !preg_match('/SIGSEGV|SIGABRT|core dumped|exited on signal|PHP (Warning|Fatal)/', $log), $log);

// === Phase 2: pm.max_requests = 10: recycled workers lose no usage rows. =====
// Private workers write their rows at module shutdown, before they exit;
// workers sharing the host region leave them in the host queue, which the
// leading worker writes within usage_flush_interval (1 s) whoever queued them.
$key2 = $store->generate('api', $client, 'recycled');
$auth2 = ['X-API-Key' => $key2['key']];
foreach (['private' => 'off', 'shared' => 'on'] as $mode => $sharedCache) {
$dir = "$tmp/fpm2-$mode";
$before = $store->usageRows();
$servedBefore = $served;
[$fpm, $nginx, $port] = deploy_fpm($ext, $dir, $store->dsn, ['workers' => WORKERS, 'max_requests' => 10, 'region_dir' => $regionDir, 'ini' => ['heratio_keys.shared_cache' => $sharedCache]]);
T::check("$mode: php-fpm (pm.max_requests=10) and nginx answer", wait_ready($port, $count));
$byPid = [];
$ok = true;
$n = 0;
for ($burst = 0; $burst < 20; $burst++) {
    $reqs = [];
    for ($i = 0; $i < 10; $i++) {
        $reqs[] = ["/api/p2-$mode/" . ($n++), $auth2];
    }
    foreach ($count(http_many($port, $reqs)) as $i => [$status, $body]) {
        $ok = $ok && $status === 200;
        if (isset($body['pid'])) {
            $byPid[$body['pid']][] = $reqs[$i][0];
        }
    }
}
T::check("$mode: 200 requests through recycling workers all accepted", $ok);
T::check("$mode: workers were recycled (more than 4 pids served)", count($byPid) > WORKERS, count($byPid) . ' pids');
// Workers that served their 10 requests exit; as soon as one is gone, every
// row it recorded must already be in usage_log (flushed at MSHUTDOWN, not
// left to a flusher that no longer exists).
$deadline = microtime(true) + 10;
$done = array_filter($byPid, fn ($paths) => count($paths) >= 10);
do {
    $gone = array_filter(array_keys($done), fn ($pid) => !file_exists("/proc/$pid"));
    if (count($gone) === count($done)) {
        break;
    }
    usleep(20_000);
} while (microtime(true) < $deadline);
$paths = [];
foreach ($gone as $pid) {
    array_push($paths, ...$byPid[$pid]);
}
$in = implode(',', array_map(fn ($p) => $store->pdo->quote($p), $paths));
$recorded = fn () => $paths ? (int) $store->pdo->query("SELECT COUNT(*) FROM usage_log WHERE endpoint IN ($in)")->fetchColumn() : -1;
$found = $recorded();
$waited = 0.0;
if ($mode === 'shared') {
    $t0 = microtime(true);
    while ($found < count($paths) && microtime(true) - $t0 < 3.0) {
        usleep(50_000);
        $found = $recorded();
    }
    $waited = microtime(true) - $t0;
}
T::check("$mode: recycled workers exited", count($gone) >= WORKERS, count($gone) . ' gone');
T::eq($mode === 'private'
    ? 'private: usage_log: every request served by a recycled worker is recorded the moment it exits'
    : 'shared: usage_log: every request served by a recycled worker is recorded by the leader within 3 s of its exit', count($paths), $found);
if ($mode === 'shared') {
    printf("  (shared: the rows of %d exited workers were all written %.0f ms after the last exit was seen)\n", count($gone), $waited * 1000);
}
T::check("$mode: php-fpm stopped gracefully", $fpm->stop());
$nginx->stop();
T::eq("$mode: usage_log: exactly one row per request (phase 2)", $served - $servedBefore, $store->usageRows() - $before);
$log = (string) @file_get_contents("$dir/fpm.log");
T::check("$mode: no crash in the FPM log (phase 2)", !preg_match('/SIGSEGV|SIGABRT|core dumped|exited on signal/', $log), $log);
}

// === Throughput (optional): wrk through nginx + FPM with the extension. =====
if ($benchSeconds > 0) {
    $wrk = trim((string) shell_exec('command -v wrk'));
    if ($wrk === '') {
        echo "  (wrk not installed: no requests/s figure)\n";
    } else {
        $dir = "$tmp/fpm3";
        [$fpm, $nginx, $port] = deploy($dir, $store->dsn, 0);
        wait_ready($port, $count);
        [$code, $out] = run([$wrk, '-t2', '-c16', "-d{$benchSeconds}s", '-H', 'X-API-Key: ' . $key2['key'], "http://127.0.0.1:$port/api/bench"]);
        $rps = preg_match('/Requests\/sec:\s+([\d.]+)/', $out, $m) ? (float) $m[1] : 0.0;
        $non2xx = preg_match('/Non-2xx or 3xx responses: (\d+)/', $out, $m) ? (int) $m[1] : 0;
        T::check('wrk: all answers 200', $code === 0 && $rps > 0 && $non2xx === 0, $out);
        printf("  REQUESTS_PER_SEC %d\n", (int) round($rps));
        $fpm->stop();
        $nginx->stop();
    }
}

T::finish();
