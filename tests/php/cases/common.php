<?php
// Shared by the case scripts, which run inside `php -d extension=heratio_keys.so
// -d heratio_keys.dsn=...`: the keys the driver passes in $HK_KEYS (JSON), and
// one "ok NAME" / "FAIL NAME: detail" line per check (parsed by run_cases()).

declare(strict_types=1);

/** @return array<string, mixed> */
function case_keys(): array
{
    return json_decode((string) getenv('HK_KEYS'), true, 512, JSON_THROW_ON_ERROR);
}

function t(string $name, bool $ok, string $detail = ''): void
{
    echo $ok ? "ok $name\n" : "FAIL $name: $detail\n";
}
