<?php
// GET /ext/...: the same answer from the extension, in one call.
$r = heratio_keys_authenticate(['read']);
http_response_code($r->httpStatus);
header('Content-Type: application/json');
echo json_encode($r->valid ? ['success' => true, 'client_id' => $r->clientId, 'key' => $r->name] : ['success' => false, 'error' => $r->message]);
