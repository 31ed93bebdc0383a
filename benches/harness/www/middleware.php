<?php
// Heratio's API-key middleware as it is today, reduced to its database work:
// hash('sha256', $key), one SELECT by digest of an active key, an expiry
// check, and an UPDATE of last_used_at. Same schema as heratio-keys
// (timestamps in ms), same indexed key_hash column.

declare(strict_types=1);

function baseline_pdo(string $dsn, bool $persistent): PDO
{
    $u = parse_url($dsn);
    return new PDO(
        sprintf('mysql:host=%s;port=%d;dbname=%s', $u['host'], $u['port'] ?? 3306, ltrim($u['path'], '/')),
        urldecode($u['user'] ?? ''),
        urldecode($u['pass'] ?? ''),
        [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_PERSISTENT => $persistent],
    );
}

/** @return array{valid: bool, status: int, client_id: ?int, name: ?string} */
function baseline_validate(PDO $pdo, string $key, string $ip, string $endpoint): array
{
    static $select = null, $update = null, $for = null;
    if ($for !== $pdo) {
        $select = $pdo->prepare('SELECT k.id, k.client_id, k.name, k.scopes, k.expires_at FROM api_key k WHERE k.key_hash = ? AND k.is_active = 1');
        $update = $pdo->prepare('UPDATE api_key SET last_used_at = ? WHERE id = ?');
        $for = $pdo;
    }
    $hash = hash('sha256', $key);
    $select->execute([$hash]);
    $row = $select->fetch(PDO::FETCH_ASSOC);
    $select->closeCursor();
    if ($row === false) {
        return ['valid' => false, 'status' => 401, 'client_id' => null, 'name' => null];
    }
    $now = (int) (microtime(true) * 1000);
    if ($row['expires_at'] !== null && (int) $row['expires_at'] <= $now) {
        return ['valid' => false, 'status' => 401, 'client_id' => null, 'name' => null];
    }
    $update->execute([$now, $row['id']]);
    return ['valid' => true, 'status' => 200, 'client_id' => (int) $row['client_id'], 'name' => $row['name']];
}
