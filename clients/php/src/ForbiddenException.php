<?php
// Thrown when Herald answers 403 with error code "forbidden": the API key may not do this.

declare(strict_types=1);

namespace Herald;

/** The credentials were valid but do not allow this call. */
class ForbiddenException extends HeraldException
{
}
