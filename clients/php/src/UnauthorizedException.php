<?php
// Thrown when Herald answers 401 with error code "unauthorized": the API key is missing or wrong.

declare(strict_types=1);

namespace Herald;

/** The API key was missing or not accepted. */
class UnauthorizedException extends HeraldException
{
}
