<?php
// php-fpm + nginx for the deployment tests (fpm.php, shared.php): servers
// started from a temp dir on loopback ports and stopped by pid.

declare(strict_types=1);

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

/**
 * Starts php-fpm (a static pool) and nginx in front of it, on loopback ports.
 * Options: workers (4), max_requests (0), region_dir (the pool's
 * HERATIO_KEYS_REGION_DIR: every test keeps its host regions in a private
 * directory, never /dev/shm), ini (more php_admin_value settings).
 * Returns [php-fpm Server, nginx Server, nginx port].
 */
function deploy_fpm(string $ext, string $dir, string $dsn, array $opt = []): array
{
    $workers = (int) ($opt['workers'] ?? 4);
    $maxRequests = (int) ($opt['max_requests'] ?? 0);
    $fpmBin = getenv('PHP_FPM') ?: (is_file('/usr/sbin/php-fpm8.2') ? '/usr/sbin/php-fpm8.2' : 'php-fpm');
    $nginxBin = getenv('NGINX') ?: '/usr/sbin/nginx';
    $root = posix_getuid() === 0;
    @mkdir($dir, 0755, true);
    @mkdir("$dir/tmp", 0755, true);
    $fport = free_port();
    $nport = free_port();
    $endpoints = __DIR__ . '/fpm';
    $extra = '';
    if (isset($opt['region_dir'])) {
        $extra .= "env[HERATIO_KEYS_REGION_DIR] = \"{$opt['region_dir']}\"\n";
    }
    foreach ($opt['ini'] ?? [] as $k => $v) {
        $extra .= "php_admin_value[$k] = \"$v\"\n";
    }
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
pm.max_children = $workers
pm.max_requests = $maxRequests
catch_workers_output = yes
php_admin_value[heratio_keys.dsn] = "$dsn"
php_admin_value[display_errors] = stderr
php_admin_value[log_errors] = On
$extra
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
        location /api/stats {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $endpoints/stats.php;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass 127.0.0.1:$fport;
        }
        location /api/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $endpoints/endpoint.php;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass 127.0.0.1:$fport;
        }
    }
}

CONF);
    $nginx = start('nginx', [$nginxBin, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e', "$dir/nginx-error.log"], "$dir/nginx.out");
    return [$fpm, $nginx, $nport];
}

/** A private directory for host regions (mode 0700) under $tmp. */
function region_dir(string $tmp): string
{
    $d = "$tmp/regions";
    @mkdir($d, 0700, true);
    chmod($d, 0700);
    return $d;
}

/**
 * Sends all requests at once (one connection each), then reads the answers.
 * Returns [status, decoded body, received-at] per request.
 */
function http_many(int $port, array $requests): array
{
    return http_collect(http_send($port, $requests));
}

/** Sends the requests (one connection each); http_collect() reads them. */
function http_send(int $port, array $requests): array
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
    return $socks;
}

/** The answers to http_send(): [status, decoded body, received-at] each. */
function http_collect(array $socks): array
{
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

