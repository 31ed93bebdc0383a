<?php
// Helpers shared by the PHP test drivers. The drivers run under the plain
// `php` CLI (no heratio_keys loaded); they start child `php` processes with
// the built extension, `keygen`, php-fpm and nginx.

declare(strict_types=1);

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

final class T
{
    public static int $passed = 0;
    public static int $failed = 0;
    public static string $group = '';

    public static function check(string $name, bool $ok, string $detail = ''): bool
    {
        $label = (self::$group !== '' ? self::$group . ': ' : '') . $name;
        if ($ok) {
            self::$passed++;
            echo "  ok   $label\n";
        } else {
            self::$failed++;
            echo "  FAIL $label" . ($detail !== '' ? "\n       $detail" : '') . "\n";
        }
        return $ok;
    }

    public static function eq(string $name, mixed $expected, mixed $actual): bool
    {
        return self::check($name, $expected === $actual, 'expected ' . var_export($expected, true) . ', got ' . var_export($actual, true));
    }

    /** Prints the machine-readable tally the runner adds up. */
    public static function finish(): never
    {
        echo 'TALLY ' . self::$passed . ' ' . self::$failed . "\n";
        exit(self::$failed === 0 ? 0 : 1);
    }
}

function env_or_die(string $name): string
{
    $v = getenv($name);
    if ($v === false || $v === '') {
        fwrite(STDERR, "missing environment variable $name\n");
        exit(2);
    }
    return $v;
}

/** No single process of the suite legitimately runs longer than this. */
const RUN_TIMEOUT_SECONDS = 300;

/** Runs a command (argv array), returns [exit code, stdout, stderr]. */
function run(array $argv, ?string $stdin = null, array $env = []): array
{
    $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
    $fullEnv = array_merge(getenv(), $env);
    // A hang (a deadlocked child, a lost lock) fails its check with exit
    // status 124 instead of stalling the whole suite until CI's limit.
    $argv = ['timeout', '--kill-after=10', (string) RUN_TIMEOUT_SECONDS, ...$argv];
    $p = proc_open($argv, $spec, $pipes, null, $fullEnv);
    if (!is_resource($p)) {
        throw new RuntimeException('cannot start ' . $argv[0]);
    }
    if ($stdin !== null) {
        fwrite($pipes[0], $stdin);
    }
    fclose($pipes[0]);
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    fclose($pipes[1]);
    fclose($pipes[2]);
    $code = proc_close($p);
    return [$code, (string) $out, (string) $err];
}

/** The store under test: DSN, keygen wrapper and direct SQL access. */
final class Store
{
    public PDO $pdo;

    public function __construct(public readonly string $dsn, public readonly string $keygen)
    {
        if (str_starts_with($dsn, 'sqlite:')) {
            $this->pdo = new PDO($dsn);
        } else {
            $u = parse_url($dsn);
            $this->pdo = new PDO(
                sprintf('mysql:host=%s;port=%d;dbname=%s', $u['host'], $u['port'] ?? 3306, ltrim($u['path'], '/')),
                urldecode($u['user'] ?? ''),
                urldecode($u['pass'] ?? ''),
            );
        }
        $this->pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    }

    /** A fresh store: a temp SQLite file, or a new hk_test_* MariaDB database. */
    public static function create(string $kind, string $tmp, string $keygen): Store
    {
        if ($kind === 'sqlite') {
            $dsn = "sqlite:$tmp/keys.db";
        } else {
            $base = env_or_die('HERATIO_KEYS_TEST_MYSQL_DSN');
            $u = parse_url($base);
            $db = 'hk_test_php_' . getmypid() . '_' . bin2hex(random_bytes(3));
            $admin = new PDO(
                sprintf('mysql:host=%s;port=%d', $u['host'], $u['port'] ?? 3306),
                urldecode($u['user'] ?? ''),
                urldecode($u['pass'] ?? ''),
            );
            $admin->exec("CREATE DATABASE `$db`");
            $dsn = preg_replace('#/[^/?]*(\?.*)?$#', "/$db", $base);
            register_shutdown_function(static function () use ($admin, $db): void {
                try {
                    $admin->exec("DROP DATABASE IF EXISTS `$db`");
                } catch (Throwable) {
                }
            });
        }
        [$code, $out, $err] = run([$keygen, '--dsn', $dsn, 'install']);
        if ($code !== 0) {
            throw new RuntimeException("keygen install failed: $err");
        }
        return new Store($dsn, $keygen);
    }

    public function keygen(string ...$args): array
    {
        [$code, $out, $err] = run([$this->keygen, '--dsn', $this->dsn, '--json', ...$args]);
        if ($code !== 0) {
            throw new RuntimeException('keygen ' . implode(' ', $args) . " failed ($code): $err");
        }
        return json_decode($out, true, 512, JSON_THROW_ON_ERROR);
    }

    public function client(string $name): int
    {
        return (int) $this->keygen('client:create', '--name', $name, '--email', strtolower($name) . '@example.org')['id'];
    }

    /** @return array{key: string, id: int} */
    public function generate(string $kind, int $client, string $name, string ...$opts): array
    {
        $j = $this->keygen("$kind:generate", (string) $client, '--name', $name, ...$opts);
        return ['key' => $j['key'], 'id' => (int) $j['id']];
    }

    /**
     * An API key with an hourly rate limit and/or metadata (a JSON object),
     * through keygen's --rate-limit and --metadata.
     *
     * @return array{key: string, id: int}
     */
    public function generateLimited(int $client, string $name, ?int $limit, ?string $metadata, string ...$opts): array
    {
        $flags = [];
        if ($limit !== null) {
            array_push($flags, '--rate-limit', (string) $limit);
        }
        if ($metadata !== null) {
            array_push($flags, '--metadata', $metadata);
        }
        return $this->generate('api', $client, $name, ...$opts, ...$flags);
    }

    /**
     * Validations recorded: a usage_log row for each that matched a stored
     * credential, a per-minute count in usage_rejected for the rest.
     */
    public function usageRows(): int
    {
        return (int) $this->pdo->query(
            'SELECT (SELECT COUNT(*) FROM usage_log) + (SELECT COALESCE(SUM(count), 0) FROM usage_rejected)'
        )->fetchColumn();
    }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
function free_port(): int
{
    $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    if ($s === false) {
        throw new RuntimeException("no free port: $errstr");
    }
    $name = stream_socket_get_name($s, false);
    fclose($s);
    return (int) substr($name, strrpos($name, ':') + 1);
}

/** `php` with the extension and the given ini settings. */
function php_argv(string $ext, array $ini, string ...$rest): array
{
    $argv = [PHP_BINARY, '-d', "extension=$ext", '-d', 'display_errors=stderr', '-d', 'log_errors=0'];
    foreach ($ini as $k => $v) {
        $argv[] = '-d';
        $argv[] = "$k=$v";
    }
    return [...$argv, ...$rest];
}

/**
 * Runs a case script inside `php` with the extension, adds its ok/FAIL lines
 * to the tally and returns its output (lines other than results).
 */
function run_cases(string $group, array $argv, array $env = []): array
{
    [$code, $out, $err] = run($argv, null, $env);
    $other = [];
    $seen = 0;
    foreach (explode("\n", $out) as $line) {
        if (preg_match('/^(ok|FAIL) (.*)$/s', $line, $m)) {
            $seen++;
            T::check("$group: " . $m[2], $m[1] === 'ok');
        } elseif ($line !== '') {
            $other[] = $line;
        }
    }
    T::check("$group: script exited cleanly with results", $code === 0 && $seen > 0, "exit $code, stderr: " . substr($err, 0, 2000) . ' stdout: ' . substr(implode("\n", $other), 0, 2000));
    return [$other, $err, $code];
}
