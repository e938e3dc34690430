<?php
// Thrown by an RPC handler to answer {"error":{"code","message"}}; the browser's promise rejects with that code.

declare(strict_types=1);

namespace Herald;

/**
 * An RPC failure the caller should see. `$errorCode` is one of Herald's codes (`bad_request`,
 * `unauthorized`, `forbidden`, `not_found`, `too_large`, `rate_limited`, `unavailable`,
 * `internal`) or an application code `app_1000` to `app_1999`.
 */
final class RpcError extends \Exception
{
    private const HERALD_CODES = ['bad_request', 'unauthorized', 'forbidden', 'not_found', 'too_large', 'rate_limited', 'unavailable', 'internal'];

    public function __construct(private readonly string $errorCode, string $message)
    {
        if (!in_array($errorCode, self::HERALD_CODES, true) && preg_match('/^app_1[0-9]{3}$/', $errorCode) !== 1) {
            throw new \InvalidArgumentException("RPC error code \"$errorCode\": use one of Herald's codes or app_1000 to app_1999");
        }
        parent::__construct($message);
    }

    public function getErrorCode(): string
    {
        return $this->errorCode;
    }
}
