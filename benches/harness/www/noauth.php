<?php
// GET /noauth/...: the same response with no authentication: the floor of
// nginx + php-fpm on this machine.
http_response_code(200);
header('Content-Type: application/json');
echo json_encode(['success' => true, 'client_id' => 1, 'key' => 'none']);
