<?php

declare(strict_types=1);

namespace App\Auth;

use Illuminate\Auth\GenericUser;
use Illuminate\Contracts\Auth\Authenticatable;
use Illuminate\Contracts\Auth\UserProvider;

/** A user provider without a database: AtoM users 100 (admin), 101 (editor), 102 (contributor), 300 (researcher). */
class StaticUsers implements UserProvider
{
    public const USERS = [100 => 'admin', 101 => 'editor', 102 => 'contributor', 300 => 'researcher'];

    public function retrieveById($identifier)
    {
        $id = (int) $identifier;
        return isset(self::USERS[$id]) ? new GenericUser(['id' => $id, 'username' => self::USERS[$id], 'remember_token' => null]) : null;
    }

    public function retrieveByToken($identifier, $token)
    {
        return null;
    }

    public function updateRememberToken(Authenticatable $user, $token)
    {
    }

    public function retrieveByCredentials(array $credentials)
    {
        return null;
    }

    public function validateCredentials(Authenticatable $user, array $credentials)
    {
        return false;
    }
}
