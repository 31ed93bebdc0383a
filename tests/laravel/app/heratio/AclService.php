<?php

declare(strict_types=1);

namespace AhgCore\Services;

/**
 * A stand-in for Heratio's AhgCore\Services\AclService with the answers
 * Heratio's gives when no resource is named (docs: heratio-contract §3):
 * administrators (group 100) may do everything, editors (101) read, create,
 * update, delete and publish, contributors (102) read, create and update,
 * anyone else nothing; canAdmin is true for 100 and 101.
 */
class AclService
{
    private const GROUPS = [100 => 100, 101 => 101, 102 => 102];

    public static function check(?object $resource, $action, ?object $user = null): bool
    {
        $group = self::GROUPS[(int) ($user->id ?? 0)] ?? null;
        $may = match ($group) {
            100 => ['read', 'create', 'update', 'delete', 'publish', 'translate'],
            101 => ['read', 'create', 'update', 'delete', 'publish'],
            102 => ['read', 'create', 'update'],
            default => [],
        };
        foreach ((array) $action as $a) {
            if (in_array($a, $may, true)) {
                return true;
            }
        }
        return false;
    }

    public static function canAdmin(?int $userId): bool
    {
        return in_array(self::GROUPS[(int) $userId] ?? null, [100, 101], true);
    }
}
