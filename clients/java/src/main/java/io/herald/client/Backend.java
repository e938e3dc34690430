// What a Java backend needs when Herald calls it: read a signed webhook batch, answer a signed RPC call, as JDK HttpServer handlers.
package io.herald.client;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Framework-neutral helpers (raw body bytes and the {@code X-Herald-Signature} value in, plain
 * values out) and two {@link HttpHandler}s for the JDK's {@code com.sun.net.httpserver}.
 */
public final class Backend {
    /** Most bytes of a call or batch read. */
    static final int MAX_BODY_BYTES = 4 * 1024 * 1024;

    private Backend() {
    }

    /** An RPC method implementation: returns the result (plain Java values) or throws {@link RpcError}. */
    @FunctionalInterface
    public interface Method {
        Object call(String method, Object data, String user, String conn) throws RpcError;
    }

    /** What to send back: an HTTP status and a JSON body. */
    public record Answer(int status, String body) {
    }

    /**
     * The events of a webhook POST, once its signature checked. Delivery is at least once: drop
     * events whose {@code id} you have seen.
     *
     * @throws SecurityException on a bad signature (answer 401)
     * @throws IllegalArgumentException on a body that is not a batch (answer 400)
     */
    public static List<Map<String, Object>> webhookEvents(String secret, byte[] body, String signature) {
        if (!Signature.verify(secret, body, signature)) {
            throw new SecurityException("X-Herald-Signature does not match this body and secret");
        }
        Object decoded = Json.parse(new String(body, StandardCharsets.UTF_8));
        Object events = decoded instanceof Map ? ((Map<?, ?>) decoded).get("events") : null;
        if (!(events instanceof List)) {
            throw new IllegalArgumentException("a webhook body is {\"events\": [...]}");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object event : (List<?>) events) {
            if (!(event instanceof Map)) {
                throw new IllegalArgumentException("each event is an object");
            }
            Map<String, Object> copy = new LinkedHashMap<>();
            ((Map<?, ?>) event).forEach((k, v) -> copy.put(String.valueOf(k), v));
            out.add(copy);
        }
        return out;
    }

    /**
     * Answers one RPC call: checks the signature and calls {@code method}. A thrown
     * {@link RpcError} answers its code and message; any other exception answers {@code internal}
     * (its text stays out of the answer).
     */
    public static Answer answerRpc(String secret, byte[] body, String signature, Method method) {
        if (!Signature.verify(secret, body, signature)) {
            return new Answer(401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad signature\"}}");
        }
        Map<?, ?> call;
        try {
            Object decoded = Json.parse(new String(body, StandardCharsets.UTF_8));
            call = decoded instanceof Map ? (Map<?, ?>) decoded : Map.of();
        } catch (IllegalArgumentException e) {
            call = Map.of();
        }
        if (!(call.get("method") instanceof String name) || !(call.get("user") instanceof String user)
                || !(call.get("conn") instanceof String conn)) {
            return new Answer(400, "{\"error\":{\"code\":\"bad_request\",\"message\":\"not an RPC call\"}}");
        }
        Map<String, Object> answer = new LinkedHashMap<>();
        try {
            answer.put("result", method.call(name, call.get("data"), user, conn));
        } catch (RpcError e) {
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("code", e.code());
            error.put("message", e.getMessage());
            answer.put("error", error);
        } catch (RuntimeException e) {
            System.err.println("herald rpc handler failed: " + e);
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("code", "internal");
            error.put("message", "the backend failed");
            answer.put("error", error);
        }
        return new Answer(200, Json.write(answer));
    }

    /** An {@link HttpHandler} answering Herald's RPC calls with {@code method}. */
    public static HttpHandler rpcHandler(String secret, Method method) {
        return exchange -> {
            try (exchange) {
                byte[] body = read(exchange);
                Answer answer = body == null
                        ? new Answer(413, "{\"error\":{\"code\":\"too_large\",\"message\":\"call too large\"}}")
                        : answerRpc(secret, body, exchange.getRequestHeaders().getFirst(Signature.HEADER), method);
                send(exchange, answer);
            }
        };
    }

    /**
     * An {@link HttpHandler} taking Herald's webhook batches: each batch's events go to
     * {@code onEvents}; throw from it to have Herald send the batch again.
     */
    public static HttpHandler webhookHandler(String secret, Consumer<List<Map<String, Object>>> onEvents) {
        return exchange -> {
            try (exchange) {
                byte[] body = read(exchange);
                Answer answer;
                try {
                    if (body == null) {
                        throw new IllegalArgumentException("batch too large");
                    }
                    onEvents.accept(webhookEvents(secret, body, exchange.getRequestHeaders().getFirst(Signature.HEADER)));
                    answer = new Answer(200, "{}");
                } catch (SecurityException e) {
                    answer = new Answer(401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad signature\"}}");
                } catch (IllegalArgumentException e) {
                    answer = new Answer(400, "{\"error\":{\"code\":\"bad_request\",\"message\":\"not a webhook batch\"}}");
                }
                send(exchange, answer);
            }
        };
    }

    /** The request body, or null when it exceeds {@link #MAX_BODY_BYTES}. */
    private static byte[] read(HttpExchange exchange) throws IOException {
        try (InputStream in = exchange.getRequestBody()) {
            byte[] body = in.readNBytes(MAX_BODY_BYTES + 1);
            return body.length > MAX_BODY_BYTES ? null : body;
        }
    }

    private static void send(HttpExchange exchange, Answer answer) throws IOException {
        byte[] bytes = answer.body().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(answer.status(), bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }
}
