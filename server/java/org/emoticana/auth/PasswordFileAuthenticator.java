package org.emoticana.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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
 * <p>HiveServer2 builds a new provider for every login from a fresh HiveConf, so this class keeps
 * no state and takes its one setting from the environment the server process exports.
 */
public final class PasswordFileAuthenticator implements PasswdAuthenticationProvider {
    public static final String FILE_ENV = "EMOTICANA_AUTH_FILE";
    static final String SCHEME = "pbkdf2-sha256";
    static final String REFUSED = "Invalid user name or password";
    /** An unknown user still pays one hash, so response time does not tell which names exist. */
    private static final Entry DECOY = new Entry(600000, new byte[16], new byte[32]);

    @Override
    public void Authenticate(String user, String password) throws AuthenticationException {
        String location = System.getenv(FILE_ENV);
        if (location == null || location.isEmpty()) {
            throw new AuthenticationException("Emoticana authentication is on but " + FILE_ENV + " is not set");
        }
        Map<String, Entry> users;
        try {
            users = read(Paths.get(location));
        } catch (IOException | IllegalArgumentException e) {
            throw new AuthenticationException("Emoticana password file " + location + " is unusable: " + e.getMessage());
        }
        Entry entry = users.get(user == null ? "" : user);
        boolean matches = (entry != null ? entry : DECOY).verify(password == null ? "" : password);
        if (entry == null || !matches) {
            throw new AuthenticationException(REFUSED);
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
