package org.emoticana.logging;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.logging.log4j.core.Filter;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.config.Node;
import org.apache.logging.log4j.core.config.plugins.Plugin;
import org.apache.logging.log4j.core.config.plugins.PluginAttribute;
import org.apache.logging.log4j.core.config.plugins.PluginFactory;
import org.apache.logging.log4j.core.filter.AbstractFilter;
import org.apache.logging.log4j.message.Message;
import org.emoticana.thrift.UserErrors;

/**
 * Drops the server log's lines about a user's error (conf/log4j2.properties puts it on the
 * console): the executor's failed task, Spark's failed statement and HiveServer2's warning, each
 * with the whole Java (and Python) stack, and the scheduler's "aborting job" for the task that failed
 * on it; and Spark's warning with the interrupt's stack when a stopped statement's thread ends.
 * The Thrift service logs each user error once, as one line ({@code UserError: ...}); what
 * {@link UserErrors} counts as a server fault is logged as before.
 */
@Plugin(name = "EmoticanaUserErrors", category = Node.CATEGORY, elementType = Filter.ELEMENT_TYPE)
public final class UserErrorFilter extends AbstractFilter {
    /** The executor's "Exception in task 0.3 in stage 2.0 (TID 6)", the scheduler's "Lost task 0.0 ...". */
    private static final Pattern FAILED_TASK = Pattern.compile("(?:Exception in|Lost) task (\\d+)\\.\\d+ in stage (\\d+\\.\\d+)");
    private static final Pattern ABORTED_TASK = Pattern.compile("Task (\\d+) in stage (\\d+\\.\\d+) failed \\d+ times; aborting job");
    /**
     * Spark's warning, with the interrupt's stack, when a statement's thread ends after a cancel, its
     * time cap or its close stopped it: the client is told in one line (ServiceHooks).
     */
    private static final String STOPPED_STATEMENT = "Ignore exception in terminal state with ";
    private static final int MAX_TASKS = 1000;
    /** Tasks that failed on a user error, until the scheduler reports giving up on them. */
    private static final Map<String, Boolean> USER_ERROR_TASKS = new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
            return size() > MAX_TASKS;
        }
    };

    private UserErrorFilter(Result onMatch, Result onMismatch) {
        super(onMatch, onMismatch);
    }

    /** By default a user error's line is dropped (DENY) and any other line left to the rest. */
    @PluginFactory
    public static UserErrorFilter createFilter(@PluginAttribute("onMatch") Result onMatch,
            @PluginAttribute("onMismatch") Result onMismatch) {
        return new UserErrorFilter(onMatch == null ? Result.DENY : onMatch,
                onMismatch == null ? Result.NEUTRAL : onMismatch);
    }

    @Override
    public Result filter(LogEvent event) {
        Message message = event.getMessage();
        String text = message == null ? "" : message.getFormattedMessage();
        if (text.startsWith(STOPPED_STATEMENT)
                && event.getLoggerName().endsWith(".SparkExecuteStatementOperation")) {
            return onMatch;
        }
        Throwable thrown = event.getThrown();
        Matcher failedTask = FAILED_TASK.matcher(text);
        boolean userError = thrown != null
                ? UserErrors.userMessage(thrown) != null
                // The scheduler's "Lost task ...: PythonException: ..." carries the traceback in its
                // text, and a Spark error its SQLSTATE.
                : text.contains("Traceback (most recent call last)") ? UserErrors.pythonUserError(text) != null
                : failedTask.lookingAt() && UserErrors.userErrorLine(text);
        failedTask.reset();
        if (userError) {
            if (failedTask.lookingAt()) {
                remember(failedTask.group(1) + " in stage " + failedTask.group(2));
            }
            return onMatch;
        }
        // Then the scheduler gives up on that task ("Task 0 in stage 2.0 failed 4 times; aborting
        // job"): a line about the same user error.
        Matcher aborted = ABORTED_TASK.matcher(text);
        if (aborted.lookingAt() && forget(aborted.group(1) + " in stage " + aborted.group(2))) {
            return onMatch;
        }
        return onMismatch;
    }

    private static void remember(String task) {
        synchronized (USER_ERROR_TASKS) {
            USER_ERROR_TASKS.put(task, Boolean.TRUE);
        }
    }

    private static boolean forget(String task) {
        synchronized (USER_ERROR_TASKS) {
            return USER_ERROR_TASKS.remove(task) != null;
        }
    }
}
