<?php
// GET /stats/...: this worker's heratio_keys_stats() (the harness collects
// every worker's after the wrk rounds). Holds the worker 50 ms so that
// concurrent requests reach different workers.
usleep(50_000);
header('Content-Type: application/json');
echo json_encode(['pid' => getmypid(), 'stats' => heratio_keys_stats()]);
