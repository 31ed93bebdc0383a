<?php
// Deployment test: php-fpm (4 workers) behind nginx, both started here on
// loopback ports from a temp dir and stopped by pid.
// Usage: php fpm.php sqlite|mysql EXT_SO KEYGEN TMPDIR [bench-seconds]

declare(strict_types=1);

require __DIR__ . '/lib.php';

[, $kind, $ext, $keygen, $tmp] = $argv;
$benchSeconds = (int) ($argv[5] ?? 0);
T::$group = "fpm/$kind";
const WORKERS = 4;

echo "== PHP-FPM + nginx on $kind ==\n";
$store = Store::create($kind, $tmp, $keygen);
$client = $store->client('ApiClient');
$key = $store->generate('api', $client, 'production', '--scopes', 'read,write');

$fpmBin = getenv('PHP_FPM') ?: (is_file('/usr/sbin/php-fpm8.2') ? '/usr/sbin/php-fpm8.2' : 'php-fpm');
$nginxBin = getenv('NGINX') ?: '/usr/sbin/nginx';
$root = posix_getuid() === 0;

/** A started server process. */
final class Server
{
    /** @param resource $proc */
    public function __construct(public string $name, public $proc, public int $pid, public string $log)
    {
    }

    /** Graceful stop (SIGQUIT: FPM workers finish, run MSHUTDOWN, exit). */
    public function stop(float $timeout = 20.0): bool
    {
        posix_kill($this->pid, SIGQUIT);
        $deadline = microtime(true) + $timeout;
        while (microtime(true) < $deadline) {
            $st = proc_get_status($this->proc);
            if (!$st['running']) {
                proc_close($this->proc);
                return true;
            }
            usleep(50_000);
        }
        kill_tree($this->pid);
        proc_close($this->proc);
        return false;
    }
}

/** SIGKILL to a process and its children (cleanup after a failure). */
function kill_tree(int $pid): void
{
    foreach (glob('/proc/[0-9]*/stat') ?: [] as $stat) {
        $fields = explode(' ', (string) @file_get_contents($stat));
        $rest = strrchr(implode(' ', $fields), ')');
        $parts = $rest !== false ? explode(' ', trim(substr($rest, 1))) : [];
        if (($parts[1] ?? null) === (string) $pid) {
            posix_kill((int) basename(dirname($stat)), SIGKILL);
        }
    }
    if (file_exists("/proc/$pid")) {
        posix_kill($pid, SIGKILL);
    }
}

function start(string $name, array $argv, string $log): Server
{
    $p = proc_open($argv, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes);
    if (!is_resource($p)) {
        throw new RuntimeException("cannot start $name");
    }
    $pid = proc_get_status($p)['pid'];
    register_shutdown_function(static function () use ($pid): void {
        kill_tree($pid);
    });
    return new Server($name, $p, $pid, $log);
}

/** Starts php-fpm (static pool of WORKERS) and nginx in front of it. */
function deploy(string $dir, string $dsn, int $maxRequests): array
{
    global $ext, $fpmBin, $nginxBin, $root;
    @mkdir($dir, 0755, true);
    @mkdir("$dir/tmp", 0755, true);
    $fport = free_port();
    $nport = free_port();
    $endpoint = __DIR__ . '/fpm/endpoint.php';
    file_put_contents("$dir/php-fpm.conf", <<<CONF
[global]
pid = $dir/fpm.pid
error_log = $dir/fpm.log
daemonize = no
log_level = notice
; Graceful stop/reload: workers get SIGQUIT and this long to finish (and to
; flush usage at module shutdown) before the master sends SIGTERM. With the
; default 0 the SIGTERM follows at once and the last second of usage is lost.
process_control_timeout = 10s

[heratio]
listen = 127.0.0.1:$fport
pm = static
pm.max_children = 4
pm.max_requests = $maxRequests
catch_workers_output = yes
php_admin_value[heratio_keys.dsn] = "$dsn"
php_admin_value[display_errors] = stderr
php_admin_value[log_errors] = On

CONF);
    $fpmArgv = [$fpmBin, '-n', '-d', "extension=$ext", '-y', "$dir/php-fpm.conf", '-F'];
    if ($root) {
        $fpmArgv[] = '-R';
    }
    $fpm = start('php-fpm', $fpmArgv, "$dir/fpm.out");
    $user = $root ? 'user root;' : '';
    file_put_contents("$dir/nginx.conf", <<<CONF
daemon off;
master_process on;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
$user
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$nport;
        location /api/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $endpoint;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass 127.0.0.1:$fport;
        }
    }
}

CONF);
    $nginx = start('nginx', [$nginxBin, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e', "$dir/nginx-error.log"], "$dir/nginx.out");
    return [$fpm, $nginx, $nport];
}

/**
 * Sends all requests at once (one connection each), then reads the answers.
 * Returns [status, decoded body, received-at] per request.
 */
function http_many(int $port, array $requests): array
{
    $socks = [];
    foreach ($requests as $i => [$path, $headers]) {
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
        if ($s === false) {
            $socks[$i] = null;
            continue;
        }
        stream_set_timeout($s, 15);
        $h = '';
        foreach ($headers as $name => $value) {
            $h .= "$name: $value\r\n";
        }
        fwrite($s, "GET $path HTTP/1.0\r\nHost: localhost\r\n{$h}\r\n");
        $socks[$i] = $s;
    }
    $out = [];
    foreach ($socks as $i => $s) {
        if ($s === null) {
            $out[$i] = [0, null, microtime(true)];
            continue;
        }
        $raw = stream_get_contents($s);
        fclose($s);
        $at = microtime(true);
        $status = preg_match('#^HTTP/1\.\d (\d{3})#', (string) $raw, $m) ? (int) $m[1] : 0;
        $body = ($p = strpos((string) $raw, "\r\n\r\n")) !== false ? substr($raw, $p + 4) : '';
        $out[$i] = [$status, json_decode($body, true), $at];
    }
    return $out;
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
$key2 = $store->generate('api', $client, 'recycled');
$auth2 = ['X-API-Key' => $key2['key']];
$dir = "$tmp/fpm2";
$before = $store->usageRows();
$servedBefore = $served;
[$fpm, $nginx, $port] = deploy($dir, $store->dsn, 10);
T::check('php-fpm (pm.max_requests=10) and nginx answer', wait_ready($port, $count));
$byPid = [];
$ok = true;
$n = 0;
for ($burst = 0; $burst < 20; $burst++) {
    $reqs = [];
    for ($i = 0; $i < 10; $i++) {
        $reqs[] = ['/api/p2/' . ($n++), $auth2];
    }
    foreach ($count(http_many($port, $reqs)) as $i => [$status, $body]) {
        $ok = $ok && $status === 200;
        if (isset($body['pid'])) {
            $byPid[$body['pid']][] = $reqs[$i][0];
        }
    }
}
T::check('200 requests through recycling workers all accepted', $ok);
T::check('workers were recycled (more than 4 pids served)', count($byPid) > WORKERS, count($byPid) . ' pids');
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
$found = $paths ? (int) $store->pdo->query("SELECT COUNT(*) FROM usage_log WHERE endpoint IN ($in)")->fetchColumn() : -1;
T::check('recycled workers exited', count($gone) >= WORKERS, count($gone) . ' gone');
T::eq('usage_log: every request served by a recycled worker is recorded the moment it exits', count($paths), $found);
T::check('php-fpm stopped gracefully', $fpm->stop());
$nginx->stop();
T::eq('usage_log: exactly one row per request (phase 2)', $served - $servedBefore, $store->usageRows() - $before);
$log = (string) @file_get_contents("$dir/fpm.log");
T::check('no crash in the FPM log (phase 2)', !preg_match('/SIGSEGV|SIGABRT|core dumped|exited on signal/', $log), $log);

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
