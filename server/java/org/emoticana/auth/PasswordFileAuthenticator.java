package org.emoticana.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;

import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * HiveServer2 CUSTOM authentication against Emoticana's password file.
 *
 * <p>One line per user, written by {@code emoticana passwd} (server/auth.py holds the same format):
 * {@code user:pbkdf2-sha256:ITERATIONS:SALT_BASE64:HASH_BASE64}; blank lines and {@code #} comments
 * are ignored. The file named by the environment variable {@code EMOTICANA_AUTH_FILE} is read at
 * every login, so added, changed or removed users take effect without a restart.
 *
 * <p>HiveServer2 builds a new provider for every login from a fresh HiveConf, so this class takes
 * its one setting from the environment the server process exports, and keeps its state, the recent
 * failed logins per name and per client address ({@link ClientAddress}), in static maps.
 */
public final class PasswordFileAuthenticator implements PasswdAuthenticationProvider {
    public static final String FILE_ENV = "EMOTICANA_AUTH_FILE";
    static final String SCHEME = "pbkdf2-sha256";
    static final String REFUSED = "Invalid user name or password";
    /** Iterations of a hash for a name that is not in the file (emoticana passwd's default). */
    static final int DEFAULT_ITERATIONS = 600000;
    /** Failed logins per name within {@link #WINDOW_MS} after which the name is refused for that long. */
    static final int MAX_FAILURES = 5;
    static final long WINDOW_MS = 60_000;
    /**
     * Failed logins from one client address within {@link #WINDOW_MS} after which that client is
     * refused for that long, whatever name it tries (one client guessing across many names).
     */
    static final int MAX_CLIENT_FAILURES = 30;
    /** Recent failed logins per user name, known or not (the JVM keeps it across providers). */
    private static final Map<String, Deque<Long>> FAILURES = new ConcurrentHashMap<>();
    /** Recent failed logins per client address. */
    private static final Map<String, Deque<Long>> CLIENT_FAILURES = new ConcurrentHashMap<>();

    @Override
    public void Authenticate(String user, String password) throws AuthenticationException {
        String location = System.getenv(FILE_ENV);
        if (location == null || location.isEmpty()) {
            throw new AuthenticationException("Emoticana authentication is on but " + FILE_ENV + " is not set");
        }
        String name = user == null ? "" : user;
        long now = System.currentTimeMillis();
        String client = ClientAddress.current();
        if (client != null && recentFailures(CLIENT_FAILURES, client, now) >= MAX_CLIENT_FAILURES) {
            // Before any hash: a flood of guesses from one client costs the server nothing more.
            throw new AuthenticationException(REFUSED + " (too many failed logins from this client: wait "
                    + WINDOW_MS / 1000 + " s)");
        }
        if (recentFailures(FAILURES, name, now) >= MAX_FAILURES) {
            // Any name, known or not, so the refusal tells nothing of which names exist.
            throw new AuthenticationException(REFUSED + " (too many failed logins for this name: wait "
                    + WINDOW_MS / 1000 + " s)");
        }
        Map<String, Entry> users;
        try {
            users = read(Paths.get(location));
        } catch (IOException | IllegalArgumentException e) {
            throw new AuthenticationException("Emoticana password file " + location + " is unusable: " + e.getMessage());
        }
        // Every refusal costs one hash of the largest iteration count in the file: an unknown name
        // hashes a decoy of that cost, a known one with fewer iterations pays the difference, so
        // response time does not tell which names exist.
        int cost = DEFAULT_ITERATIONS;
        for (Entry known : users.values()) {
            cost = Math.max(cost, known.iterations);
        }
        Entry entry = users.get(name);
        boolean matches = (entry != null ? entry : new Entry(cost, new byte[16], new byte[32]))
                .verify(password == null ? "" : password);
        if (entry == null || !matches) {
            if (entry != null && entry.iterations < cost) {
                new Entry(cost - entry.iterations, new byte[16], new byte[32]).verify("");
            }
            failed(FAILURES, name, System.currentTimeMillis());
            if (client != null) {
                failed(CLIENT_FAILURES, client, System.currentTimeMillis());
            }
            throw new AuthenticationException(REFUSED);
        }
        FAILURES.remove(name);
    }

    /** Failed logins of {@code key} (a name or a client) within the window before {@code now}. */
    static int recentFailures(Map<String, Deque<Long>> failures, String key, long now) {
        Deque<Long> times = failures.get(key);
        if (times == null) {
            return 0;
        }
        synchronized (times) {
            while (!times.isEmpty() && times.peekFirst() < now - WINDOW_MS) {
                times.pollFirst();
            }
            return times.size();
        }
    }

    static void failed(Map<String, Deque<Long>> failures, String key, long now) {
        if (failures.size() > 100_000) {
            failures.clear();  // bounded memory under a flood of invented names
        }
        Deque<Long> times = failures.computeIfAbsent(key, k -> new ArrayDeque<>());
        synchronized (times) {
            times.addLast(now);
        }
    }

    static Map<String, Entry> read(Path file) throws IOException {
        Map<String, Entry> users = new HashMap<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int number = 1; number <= lines.size(); number++) {
            String line = lines.get(number - 1).trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] fields = line.split(":", -1);
            if (fields.length != 5 || fields[0].isEmpty() || !SCHEME.equals(fields[1])) {
                throw new IllegalArgumentException("line " + number + " is not user:" + SCHEME + ":iterations:salt:hash");
            }
            try {
                Base64.Decoder base64 = Base64.getDecoder();
                users.put(fields[0], new Entry(Integer.parseInt(fields[2]), base64.decode(fields[3]), base64.decode(fields[4])));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("line " + number + ": bad iterations, salt or hash");
            }
        }
        return users;
    }

    static final class Entry {
        final int iterations;
        final byte[] salt;
        final byte[] hash;

        Entry(int iterations, byte[] salt, byte[] hash) {
            this.iterations = iterations;
            this.salt = salt;
            this.hash = hash;
        }

        boolean verify(String password) {
            PBEKeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, hash.length * 8);
            try {
                byte[] candidate = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
                return MessageDigest.isEqual(candidate, hash);
            } catch (GeneralSecurityException e) {
                return false;
            } finally {
                spec.clearPassword();
            }
        }
    }
}
