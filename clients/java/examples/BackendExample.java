// An example backend for Herald on the JDK's HttpServer: RPCs at /rpc (calc.double, calc.fail,
// calc.slow) and lifecycle webhooks at /hooks.
//
//   HERALD_BACKEND_SECRET=... HERALD_WEBHOOK_LOG=events.jsonl \
//     java -cp build/herald-client.jar examples/BackendExample.java 9000
//
// Each webhook event is appended to HERALD_WEBHOOK_LOG as one JSON line (when set).

import com.sun.net.httpserver.HttpServer;
import io.herald.client.Backend;
import io.herald.client.Json;
import io.herald.client.RpcError;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Executors;

public final class BackendExample {
    public static void main(String[] args) throws IOException {
        String secret = System.getenv("HERALD_BACKEND_SECRET");
        String log = System.getenv("HERALD_WEBHOOK_LOG");
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9000;
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        server.createContext("/rpc", Backend.rpcHandler(secret, (method, data, user, conn) -> {
            switch (method) {
                case "calc.double":
                    return ((Number) data).longValue() * 2;
                case "calc.fail":
                    throw new RpcError("app_1001", "always fails");
                case "calc.slow":
                    try {
                        Thread.sleep(3000);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return "late";
                default:
                    throw new RpcError("not_found", "no method " + method);
            }
        }));
        server.createContext("/hooks", Backend.webhookHandler(secret, events -> {
            if (log == null || log.isEmpty()) {
                return;
            }
            StringBuilder lines = new StringBuilder();
            events.forEach(event -> lines.append(Json.write(event)).append('\n'));
            try {
                Files.writeString(Path.of(log), lines, StandardCharsets.UTF_8,
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                // Herald sends the batch again when this handler fails.
                throw new UncheckedIOException(e);
            }
        }));
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();
        System.out.println("java backend listening on 127.0.0.1:" + port);
    }
}
