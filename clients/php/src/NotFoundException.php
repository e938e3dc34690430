<?php
// Thrown when Herald answers 404 with error code "not_found": no such resource.

declare(strict_types=1);

namespace Herald;

/** The addressed resource or route does not exist (for example a server too old to have this endpoint). */
class NotFoundException extends HeraldException
{
}
