<?php
// Loads the Herald classes for tests and scripts: Composer's autoloader when installed, else a PSR-4 loader of our own.

declare(strict_types=1);

$composer = __DIR__ . '/../vendor/autoload.php';
if (is_file($composer)) {
    require $composer;
} else {
    // No Composer needed to run the tests: map Herald\Foo to src/Foo.php exactly as composer.json does.
    spl_autoload_register(static function (string $class): void {
        $prefix = 'Herald\\';
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = __DIR__ . '/../src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}
