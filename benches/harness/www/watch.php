<?php
// GET /watch/?timeout=MS with X-API-Key: validates the key every 5 ms until
// it is refused (or the timeout), then answers when (this worker's clock)
// and with which status. Each such request holds its worker, so the host
// benchmark (host.py) sends one per worker to watch a revocation arrive at
// every worker at once.
$key = (string) ($_SERVER['HTTP_X_API_KEY'] ?? '');
$deadline = microtime(true) + ((int) ($_GET['timeout'] ?? 5000)) / 1000;
$first = heratio_keys_validate_api_key($key, [], null, '/watch/')->status;
$status = $first;
$n = 1;
while ($status === 'valid' && microtime(true) < $deadline) {
    usleep(5000);
    $status = heratio_keys_validate_api_key($key, [], null, '/watch/')->status;
    $n++;
}
header('Content-Type: application/json');
echo json_encode(['pid' => getmypid(), 'first' => $first, 'status' => $status, 'refused_at' => microtime(true), 'validations' => $n]);
