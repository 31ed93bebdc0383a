<?php

declare(strict_types=1);

namespace Heratio\Keys\Laravel;

use Illuminate\Http\Request;

/**
 * The API scopes of a logged-in (session) user, for {@see Authenticate}.
 *
 * Heratio derives them from AtoM's ACL, in this order: `read` if the user
 * may read, `write` if they may create or update, `delete`, `publish:write`
 * if they may publish, `batch` if they may administer. In a Heratio
 * installation (the class `AhgCore\Services\AclService` exists) this default
 * asks that ACL the same questions, so the answer is Heratio's. Anywhere
 * else it grants nothing: a session user then passes a bare `api.auth` but
 * no scoped route.
 *
 * The ACL is the application's, not ours; to map differently, bind your own
 * subclass in a service provider's register():
 *
 *     $this->app->bind(\Heratio\Keys\Laravel\SessionScopes::class, MySessionScopes::class);
 */
class SessionScopes
{
    /** The class Heratio's ACL lives in. */
    public const HERATIO_ACL = 'AhgCore\\Services\\AclService';

    /**
     * @param object $user what `$request->user()` returned
     * @return list<string>
     */
    public function scopesFor(object $user, Request $request): array
    {
        $acl = self::HERATIO_ACL;
        if (!class_exists($acl)) {
            return [];
        }
        $userId = $user->id ?? null;
        $subject = (object) ['id' => $userId];
        $scopes = [];
        if ($acl::check(null, 'read', $subject)) {
            $scopes[] = 'read';
        }
        if ($acl::check(null, ['create', 'update'], $subject)) {
            $scopes[] = 'write';
        }
        if ($acl::check(null, 'delete', $subject)) {
            $scopes[] = 'delete';
        }
        if ($acl::check(null, 'publish', $subject)) {
            $scopes[] = 'publish:write';
        }
        if ($userId && $acl::canAdmin((int) $userId)) {
            $scopes[] = 'batch';
        }
        return $scopes;
    }
}
