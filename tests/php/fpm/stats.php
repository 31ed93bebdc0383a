<?php
// GET /api/stats?hold=MS: this worker's heratio_keys_stats(), its pid and
// clock. Validates nothing (so it records no usage); holding the worker a
// little spreads a burst of these over every worker.
if (isset($_GET['hold'])) {
    usleep((int) $_GET['hold'] * 1000);
}
header('Content-Type: application/json');
echo json_encode(['pid' => getmypid(), 't' => microtime(true), 'stats' => heratio_keys_stats()]);
