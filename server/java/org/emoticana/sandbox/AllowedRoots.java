package org.emoticana.sandbox;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;

/**
 * Directories that SQL may name as a location, and the check that a path lies inside one.
 *
 * <p>A path is parsed the way Spark parses it (Hadoop's {@code Path}, which removes {@code ..}
 * lexically), then a local path has its symbolic links resolved on the longest prefix that
 * exists, so a link inside a root that points elsewhere is judged by where it points. Paths of
 * other file systems ({@code hdfs://}, {@code s3a://}) are compared as normalised URIs, scheme
 * and authority included. Brace globs are refused outright: Hadoop expands {@code {a,b/..}}
 * into paths whose {@code ..} the lexical check cannot see.
 */
public final class AllowedRoots {

    /** Separates roots in the Spark setting: a comma, because a URI root (hdfs://host:8020/...) holds colons. */
    public static final String SEPARATOR = ",";

    private final List<URI> roots;
    private final String display;

    private AllowedRoots(List<URI> roots, String display) {
        this.roots = roots;
        this.display = display;
    }

    /** Roots from the setting's value; relative or scheme-less roots are local directories. */
    public static AllowedRoots parse(String value, URI defaultFs) {
        List<URI> roots = new ArrayList<>();
        List<String> shown = new ArrayList<>();
        for (String part : value.split(SEPARATOR)) {
            String root = part.trim();
            if (root.isEmpty()) {
                continue;
            }
            roots.add(canonical(new org.apache.hadoop.fs.Path(root), defaultFs));
            shown.add(root);
        }
        return new AllowedRoots(roots, String.join(":", shown));
    }

    /** The roots as a user set them, for messages. */
    public String display() {
        return display;
    }

    /**
     * Whether {@code path} is inside one of the roots.
     *
     * @throws IllegalArgumentException naming the path when it cannot be judged (a brace glob,
     *     a link that cannot be resolved)
     */
    public boolean contains(org.apache.hadoop.fs.Path path, URI defaultFs) {
        URI candidate = canonical(path, defaultFs);
        for (URI root : roots) {
            if (inside(candidate, root)) {
                return true;
            }
        }
        return false;
    }

    /**
     * A path as a normalised absolute URI: {@code file:} with symbolic links resolved for local
     * paths, the path's own scheme and authority otherwise.
     */
    static URI canonical(org.apache.hadoop.fs.Path path, URI defaultFs) {
        URI uri = path.toUri();
        if (uri.getPath() != null && (uri.getPath().indexOf('{') >= 0 || uri.getPath().indexOf('}') >= 0)) {
            throw new IllegalArgumentException("path '" + path + "' holds a brace glob ({...}), which is not allowed");
        }
        String scheme = uri.getScheme();
        String authority = uri.getAuthority();
        if (scheme == null) {
            scheme = defaultFs.getScheme() == null ? "file" : defaultFs.getScheme();
            authority = defaultFs.getAuthority();
        }
        scheme = scheme.toLowerCase(Locale.ROOT);
        if (scheme.equals("file")) {
            return realLocal(uri.getPath()).toUri();
        }
        try {
            String normalised = new URI(null, null, uri.getPath() == null || uri.getPath().isEmpty() ? "/" : uri.getPath(), null)
                    .normalize().getPath();
            return new URI(scheme, authority == null ? null : authority.toLowerCase(Locale.ROOT), normalised, null, null);
        } catch (java.net.URISyntaxException e) {
            throw new IllegalArgumentException("path '" + path + "' is not a valid URI: " + e.getMessage());
        }
    }

    /** A local path with {@code ..} removed and the symbolic links of its existing prefix resolved. */
    static Path realLocal(String text) {
        Path absolute = Paths.get(text.isEmpty() ? "." : text).toAbsolutePath().normalize();
        Deque<Path> missing = new ArrayDeque<>();
        Path existing = absolute;
        while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
            missing.push(existing.getFileName());
            existing = existing.getParent();
        }
        if (existing == null) {
            return absolute;
        }
        Path real;
        try {
            real = existing.toRealPath();
        } catch (IOException e) {
            throw new IllegalArgumentException("path '" + text + "' cannot be resolved (" + existing + ": " + e.getMessage() + ")");
        }
        for (Path name : missing) {
            real = real.resolve(name);
        }
        return real;
    }

    private static boolean inside(URI candidate, URI root) {
        if (!candidate.getScheme().equals(root.getScheme())) {
            return false;
        }
        String candidateAuthority = candidate.getAuthority() == null ? "" : candidate.getAuthority();
        String rootAuthority = root.getAuthority() == null ? "" : root.getAuthority();
        if (!candidateAuthority.equals(rootAuthority)) {
            return false;
        }
        String path = candidate.getPath();
        String prefix = root.getPath().endsWith("/") ? root.getPath() : root.getPath() + "/";
        return path.equals(root.getPath()) || (path + "/").equals(prefix) || path.startsWith(prefix);
    }

    /**
     * Command-line check for tests: {@code AllowedRoots ROOTS PATH...} prints
     * {@code inside|outside|refused: REASON} and the canonical form of each path, one per line.
     */
    public static void main(String[] args) {
        URI local = URI.create("file:///");
        AllowedRoots roots = parse(args[0], local);
        for (int i = 1; i < args.length; i++) {
            try {
                org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(args[i]);
                String verdict = roots.contains(path, local) ? "inside" : "outside";
                System.out.println(verdict + "\t" + canonical(path, local));
            } catch (IllegalArgumentException e) {
                System.out.println("refused\t" + e.getMessage());
            }
        }
    }
}
