// Unit tests for the Herald Java client (JWT, JSON, error mapping, HTTP against a local fixture server), as a plain main class.
package io.herald.client;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** Runs every test, prints one line each and a summary, and exits non-zero if any failed. */
public final class UnitTests {
    /** Computed independently (Python hmac and openssl); the PHP and Python clients check the same bytes. */
    static final String KNOWN_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
            + ".eyJzdWIiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwLCJjaGFubmVscyI6WyJwcml2YXRlLSoiXX0"
            + ".aNjrGcUqKhtKrqkUqwR1PFG8qp3HLJAy52ZtKZch3Ys";

    // ---- a tiny test harness ------------------------------------------------------------------

    interface Body {
        void run() throws Exception;
    }

    private static final Map<String, Body> TESTS = new LinkedHashMap<>();

    static void test(String name, Body body) {
        TESTS.put(name, body);
    }

    static final class AssertionFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        AssertionFailed(String message) {
            super(message);
        }
    }

    static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionFailed(what);
        }
    }

    static void same(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new AssertionFailed(what + ": expected <" + expected + ">, got <" + actual + ">");
        }
    }

    /** Runs {@code body}, which must throw a {@code type}; returns it for further checks. */
    static <T extends Throwable> T throwsA(Class<T> type, Body body) {
        try {
            body.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            throw new AssertionFailed("expected " + type.getSimpleName() + ", got " + t);
        }
        throw new AssertionFailed("expected " + type.getSimpleName() + ", nothing was thrown");
    }

    // ---- the fixture server -------------------------------------------------------------------

    /** What the fixture server last read: "METHOD path", headers, body. */
    static final AtomicReference<List<String>> LAST = new AtomicReference<>();
    static String base;

    static void answer(HttpExchange exchange, int status, String body, String... headers) throws IOException {
        for (int i = 0; i < headers.length; i += 2) {
            exchange.getResponseHeaders().set(headers[i], headers[i + 1]);
        }
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
        exchange.close();
    }

    /** Answers by the first path segment, the scenario, like Herald or a proxy would. */
    static void handle(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getRawPath();
        String[] parts = path.substring(1).split("/");
        if (parts[0].equals("early413")) {
            // Like a server that judges Content-Length alone: answer and close, never read the body.
            answer(exchange, 413, "{\"error\":{\"code\":\"too_large\",\"message\":\"too big\"}}");
            return;
        }
        String body;
        try (InputStream in = exchange.getRequestBody()) {
            body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        LAST.set(List.of(exchange.getRequestMethod() + " " + path,
                String.valueOf(exchange.getRequestHeaders().getFirst("Authorization")),
                String.valueOf(exchange.getRequestHeaders().getFirst("Content-Type")),
                body));
        switch (parts[0]) {
            case "ok":
                answer(exchange, 202, "{\"id\":\"evt-42\"}");
                break;
            case "err": // /err/{status}/{code}/...
                answer(exchange, Integer.parseInt(parts[1]),
                        "{\"error\":{\"code\":\"" + parts[2] + "\",\"message\":\"server says " + parts[2] + "\"}}");
                break;
            case "plain": // /plain/{status}/...: a proxy's page
                answer(exchange, Integer.parseInt(parts[1]), "<html>upstream went away</html>", "Content-Type", "text/html");
                break;
            case "retry":
                answer(exchange, 429, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"slow down\"}}", "Retry-After", "7");
                break;
            case "slow":
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                answer(exchange, 202, "{\"id\":\"late\"}");
                break;
            case "noid":
                answer(exchange, 200, "{\"ok\":true}");
                break;
            case "redirect":
                answer(exchange, 307, "", "Location", "/ok/v1/notify");
                break;
            default:
                answer(exchange, 404, "");
        }
    }

    /** A port nothing listens on right now (bound by the OS, then released). */
    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    static HeraldClient client(String scenario) {
        return new HeraldClient(base + "/" + scenario, "the-key");
    }

    static List<String> last() {
        List<String> seen = LAST.getAndSet(null);
        check(seen != null, "the fixture server saw a request");
        return seen;
    }

    static byte[] b64url(String text) {
        return Base64.getUrlDecoder().decode(text);
    }

    // ---- the tests ----------------------------------------------------------------------------

    // The vector shared by the Rust, PHP, Java and Python tests.
    static final String SHARED_SECRET = "herald-shared-test-secret";
    static final byte[] SHARED_BODY = "{\"method\":\"calc.double\",\"data\":10,\"user\":\"alice\",\"conn\":\"g-1\"}"
            .getBytes(StandardCharsets.UTF_8);
    static final String SHARED_SIGNATURE = "sha256=ca5ab0e0a12c99ee841484ea8316b1e24b852bf0b9c806e3a197e0c8d064de39";

    static Backend.Answer call(String method) {
        byte[] body = ("{\"method\":\"" + method + "\",\"data\":10,\"user\":\"alice\",\"conn\":\"g-1\"}")
                .getBytes(StandardCharsets.UTF_8);
        return Backend.answerRpc(SHARED_SECRET, body, Signature.sign(SHARED_SECRET, body), (name, data, user, conn) -> {
            switch (name) {
                case "calc.double":
                    return Map.of("doubled", ((Long) data) * 2);
                case "calc.fail":
                    throw new RpcError("app_1001", "always fails");
                default:
                    throw new IllegalStateException("secret detail");
            }
        });
    }

    static void defineBackendTests() {
        test("signature: the shared vector", () -> {
            same(SHARED_SIGNATURE, Signature.sign(SHARED_SECRET, SHARED_BODY), "signature");
            check(Signature.verify(SHARED_SECRET, SHARED_BODY, " " + SHARED_SIGNATURE), "verifies");
            check(!Signature.verify("other", SHARED_BODY, SHARED_SIGNATURE), "another secret");
            check(!Signature.verify(SHARED_SECRET, "x".getBytes(StandardCharsets.UTF_8), SHARED_SIGNATURE), "another body");
            check(!Signature.verify(SHARED_SECRET, SHARED_BODY, null), "no header");
        });
        test("backend: RPC results, coded errors, bad signatures", () -> {
            Backend.Answer doubled = call("calc.double");
            same(200, doubled.status(), "status");
            same("{\"result\":{\"doubled\":20}}", doubled.body(), "result");
            String failed = call("calc.fail").body();
            check(failed.contains("\"code\":\"app_1001\"") && failed.contains("\"message\":\"always fails\""), "app error: " + failed);
            String bug = call("calc.bug").body();
            check(bug.contains("\"internal\"") && !bug.contains("secret detail"), "internal without detail: " + bug);
            same(401, Backend.answerRpc(SHARED_SECRET, SHARED_BODY, "sha256=00", (m, d, u, c) -> null).status(), "bad signature");
            byte[] empty = "{}".getBytes(StandardCharsets.UTF_8);
            same(400, Backend.answerRpc(SHARED_SECRET, empty, Signature.sign(SHARED_SECRET, empty), (m, d, u, c) -> null).status(), "not a call");
            boolean refused = false;
            try {
                new RpcError("app_2000", "out of range");
            } catch (IllegalArgumentException e) {
                refused = true;
            }
            check(refused, "app codes stop at app_1999");
        });
        test("backend: webhook events come out once signed", () -> {
            byte[] body = "{\"events\":[{\"id\":\"e1\",\"type\":\"online\",\"user\":\"alice\"}]}".getBytes(StandardCharsets.UTF_8);
            List<Map<String, Object>> events = Backend.webhookEvents(SHARED_SECRET, body, Signature.sign(SHARED_SECRET, body));
            same(1, events.size(), "events");
            same("online", events.get(0).get("type"), "type");
            boolean refused = false;
            try {
                Backend.webhookEvents(SHARED_SECRET, body, "sha256=00");
            } catch (SecurityException e) {
                refused = true;
            }
            check(refused, "a bad signature is refused");
        });
        test("client: notifyBatch checks the list before any request", () -> {
            HeraldClient client = new HeraldClient("http://127.0.0.1:9", "k");
            boolean refused = false;
            try {
                client.notifyBatch(List.of());
            } catch (IllegalArgumentException e) {
                refused = true;
            }
            check(refused, "an empty batch is refused");
        });
    }

    static void defineTests() {
        defineBackendTests();
        test("jwt: known answer shared by all Herald clients", () -> {
            Map<String, Object> claims = new LinkedHashMap<>();
            claims.put("sub", "alice");
            claims.put("iat", 1700000000L);
            claims.put("exp", 1700003600L);
            claims.put("channels", List.of("private-*"));
            same(KNOWN_TOKEN, Jwt.encodeHs256(claims, "test-secret"), "Jwt.encodeHs256");
            HeraldClient fixed = HeraldClient.builder("http://x", "k").jwtSecret("test-secret")
                    .clock(Clock.fixed(Instant.ofEpochSecond(1700000000L), ZoneOffset.UTC)).build();
            same(KNOWN_TOKEN, fixed.mintToken("alice", List.of("private-*"), 3600), "mintToken at a fixed clock");
        });

        test("jwt: mintToken header, claims and signature", () -> {
            HeraldClient client = HeraldClient.builder("http://127.0.0.1:1", "k").jwtSecret("s3cret").build();
            long before = Instant.now().getEpochSecond();
            String token = client.mintToken("bob", List.of("private-*", "team-1"), 120);
            long after = Instant.now().getEpochSecond();
            check(token.matches("[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+"), "three base64url parts, no padding: " + token);
            String[] parts = token.split("\\.");
            same(Map.of("alg", "HS256", "typ", "JWT"), Json.parse(new String(b64url(parts[0]), StandardCharsets.UTF_8)), "header");
            Map<?, ?> claims = (Map<?, ?>) Json.parse(new String(b64url(parts[1]), StandardCharsets.UTF_8));
            same("bob", claims.get("sub"), "sub");
            same(List.of("private-*", "team-1"), claims.get("channels"), "channels");
            long iat = (Long) claims.get("iat");
            check(iat >= before && iat <= after, "iat is now");
            same(120L, (Long) claims.get("exp") - iat, "exp - iat");
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec("s3cret".getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            byte[] expected = mac.doFinal((parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII));
            check(Arrays.equals(expected, b64url(parts[2])), "HMAC-SHA256 signature matches");
        });

        test("jwt: no channels claim when none are granted", () -> {
            String token = HeraldClient.builder("http://x", "k").jwtSecret("s").build().mintToken("carol");
            Map<?, ?> claims = (Map<?, ?>) Json.parse(new String(b64url(token.split("\\.")[1]), StandardCharsets.UTF_8));
            check(!claims.containsKey("channels"), "no channels claim");
            same(3600L, (Long) claims.get("exp") - (Long) claims.get("iat"), "default ttl");
        });

        test("jwt: refuses without a secret or with bad arguments", () -> {
            throwsA(IllegalStateException.class, () -> new HeraldClient("http://x", "k").mintToken("u"));
            HeraldClient client = HeraldClient.builder("http://x", "k").jwtSecret("s").build();
            throwsA(IllegalArgumentException.class, () -> client.mintToken("u", List.of(), 0));
            throwsA(IllegalArgumentException.class, () -> client.mintToken(""));
        });

        test("json: writer", () -> {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("s", "q\"b\\n\n\t\u0001é€/");
            map.put("i", 1);
            map.put("l", 1L << 40);
            map.put("d", 1.5);
            map.put("big", new BigDecimal("12345678901234567890.5"));
            map.put("b", true);
            map.put("n", null);
            map.put("list", List.of(1, "two"));
            map.put("ints", new int[] {1, 2});
            map.put("empty", Map.of());
            map.put("e", Thread.State.NEW);
            same("{\"s\":\"q\\\"b\\\\n\\n\\t\\u0001é€/\",\"i\":1,\"l\":1099511627776,\"d\":1.5,"
                    + "\"big\":12345678901234567890.5,\"b\":true,\"n\":null,\"list\":[1,\"two\"],\"ints\":[1,2],"
                    + "\"empty\":{},\"e\":\"NEW\"}", Json.write(map), "encoding");
            throwsA(IllegalArgumentException.class, () -> Json.write(Double.NaN));
            throwsA(IllegalArgumentException.class, () -> Json.write(new Object()));
            List<Object> cyclic = new ArrayList<>();
            cyclic.add(cyclic);
            throwsA(IllegalArgumentException.class, () -> Json.write(cyclic));
        });

        test("json: reader", () -> {
            Object parsed = Json.parse(" {\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\n\"],\"b\":{},\"c\":123456789012345678901} ");
            Map<String, Object> expected = new LinkedHashMap<>();
            expected.put("a", Arrays.asList(1L, new BigDecimal("-2.5e3"), true, false, null, "xé\n"));
            expected.put("b", Map.of());
            expected.put("c", new BigDecimal("123456789012345678901"));
            same(expected, parsed, "decoded value");
            for (String bad : new String[] {"", "{", "[1,]", "{\"a\" 1}", "01", "1 2", "\"x", "tru", "{\"a\":1}x", "-"}) {
                throwsA(IllegalArgumentException.class, () -> Json.parse(bad));
            }
        });

        test("errors: each Herald code maps to its class", () -> {
            Object[][] cases = {
                {"bad_request", 400, BadRequestException.class},
                {"unauthorized", 401, UnauthorizedException.class},
                {"forbidden", 403, ForbiddenException.class},
                {"not_found", 404, NotFoundException.class},
                {"too_large", 413, TooLargeException.class},
                {"rate_limited", 429, RateLimitedException.class},
                {"unavailable", 503, UnavailableException.class},
                {"internal", 500, InternalException.class},
            };
            for (Object[] c : cases) {
                String code = (String) c[0];
                HeraldException e = HeraldException.fromResponse((Integer) c[1],
                        "{\"error\":{\"code\":\"" + code + "\",\"message\":\"msg " + code + "\"}}", null);
                same(c[2], e.getClass(), "class for " + code);
                same(code, e.code(), "code");
                same(c[1], e.status(), "status");
                same("msg " + code, e.getMessage(), "message");
            }
        });

        test("errors: a body not in Herald shape maps by status", () -> {
            HeraldException e = HeraldException.fromResponse(502, "<html>Bad Gateway</html>", null);
            same(UnavailableException.class, e.getClass(), "class for 502");
            same("unavailable", e.code(), "code");
            same("HTTP 502: <html>Bad Gateway</html>", e.getMessage(), "message");
            e = HeraldException.fromResponse(413, "", null);
            same(TooLargeException.class, e.getClass(), "class for a bare 413");
            same("too_large", e.code(), "code");
            same("HTTP 413", e.getMessage(), "message");
            same(UnauthorizedException.class, HeraldException.fromResponse(401, "{\"error\":\"nope\"}", null).getClass(), "odd JSON");
        });

        test("errors: unknown code keeps its name, statuses Herald never sends", () -> {
            HeraldException e = HeraldException.fromResponse(400, "{\"error\":{\"code\":\"bad_target\",\"message\":\"m\"}}", null);
            same(BadRequestException.class, e.getClass(), "class");
            same("bad_target", e.code(), "code");
            e = HeraldException.fromResponse(409, "", null);
            same(HeraldException.class, e.getClass(), "class for 409");
            same("http_409", e.code(), "code");
            same(InternalException.class, HeraldException.fromResponse(507, "", null).getClass(), "class for 507");
            RateLimitedException r = (RateLimitedException) HeraldException.fromResponse(429, "", Duration.ofSeconds(30));
            same(Duration.ofSeconds(30), r.retryAfter().orElse(null), "retry after");
        });

        test("http: notifyUser sends the documented request, both payload forms", () -> {
            HeraldClient client = new HeraldClient(base + "/ok/", "the-key");
            Map<String, Object> payload = new LinkedHashMap<>();
            payload.put("text", "héllo");
            payload.put("n", 1);
            same("evt-42", client.notifyUser("alice", "MESSAGE:NEW", payload), "event id");
            same(List.of("POST /ok/v1/notify/user/alice", "Bearer the-key", "application/json",
                    "{\"event\":\"MESSAGE:NEW\",\"payload\":{\"text\":\"héllo\",\"n\":1}}"), last(), "request");
            same("evt-42", client.notifyUser("alice", "E", " {\"pre\": \"encoded\"} "), "event id");
            same("{\"event\":\"E\",\"payload\":{\"pre\": \"encoded\"}}", last().get(3), "raw JSON payload");
            client.notifyUser("alice", "E", (Object) "just text");
            same("{\"event\":\"E\",\"payload\":\"just text\"}", last().get(3), "a string as a value");
            client.notifyUser("alice", "E", (String) null);
            same("{\"event\":\"E\",\"payload\":null}", last().get(3), "null payload");
        });

        test("http: payloadJson must be one JSON value", () -> {
            HeraldClient client = client("ok");
            throwsA(IllegalArgumentException.class, () -> client.notifyUser("u", "E", "{not json"));
            throwsA(IllegalArgumentException.class, () -> client.notify(Targets.users("u"), "E", "1,\"targets\":{\"broadcast\":true}"));
            same(null, LAST.get(), "nothing was sent");
        });

        test("http: notifyChannel, notify and broadcast bodies", () -> {
            HeraldClient client = client("ok");
            same("evt-42", client.notifyChannel("chat", "E", Map.of()), "event id");
            same(List.of("POST /ok/v1/notify/channel/chat", "Bearer the-key", "application/json",
                    "{\"event\":\"E\",\"payload\":{}}"), last(), "notifyChannel request");
            same("evt-42", client.notify(Targets.users("bob").withChannels("chat"), "E", List.of(1, 2)), "event id");
            same(List.of("POST /ok/v1/notify", "Bearer the-key", "application/json",
                    "{\"event\":\"E\",\"targets\":{\"users\":[\"bob\"],\"channels\":[\"chat\"]},\"payload\":[1,2]}"),
                    last(), "notify request");
            same("evt-42", client.broadcast("E", "null"), "event id");
            same("{\"event\":\"E\",\"targets\":{\"broadcast\":true},\"payload\":null}", last().get(3), "broadcast body");
        });

        test("http: names are percent-encoded except : and @", () -> {
            client("ok").notifyUser("a b/c:d@é", "E", "1");
            same("POST /ok/v1/notify/user/a%20b%2Fc:d@%C3%A9", last().get(0), "path");
            throwsA(IllegalArgumentException.class, () -> client("ok").notifyChannel("", "E", "1"));
        });

        test("targets: validation", () -> {
            throwsA(IllegalArgumentException.class, () -> Targets.of(List.of(), List.of()));
            throwsA(IllegalArgumentException.class, () -> Targets.users("a", ""));
            throwsA(IllegalStateException.class, () -> Targets.broadcast().withUsers("a"));
            same(Targets.of(List.of("a"), List.of("c")), Targets.channels("c").withUsers("a"), "equality");
        });

        test("http: Herald error body becomes a typed exception", () -> {
            UnauthorizedException e = throwsA(UnauthorizedException.class,
                    () -> client("err/401/unauthorized").notifyUser("u", "E", "1"));
            same("unauthorized", e.code(), "code");
            same(401, e.status(), "status");
            same("server says unauthorized", e.getMessage(), "message");
            TooLargeException t = throwsA(TooLargeException.class,
                    () -> client("err/413/too_large").notifyUser("u", "E", Map.of("blob", "x".repeat(70000))));
            same(413, t.status(), "status");
        });

        test("http: 413 answered before the body is read", () -> {
            TooLargeException e = throwsA(TooLargeException.class,
                    () -> client("early413").notifyUser("u", "E", Map.of("blob", "x".repeat(70000))));
            same("too_large", e.code(), "code");
            same(413, e.status(), "status");
        });

        test("http: proxy page maps by status, Retry-After is read", () -> {
            UnavailableException e = throwsA(UnavailableException.class, () -> client("plain/503").broadcast("E", "1"));
            same("unavailable", e.code(), "code");
            same(503, e.status(), "status");
            RateLimitedException r = throwsA(RateLimitedException.class, () -> client("retry").broadcast("E", "1"));
            same(Duration.ofSeconds(7), r.retryAfter().orElse(null), "retry after");
        });

        test("http: connection refused is unavailable with status 0", () -> {
            int port = freePort();
            UnavailableException e = throwsA(UnavailableException.class,
                    () -> new HeraldClient("http://127.0.0.1:" + port, "k").broadcast("E", "1"));
            same("unavailable", e.code(), "code");
            same(0, e.status(), "status");
        });

        test("http: timeout is unavailable with status 0", () -> {
            HeraldClient client = HeraldClient.builder(base + "/slow", "k").timeout(Duration.ofMillis(200)).build();
            long start = System.nanoTime();
            UnavailableException e = throwsA(UnavailableException.class, () -> client.broadcast("E", "1"));
            same(0, e.status(), "status");
            check(System.nanoTime() - start < 900_000_000L, "gave up at the timeout");
        });

        test("http: a 2xx without an event id, and redirects, are errors", () -> {
            HeraldException e = throwsA(HeraldException.class, () -> client("noid").broadcast("E", "1"));
            same("invalid_response", e.code(), "code");
            same(200, e.status(), "status");
            e = throwsA(HeraldException.class, () -> client("redirect").broadcast("E", "1"));
            same("http_307", e.code(), "redirect not followed");
        });

        test("client: bad options are rejected locally", () -> {
            throwsA(IllegalArgumentException.class, () -> new HeraldClient("127.0.0.1:8081", "k"));
            throwsA(IllegalArgumentException.class, () -> new HeraldClient("http://bad host", "k"));
            throwsA(IllegalArgumentException.class, () -> HeraldClient.builder("http://x", "k").timeout(Duration.ZERO));
            throwsA(IllegalArgumentException.class, () -> HeraldClient.builder("http://x", "k").jwtSecret(""));
            check(!new HeraldClient("http://x", "secret-key").toString().contains("secret-key"), "toString hides the key");
        });
    }

    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            try {
                handle(exchange);
            } catch (IOException | RuntimeException e) {
                exchange.close();
            }
        });
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "fixture-server");
            t.setDaemon(true);
            return t;
        }));
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort();

        defineTests();
        int passed = 0;
        int failed = 0;
        for (Map.Entry<String, Body> test : TESTS.entrySet()) {
            LAST.set(null);
            try {
                test.getValue().run();
                passed++;
                System.out.println("ok   " + test.getKey());
            } catch (Throwable t) {
                failed++;
                System.out.println("FAIL " + test.getKey() + ": " + (t instanceof AssertionFailed ? t.getMessage() : t.toString()));
                if (!(t instanceof AssertionFailed)) {
                    t.printStackTrace(System.out);
                }
            }
        }
        server.stop(0);
        System.out.println("java: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
