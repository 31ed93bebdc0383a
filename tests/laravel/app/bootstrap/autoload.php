<?php
// What composer's vendor/autoload.php does for this app: Debian's Laravel
// (php-laravel-framework) plus the PSR-4 maps of the app and of every
// package listed in vendor/composer/installed.json (where the test installs
// heratio/keys-laravel, as composer would).

declare(strict_types=1);

require_once '/usr/share/php/Illuminate/autoload.php';

(static function (): void {
    $base = dirname(__DIR__);
    $maps = [
        'App\\' => ["$base/app/"],
        'AhgCore\\Services\\' => ["$base/heratio/"], // a stand-in for Heratio's ACL
    ];
    $installed = json_decode((string) @file_get_contents("$base/vendor/composer/installed.json"), true);
    foreach ($installed['packages'] ?? [] as $package) {
        $dir = "$base/vendor/composer/" . ($package['install-path'] ?? '../' . $package['name']);
        foreach ($package['autoload']['psr-4'] ?? [] as $prefix => $paths) {
            foreach ((array) $paths as $path) {
                $maps[$prefix][] = rtrim($dir, '/') . '/' . $path;
            }
        }
    }
    spl_autoload_register(static function (string $class) use ($maps): void {
        foreach ($maps as $prefix => $dirs) {
            if (str_starts_with($class, $prefix)) {
                $relative = str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
                foreach ($dirs as $dir) {
                    if (is_file($file = rtrim($dir, '/') . '/' . $relative)) {
                        require $file;
                        return;
                    }
                }
            }
        }
    });
})();
