<?php
// GET /baseline/...: the middleware of today (PDO, persistent connection so
// that only the middleware's own queries are measured, not a connect).
require __DIR__ . '/middleware.php';
$key = $_SERVER['HTTP_X_API_KEY'] ?? '';
$r = baseline_validate(baseline_pdo(getenv('HK_BASELINE_DSN') ?: $_SERVER['HK_BASELINE_DSN'], true), $key, $_SERVER['REMOTE_ADDR'] ?? '', $_SERVER['REQUEST_URI'] ?? '');
http_response_code($r['status']);
header('Content-Type: application/json');
echo json_encode($r['valid'] ? ['success' => true, 'client_id' => $r['client_id'], 'key' => $r['name']] : ['success' => false, 'error' => 'Invalid API key']);
