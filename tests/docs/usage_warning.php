<?php
// The PHP extension's "usage is not being recorded" warning (docs/install.md,
// Operations), run by tests/docs/run.sh as the documented runtime account
// after its INSERT on usage_log was revoked:
//   1. validation keeps answering `valid`; exactly one warning for the
//      episode, naming the cause and pointing to the grants in docs/install.md;
//   2. after $HK_FIX_GRANTS (which re-runs the documented grants) the
//      pending rows are written and no further warning appears.
// Usage: php -d heratio_keys.dsn=DSN usage_warning.php KEY
// Prints VALIDATIONS N (the runner counts the usage rows) and exits 1 on a failure.

declare(strict_types=1);

$key = $argv[1] ?? '';
$fix = (string) getenv('HK_FIX_GRANTS');
$warnings = [];
set_error_handler(static function (int $no, string $message) use (&$warnings): bool {
    $warnings[] = $message;
    return true;
});
$failed = 0;
$validations = 0;
$allValid = true;

function check(string $what, bool $ok, string $detail = ''): void
{
    global $failed;
    echo ($ok ? '  ok    ' : '  FAIL  ') . $what . ($ok || $detail === '' ? '' : ": $detail") . "\n";
    $failed += $ok ? 0 : 1;
}

function validate(): void
{
    global $key, $validations, $allValid;
    $r = heratio_keys_validate_api_key($key, ['read'], '192.0.2.9', '/usage-warning-test');
    $validations++;
    $allValid = $allValid && $r->valid;
}

// 1. INSERT revoked: a validation every 100 ms until the warning shows (the
//    flusher writes at most a second after the first record), then 3 s more
//    (several failed retries) to see that it is not repeated.
$deadline = microtime(true) + 15;
$seen = false;
while (microtime(true) < $deadline) {
    validate();
    if (!$seen && $warnings) {
        $seen = true;
        $deadline = microtime(true) + 3;
    }
    usleep(100_000);
}
$stats = heratio_keys_stats();
check('validation still answers valid while usage cannot be written', $allValid);
check('exactly one warning for the episode', count($warnings) === 1, json_encode($warnings));
check(
    'the warning names the cause and points to the grants in docs/install.md',
    // PHP prefixes a warning raised inside a function with its name.
    preg_match('/^(heratio_keys_[a-z_]+\(\): )?usage is not being recorded: .*INSERT command denied.*see the grants in docs\/install\.md/', $warnings[0] ?? '') === 1,
    $warnings[0] ?? '(none)'
);
check('usage_write_errors counts the failed writes', $stats['usage_write_errors'] > 0, json_encode($stats));
check('nothing written meanwhile', $stats['usage_written'] === 0, json_encode($stats));

// 2. The documented grants, re-run.
exec($fix . ' 2>&1', $out, $code);
check('the documented grants re-run', $code === 0, implode("\n", $out));
$warnings = [];
$deadline = microtime(true) + 15;
$writtenAt = null;
while (microtime(true) < $deadline) {
    validate();
    if ($writtenAt === null && heratio_keys_stats()['usage_written'] > 0) {
        $writtenAt = microtime(true);
        $deadline = $writtenAt + 2.5; // two more flushes
    }
    usleep(100_000);
}
$stats = heratio_keys_stats();
check('usage is written again once the grants are fixed', $writtenAt !== null, json_encode($stats));
check('no warning once the grants are fixed', $warnings === [], json_encode($warnings));
check('validation answered valid throughout', $allValid);
echo "VALIDATIONS $validations\n";
exit($failed === 0 ? 0 : 1);
