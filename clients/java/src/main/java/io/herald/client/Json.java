// A tiny JSON writer and reader, so the client needs nothing beyond the JDK.
package io.herald.client;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Encodes plain Java values as JSON and decodes Herald's answers.
 *
 * <p>Writing maps {@code null}, {@link CharSequence}, {@link Character}, {@link Boolean},
 * {@link Number}, {@link Enum} (its name), {@link Map} (keys as strings), {@link Iterable},
 * arrays (object and primitive) and {@link Optional} to their obvious JSON. Anything else is
 * refused with {@link IllegalArgumentException} rather than guessed at (no reflection over beans).
 *
 * <p>Reading yields {@code LinkedHashMap<String,Object>}, {@code ArrayList<Object>},
 * {@code String}, {@code Boolean}, {@code null}, and {@code Long} for integers that fit, else
 * {@code BigDecimal}.
 */
public final class Json {
    /** Deeper nesting is refused: it is almost surely a mistake, and recursion must stay bounded. */
    static final int MAX_DEPTH = 512;

    private Json() {
    }

    /**
     * Returns the compact JSON text for {@code value}.
     *
     * @throws IllegalArgumentException for a type it cannot encode, NaN or infinity, a null map
     *         key, a cycle, or nesting deeper than 512
     */
    public static String write(Object value) {
        StringBuilder out = new StringBuilder();
        new Writer(out).value(value, 0);
        return out.toString();
    }

    /**
     * Parses one JSON value (surrounding whitespace allowed, nothing else).
     *
     * @throws IllegalArgumentException when {@code text} is not exactly one JSON value
     */
    public static Object parse(String text) {
        Reader reader = new Reader(text);
        reader.skipWhitespace();
        Object value = reader.value(0);
        reader.skipWhitespace();
        if (reader.pos != text.length()) {
            throw reader.error("unexpected text after the JSON value");
        }
        return value;
    }

    // ---- writing ------------------------------------------------------------------------------

    private static final class Writer {
        private final StringBuilder out;
        /** Containers being written right now, to refuse cycles instead of overflowing the stack. */
        private final Set<Object> open = Collections.newSetFromMap(new IdentityHashMap<>());

        Writer(StringBuilder out) {
            this.out = out;
        }

        void value(Object value, int depth) {
            if (depth > MAX_DEPTH) {
                throw new IllegalArgumentException("JSON nesting deeper than " + MAX_DEPTH);
            }
            if (value == null) {
                out.append("null");
            } else if (value instanceof CharSequence || value instanceof Character) {
                string(value.toString());
            } else if (value instanceof Boolean) {
                out.append(value.toString());
            } else if (value instanceof Number) {
                number((Number) value);
            } else if (value instanceof Enum) {
                string(((Enum<?>) value).name());
            } else if (value instanceof Optional) {
                value(((Optional<?>) value).orElse(null), depth);
            } else if (value instanceof Map) {
                enter(value);
                out.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                    if (entry.getKey() == null) {
                        throw new IllegalArgumentException("JSON object keys cannot be null");
                    }
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    string(entry.getKey().toString());
                    out.append(':');
                    value(entry.getValue(), depth + 1);
                }
                out.append('}');
                open.remove(value);
            } else if (value instanceof Iterable) {
                enter(value);
                out.append('[');
                boolean first = true;
                for (Object item : (Iterable<?>) value) {
                    if (!first) {
                        out.append(',');
                    }
                    first = false;
                    value(item, depth + 1);
                }
                out.append(']');
                open.remove(value);
            } else if (value.getClass().isArray()) {
                enter(value);
                out.append('[');
                int length = Array.getLength(value);
                for (int i = 0; i < length; i++) {
                    if (i > 0) {
                        out.append(',');
                    }
                    value(Array.get(value, i), depth + 1);
                }
                out.append(']');
                open.remove(value);
            } else {
                throw new IllegalArgumentException("cannot encode " + value.getClass().getName()
                        + " as JSON; use a Map, List, String, Number or Boolean, or pass JSON text");
            }
        }

        private void enter(Object container) {
            if (!open.add(container)) {
                throw new IllegalArgumentException("cannot encode a cyclic structure as JSON");
            }
        }

        private void number(Number number) {
            if (number instanceof Double || number instanceof Float) {
                double d = number.doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) {
                    throw new IllegalArgumentException("JSON has no NaN or infinity: " + d);
                }
                // Double.toString gives "1.0", "1.0E10" or "1.0E-5": all valid JSON numbers.
                out.append(number instanceof Float ? Float.toString(number.floatValue()) : Double.toString(d));
            } else if (number instanceof BigDecimal) {
                out.append(((BigDecimal) number).toString());
            } else if (number instanceof BigInteger || number instanceof Long || number instanceof Integer
                    || number instanceof Short || number instanceof Byte) {
                out.append(number.toString());
            } else {
                // AtomicLong, LongAdder and other Number subclasses: go through BigDecimal so the
                // text is always a valid JSON number whatever their toString does.
                double d = number.doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) {
                    throw new IllegalArgumentException("JSON has no NaN or infinity: " + d);
                }
                out.append(number.longValue() == d ? Long.toString(number.longValue()) : BigDecimal.valueOf(d).toString());
            }
        }

        private void string(String s) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': out.append("\\\""); break;
                    case '\\': out.append("\\\\"); break;
                    case '\n': out.append("\\n"); break;
                    case '\r': out.append("\\r"); break;
                    case '\t': out.append("\\t"); break;
                    case '\b': out.append("\\b"); break;
                    case '\f': out.append("\\f"); break;
                    default:
                        // Control characters must be escaped; U+2028/2029 are escaped too, so the
                        // text stays safe to embed in JavaScript source.
                        if (c < 0x20 || c == '\u2028' || c == '\u2029') {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                }
            }
            out.append('"');
        }
    }

    // ---- reading ------------------------------------------------------------------------------

    private static final class Reader {
        private final String text;
        int pos;

        Reader(String text) {
            this.text = text;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + what);
        }

        void skipWhitespace() {
            while (pos < text.length()) {
                char c = text.charAt(pos);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    return;
                }
                pos++;
            }
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) {
                throw error("nesting deeper than " + MAX_DEPTH);
            }
            if (pos >= text.length()) {
                throw error("unexpected end");
            }
            char c = text.charAt(pos);
            switch (c) {
                case '{': return object(depth);
                case '[': return array(depth);
                case '"': return string();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected character '" + c + "'");
            }
        }

        private Map<String, Object> object(int depth) {
            Map<String, Object> map = new LinkedHashMap<>();
            pos++; // '{'
            skipWhitespace();
            if (peek() == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipWhitespace();
                if (peek() != '"') {
                    throw error("expected a string key");
                }
                String key = string();
                skipWhitespace();
                expect(':');
                skipWhitespace();
                map.put(key, value(depth + 1));
                skipWhitespace();
                if (peek() == ',') {
                    pos++;
                } else {
                    expect('}');
                    return map;
                }
            }
        }

        private List<Object> array(int depth) {
            List<Object> list = new ArrayList<>();
            pos++; // '['
            skipWhitespace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                list.add(value(depth + 1));
                skipWhitespace();
                if (peek() == ',') {
                    pos++;
                } else {
                    expect(']');
                    return list;
                }
            }
        }

        private String string() {
            pos++; // opening quote
            StringBuilder out = new StringBuilder();
            while (true) {
                if (pos >= text.length()) {
                    throw error("unterminated string");
                }
                char c = text.charAt(pos++);
                if (c == '"') {
                    return out.toString();
                }
                if (c < 0x20) {
                    throw error("control character in string");
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (pos >= text.length()) {
                    throw error("unterminated escape");
                }
                char e = text.charAt(pos++);
                switch (e) {
                    case '"': out.append('"'); break;
                    case '\\': out.append('\\'); break;
                    case '/': out.append('/'); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'n': out.append('\n'); break;
                    case 'r': out.append('\r'); break;
                    case 't': out.append('\t'); break;
                    case 'u':
                        if (pos + 4 > text.length()) {
                            throw error("short \\u escape");
                        }
                        try {
                            out.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("bad \\u escape");
                        }
                        pos += 4;
                        break;
                    default:
                        throw error("bad escape \\" + e);
                }
            }
        }

        private Object number() {
            int start = pos;
            if (peek() == '-') {
                pos++;
            }
            if (peek() == '0') {
                pos++;
            } else if (isDigit(peek())) {
                digits();
            } else {
                throw error("expected a digit");
            }
            boolean integral = true;
            if (peek() == '.') {
                integral = false;
                pos++;
                if (!isDigit(peek())) {
                    throw error("expected a digit after '.'");
                }
                digits();
            }
            if (peek() == 'e' || peek() == 'E') {
                integral = false;
                pos++;
                if (peek() == '+' || peek() == '-') {
                    pos++;
                }
                if (!isDigit(peek())) {
                    throw error("expected a digit in the exponent");
                }
                digits();
            }
            String literal = text.substring(start, pos);
            if (integral) {
                try {
                    return Long.parseLong(literal);
                } catch (NumberFormatException tooBig) {
                    // falls through to BigDecimal
                }
            }
            return new BigDecimal(literal);
        }

        private void digits() {
            while (isDigit(peek())) {
                pos++;
            }
        }

        private static boolean isDigit(int c) {
            return c >= '0' && c <= '9';
        }

        private Object literal(String word, Object value) {
            if (!text.startsWith(word, pos)) {
                throw error("expected " + word);
            }
            pos += word.length();
            return value;
        }

        private int peek() {
            return pos < text.length() ? text.charAt(pos) : -1;
        }

        private void expect(char c) {
            if (peek() != c) {
                throw error("expected '" + c + "'");
            }
            pos++;
        }
    }
}
