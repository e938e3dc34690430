#!/usr/bin/env bash
# Builds the Herald Java client with plain javac into build/ (classes and jar); `./build.sh test` also runs the unit tests.
set -euo pipefail
cd "$(dirname "$0")"

rm -rf build/classes
mkdir -p build/classes
# -Werror with every lint: the client is small enough to keep warning-free.
javac --release 17 -Xlint:all -Werror -encoding UTF-8 -d build/classes $(find src/main/java -name '*.java')
jar --create --file build/herald-client.jar -C build/classes .
echo "built build/herald-client.jar"

if [[ "${1:-}" == "test" ]]; then
    rm -rf build/test-classes
    mkdir -p build/test-classes
    javac --release 17 -Xlint:all -encoding UTF-8 -cp build/classes -d build/test-classes \
        $(find tests/io -name '*.java')
    java -cp build/classes:build/test-classes io.herald.client.UnitTests
fi
