// End-to-end check of the Java client against a running Herald, driven by HERALD_* environment variables.

import io.herald.client.BadRequestException;
import io.herald.client.HeraldClient;
import io.herald.client.HeraldException;
import io.herald.client.Targets;
import io.herald.client.TooLargeException;
import io.herald.client.UnauthorizedException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Run by the Rust test harness through {@code tests/e2e.sh}. Prints {@code TOKEN <jwt>} and
 * {@code E2E OK} on stdout (diagnostics go to stderr) and exits 0, or says what it expected and
 * got and exits 1.
 */
public final class E2e {
    private E2e() {
    }

    static void fail(String message) {
        System.out.println("E2E FAIL: " + message);
        System.out.flush();
        System.exit(1);
    }

    static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            fail("environment variable " + name + " is not set");
        }
        return value;
    }

    /** Runs one notify call that must succeed with a non-empty event id. */
    static void expectId(String step, Supplier<String> call) {
        String id = null;
        try {
            id = call.get();
        } catch (RuntimeException e) {
            fail(step + ": expected an event id, got " + e);
        }
        if (id == null || id.isEmpty()) {
            fail(step + ": expected a non-empty event id, got " + id);
        }
        System.err.println(step + ": event id " + id);
    }

    /** Runs a call that must throw {@code type} with {@code code} and {@code status}. */
    static void expectError(String step, Class<? extends HeraldException> type, String code, int status, Runnable call) {
        String expected = type.getSimpleName() + " code=" + code + " status=" + status;
        try {
            call.run();
        } catch (HeraldException e) {
            String got = e.getClass().getSimpleName() + " code=" + e.code() + " status=" + e.status();
            if (!type.isInstance(e) || !code.equals(e.code()) || e.status() != status) {
                fail(step + ": expected " + expected + ", got " + got + " (" + e.getMessage() + ")");
            }
            System.err.println(step + ": got " + got + " as expected");
            return;
        } catch (RuntimeException e) {
            fail(step + ": expected " + expected + ", got " + e);
        }
        fail(step + ": expected " + expected + ", the call succeeded");
    }

    public static void main(String[] args) {
        String url = env("HERALD_URL");
        String user = env("HERALD_TEST_USER");
        String channel = env("HERALD_TEST_CHANNEL");
        String tag = env("HERALD_TEST_TAG");
        HeraldClient client = HeraldClient.builder(url, env("HERALD_API_KEY"))
                .jwtSecret(env("HERALD_JWT_SECRET"))
                .timeout(Duration.ofSeconds(10))
                .build();

        expectId("notifyUser", () -> client.notifyUser(user, "CLIENT:USER", Map.of("lang", tag, "kind", "user")));
        expectId("notifyChannel", () -> client.notifyChannel(channel, "CLIENT:CHANNEL", Map.of("lang", tag, "kind", "channel")));
        expectId("notify", () -> client.notify(Targets.users(user).withChannels(channel), "CLIENT:BOTH",
                Map.of("lang", tag, "kind", "both")));

        List<String> ids = client.notifyBatch(List.of(
                Map.of("event", "CLIENT:BATCH", "targets", Map.of("users", List.of(user)),
                        "payload", Map.of("lang", tag, "kind", "batch", "n", 0)),
                Map.of("event", "CLIENT:BATCH", "targets", Map.of("users", List.of(user)),
                        "payload", Map.of("lang", tag, "kind", "batch", "n", 1))));
        if (ids.size() != 2 || ids.contains("")) {
            fail("notifyBatch returned " + ids);
        }
        System.err.println("notifyBatch: event ids " + ids);

        // The user's history holds what was sent to it, oldest first; `since` reads on from there.
        Map<?, ?> history = client.history(Targets.users(user), null, null);
        List<?> events = (List<?>) history.get("events");
        List<Object> names = new java.util.ArrayList<>();
        for (Object e : events) {
            names.add(((Map<?, ?>) e).get("event"));
        }
        if (!names.equals(List.of("CLIENT:USER", "CLIENT:BOTH", "CLIENT:BATCH", "CLIENT:BATCH"))) {
            fail("history: " + history);
        }
        Map<?, ?> firstPos = (Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) events.get(0)).get("pos")).get("users");
        Map<?, ?> after = client.history(Targets.users(user), (String) firstPos.get(user), 1);
        Object afterEvent = ((Map<?, ?>) ((List<?>) after.get("events")).get(0)).get("event");
        if (!Boolean.TRUE.equals(after.get("recovered")) || !Boolean.TRUE.equals(after.get("more")) || !"CLIENT:BOTH".equals(afterEvent)) {
            fail("history since: " + after);
        }
        expectError("bad position", BadRequestException.class, "bad_request", 400,
                () -> client.history(Targets.channels(channel), "not-a-position", null));
        System.err.println("history: 4 events, since and limit");

        HeraldClient wrongKey = HeraldClient.builder(url, "wrong-key").timeout(Duration.ofSeconds(10)).build();
        expectError("wrong key", UnauthorizedException.class, "unauthorized", 401,
                () -> wrongKey.notifyUser(user, "CLIENT:USER", Map.of("lang", tag, "kind", "user")));
        expectError("oversized payload", TooLargeException.class, "too_large", 413,
                () -> client.notifyUser(user, "CLIENT:USER", Map.of("blob", "x".repeat(70000))));

        String token = null;
        try {
            token = client.mintToken(user, List.of("private-*"), 60);
        } catch (RuntimeException e) {
            fail("mintToken: expected a token, got " + e);
        }
        System.out.println("TOKEN " + token);
        System.out.println("E2E OK");
        System.out.flush();
        System.exit(0);
    }
}
