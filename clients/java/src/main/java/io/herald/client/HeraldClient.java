// Herald REST API v1 client: pushes events to users, channels or everyone, and mints client tokens.
package io.herald.client;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Talks to a Herald REST adapter ({@code POST /v1/notify...}) with an API key.
 *
 * <p>Every notify method returns the event id from the server's {@code 202 {"id": ...}} answer.
 * A 2xx means NATS accepted the event, so it is not silently dropped; anything else throws a
 * {@link HeraldException} subclass. Each comes in two forms: the payload as JSON text you already
 * have ({@code String payloadJson}, checked to be one JSON value), or as plain Java values
 * ({@code Map}, {@code List}, {@code String}, numbers, booleans, null) encoded by {@link Json}.
 * To send a JSON string as the payload, pass the Java string through {@code Json.write} first or
 * use the {@code Object} overload with a cast.
 *
 * <p>Thread-safe; build one per Herald deployment and share it.
 *
 * <pre>{@code
 * HeraldClient herald = HeraldClient.builder("http://127.0.0.1:8081", apiKey)
 *         .jwtSecret(secret)
 *         .build();
 * String id = herald.notifyUser("alice", "MESSAGE:NEW", Map.of("text", "hi"));
 * }</pre>
 */
public final class HeraldClient {
    /** The client's version, sent in the User-Agent header. */
    public static final String VERSION = "0.1.0";

    private static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(5);

    private final String baseUrl;
    private final String apiKey;
    private final String jwtSecret;
    private final Duration timeout;
    private final Clock clock;
    private final HttpClient http;

    /** A client without a JWT secret and with the default 5 s timeout. */
    public HeraldClient(String baseUrl, String apiKey) {
        this(builder(baseUrl, apiKey));
    }

    private HeraldClient(Builder builder) {
        this.baseUrl = builder.baseUrl;
        this.apiKey = builder.apiKey;
        this.jwtSecret = builder.jwtSecret;
        this.timeout = builder.timeout;
        this.clock = builder.clock;
        this.http = HttpClient.newBuilder()
                // HTTP/1.1: with HTTP_2 the JDK would try an h2c upgrade on every plain-http call.
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(timeout)
                // A redirected POST would not carry the event where the caller meant it to go.
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
    }

    /** Starts a client configuration; {@code baseUrl} like {@code http://127.0.0.1:8081} (a path prefix is kept). */
    public static Builder builder(String baseUrl, String apiKey) {
        return new Builder(baseUrl, apiKey);
    }

    /** Options of a {@link HeraldClient}. */
    public static final class Builder {
        private final String baseUrl;
        private final String apiKey;
        private String jwtSecret;
        private Duration timeout = DEFAULT_TIMEOUT;
        private Clock clock = Clock.systemUTC();

        private Builder(String baseUrl, String apiKey) {
            Objects.requireNonNull(baseUrl, "baseUrl");
            Objects.requireNonNull(apiKey, "apiKey");
            String lower = baseUrl.toLowerCase(Locale.ROOT);
            if (!lower.startsWith("http://") && !lower.startsWith("https://")) {
                throw new IllegalArgumentException("Herald base URL must start with http:// or https://, got \"" + baseUrl + "\"");
            }
            this.baseUrl = baseUrl.replaceAll("/+$", "");
            URI.create(this.baseUrl); // fails here, not at the first call, on a malformed URL
            this.apiKey = apiKey;
        }

        /** The server's JWT secret; needed only by {@code mintToken}. */
        public Builder jwtSecret(String jwtSecret) {
            if (jwtSecret == null || jwtSecret.isEmpty()) {
                throw new IllegalArgumentException("jwtSecret must be a non-empty string");
            }
            this.jwtSecret = jwtSecret;
            return this;
        }

        /** Time limit for connecting and for each whole request (default 5 s). */
        public Builder timeout(Duration timeout) {
            if (timeout == null || timeout.isZero() || timeout.isNegative()) {
                throw new IllegalArgumentException("timeout must be positive");
            }
            this.timeout = timeout;
            return this;
        }

        /** The clock {@code mintToken} reads {@code iat} from (default: the system clock; fixed in tests). */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        public HeraldClient build() {
            return new HeraldClient(this);
        }
    }

    // ---- notify -------------------------------------------------------------------------------

    /** Sends {@code event} to every connection identified as {@code user}; returns the event id. */
    public String notifyUser(String user, String event, String payloadJson) {
        return post("/v1/notify/user/" + pathSegment(user, "user"), envelope(event, null, raw(payloadJson)));
    }

    /** Same, with the payload given as plain Java values. */
    public String notifyUser(String user, String event, Object payload) {
        return post("/v1/notify/user/" + pathSegment(user, "user"), envelope(event, null, Json.write(payload)));
    }

    /** Sends {@code event} to every connection that joined {@code channel}; returns the event id. */
    public String notifyChannel(String channel, String event, String payloadJson) {
        return post("/v1/notify/channel/" + pathSegment(channel, "channel"), envelope(event, null, raw(payloadJson)));
    }

    /** Same, with the payload given as plain Java values. */
    public String notifyChannel(String channel, String event, Object payload) {
        return post("/v1/notify/channel/" + pathSegment(channel, "channel"), envelope(event, null, Json.write(payload)));
    }

    /** Sends {@code event} to several users and channels at once, or to everyone; returns the event id. */
    public String notify(Targets targets, String event, String payloadJson) {
        Objects.requireNonNull(targets, "targets");
        return post("/v1/notify", envelope(event, targets, raw(payloadJson)));
    }

    /** Same, with the payload given as plain Java values. */
    public String notify(Targets targets, String event, Object payload) {
        Objects.requireNonNull(targets, "targets");
        return post("/v1/notify", envelope(event, targets, Json.write(payload)));
    }

    /** Sends {@code event} to every identified connection; returns the event id. */
    public String broadcast(String event, String payloadJson) {
        return notify(Targets.broadcast(), event, payloadJson);
    }

    /** Same, with the payload given as plain Java values. */
    public String broadcast(String event, Object payload) {
        return notify(Targets.broadcast(), event, payload);
    }

    /**
     * Sends up to 100 notify bodies ({@code {"event", "targets", "payload"}} as maps of plain Java
     * values) in one request; Herald publishes them in order. Returns their ids in the same
     * order. If any item is invalid nothing is sent, and the exception's message names the bad
     * items.
     */
    public List<String> notifyBatch(List<? extends Map<String, ?>> notifications) {
        Objects.requireNonNull(notifications, "notifications");
        if (notifications.isEmpty() || notifications.size() > 100) {
            throw new IllegalArgumentException("notifications must hold 1 to 100 notify bodies");
        }
        Map<String, Object> body = new java.util.LinkedHashMap<>();
        body.put("notifications", notifications);
        Answer answer = postJson("/v1/notify/batch", Json.write(body));
        Object ids = answer.body().get("ids");
        if (!(ids instanceof List<?> list) || list.size() != notifications.size()) {
            throw new HeraldException("invalid_response", answer.status(), "batch answer without one id per item");
        }
        List<String> out = new java.util.ArrayList<>();
        for (Object id : list) {
            out.add(String.valueOf(id));
        }
        return out;
    }

    // ---- history ------------------------------------------------------------------------------

    /**
     * Reads one channel's or one user's history ({@code GET /v1/channels/{c}/history} or
     * {@code GET /v1/users/{u}/history}): a map with {@code events} (event frames, oldest first),
     * {@code pos} (the stream's newest position), {@code more}, and with {@code since},
     * {@code recovered} (false: some events after it may be gone, and none are returned).
     *
     * @param target exactly one channel ({@code Targets.channels("chat")}) or one user
     * @param since a {@code pos} from an event or an earlier answer, or null for the newest events
     * @param limit at most this many events (0 to 1000; 0 answers only {@code pos}), or null
     */
    public Map<?, ?> history(Targets target, String since, Integer limit) {
        Objects.requireNonNull(target, "target");
        String path;
        if (target.channels().size() == 1 && target.users().isEmpty() && !target.isBroadcast()) {
            path = "/v1/channels/" + pathSegment(target.channels().get(0), "channel") + "/history";
        } else if (target.users().size() == 1 && target.channels().isEmpty() && !target.isBroadcast()) {
            path = "/v1/users/" + pathSegment(target.users().get(0), "user") + "/history";
        } else {
            throw new IllegalArgumentException("history reads one channel or one user");
        }
        StringBuilder query = new StringBuilder();
        if (since != null) {
            query.append("since=").append(java.net.URLEncoder.encode(since, StandardCharsets.UTF_8));
        }
        if (limit != null) {
            query.append(query.length() > 0 ? "&" : "").append("limit=").append(limit);
        }
        Answer answer = exchange(query.length() > 0 ? path + "?" + query : path, null);
        if (!(answer.body().get("events") instanceof List<?>)) {
            throw new HeraldException("invalid_response", answer.status(), "HTTP " + answer.status() + " without events in the answer");
        }
        return answer.body();
    }

    // ---- tokens -------------------------------------------------------------------------------

    /** {@link #mintToken(String, List, long)} with no channel grants and a one-hour lifetime. */
    public String mintToken(String user) {
        return mintToken(user, List.of(), 3600);
    }

    /** {@link #mintToken(String, List, long)} with a one-hour lifetime. */
    public String mintToken(String user, List<String> channels) {
        return mintToken(user, channels, 3600);
    }

    /**
     * Mints an HS256 token for a browser's {@code ident} frame, signed locally with the JWT secret
     * (no network call). Claims: {@code sub} (the user), {@code iat}, {@code exp} (now + ttl) and,
     * when non-empty, {@code channels} (glob patterns the user may join, e.g. {@code "private-*"}).
     *
     * @throws IllegalStateException when the client was built without {@code jwtSecret}
     */
    public String mintToken(String user, List<String> channels, long ttlSeconds) {
        if (jwtSecret == null) {
            throw new IllegalStateException("mintToken needs a client built with jwtSecret(...)");
        }
        if (user == null || user.isEmpty()) {
            throw new IllegalArgumentException("user must not be empty");
        }
        if (ttlSeconds <= 0) {
            throw new IllegalArgumentException("ttlSeconds must be positive");
        }
        long now = clock.instant().getEpochSecond();
        Map<String, Object> claims = new LinkedHashMap<>();
        claims.put("sub", user);
        claims.put("iat", now);
        claims.put("exp", now + ttlSeconds);
        if (channels != null && !channels.isEmpty()) {
            claims.put("channels", List.copyOf(channels));
        }
        return Jwt.encodeHs256(claims, jwtSecret);
    }

    @Override
    public String toString() {
        // The API key and secret stay out of logs.
        return "HeraldClient{" + baseUrl + ", timeout=" + timeout + "}";
    }

    // ---- transport ----------------------------------------------------------------------------

    /**
     * Checks JSON text the caller encoded. Beyond catching mistakes early, this keeps the text
     * from breaking out of the envelope: {@code 1,"targets":{"broadcast":true}} is not one value.
     */
    private static String raw(String payloadJson) {
        if (payloadJson == null) {
            return "null";
        }
        try {
            Json.parse(payloadJson);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("payloadJson is not one JSON value: " + e.getMessage(), e);
        }
        return payloadJson.trim();
    }

    /** The request body, with the payload's JSON text spliced in as it is. */
    private static String envelope(String event, Targets targets, String payloadJson) {
        Objects.requireNonNull(event, "event");
        StringBuilder body = new StringBuilder(payloadJson.length() + 64);
        body.append("{\"event\":").append(Json.write(event));
        if (targets != null) {
            body.append(",\"targets\":").append(Json.write(targets.toJson()));
        }
        return body.append(",\"payload\":").append(payloadJson).append('}').toString();
    }

    /**
     * Percent-encodes a name for one path segment. Valid Herald names (letters, digits,
     * {@code _-.:@}) pass unchanged ({@code :} and {@code @} are legal in a segment); anything else
     * is encoded, so the server sees the name as given and answers bad_request rather than
     * routing somewhere else.
     */
    static String pathSegment(String name, String what) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException(what + " name must not be empty");
        }
        StringBuilder out = new StringBuilder();
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            boolean plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '@';
            if (plain) {
                out.append((char) c);
            } else {
                out.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return out.toString();
    }

    /** POSTs a JSON body and returns the event id of the 2xx answer, or throws. */
    private String post(String path, String json) {
        Answer answer = postJson(path, json);
        Object id = answer.body().get("id");
        if (!(id instanceof String || id instanceof Long) || "".equals(id)) {
            // A 2xx without an id is not Herald (a wrong base URL hitting some other service?).
            int status = answer.status();
            throw new HeraldException("invalid_response", status, "HTTP " + status + " without an event id in the answer");
        }
        return id.toString();
    }

    /** A 2xx answer: its status and its JSON object (empty when the body is not one). */
    private record Answer(int status, Map<?, ?> body) {
    }

    /** POSTs a JSON body and returns the 2xx answer, or throws. */
    private Answer postJson(String path, String json) {
        return exchange(path, Objects.requireNonNull(json, "json"));
    }

    /** POSTs {@code json}, or GETs when it is null, and returns the 2xx answer, or throws. */
    private Answer exchange(String path, String json) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(timeout)
                .header("Authorization", "Bearer " + apiKey)
                .header("Accept", "application/json")
                .header("User-Agent", "herald-java/" + VERSION);
        HttpRequest request = json == null
                ? builder.GET().build()
                : builder.header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8))
                        .build();

        HttpResponse<byte[]> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
        } catch (HttpTimeoutException e) {
            throw UnavailableException.transport("no answer within " + timeout.toMillis() + " ms", e);
        } catch (ConnectException e) {
            // The JDK's ConnectException carries no message: say what failed.
            throw UnavailableException.transport("cannot connect to " + request.uri().getAuthority(), e);
        } catch (IOException e) {
            throw UnavailableException.transport(describe(e), e);
        } catch (InterruptedException e) {
            // Keep the interrupt visible to the caller's thread, which asked to stop.
            Thread.currentThread().interrupt();
            throw UnavailableException.transport("interrupted", e);
        }

        int status = response.statusCode();
        String body = new String(response.body(), StandardCharsets.UTF_8);
        if (status < 200 || status >= 300) {
            throw HeraldException.fromResponse(status, body, retryAfter(response));
        }
        Map<?, ?> decoded = Map.of();
        try {
            if (Json.parse(body) instanceof Map<?, ?> object) {
                decoded = object;
            }
        } catch (IllegalArgumentException notJson) {
            // an empty answer: the caller finds no id
        }
        return new Answer(status, decoded);
    }

    /** The first message in the cause chain, or the exception's class when none has one. */
    private static String describe(Throwable error) {
        for (Throwable t = error; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isEmpty()) {
                return t.getClass().getSimpleName() + ": " + t.getMessage();
            }
        }
        return error.getClass().getName();
    }

    /** The Retry-After header in its delta-seconds form, or null. */
    private static Duration retryAfter(HttpResponse<?> response) {
        return response.headers().firstValue("Retry-After")
                .map(String::trim)
                .filter(v -> v.matches("\\d{1,9}"))
                .map(v -> Duration.ofSeconds(Long.parseLong(v)))
                .orElse(null);
    }
}
