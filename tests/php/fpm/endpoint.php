<?php
// A Heratio-style API endpoint: what Heratio's auth middleware answers,
// in one call. GET /api/<anything>?scope=S&hold=MS
$scope = $_GET['scope'] ?? null;
$r = heratio_keys_authenticate($scope !== null ? [$scope] : []);
if (isset($_GET['hold'])) {
    usleep((int) $_GET['hold'] * 1000); // keep this worker busy so others get work
}
http_response_code($r->httpStatus);
header('Content-Type: application/json');
echo json_encode($r->valid
    ? ['success' => true, 'client_id' => $r->clientId, 'key' => $r->name, 'pid' => getmypid(), 't' => microtime(true)]
    : ['success' => false, 'error' => $r->message, 'status' => $r->status, 'pid' => getmypid(), 't' => microtime(true)]);
