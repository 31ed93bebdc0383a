<?php
// GET /host/...: the extension middleware (heratio_keys_authenticate(['read']))
// for the host benchmark (host.py); ?hold=MS keeps the worker busy, so that
// a burst of such requests reaches every worker.
$r = heratio_keys_authenticate(['read']);
if (isset($_GET['hold'])) {
    usleep((int) $_GET['hold'] * 1000);
}
http_response_code($r->httpStatus);
header('Content-Type: application/json');
echo json_encode(['pid' => getmypid(), 'valid' => $r->valid]);
