<?php
// Describes the heratio_keys API through Reflection, as JSON. Run twice by
// the driver: once with the extension loaded (argv[1] = "ext"), once without
// it, including php-ext/heratio_keys.stub.php (argv[1] = path of the stub).

declare(strict_types=1);

$mode = $argv[1] ?? 'ext';
if ($mode !== 'ext') {
    if (extension_loaded('heratio_keys')) {
        fwrite(STDERR, "the stub must be described without the extension\n");
        exit(2);
    }
    require $mode;
}

$functions = ['heratio_keys_validate_api_key', 'heratio_keys_validate_ai_token', 'heratio_keys_authenticate', 'heratio_keys_version', 'heratio_keys_stats'];
$out = ['functions' => [], 'classes' => []];

if ($mode === 'ext') {
    // Everything the extension registers must be described by the stub.
    $out['extension_functions'] = array_values(array_map('strtolower', array_keys((new ReflectionExtension('heratio_keys'))->getFunctions())));
    $out['extension_classes'] = array_values(array_keys((new ReflectionExtension('heratio_keys'))->getClasses()));
    $out['ini'] = array_keys((new ReflectionExtension('heratio_keys'))->getINIEntries());
} else {
    $out['extension_functions'] = array_values(array_filter(array_map('strtolower', get_defined_functions()['user']), fn ($f) => str_starts_with($f, 'heratio_keys_')));
    $out['extension_classes'] = array_values(array_filter(get_declared_classes(), fn ($c) => str_starts_with($c, 'Heratio\\Keys\\')));
    // Ini names are documented in the stub's sibling docs, not the stub.
    $out['ini'] = ['heratio_keys.dsn', 'heratio_keys.cache_ttl', 'heratio_keys.poll_interval_ms', 'heratio_keys.usage_log', 'heratio_keys.shared_cache', 'heratio_keys.shared_cache_slots', 'heratio_keys.shared_queue_records', 'heratio_keys.db_connections', 'heratio_keys.db_connection_idle'];
}
sort($out['extension_functions']);
sort($out['extension_classes']);

foreach ($functions as $name) {
    if (!function_exists($name)) {
        $out['functions'][$name] = null;
        continue;
    }
    $f = new ReflectionFunction($name);
    $params = [];
    foreach ($f->getParameters() as $p) {
        $params[] = [
            'name' => $p->getName(),
            'type' => (string) $p->getType(),
            'optional' => $p->isOptional(),
            'default' => $p->isDefaultValueAvailable() ? var_export($p->getDefaultValue(), true) : null,
            'byref' => $p->isPassedByReference(),
            'variadic' => $p->isVariadic(),
        ];
    }
    $out['functions'][$name] = [
        'params' => $params,
        'required' => $f->getNumberOfRequiredParameters(),
        'return' => ltrim((string) $f->getReturnType(), '\\'),
    ];
}

foreach (['Heratio\\Keys\\Result', 'Heratio\\Keys\\Exception'] as $name) {
    if (!class_exists($name)) {
        $out['classes'][$name] = null;
        continue;
    }
    $c = new ReflectionClass($name);
    $props = [];
    foreach ($c->getProperties() as $p) {
        if ($p->getDeclaringClass()->getName() !== $name) {
            continue;
        }
        // ext-php-rs declares Rust-backed properties untyped; types are
        // compared against real values below instead of Reflection.
        $props[] = ['name' => $p->getName(), 'public' => $p->isPublic(), 'static' => $p->isStatic()];
    }
    $out['classes'][$name] = [
        'final' => $c->isFinal(),
        'abstract' => $c->isAbstract(),
        'parent' => $c->getParentClass() ? $c->getParentClass()->getName() : null,
        'interfaces' => $c->getInterfaceNames(),
        'properties' => $props,
        'public_methods' => array_values(array_filter(
            array_map(fn ($m) => $m->getName(), $c->getMethods(ReflectionMethod::IS_PUBLIC)),
            fn ($m) => $m !== '__construct' && $c->getMethod($m)->getDeclaringClass()->getName() === $name,
        )),
    ];
}

if ($mode !== 'ext') {
    // The stub's property types, to check real values against.
    $types = [];
    foreach ((new ReflectionClass('Heratio\\Keys\\Result'))->getProperties() as $p) {
        $types[$p->getName()] = ['type' => (string) $p->getType(), 'readonly' => $p->isReadOnly()];
    }
    $out['result_property_types'] = $types;
}

echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
