<?php
// Thrown when Herald answers 500 with error code "internal": the server failed.

declare(strict_types=1);

namespace Herald;

/** The server failed while handling the request; retrying may or may not help. */
class InternalException extends HeraldException
{
}
