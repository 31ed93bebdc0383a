<?php
// Fault tests of the host region through the real extension: php-fpm with
// WORKERS workers behind nginx sharing one region (heratio_keys.shared_cache
// On, the default; the region in a private HERATIO_KEYS_REGION_DIR set with
// the pool's env[]).
//   A. sharing: every worker shares one region, exactly one leads, one store
//      query serves the whole host; the leader is killed with SIGKILL (while
//      serving a burst) → another worker leads within a poll interval, a
//      revocation is then honoured by every worker within 1 s, and every
//      answered request has its usage row (a request the killed worker was
//      serving may have one too: counted, never more);
//   B. corruption: random bytes written into the region file in place, in
//      the cache slots (read as misses, counted) and then in the header (the
//      region is rebuilt): no refused key is ever accepted, no worker dies;
//   C. region unavailable: a region file readable by others, then (as root)
//      one of another user, at the region path → every worker says it runs
//      privately and why, and validation (revocation included) stays right.
// Usage: php shared.php sqlite|mysql EXT_SO KEYGEN TMPDIR

declare(strict_types=1);

require __DIR__ . '/lib.php';
require __DIR__ . '/fpmlib.php';

[, $kind, $ext, $keygen, $tmp] = $argv;
T::$group = "shared/$kind";
const WORKERS = 6;
const POLL_MS = 100;

echo "== host region: php-fpm ($WORKERS workers) + nginx on $kind ==\n";
$store = Store::create($kind, $tmp, $keygen);
$client = $store->client('HostClient');
$regionDir = region_dir($tmp);
$ini = ['heratio_keys.poll_interval_ms' => (string) POLL_MS];

$served = 0;
$count = function (array $responses) use (&$served): array {
    foreach ($responses as [, $body]) {
        if (is_array($body) && isset($body['pid'], $body['success'])) {
            $served++; // answered by a worker: one validation, one usage row
        }
    }
    return $responses;
};

function up(string $name, string $dir): array
{
    global $ext, $store, $regionDir, $ini, $count;
    [$fpm, $nginx, $port] = deploy_fpm($ext, $dir, $store->dsn, ['workers' => WORKERS, 'region_dir' => $regionDir, 'ini' => $ini]);
    $ready = false;
    $deadline = microtime(true) + 15;
    while (!$ready && microtime(true) < $deadline) {
        $ready = ($count(http_many($port, [['/api/ready', []]]))[0][0] ?? 0) === 401;
        $ready || usleep(100_000);
    }
    T::check("$name: php-fpm and nginx answer", $ready, substr((string) @file_get_contents("$dir/fpm.log"), -2000));
    return [$fpm, $nginx, $port];
}

/** heratio_keys_stats() of every worker (pid => stats), the latest of each. */
function worker_stats(int $port, ?array $pids = null): array
{
    $seen = [];
    $deadline = microtime(true) + 10;
    $want = $pids ?? [];
    while (microtime(true) < $deadline) {
        foreach (http_many($port, array_fill(0, WORKERS * 2, ['/api/stats?hold=30', []])) as [, $body]) {
            if (isset($body['pid'])) {
                $seen[$body['pid']] = $body['stats'] + ['t' => $body['t']];
            }
        }
        $done = $pids === null ? count($seen) >= WORKERS : array_diff($want, array_keys($seen)) === [];
        if ($done) {
            break;
        }
    }
    return $seen;
}

/** Sends bursts with $headers until every one of WORKERS workers answered; returns the pids. */
function reach_all(int $port, array $headers, string $path = '/api/reach'): array
{
    global $count;
    $pids = [];
    for ($i = 0; $i < 40 && count($pids) < WORKERS; $i++) {
        foreach ($count(http_many($port, array_fill(0, WORKERS * 2, ["$path?hold=30", $headers]))) as [, $body]) {
            if (isset($body['pid'])) {
                $pids[$body['pid']] = true;
            }
        }
    }
    return array_keys($pids);
}

/**
 * Revokes $key through keygen and sends bursts until each of $pids refuses
 * it. Returns [per-pid seconds to the first refusal, accepted again after a
 * refusal?].
 */
function revoke_and_watch(int $port, array $key, array $pids): array
{
    global $store, $count;
    $auth = ['X-API-Key' => $key['key']];
    $t0 = microtime(true);
    $store->keygen('api:revoke', (string) $key['id']);
    $first = [];
    $flapped = false;
    while (microtime(true) - $t0 < 15 && array_diff($pids, array_keys($first)) !== []) {
        $burst = $count(http_many($port, array_fill(0, WORKERS * 2, ['/api/revoked?hold=20', $auth])));
        usort($burst, fn ($a, $b) => ($a[1]['t'] ?? 0) <=> ($b[1]['t'] ?? 0));
        foreach ($burst as [$status, $body]) {
            $pid = $body['pid'] ?? null;
            if ($pid === null) {
                continue;
            }
            if ($status === 200 && isset($first[$pid])) {
                $flapped = true;
            } elseif ($status === 401 && !isset($first[$pid])) {
                $first[$pid] = (float) $body['t'] - $t0;
            }
        }
    }
    return [$first, $flapped];
}

/** Random bytes written at $offset of $path, in place (never truncated: the file is mapped). */
function scribble(string $path, int $offset, int $len): bool
{
    $f = fopen($path, 'r+b');
    if ($f === false || fseek($f, $offset) !== 0) {
        return false;
    }
    for ($done = 0; $done < $len; $done += $n) {
        $n = min(1 << 20, $len - $done);
        if (fwrite($f, random_bytes($n)) !== $n) {
            return false;
        }
    }
    return fclose($f);
}

/** $n requests each with a refused and a valid key: [refused key accepted, valid key refused]. */
function still_correct(int $port, string $refused, string $valid, int $n): array
{
    global $count;
    $reqs = [];
    for ($i = 0; $i < $n; $i++) {
        $reqs[] = ['/api/refused?hold=5', ['X-API-Key' => $refused]];
        $reqs[] = ['/api/valid?hold=5', ['X-API-Key' => $valid]];
    }
    $accepted = 0;
    $wrong = 0;
    foreach ($count(http_many($port, $reqs)) as $i => [$status]) {
        if ($i % 2 === 0) {
            $accepted += $status === 200 ? 1 : 0;
        } else {
            $wrong += $status === 200 ? 0 : 1;
        }
    }
    return [$accepted, $wrong];
}

function crashes(string $dir): array
{
    preg_match_all('/child (\d+) exited on signal (\d+)[^\n]*/', (string) @file_get_contents("$dir/fpm.log"), $m);
    return array_combine($m[1], $m[2]) ?: [];
}

// === A. sharing, and a leader killed with SIGKILL ============================
$k1 = $store->generate('api', $client, 'killed-leader');
$auth1 = ['X-API-Key' => $k1['key']];
$dir = "$tmp/a";
$before = $store->usageRows();
$servedBefore = $served;
[$fpm, $nginx, $port] = up('A', $dir);
$pids = reach_all($port, $auth1);
T::eq('A: every worker answered', WORKERS, count($pids));
$stats = worker_stats($port, $pids);
$regions = array_unique(array_column($stats, 'shared_region'));
T::check('A: every worker shares the host region, no error', count($stats) === WORKERS && array_filter($stats, fn ($s) => $s['shared'] !== true || $s['shared_error'] !== null) === [], json_encode(array_map(fn ($s) => [$s['shared'], $s['shared_error']], $stats)));
T::check('A: one region, in HERATIO_KEYS_REGION_DIR, mode 0600', count($regions) === 1 && str_starts_with((string) $regions[0], "$regionDir/") && (fileperms((string) $regions[0]) & 0777) === 0600, json_encode($regions));
$region = (string) $regions[0];
$leaders = array_keys(array_filter($stats, fn ($s) => $s['host_leader'] === 1));
T::eq('A: exactly one worker leads', 1, count($leaders));
$leader = $leaders[0] ?? 0;
T::check('A: every worker names the same leader pid', array_unique(array_column($stats, 'host_leader_pid')) === [$leader], json_encode(array_column($stats, 'host_leader_pid')));
T::check('A: only the leader polls the feed', array_filter($stats, fn ($s) => $s['feed_polls'] > 0) !== [] && array_keys(array_filter($stats, fn ($s) => $s['feed_polls'] > 0)) === [$leader], json_encode(array_map(fn ($s) => $s['feed_polls'], $stats)));

// One store query serves the whole host: a new key, validated once, then by
// every worker. (Its "generated" feed row is read first, so that the
// leader's eviction of the digest cannot race the fill.)
$k2 = $store->generate('api', $client, 'one-query');
usleep(3 * POLL_MS * 1000);
$q0 = array_sum(array_column(worker_stats($port, $pids), 'store_queries'));
$count(http_many($port, [['/api/first', ['X-API-Key' => $k2['key']]]]));
$pids2 = reach_all($port, ['X-API-Key' => $k2['key']]);
$q1 = array_sum(array_column(worker_stats($port, $pids), 'store_queries'));
T::check('A: a key seen by every worker cost one store query for the host', count($pids2) === WORKERS && $q1 - $q0 === 1, "store queries +" . ($q1 - $q0) . ' over ' . count($pids2) . ' workers');

// SIGKILL the leader while a burst is in flight.
$socks = http_send($port, array_fill(0, WORKERS * 2, ['/api/inflight?hold=40', $auth1]));
usleep(20_000);
$killedAt = microtime(true);
posix_kill($leader, SIGKILL);
$lost = 0;
foreach ($count(http_collect($socks)) as [, $body]) {
    $lost += isset($body['pid']) ? 0 : 1;
}
$took = null;
$newLeader = null;
while ($took === null && microtime(true) - $killedAt < 10) {
    foreach (http_many($port, array_fill(0, WORKERS, ['/api/stats?hold=2', []])) as [, $body]) {
        $lp = $body['stats']['host_leader_pid'] ?? null;
        if ($lp !== null && $lp !== $leader) {
            $t = (float) $body['t'] - $killedAt;
            if ($took === null || $t < $took) {
                [$took, $newLeader] = [$t, $lp];
            }
        }
    }
}
printf("  TAKEOVER_MS %d (leader %d killed with SIGKILL; %d ms poll interval; new leader %d; first seen by a worker's stats)\n", $took === null ? -1 : (int) round($took * 1000), $leader, POLL_MS, $newLeader ?? 0);
T::check('A: another worker leads within a poll interval of the SIGKILL (+200 ms for a loaded machine)', $took !== null && $took * 1000 <= POLL_MS + 200, $took === null ? 'no takeover seen' : sprintf('%.0f ms', $took * 1000));

$pidsAfter = reach_all($port, ['X-API-Key' => $k2['key']]);
T::check('A: the killed worker was replaced (WORKERS live workers, the leader not among them)', count($pidsAfter) === WORKERS && !in_array($leader, $pidsAfter, true), json_encode($pidsAfter));
$stats = worker_stats($port, $pidsAfter);
T::check('A: after the takeover every worker (the respawned one too) shares and names the new leader', count($stats) === WORKERS && array_unique(array_column($stats, 'host_leader_pid')) === [$newLeader] && array_unique(array_column($stats, 'shared_region')) === [$region], json_encode(array_map(fn ($s) => [$s['host_leader'], $s['host_leader_pid']], $stats)));

[$first, $flapped] = revoke_and_watch($port, $k1, $pidsAfter);
$propagation = $first ? max($first) : INF;
T::eq('A: after the takeover every worker refuses the revoked key', WORKERS, count(array_intersect_key($first, array_flip($pidsAfter))));
T::check('A: no worker accepts it again after refusing it', !$flapped);
T::check('A: revocation honoured by every worker within 1 s', $propagation <= 1.0, sprintf('%.3f s', $propagation));
printf("  REVOCATION_AFTER_TAKEOVER_MS %d (slowest worker; per worker: %s)\n", (int) round($propagation * 1000), implode(', ', array_map(fn ($s) => sprintf('%.0f', $s * 1000), $first)));
$host = worker_stats($port, $pidsAfter);
$dropped = max(array_column($host, 'host_dropped') ?: [0]);

T::check('A: php-fpm stopped gracefully', $fpm->stop());
$nginx->stop();
$rows = $store->usageRows() - $before;
$answered = $served - $servedBefore;
printf("  USAGE_ROWS answered %d, rows %d, requests lost with the killed worker %d, host_dropped %d\n", $answered, $rows, $lost, $dropped);
T::check('A: usage rows: one per answered request, plus at most one per request the killed worker took with it', $rows >= $answered && $rows <= $answered + $lost, "answered $answered, rows $rows, lost $lost");
T::check('A: the only worker death in the FPM log is the SIGKILLed leader', crashes($dir) === [(string) $leader => '9'], json_encode(crashes($dir)));

// === B. random bytes written into the region ==================================
$valid = $store->generate('api', $client, 'survivor');
$dir = "$tmp/b";
$before = $store->usageRows();
$servedBefore = $served;
[$fpm, $nginx, $port] = up('B', $dir);
usleep(3 * POLL_MS * 1000);
$pids = reach_all($port, ['X-API-Key' => $valid['key']]);
[$acc, $wrong] = still_correct($port, $k1['key'], $valid['key'], WORKERS * 2);
T::check('B: before: both answers cached and right', $acc === 0 && $wrong === 0, "refused key accepted $acc, valid key refused $wrong");
$stats = worker_stats($port, $pids);
$corrupt0 = max(array_column($stats, 'host_corrupt'));
clearstatcache();
$inode = fileinode($region);

// The header ends before 4 KiB; the 131 072 default slots span 64 MiB after
// it: [4 KiB, 64 MiB) lies within the cache slots.
T::check('B: random bytes written into the cache slots in place', scribble($region, 4096, (64 << 20) - 4096));
[$acc, $wrong] = still_correct($port, $k1['key'], $valid['key'], 50);
T::eq('B: slots scribbled: the revoked key is never accepted (100 tries)', 0, $acc);
T::eq('B: slots scribbled: the valid key is always accepted', 0, $wrong);
// The leading worker checks a slice of the table's checksums every poll:
// the whole table within 32 polls.
for ($i = 0; $i < 100; $i++) {
    $stats = worker_stats($port, $pids);
    if (max(array_column($stats, 'host_corrupt')) > $corrupt0) {
        break;
    }
    usleep(POLL_MS * 1000);
}
T::check('B: damaged slots are found by the checksum sweep, cleared and counted (host_corrupt)', max(array_column($stats, 'host_corrupt')) > $corrupt0, (string) max(array_column($stats, 'host_corrupt')));

T::check('B: random bytes written into the region header in place', scribble($region, 0, 64));
[$acc, $wrong] = still_correct($port, $k1['key'], $valid['key'], 50);
T::eq('B: header scribbled: the revoked key is never accepted', 0, $acc);
$rebuilt = false;
for ($i = 0; $i < 100 && !$rebuilt; $i++) {
    clearstatcache();
    $rebuilt = @fileinode($region) !== $inode && @fileinode($region) !== false;
    $rebuilt || usleep(20_000);
}
T::check('B: a damaged header makes the region rebuilt (a new file at the path)', $rebuilt);
[$acc, $wrong] = still_correct($port, $k1['key'], $valid['key'], 50);
T::check('B: after the rebuild: refused stays refused, valid stays valid', $acc === 0 && $wrong === 0, "refused key accepted $acc, valid key refused $wrong");
$stats = worker_stats($port);
T::check('B: every worker shares the rebuilt region', count($stats) === WORKERS && array_filter($stats, fn ($s) => $s['shared'] !== true) === [] && count(array_filter($stats, fn ($s) => $s['host_leader'] === 1)) === 1, json_encode(array_map(fn ($s) => [$s['shared'], $s['host_leader'], $s['shared_error']], $stats)));
T::check('B: php-fpm stopped gracefully', $fpm->stop());
$nginx->stop();
T::check('B: no worker died', crashes($dir) === [], json_encode(crashes($dir)) . ' ' . substr((string) @file_get_contents("$dir/fpm.log"), -1500));
$rows = $store->usageRows() - $before;
printf("  USAGE_ROWS_CORRUPTION answered %d, rows %d (records queued in the old region when it was rebuilt are not carried over)\n", $served - $servedBefore, $rows);

// === C. a region that cannot be used ==========================================
$variants = ['0644' => fn () => chmod($region, 0644)];
if (posix_getuid() === 0) {
    $variants['another user'] = fn () => chmod($region, 0600) && chown($region, 65534);
}
foreach ($variants as $what => $spoil) {
    $dir = "$tmp/c-" . str_replace(' ', '-', $what);
    T::check("C ($what): region file spoiled", $spoil());
    $k3 = $store->generate('api', $client, 'private');
    $before = $store->usageRows();
    $servedBefore = $served;
    [$fpm, $nginx, $port] = up("C ($what)", $dir);
    usleep(3 * POLL_MS * 1000);
    $pids = reach_all($port, ['X-API-Key' => $k3['key']]);
    $stats = worker_stats($port, $pids);
    $errors = array_unique(array_map(fn ($s) => (string) $s['shared_error'], $stats));
    $expect = $what === '0644' ? 'private' : 'uid 65534';
    T::check("C ($what): every worker runs privately and says why", count($stats) === WORKERS && array_filter($stats, fn ($s) => $s['shared'] !== false || $s['host_leader'] !== null || $s['shared_region'] !== null || !str_contains((string) $s['shared_error'], $expect)) === [], json_encode($errors));
    echo "  (shared_error: {$errors[0]})\n";
    [$acc, $wrong] = still_correct($port, $k1['key'], $k3['key'], WORKERS * 2);
    T::check("C ($what): validation still right (revoked refused, valid accepted)", $acc === 0 && $wrong === 0, "refused key accepted $acc, valid key refused $wrong");
    [$first] = revoke_and_watch($port, $k3, $pids);
    T::check("C ($what): a revocation is honoured by every (private) worker within 1 s", count($first) === WORKERS && max($first) <= 1.0, json_encode($first));
    T::check("C ($what): php-fpm stopped gracefully", $fpm->stop());
    $nginx->stop();
    T::eq("C ($what): usage rows: exactly one per answered request", $served - $servedBefore, $store->usageRows() - $before);
    T::check("C ($what): no worker died", crashes($dir) === [], json_encode(crashes($dir)));
}

T::finish();
