<?php
// Runs inside `php -d extension=heratio_keys.so -d heratio_keys.dsn=...`:
// IP allowlists (ip_denied) and rotation as a PHP caller sees them, including
// a change made by keygen while this process has the key cached. Keys and
// the keygen command come from the driver in $HK_KEYS (JSON). Prints
// "ok NAME" or "FAIL NAME: detail".

declare(strict_types=1);

use Heratio\Keys\Result;

require __DIR__ . '/common.php';

$k = case_keys();

function show(Result $r): string
{
    return json_encode($r, JSON_UNESCAPED_SLASHES);
}

function keygen(array $k, string ...$args): void
{
    $cmd = $k['keygen'] . ' ' . implode(' ', array_map('escapeshellarg', ['--dsn', $k['dsn'], ...$args])) . ' > /dev/null 2>&1';
    exec($cmd, $out, $code);
    if ($code !== 0) {
        throw new RuntimeException("keygen {$args[0]} failed ($code)");
    }
}

/** Polls $f until it returns true (the feed brings a change within a second). */
function within(float $seconds, callable $f): bool
{
    $end = microtime(true) + $seconds;
    do {
        if ($f()) {
            return true;
        }
        usleep(20_000);
    } while (microtime(true) < $end);
    return false;
}

$v = 'heratio_keys_validate_api_key';

// --- IP allowlist: 192.0.2.0/24 and 2001:db8::/32 ------------------------------
$inside = $v($k['allow'], [], '192.0.2.7');
t('allowlist: an IPv4 address inside: valid', $inside->valid && $inside->status === 'valid', show($inside));
$r = $v($k['allow'], [], '2001:db8::1');
t('allowlist: an IPv6 address inside: valid', $r->valid, show($r));
$r = $v($k['allow'], [], '::ffff:192.0.2.9');
t('allowlist: an IPv4-mapped IPv6 address inside: valid', $r->valid, show($r));
$out = $v($k['allow'], [], '198.51.100.1');
t('allowlist: outside: ip_denied, 403, not valid', !$out->valid && $out->status === 'ip_denied' && $out->httpStatus === 403, show($out));
t('allowlist: ip_denied still identifies the key', $out->keyId === $k['allow_id'] && $out->clientId === $inside->clientId && $out->name === 'allowlisted', show($out));
$r = $v($k['allow'], []);
t('allowlist: no IP given: ip_denied (closed, not open)', $r->status === 'ip_denied', show($r));
$r = $v($k['allow'], [], 'not an address');
t('allowlist: an unparsable IP: ip_denied', $r->status === 'ip_denied', show($r));
$r = $v($k['allow'], [], "192.0.2.7\0.evil");
t('allowlist: an inside address with a NUL byte after it: ip_denied', $r->status === 'ip_denied', show($r));
$r = $v($k['allow'], [], str_repeat('1', 1 << 20));
t('allowlist: a 1 MB IP string: ip_denied', $r->status === 'ip_denied', show($r));
$r = $v($k['allow'], [], "\xff\xfe");
t('allowlist: a non-UTF-8 IP: ip_denied', $r->status === 'ip_denied', show($r));
$r = $v($k['allow'], ['write'], '192.0.2.7');
t('allowlist: inside but lacking a scope: forbidden, not ip_denied', $r->status === 'forbidden', show($r));
$r = heratio_keys_authenticate([]);
t('authenticate: REMOTE_ADDR outside the allowlist: ip_denied 403', $r->status === 'ip_denied' && $r->httpStatus === 403, show($r));

// Widened by keygen while this process has the answer cached.
keygen($k, 'api:allow-ip', (string) $k['allow_id'], '--any');
t('api:allow-ip --any reaches this process within 2 s (change feed)', within(2.0, fn () => $v($k['allow'], [], '198.51.100.1')->valid));
keygen($k, 'api:allow-ip', (string) $k['allow_id'], '203.0.113.0/24');
t('api:allow-ip narrowed again: the old inside address is refused within 2 s', within(2.0, fn () => $v($k['allow'], [], '192.0.2.7')->status === 'ip_denied'));
$r = $v($k['allow'], [], '203.0.113.200');
t('api:allow-ip: the new network is admitted', $r->valid, show($r));

// --- rotation with a grace period ------------------------------------------------
$old = $v($k['graced_old']);
$new = $v($k['graced_new']);
t('rotation in grace: the old key still valid', $old->valid, show($old));
t('rotation in grace: the new key valid, same client, name and scopes, another id', $new->valid && $new->clientId === $old->clientId && $new->name === $old->name && $new->scopes === $old->scopes && $new->keyId !== $old->keyId, show($old) . ' ' . show($new));
t('rotation in grace: the new key keeps the allowlist (none) and metadata', $new->metadata === ['team' => 'harvest'] && $old->metadata === $new->metadata, show($new));

// Rotation without grace while the old key is cached here.
t('before rotation: the key is valid (and cached)', $v($k['ended_old'])->valid);
$rotated = json_decode((string) shell_exec($k['keygen'] . ' --dsn ' . escapeshellarg($k['dsn']) . ' --json api:rotate ' . (int) $k['ended_old_id'] . ' --grace 0 2>/dev/null'), true);
t('api:rotate --grace 0: a new key, replaces the old id', is_array($rotated) && ($rotated['replaces'] ?? null) === $k['ended_old_id'] && str_starts_with($rotated['key'] ?? '', 'hk_api_'), json_encode($rotated));
t('grace over: the cached old key reads expired within 2 s', within(2.0, fn () => $v($k['ended_old'])->status === 'expired'));
$r = $v($k['ended_old']);
t('grace over: expired is 401 and still identifies the old key', !$r->valid && $r->httpStatus === 401 && $r->keyId === $k['ended_old_id'], show($r));
$r = $v($rotated['key'] ?? '');
t('grace over: the replacement is valid', $r->valid && $r->keyId !== $k['ended_old_id'], show($r));

// --- api:expire from the CLI, seen by this process (the past is refused) -------------
keygen($k, 'api:expire', (string) $k['graced_new_id'], '--in', '1s');
t('api:expire --in 1s: expired within 3 s', within(3.0, fn () => $v($k['graced_new'])->status === 'expired'));
keygen($k, 'api:expire', (string) $k['graced_new_id'], '--never');
t('api:expire --never: valid again within 2 s', within(2.0, fn () => $v($k['graced_new'])->valid));
