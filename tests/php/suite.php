<?php
// CLI-level tests of the heratio_keys extension against one store.
// Usage: php suite.php sqlite|mysql EXT_SO KEYGEN TMPDIR

declare(strict_types=1);

require __DIR__ . '/lib.php';

[, $kind, $ext, $keygen, $tmp] = $argv;
T::$group = $kind;
$cases = __DIR__ . '/cases';

echo "== CLI tests on $kind ==\n";
$store = Store::create($kind, $tmp, $keygen);
$dsn = $store->dsn;

// --- fixtures -----------------------------------------------------------------
$c1 = $store->client('ReadingRoom');
$rw = $store->generate('api', $c1, 'production', '--scopes', 'read,write');
$star = $store->generate('api', $c1, 'staging');
$ro = $store->generate('api', $c1, 'readonly', '--scopes', 'read');
$ai = $store->generate('ai', $c1, 'ai-server', '--scopes', 'ai:describe');
$revoked = $store->generate('api', $c1, 'old');
$store->keygen('api:revoke', (string) $revoked['id']);
$expired = $store->generate('api', $c1, 'short', '--expires-in', '1s');
$c2 = $store->client('Suspended');
$inactive = $store->generate('api', $c2, 'production');
// A client switched off behind the library's back (no cascade): the key row
// is still active, so the answer is client_inactive.
$store->pdo->exec("UPDATE client SET is_active = 0 WHERE id = $c2");
$c3 = $store->client('Gone');
$deactivated = $store->generate('api', $c3, 'production');
$store->keygen('client:deactivate', (string) $c3);
$scratch = Store::create('sqlite', mkdtemp($tmp), $keygen);
$unknown = $scratch->generate('api', $scratch->client('Elsewhere'), 'x');
usleep(1_200_000); // let the 1 s key expire

$password = (string) (parse_url($dsn)['pass'] ?? 'no-password-in-dsn');
$keys = [
    'client' => $c1,
    'rw' => $rw['key'], 'rw_id' => $rw['id'],
    'star' => $star['key'], 'ro' => $ro['key'], 'ai' => $ai['key'],
    'revoked' => $revoked['key'], 'revoked_id' => $revoked['id'],
    'expired' => $expired['key'], 'inactive' => $inactive['key'],
    'deactivated' => $deactivated['key'], 'unknown' => $unknown['key'],
    'poll_ms' => 200, 'password_probe' => $password === '' ? 'no-password-in-dsn' : $password,
];

function mkdtemp(string $parent): string
{
    $d = $parent . '/' . bin2hex(random_bytes(4));
    mkdir($d);
    return $d;
}

// --- the main case script -----------------------------------------------------
// The case script times 50 000 validations in a tight loop: no writer keeps
// up with that, so the host queue (shared_cache is On by default) must hold
// them all for "nothing dropped" to mean the writer lost nothing (65 536, the
// default, said explicitly: a pool answering HTTP never queues that fast).
$ini = ['heratio_keys.dsn' => $dsn, 'heratio_keys.poll_interval_ms' => '200', 'heratio_keys.shared_queue_records' => '65536'];
$before = $store->usageRows();
[$other, $err] = run_cases('validate', php_argv($ext, $ini, "$cases/validate.php"), ['HK_KEYS' => json_encode($keys), 'HTTP_X_API_KEY' => $rw['key']]);
$info = [];
foreach ($other as $line) {
    if (preg_match('/^(NS_PER_CALL|VALIDATIONS|DROPPED) (\d+)$/', $line, $m)) {
        $info[$m[1]] = (int) $m[2];
    }
}
T::check('case script produced no warnings', !str_contains($err, 'Warning'), substr($err, 0, 500));
$rows = $store->usageRows() - $before;
T::check(
    'usage_log: one row per validation once the process exited (written + dropped = validations)',
    isset($info['VALIDATIONS']) && $rows + ($info['DROPPED'] ?? 0) === $info['VALIDATIONS'],
    "rows $rows, dropped " . ($info['DROPPED'] ?? '?') . ', validations ' . ($info['VALIDATIONS'] ?? '?'),
);
T::eq('usage_log: nothing dropped', 0, $info['DROPPED'] ?? -1);
$row = $store->pdo->query("SELECT ip, endpoint, status, credential_id FROM usage_log WHERE ip = '198.51.100.9'")->fetch(PDO::FETCH_ASSOC);
T::check('usage_log: authenticate records REMOTE_ADDR and REQUEST_URI without the query string', $row !== false && $row['endpoint'] === '/api/v1/auth-test' && (int) $row['status'] === 0 && (int) $row['credential_id'] === $rw['id'], json_encode($row));
$row = $store->pdo->query("SELECT endpoint FROM usage_log WHERE ip = '192.0.2.7'")->fetch(PDO::FETCH_ASSOC);
T::check('usage_log: explicit ip and endpoint recorded', $row !== false && $row['endpoint'] === '/api/informationobjects', json_encode($row));
$len = (int) $store->pdo->query('SELECT MAX(LENGTH(endpoint)) FROM usage_log')->fetchColumn();
T::check('usage_log: long endpoints truncated to 255 bytes', $len > 0 && $len <= 255, "max length $len");
if (isset($info['NS_PER_CALL'])) {
    echo "  NS_PER_CALL {$info['NS_PER_CALL']}\n";
}

// --- metadata and hourly rate limits ------------------------------------------------
$limit = 5;
$metadataJson = '{"unicode": "\u00c5land \u2603 \"quoted\" \\\\ /", "nested": {"ratio": 0.25, "list": [1, "two", null, true, 2.5, {"deep": ["x"]}]}, '
    . '"heratio_user_id": 3, "heratio_key_id": 7, "flag": false, "empty_object": {}, "empty_list": [], "big": 18446744073709551615, "neg": -5, "42": "numeric key"}';
$limited = $store->generateLimited($c1, 'limited', $limit, $metadataJson, '--scopes', 'read');
$authLimited = $store->generateLimited($c1, 'auth-limited', $limit, '{"heratio_key_id": 11, "heratio_user_id": 5}', '--scopes', 'read');
$metaOnly = $store->generateLimited($c1, 'meta-only', null, '{"team": "harvest"}');
$limitKeys = [
    'limit' => $limit, 'metadata_json' => $metadataJson,
    'limited' => $limited['key'], 'limited_id' => $limited['id'],
    'auth_limited' => $authLimited['key'], 'meta' => $metaOnly['key'], 'plain' => $rw['key'],
];
[, $err] = run_cases('limits', php_argv($ext, $ini, "$cases/limits.php"), ['HK_KEYS' => json_encode($limitKeys)]);
T::check('limits: no warnings', !str_contains($err, 'Warning'), substr($err, 0, 500));

// The budget is the store's, not the process's: a second process (a
// recycled worker) continues where the first stopped, and the first hands
// back what it reserved but did not use.
$shared = $store->generateLimited($c1, 'shared', 40, null);
$burst = 'for ($i = 0; $i < (int) getenv("N"); $i++) { $r = heratio_keys_validate_api_key(getenv("K")); echo $r->valid ? $r->rateRemaining : $r->status . ":" . $r->retryAfter, " "; }';
[$code1, $out1] = run(php_argv($ext, $ini, '-r', $burst), null, ['K' => $shared['key'], 'N' => '3']);
[$code2, $out2] = run(php_argv($ext, $ini, '-r', $burst), null, ['K' => $shared['key'], 'N' => '40']);
$second = preg_split('/\s+/', trim($out2));
$valid2 = count(array_filter($second, 'is_numeric'));
T::eq('limits: first process counts 39, 38, 37', '39 38 37', trim($out1));
T::check('limits: a second process accepts exactly the 37 left, then 429s', $code2 === 0 && $valid2 === 37 && $second[36] === '0' && preg_match('/^rate_limited:\d+$/', $second[37] ?? '') === 1, trim($out2));

// --- lifecycle: IP allowlists and rotation, changed by keygen under a running process
$allow = $store->generate('api', $c1, 'allowlisted', '--scopes', 'read', '--allow-ip', '192.0.2.0/24,2001:db8::/32');
$gracedOld = $store->generateLimited($c1, 'graced', null, '{"team": "harvest"}', '--scopes', 'read,write');
$gracedNew = $store->keygen('api:rotate', (string) $gracedOld['id'], '--grace', '1h');
$endedOld = $store->generate('api', $c1, 'ended', '--scopes', 'read');
$lifecycleKeys = [
    'keygen' => $keygen, 'dsn' => $dsn,
    'allow' => $allow['key'], 'allow_id' => $allow['id'],
    'graced_old' => $gracedOld['key'], 'graced_new' => $gracedNew['key'], 'graced_new_id' => (int) $gracedNew['id'],
    'ended_old' => $endedOld['key'], 'ended_old_id' => $endedOld['id'],
];
T::check('lifecycle: api:rotate --json says what it replaces', ($gracedNew['replaces'] ?? null) === $gracedOld['id'], json_encode($gracedNew));
[, $err] = run_cases('lifecycle', php_argv($ext, $ini, "$cases/lifecycle.php"), ['HK_KEYS' => json_encode($lifecycleKeys), 'HTTP_X_API_KEY' => $allow['key'], 'REMOTE_ADDR' => '198.51.100.1']);
T::check('lifecycle: no warnings', !str_contains($err, 'Warning'), substr($err, 0, 500));

// Cost of a cached validation, rate-limited vs unlimited, same process.
$fast = $store->generateLimited($c1, 'cost-limited', 1_000_000_000, null);
$costKeys = ['unlimited' => $star['key'], 'limited' => $fast['key'], 'calls' => (int) (getenv('HK_COST_CALLS') ?: 20000), 'passes' => 7];
[$other] = run_cases('cost', php_argv($ext, $ini, "$cases/rate_cost.php"), ['HK_KEYS' => json_encode($costKeys)]);
foreach ($other as $line) {
    if (preg_match('/^(NS_UNLIMITED|NS_LIMITED|RESERVATIONS_PER_1000|CALL_UNLIMITED|CALL_LIMITED) ([\d. a-z]+)$/', $line, $m)) {
        echo "  {$m[1]} {$m[2]}\n";
    }
}

// --- php -m, --ri, phpinfo ------------------------------------------------------
[$code, $out] = run(php_argv($ext, $ini, '-m'));
T::check('php -m lists heratio_keys', $code === 0 && preg_match('/^heratio_keys$/m', $out) === 1);
[$code, $out] = run(php_argv($ext, $ini, '--ri', 'heratio_keys'));
T::check('php --ri: version', $code === 0 && str_contains($out, 'version => ' . '0.') , $out);
$masked = str_starts_with($dsn, 'mysql:') ? str_replace(":$password@", ':***@', $dsn) : $dsn;
T::check('php --ri: DSN shown, password masked', str_contains($out, "dsn => $masked") && ($password === '' || !str_contains($out, $password)), $out);
[$code, $out] = run(php_argv($ext, $ini, '-r', 'heratio_keys_validate_api_key(getenv("K")); phpinfo(INFO_MODULES);'), null, ['K' => $rw['key']]);
// One validation: a miss, or a hit when the host region (shared_cache,
// On) already holds this key from an earlier process of the suite.
T::check('phpinfo: counters of the open validator', $code === 0 && preg_match('/cache (hits|misses) => 1\b/', $out) === 1 && str_contains($out, 'validations => 1') && str_contains($out, 'usage written'), substr($out, 0, 3000));

// --- docs/php.md's ten-line exporter, run as written ------------------------------
$exporter = 'foreach ([getenv("K"), getenv("K"), "hk_api_x"] as $k) { heratio_keys_validate_api_key($k); } include getenv("EXPORTER");';
[$code, $out] = run(php_argv($ext, $ini, '-r', $exporter), null, ['K' => $rw['key'], 'EXPORTER' => dirname(__DIR__, 2) . '/docs/examples/php-exporter.php']);
$lines = array_filter(explode("\n", $out), fn ($l) => $l !== '');
$bad = array_filter($lines, fn ($l) => preg_match('/^(# TYPE heratio_keys_php_\w+ (counter|gauge)|heratio_keys_php_\w+(\{pid="\d+"\})? \d+)$/', $l) !== 1);
T::check('exporter example: TYPE lines and integer samples only', $code === 0 && count($lines) > 20 && $bad === [], implode("\n", $bad) . "\n" . substr($out, 0, 2000));
T::check('exporter example: this worker counted its 3 validations', preg_match('/^# TYPE heratio_keys_php_validations_total counter\nheratio_keys_php_validations_total\{pid="\d+"\} 3$/m', $out) === 1, $out);
T::check('exporter example: no key, prefix or password in it', !str_contains($out, substr($rw['key'], 0, 12)) && !str_contains($out, $keys['password_probe']), $out);

// --- unavailable: missing / bad DSN, unreachable store, bad settings ------------
$twoCalls = 'for ($i = 0; $i < 2; $i++) { $r = heratio_keys_validate_api_key(getenv("K")); echo $r->status, " ", $r->httpStatus, " ", $r->message, "\n"; }';
$unreachablePort = free_port();
$bad = [
    'no DSN' => [[], 'heratio_keys.dsn is not set'],
    'unsupported DSN' => [['heratio_keys.dsn' => 'postgres://u:pw@localhost/x'], 'unsupported DSN'],
    'unreachable MariaDB (password masked)' => [['heratio_keys.dsn' => "mysql://hk:sekrit-pw@127.0.0.1:$unreachablePort/heratio_keys"], "127.0.0.1:$unreachablePort"],
    'SQLite without schema' => [['heratio_keys.dsn' => 'sqlite:' . mkdtemp($tmp) . '/none.db'], 'keygen install'],
    'bad heratio_keys.cache_ttl' => [['heratio_keys.dsn' => $dsn, 'heratio_keys.cache_ttl' => 'soon'], 'heratio_keys.cache_ttl'],
    'bad heratio_keys.usage_log' => [['heratio_keys.dsn' => $dsn, 'heratio_keys.usage_log' => 'sometimes'], 'heratio_keys.usage_log'],
];
foreach ($bad as $what => [$badIni, $needle]) {
    $t0 = microtime(true);
    [$code, $out, $err] = run(php_argv($ext, $badIni, '-r', $twoCalls), null, ['K' => $rw['key']]);
    $lines = array_values(array_filter(explode("\n", $out)));
    T::check("$what: exit 0 (no crash)", $code === 0, "exit $code: $err");
    T::check("$what: unavailable 503 twice", $lines === array_fill(0, 2, 'unavailable 503 API key validation is temporarily unavailable.'), $out);
    T::eq("$what: exactly one E_WARNING", 1, substr_count($err, 'Warning'));
    T::check("$what: the warning says why", str_contains($err, $needle) && !str_contains($err, 'sekrit-pw'), $err);
    // Bounded, not fast: two calls behind the store's 5 s timeout must not
    // hang the process (generous for a loaded machine; not a speed check).
    $took = microtime(true) - $t0;
    T::check("$what: answered, not hung (under 30 s)", $took < 30.0, sprintf('%.1f s', $took));
}

// --- recovery: a store that becomes available is used on a later call ----------
$later = mkdtemp($tmp) . '/later.db';
$recover = <<<'PHP'
$k = getenv("K");
$a = heratio_keys_validate_api_key($k)->status;
$b = heratio_keys_validate_api_key($k)->status; // within the backoff: not retried
passthru(getenv("KEYGEN") . " --dsn sqlite:" . getenv("DB") . " install > /dev/null");
$key = trim(shell_exec(getenv("KEYGEN") . " --dsn sqlite:" . getenv("DB") . " client:create --name R --email r@example.org > /dev/null && " . getenv("KEYGEN") . " --dsn sqlite:" . getenv("DB") . " --json api:generate 1 --name p 2>/dev/null | php -r 'echo json_decode(stream_get_contents(STDIN))->key;'"));
usleep(1_100_000);
$c = heratio_keys_validate_api_key($key)->status;
echo "$a $b $c\n";
PHP;
[$code, $out, $err] = run(php_argv($ext, ['heratio_keys.dsn' => "sqlite:$later"], '-r', $recover), null, ['K' => $rw['key'], 'KEYGEN' => $keygen, 'DB' => $later]);
T::eq('recovery: unavailable, then valid once the store exists (retry after backoff)', "unavailable unavailable valid\n", $out);
T::eq('recovery: one warning for the failure episode', 1, substr_count($err, 'Warning'));

// --- fork: a validator opened before fork() works in the child, both flush -------
$fork = <<<'PHP'
$k = getenv("K");
$ok = heratio_keys_validate_api_key($k)->valid;
$pid = pcntl_fork();
if ($pid === 0) {
    $n = 0;
    for ($i = 0; $i < 10; $i++) { $n += heratio_keys_validate_api_key($k)->valid ? 1 : 0; }
    $s = heratio_keys_stats();
    echo "child $n ", $s["pid"] === getmypid() ? "ownpid" : "parentpid", "\n";
    exit(0);
}
pcntl_waitpid($pid, $status);
for ($i = 0; $i < 5; $i++) { $ok = $ok && heratio_keys_validate_api_key($k)->valid; }
echo "parent ", $ok ? "ok" : "bad", " ", pcntl_wexitstatus($status), "\n";
PHP;
$before = $store->usageRows();
[$code, $out, $err] = run(php_argv($ext, $ini, '-r', $fork), null, ['K' => $rw['key']]);
T::check('fork: child and parent both validate', $code === 0 && str_contains($out, 'child 10 ownpid') && str_contains($out, 'parent ok 0'), $out . $err);
T::eq('fork: usage rows of parent and child all written (16)', 16, $store->usageRows() - $before);

// --- usage_log off --------------------------------------------------------------
$before = $store->usageRows();
[$code, $out] = run(php_argv($ext, $ini + ['heratio_keys.usage_log' => 'off'], '-r', 'echo heratio_keys_validate_api_key(getenv("K"))->status;'), null, ['K' => $rw['key']]);
T::check('usage_log=off: validates, records nothing', $out === 'valid' && $store->usageRows() === $before, $out);

// --- host region: two processes, one after the other, share one cache -----------
$probe = 'echo json_encode([heratio_keys_validate_api_key(getenv("K"))->status, heratio_keys_stats()]);';
// The first process stays until it (the host's leader) has polled the feed
// past the key's "generated" row, which drops a cached answer for that
// digest (it cancels a cached "not found"), and then fills the cache again.
$settle = 'heratio_keys_validate_api_key(getenv("K")); usleep(1_000_000); ' . $probe;
$fresh = $store->generate('api', $c1, 'host-shared');
[, $out1] = run(php_argv($ext, $ini, '-r', $settle), null, ['K' => $fresh['key']]);
[, $out2] = run(php_argv($ext, $ini, '-r', $probe), null, ['K' => $fresh['key']]);
[$st1, $s1] = json_decode($out1, true) ?? [null, []];
[$st2, $s2] = json_decode($out2, true) ?? [null, []];
T::check('shared: the first process queries the store for a new key', $st1 === 'valid' && ($s1['store_queries'] ?? -1) >= 1 && ($s1['shared'] ?? false) === true, $out1);
T::check('shared: the next process finds it in the host cache (no store query)', $st2 === 'valid' && ($s2['store_queries'] ?? -1) === 0 && ($s2['cache_hits'] ?? 0) === 1 && ($s2['host_hits'] ?? 0) > ($s1['host_hits'] ?? 0), $out2);
T::check('shared: both used the same region file', isset($s1['shared_region']) && $s1['shared_region'] === ($s2['shared_region'] ?? null));

// --- heratio_keys.shared_cache = Off: private, the host keys present and null ---
[, $out] = run(php_argv($ext, $ini + ['heratio_keys.shared_cache' => 'Off'], '-r', $probe), null, ['K' => $fresh['key']]);
[$st, $s] = json_decode($out, true) ?? [null, []];
$hostNull = array_filter($s, fn ($v, $k) => str_starts_with($k, 'host_') && $v !== null, ARRAY_FILTER_USE_BOTH) === [];
T::check('shared_cache=Off: validates with a private cache (one store query)', $st === 'valid' && ($s['store_queries'] ?? -1) === 1, $out);
T::check('shared_cache=Off: shared false, no error, no region, every host_* key present and null', ($s['shared'] ?? null) === false && array_key_exists('shared_error', $s) && $s['shared_error'] === null && $s['shared_region'] === null && array_key_exists('host_leader', $s) && array_key_exists('host_written', $s) && $hostNull, $out);

// --- php --ri shows the shared mode and the host counters -----------------------
[, $ri] = run(php_argv($ext, $ini, '-r', 'heratio_keys_validate_api_key(getenv("K")); phpinfo(INFO_MODULES);'), null, ['K' => $fresh['key']]);
T::check('phpinfo: shared yes (region), host counters and the shared directives listed', (bool) preg_match('/^shared => yes \(.*\.region\)$/m', $ri) && preg_match('/^host leader pid => \d+$/m', $ri) && preg_match('/^host hits => \d+$/m', $ri) && str_contains($ri, 'heratio_keys.shared_cache => 1') && str_contains($ri, 'heratio_keys.db_connections => 2'), substr($ri, (int) strpos($ri, 'heratio_keys support'), 2500));
[, $ri] = run(php_argv($ext, [], '-r', 'phpinfo(INFO_MODULES);'));
T::check('php --ri before any validation: the host rows are "-"', (bool) preg_match('/^host hits => -$/m', $ri) && str_contains($ri, 'shared => - (decided when the validator opens)'), substr($ri, (int) strpos($ri, 'heratio_keys support'), 2500));

// --- stub in sync with the extension --------------------------------------------
[$c1code, $fromExt, $e1] = run(php_argv($ext, [], "$cases/stub.php", 'ext'));
[$c2code, $fromStub, $e2] = run([PHP_BINARY, "$cases/stub.php", dirname(__DIR__, 2) . '/php-ext/heratio_keys.stub.php']);
$a = json_decode($fromExt, true);
$b = json_decode($fromStub, true);
if (T::check('stub: both descriptions produced', is_array($a) && is_array($b), $e1 . $e2)) {
    foreach (['extension_functions', 'extension_classes', 'ini', 'functions', 'classes'] as $part) {
        T::check("stub: $part match Reflection of the extension", $a[$part] === $b[$part], "extension:\n" . json_encode($a[$part]) . "\nstub:\n" . json_encode($b[$part]));
    }
    $sample = <<<'PHP'
$r = heratio_keys_validate_api_key(getenv("K"));
$n = heratio_keys_validate_api_key("x");
echo json_encode([get_object_vars($r), get_object_vars($n)]);
PHP;
    [, $vals] = run(php_argv($ext, $ini, '-r', $sample), null, ['K' => $rw['key']]);
    $samples = json_decode($vals, true);
    $typeOk = is_array($samples);
    $detail = '';
    foreach ($b['result_property_types'] ?? [] as $prop => $t) {
        foreach ($samples ?? [] as $s) {
            $v = $s[$prop] ?? null;
            $type = ltrim($t['type'], '?');
            $matches = ($v === null && str_starts_with($t['type'], '?')) || get_debug_type($v) === $type;
            if (!$matches || !$t['readonly']) {
                $typeOk = false;
                $detail .= "$prop: stub {$t['type']} readonly=" . var_export($t['readonly'], true) . ', value ' . var_export($v, true) . "\n";
            }
        }
    }
    T::check('stub: Result property types match real values, all readonly', $typeOk, $detail);
}

T::finish();
