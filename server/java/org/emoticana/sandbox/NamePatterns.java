package org.emoticana.sandbox;

/**
 * The patterns that look up names: {@code SHOW TABLES|VIEWS|FUNCTIONS|DATABASES LIKE} and the JDBC
 * metadata calls (getSchemas, getTables, getColumns, getFunctions).
 *
 * <p>Spark matches both as Java regular expressions against every name ({@code *} and JDBC's
 * {@code %} become {@code .*}), on a thread that neither a cancel nor the statement time cap
 * reaches; a nested quantifier with a backreference against a long view name holds a core for
 * hours, and a very long JDBC pattern makes the metastore's database retry its query for about
 * 20 s while every session waits for the catalog. So a pattern holds names' characters and the
 * wildcards only: no group, class, quantifier or escape of a regular expression can be written,
 * at most {@value #MAX_WILDCARDS} {@code *} or {@code %} per alternative and
 * {@value #MAX_LENGTH} characters.
 */
public final class NamePatterns {
    /** Longer than any name a client looks up. */
    public static final int MAX_LENGTH = 128;
    /** Each becomes {@code .*}: more of them against a long name backtrack as its power. */
    public static final int MAX_WILDCARDS = 2;

    private NamePatterns() {
    }

    /**
     * Why {@code pattern} is refused, or null.
     *
     * @param argument what the pattern looks up, for the message ("table")
     * @param show     Spark's {@code SHOW ... LIKE} syntax ({@code *} any characters, {@code .} one,
     *                 {@code |} between alternatives) rather than JDBC's ({@code %} any characters,
     *                 {@code _} one, {@code \} escaping either)
     */
    public static String refusal(String argument, String pattern, boolean show) {
        if (pattern == null) {
            return null;
        }
        if (pattern.length() > MAX_LENGTH) {
            return "the " + argument + " pattern is longer than " + MAX_LENGTH + " characters";
        }
        int wildcards = 0;
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (!show && c == '\\' && i + 1 < pattern.length()
                    && (pattern.charAt(i + 1) == '%' || pattern.charAt(i + 1) == '_')) {
                i++;
            } else if (c == '%' || c == '*') {
                if (++wildcards > MAX_WILDCARDS) {
                    return "the " + argument + " pattern may hold at most " + MAX_WILDCARDS + " '" + c + "' wildcards"
                            + (show ? " between two '|'" : "");
                }
            } else if (show && c == '|') {
                wildcards = 0;
            } else if (!Character.isLetterOrDigit(c) && c != '_' && c != '-' && c != ' ' && !(show && c == '.')) {
                return "the " + argument + " pattern may hold letters, digits, '_', '-', spaces and the wildcard"
                        + (show ? "s '*', '.' and '|'" : " '%'") + " only, not '" + c + "'";
            }
        }
        return null;
    }
}
