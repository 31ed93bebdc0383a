<?php // metrics.php: this worker's heratio_keys_stats() in the Prometheus text format 0.0.4
header('Content-Type: text/plain; version=0.0.4');
$s = heratio_keys_stats();
$gauges = ['cache_entries', 'feed_lag_ms', 'usage_queued', 'host_leader', 'host_entries', 'host_queued'];
foreach ($s as $k => $v) {
    if (!is_int($v) || $k === 'pid' || $k === 'host_leader_pid') continue; // null: not yet known
    [$type, $name] = in_array($k, $gauges, true) ? ['gauge', "heratio_keys_php_$k"] : ['counter', "heratio_keys_php_{$k}_total"];
    $labels = str_starts_with($k, 'host_') && $k !== 'host_leader' ? '' : "{pid=\"{$s['pid']}\"}"; // host_*: host-wide
    echo "# TYPE $name $type\n$name$labels $v\n";
}
