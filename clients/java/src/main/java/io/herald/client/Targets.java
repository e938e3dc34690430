// Who a notify call reaches: some users and channels, or every identified connection.
package io.herald.client;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The {@code targets} of {@code POST /v1/notify}: users and channels (a connection reached
 * through several of them gets the event once), or {@link #broadcast()}. Immutable.
 *
 * <pre>{@code
 * Targets.users("alice", "bob").withChannels("chat")
 * Targets.of(List.of("alice"), List.of("chat"))
 * Targets.broadcast()
 * }</pre>
 */
public final class Targets {
    private static final Targets BROADCAST = new Targets(List.of(), List.of(), true);

    private final List<String> users;
    private final List<String> channels;
    private final boolean broadcast;

    private Targets(List<String> users, List<String> channels, boolean broadcast) {
        this.users = users;
        this.channels = channels;
        this.broadcast = broadcast;
    }

    /** Some users and channels; at least one name in all. */
    public static Targets of(Collection<String> users, Collection<String> channels) {
        List<String> u = copy(users, "user");
        List<String> c = copy(channels, "channel");
        if (u.isEmpty() && c.isEmpty()) {
            throw new IllegalArgumentException("targets must name at least one user or channel (or use broadcast())");
        }
        return new Targets(u, c, false);
    }

    /** These users. */
    public static Targets users(String... users) {
        return of(Arrays.asList(users), List.of());
    }

    /** These channels. */
    public static Targets channels(String... channels) {
        return of(List.of(), Arrays.asList(channels));
    }

    /** Every identified connection. */
    public static Targets broadcast() {
        return BROADCAST;
    }

    /** These targets plus some users. */
    public Targets withUsers(String... more) {
        requireNotBroadcast();
        List<String> all = new ArrayList<>(users);
        all.addAll(Arrays.asList(more));
        return of(all, channels);
    }

    /** These targets plus some channels. */
    public Targets withChannels(String... more) {
        requireNotBroadcast();
        List<String> all = new ArrayList<>(channels);
        all.addAll(Arrays.asList(more));
        return of(users, all);
    }

    public List<String> users() {
        return users;
    }

    public List<String> channels() {
        return channels;
    }

    public boolean isBroadcast() {
        return broadcast;
    }

    /** The JSON object sent as {@code targets}: only the non-empty lists, or {@code {"broadcast":true}}. */
    Map<String, Object> toJson() {
        Map<String, Object> json = new LinkedHashMap<>();
        if (broadcast) {
            json.put("broadcast", true);
            return json;
        }
        if (!users.isEmpty()) {
            json.put("users", users);
        }
        if (!channels.isEmpty()) {
            json.put("channels", channels);
        }
        return json;
    }

    @Override
    public boolean equals(Object other) {
        if (!(other instanceof Targets)) {
            return false;
        }
        Targets that = (Targets) other;
        return broadcast == that.broadcast && users.equals(that.users) && channels.equals(that.channels);
    }

    @Override
    public int hashCode() {
        return Objects.hash(users, channels, broadcast);
    }

    @Override
    public String toString() {
        return broadcast ? "Targets{broadcast}" : "Targets{users=" + users + ", channels=" + channels + "}";
    }

    private void requireNotBroadcast() {
        if (broadcast) {
            throw new IllegalStateException("a broadcast already reaches everyone; it takes no users or channels");
        }
    }

    private static List<String> copy(Collection<String> names, String what) {
        Objects.requireNonNull(names, what + "s");
        for (String name : names) {
            if (name == null || name.isEmpty()) {
                throw new IllegalArgumentException(what + " names must not be null or empty");
            }
        }
        return Collections.unmodifiableList(new ArrayList<>(names));
    }
}
