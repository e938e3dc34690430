<?php
// Thrown when Herald answers 400 with error code "bad_request": the request was malformed.

declare(strict_types=1);

namespace Herald;

/** The request was rejected as malformed: an invalid event, user or channel name, bad targets, or JSON the server could not read. */
class BadRequestException extends HeraldException
{
}
