<?php
// Thrown when Herald answers 413 with error code "too_large": the body exceeds the server's payload limit.

declare(strict_types=1);

namespace Herald;

/** The request body exceeded the server's payload limit (--max-payload-bytes, 64 KiB by default). */
class TooLargeException extends HeraldException
{
}
