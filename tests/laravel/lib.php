<?php
// Helpers of the Laravel test: the app, php-fpm + nginx, raw HTTP.

declare(strict_types=1);

require_once __DIR__ . '/../php/lib.php';

/** A started server process (php-fpm or nginx), stopped by its pid. */
final class Server
{
    /** @param resource $proc */
    public function __construct(public string $name, public $proc, public int $pid)
    {
    }

    public static function start(string $name, array $argv, string $log): self
    {
        $p = proc_open($argv, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes);
        if (!is_resource($p)) {
            throw new RuntimeException("cannot start $name");
        }
        $pid = proc_get_status($p)['pid'];
        register_shutdown_function(static fn () => kill_tree($pid));
        return new self($name, $p, $pid);
    }

    /** Graceful stop: SIGQUIT (FPM workers finish, write their usage rows at module shutdown, exit). */
    public function stop(float $timeout = 20.0): bool
    {
        posix_kill($this->pid, SIGQUIT);
        $deadline = microtime(true) + $timeout;
        while (microtime(true) < $deadline) {
            if (!proc_get_status($this->proc)['running']) {
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
        $line = (string) @file_get_contents($stat);
        $rest = strrchr($line, ')');
        $parts = $rest !== false ? explode(' ', trim(substr($rest, 1))) : [];
        if (($parts[1] ?? null) === (string) $pid) {
            posix_kill((int) basename(dirname($stat)), SIGKILL);
        }
    }
    if (file_exists("/proc/$pid")) {
        posix_kill($pid, SIGKILL);
    }
}

/**
 * The test application in $dir: tests/laravel/app copied, storage created,
 * an APP_KEY in .env, and heratio/keys-laravel installed under vendor/ the
 * way composer installs a path package (a symlink and installed.json built
 * from the package's own composer.json), so that its PSR-4 map and its
 * extra.laravel.providers are what the app uses.
 */
function build_app(string $dir, string $package): void
{
    $src = __DIR__ . '/app';
    $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($src, FilesystemIterator::SKIP_DOTS), RecursiveIteratorIterator::SELF_FIRST);
    foreach ($it as $f) {
        $to = $dir . '/' . substr($f->getPathname(), strlen($src) + 1);
        $f->isDir() ? @mkdir($to, 0755, true) : copy($f->getPathname(), $to);
    }
    foreach (['storage/framework/sessions', 'storage/framework/views', 'storage/framework/cache', 'storage/logs', 'bootstrap/cache', 'resources/views', 'vendor/composer', 'vendor/heratio'] as $d) {
        @mkdir("$dir/$d", 0755, true);
    }
    file_put_contents("$dir/.env", 'APP_KEY=base64:' . base64_encode(random_bytes(32)) . "\n");
    symlink($package, "$dir/vendor/heratio/keys-laravel");
    $manifest = json_decode((string) file_get_contents("$package/composer.json"), true, 512, JSON_THROW_ON_ERROR);
    $manifest['install-path'] = '../heratio/keys-laravel';
    file_put_contents("$dir/vendor/composer/installed.json", json_encode(['packages' => [$manifest], 'dev' => false], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
}

/** PHP settings for the app (php -n plus what Laravel needs, and the extension). */
function php_ini_args(string $ext): array
{
    $args = [];
    foreach (['ctype', 'mbstring', 'tokenizer', 'iconv', 'fileinfo', 'intl'] as $e) {
        $args[] = '-d';
        $args[] = "extension=$e";
    }
    return [...$args, '-d', 'zend_extension=opcache', '-d', 'opcache.enable=1', '-d', 'opcache.enable_cli=1', '-d', "extension=$ext"];
}

/** Starts php-fpm (a static pool of $workers) serving the app, and nginx in front. */
function deploy(string $dir, string $app, string $ext, string $dsn, int $workers): array
{
    @mkdir("$dir/tmp", 0755, true);
    $fport = free_port();
    $nport = free_port();
    $root = posix_getuid() === 0;
    file_put_contents("$dir/php-fpm.conf", <<<CONF
[global]
pid = $dir/fpm.pid
error_log = $dir/fpm.log
daemonize = no
; workers flush their usage rows at module shutdown: give them time
process_control_timeout = 10s

[laravel]
listen = 127.0.0.1:$fport
listen.backlog = 511
pm = static
pm.max_children = $workers
catch_workers_output = yes
clear_env = no
php_admin_value[heratio_keys.dsn] = "$dsn"
php_admin_value[display_errors] = stderr
php_admin_value[log_errors] = On

CONF);
    $fpmBin = getenv('PHP_FPM') ?: (is_file('/usr/sbin/php-fpm8.2') ? '/usr/sbin/php-fpm8.2' : 'php-fpm');
    $argv = [$fpmBin, '-n', ...php_ini_args($ext), '-y', "$dir/php-fpm.conf", '-F'];
    if ($root) {
        $argv[] = '-R';
    }
    $fpm = Server::start('php-fpm', $argv, "$dir/fpm.out");
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
        root $app/public;
        index index.php;
        location / {
            try_files \$uri \$uri/ /index.php?\$query_string;
        }
        location ~ \.php$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param HTTP_PROXY "";
            fastcgi_pass 127.0.0.1:$fport;
        }
    }
}

CONF);
    $nginxBin = getenv('NGINX') ?: '/usr/sbin/nginx';
    $nginx = Server::start('nginx', [$nginxBin, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e', "$dir/nginx-error.log"], "$dir/nginx.out");
    return [$fpm, $nginx, $nport];
}

/** One HTTP response: status, headers (lower-case name => values), raw body, time received. */
final class Resp
{
    /** @param array<string, list<string>> $headers */
    public function __construct(public int $status, public array $headers, public string $body, public float $at)
    {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)][0] ?? null;
    }

    public function json(): mixed
    {
        return json_decode($this->body, true);
    }

    /** The php-fpm worker that answered (set by the app on every response), 0 if none did. */
    public function worker(): int
    {
        return (int) ($this->header('X-Worker') ?? 0);
    }

    public function describe(): string
    {
        $h = [];
        foreach ($this->headers as $n => $vs) {
            foreach ($vs as $v) {
                $h[] = "$n: $v";
            }
        }
        return "$this->status [" . implode('; ', $h) . "] $this->body";
    }
}

/**
 * Sends all requests at once (one connection each), then reads the
 * answers. A request is [method, path, headers (name => value, or a list of
 * "Name: value" lines)].
 *
 * @return list<Resp>
 */
function http_many(int $port, array $requests): array
{
    $socks = [];
    foreach ($requests as $i => [$method, $path, $headers]) {
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
        if ($s === false) {
            $socks[$i] = null;
            continue;
        }
        stream_set_timeout($s, 30);
        $h = '';
        foreach ($headers as $name => $value) {
            $h .= is_int($name) ? "$value\r\n" : "$name: $value\r\n";
        }
        $length = in_array($method, ['POST', 'PUT', 'DELETE'], true) ? "Content-Length: 0\r\n" : '';
        fwrite($s, "$method $path HTTP/1.0\r\nHost: localhost\r\n$length$h\r\n");
        $socks[$i] = $s;
    }
    $out = [];
    foreach ($socks as $i => $s) {
        if ($s === null) {
            $out[$i] = new Resp(0, [], '', microtime(true));
            continue;
        }
        $raw = (string) stream_get_contents($s);
        fclose($s);
        $at = microtime(true);
        $split = strpos($raw, "\r\n\r\n");
        $head = $split === false ? $raw : substr($raw, 0, $split);
        $body = $split === false ? '' : substr($raw, $split + 4);
        $lines = explode("\r\n", $head);
        $status = preg_match('#^HTTP/1\.\d (\d{3})#', (string) array_shift($lines), $m) ? (int) $m[1] : 0;
        $headers = [];
        foreach ($lines as $line) {
            if (($p = strpos($line, ':')) !== false) {
                $headers[strtolower(trim(substr($line, 0, $p)))][] = trim(substr($line, $p + 1));
            }
        }
        $out[$i] = new Resp($status, $headers, $body, $at);
    }
    return $out;
}

function http(int $port, string $method, string $path, array $headers = []): Resp
{
    return http_many($port, [[$method, $path, $headers]])[0];
}

/** A Heratio key: Str::random(48) (48 of [A-Za-z0-9]). */
function heratio_random_key(): string
{
    $alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    $key = '';
    while (strlen($key) < 48) {
        $key .= $alphabet[random_int(0, 61)];
    }
    return $key;
}

/** A Heratio research key: rk_ + 64 lowercase hex. */
function heratio_research_key(): string
{
    return 'rk_' . bin2hex(random_bytes(32));
}
