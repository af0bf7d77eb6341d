package org.emoticana.thrift;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.hive.service.rpc.thrift.TStatus;
import org.apache.hive.service.rpc.thrift.TStatusCode;
import org.apache.spark.SparkThrowable;
import org.apache.spark.api.python.PythonException;
import org.apache.spark.sql.AnalysisException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tells a user's error from a server fault, and gives a user error as the one line a client shows.
 *
 * <p>A user error is a failure whose cause chain holds an {@link AnalysisException} (a parse error,
 * an unknown table or column, a refusal of the SQL sandbox: {@code emoticana: ...}), another Spark
 * error whose SQLSTATE class is 22 (data exception, such as a division by zero) or 42 (syntax or
 * access rule) or whose SQLSTATE is P0001 (the statement's own {@code raise_error}), or a Python
 * UDF's error whose traceback ends in one of Emoticana's own error classes
 * ({@code udfs.errors.ModelError: ...}, raised on purpose for a bad value). Anything else is a server
 * fault: an out-of-memory error, a crashed worker, a bug in a UDF ({@code TypeError}), an I/O error;
 * those keep their stack for the client and the log.
 */
public final class UserErrors {
    /** The logger of the one line each user error gets in the server log. */
    static final Logger LOG = LoggerFactory.getLogger("org.emoticana.thrift.UserError");

    /** A traceback's last line when the error is one of udfs/errors.py's classes. */
    private static final Pattern PYTHON_ERROR_LINE = Pattern.compile("^udfs\\.errors\\.(\\w+: .*)$");
    private static final int MAX_CAUSES = 32;
    /** A task that ran out of heap: with killOnFatalError off the query fails alone (server/spark.py). */
    private static final Pattern OUT_OF_MEMORY = Pattern.compile("java\\.lang\\.OutOfMemoryError: ([^\\n]+)");
    /** Spark's binaryFile source refusing a file longer than spark.sql.sources.binaryFile.maxLength. */
    private static final Pattern FILE_TOO_LARGE = Pattern.compile(
            "The length of (\\S+) is (\\d+), which exceeds the max length allowed: (\\d+)");

    /** User errors already logged (a client may ask for a failed operation's status twice). */
    private static final Set<Throwable> LOGGED = Collections.synchronizedSet(
            Collections.newSetFromMap(new java.util.WeakHashMap<>()));

    private UserErrors() {
    }

    /** The one line of a user error, or null when {@code error} is a server fault. */
    public static String userMessage(Throwable error) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Throwable cause = error; cause != null && seen.add(cause) && seen.size() <= MAX_CAUSES;
                cause = cause.getCause()) {
            if (cause instanceof AnalysisException analysis) {
                return oneLine(analysis.getSimpleMessage());
            }
            if (cause instanceof PythonException) {
                return pythonUserError(cause.getMessage());
            }
            if (cause instanceof SparkThrowable spark && userSqlState(spark.getSqlState())) {
                return oneLine(cause.getMessage());
            }
            Matcher outOfMemory = cause.getMessage() == null ? null : OUT_OF_MEMORY.matcher(cause.getMessage());
            if (outOfMemory != null && outOfMemory.find()) {
                // One statement's demand (a huge array, a huge row), not the server's state.
                return "the statement ran out of memory (java.lang.OutOfMemoryError: " + outOfMemory.group(1).strip()
                        + ") and failed alone; the server is unaffected: ask for less per row or per query";
            }
            Matcher tooLarge = cause.getMessage() == null ? null : FILE_TOO_LARGE.matcher(cause.getMessage());
            if (tooLarge != null && tooLarge.find()) {
                // The user's table holds a file too long for a row; the bound is the server's.
                return "file " + tooLarge.group(1) + " is " + tooLarge.group(2) + " bytes, which exceeds the max "
                        + "length allowed: " + tooLarge.group(3) + " bytes in a binaryFile row "
                        + "(spark.sql.sources.binaryFile.maxLength); read a recording that long by path, "
                        + "emotion_segments(path)";
            }
        }
        return null;
    }

    /**
     * For the tests: each argument, a Python worker's error text, answered on a line of its own
     * with the user error's one line, or {@code server fault}.
     */
    public static void main(String[] args) {
        for (String text : args) {
            String message = pythonUserError(text);
            System.out.println(message == null ? "server fault" : message);
        }
    }

    /** The SQLSTATE Spark puts at the end of an error's message. */
    private static final Pattern SQL_STATE_SUFFIX = Pattern.compile(" SQLSTATE: (\\w{5})\\)?$");

    /**
     * Whether the first line of {@code text}, a log line about a failed task ("Lost task ...:
     * org.apache.spark.SparkRuntimeException: [USER_RAISED_EXCEPTION] ... SQLSTATE: P0001" and
     * the stack), reports a user error by its SQLSTATE: the scheduler writes the error as text.
     */
    public static boolean userErrorLine(String text) {
        int end = text.indexOf('\n');
        Matcher state = SQL_STATE_SUFFIX.matcher(end < 0 ? text : text.substring(0, end));
        return state.find() && userSqlState(state.group(1));
    }

    private static boolean userSqlState(String sqlState) {
        // P0001: the statement's own raise_error or assert_true (the example scripts' checks).
        return sqlState != null
                && (sqlState.startsWith("22") || sqlState.startsWith("42") || sqlState.equals("P0001"));
    }

    /**
     * The last exception line of the Python traceback in {@code text} without its module
     * ({@code ModelError: no model ...}) when it is one of Emoticana's error classes; else null.
     * A traceback's exception lines are the lines after it that do not start with a space (the
     * frames do); a chained exception's last one is the one raised.
     */
    public static String pythonUserError(String text) {
        if (text == null) {
            return null;
        }
        int start = text.lastIndexOf("Traceback (most recent call last):");
        if (start < 0) {
            return null;
        }
        String last = null;
        for (String line : text.substring(start).split("\n")) {
            if (line.startsWith("\tat ") || line.startsWith(" SQLSTATE: ")) {
                break; // the Java stack, or Spark's suffix, after the Python traceback
            }
            if (!line.isEmpty() && !Character.isWhitespace(line.charAt(0))
                    && !line.startsWith("Traceback (most recent call last)")) {
                last = line;
            }
        }
        if (last == null) {
            return null;
        }
        Matcher match = PYTHON_ERROR_LINE.matcher(last.strip());
        return match.matches() ? match.group(1) : null;
    }

    /** {@code text} on one line: Spark's messages run on over several (search path, hints). */
    static String oneLine(String text) {
        return text == null ? "" : text.strip().replaceAll("\\s*\\n\\s*", " ");
    }

    /** The status a client receives for a user error: the one line, no Java stack. */
    static TStatus status(String message, Throwable error) {
        TStatus status = new TStatus(TStatusCode.ERROR_STATUS);
        status.setErrorMessage(message);
        SparkThrowable spark = sparkCause(error);
        if (spark != null && spark.getSqlState() != null) {
            status.setSqlState(spark.getSqlState());
        } else if (spark instanceof AnalysisException) {
            // The sandbox's refusals carry no error class: the state of an access rule violation.
            status.setSqlState("42000");
        }
        return status;
    }

    static SparkThrowable sparkCause(Throwable error) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Throwable cause = error; cause != null && seen.add(cause); cause = cause.getCause()) {
            if (cause instanceof SparkThrowable spark) {
                return spark;
            }
        }
        return null;
    }

    /** Logs a user error once, as one line (the Spark and Hive lines with its stack are filtered). */
    static void log(String message, Throwable error) {
        if (LOGGED.add(error)) {
            LOG.warn(message);
        }
    }
}
