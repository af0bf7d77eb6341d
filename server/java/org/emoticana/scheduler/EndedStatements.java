package org.emoticana.scheduler;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.function.Consumer;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkContext$;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.hive.thriftserver.ui.SparkListenerThriftServerOperationCanceled;
import org.apache.spark.sql.hive.thriftserver.ui.SparkListenerThriftServerOperationClosed;
import org.apache.spark.sql.hive.thriftserver.ui.SparkListenerThriftServerOperationTimeout;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import scala.Option;

/**
 * A statement that was cancelled, stopped by its time cap or closed runs no Spark job afterwards.
 *
 * <p>Spark's Thrift server stops a statement by cancelling its job group (the statement's id). A
 * statement still being analysed or planned at that moment has no job in the group yet: its
 * threads go on, submit the jobs, and the jobs run to their end with nobody to read the result
 * (a client that cancels at once, as dashboards do when a user leaves a page, left an hours-long
 * job holding every slot). Spark's {@code cancelJobGroupAndFutureJobs} refuses a group's later
 * result jobs but not the shuffle-stage jobs adaptive execution submits, so this listener
 * remembers the statements the Thrift server reports ended and cancels any job of theirs that
 * starts. Statement ids are never reused, and a closed statement fetches nothing more.
 *
 * <p>Registered through {@code spark.extraListeners} (server/spark.py).
 */
public final class EndedStatements extends SparkListener {

    /** How many ended statements are remembered: far more than can end while one is being planned. */
    static final int REMEMBERED = 10_000;
    private static final Logger LOG = LoggerFactory.getLogger(EndedStatements.class);

    /** Ended statement ids with why they ended, oldest first; guarded by this. */
    private final Map<String, String> ended = new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
            return size() > REMEMBERED;
        }
    };

    public EndedStatements(SparkConf conf) {
        // Spark constructs listeners with the configuration; nothing in it concerns this one.
    }

    @Override
    public void onOtherEvent(SparkListenerEvent event) {
        String statement;
        String reason;
        if (event instanceof SparkListenerThriftServerOperationCanceled canceled) {
            statement = canceled.id();
            reason = "the statement was cancelled";
        } else if (event instanceof SparkListenerThriftServerOperationTimeout timeout) {
            statement = timeout.id();
            reason = "the statement ran past its time cap";
        } else if (event instanceof SparkListenerThriftServerOperationClosed closed) {
            statement = closed.id();
            reason = "the statement was closed";
        } else {
            return;
        }
        if (statement == null) {
            return;
        }
        synchronized (this) {
            ended.putIfAbsent(statement, reason);
        }
        cancel(sc -> sc.cancelJobGroupAndFutureJobs(statement, reason), statement);
    }

    @Override
    public void onJobStart(SparkListenerJobStart event) {
        Properties properties = event.properties();
        String statement = properties == null ? null : properties.getProperty(SparkContext$.MODULE$.SPARK_JOB_GROUP_ID());
        String reason;
        synchronized (this) {
            reason = statement == null ? null : ended.get(statement);
        }
        if (reason != null) {
            int job = event.jobId();
            LOG.info("cancelling job {}, started after its statement ended: {}", job, reason);
            cancel(sc -> sc.cancelJob(job, reason), statement);
        }
    }

    private static void cancel(Consumer<SparkContext> action, String statement) {
        Option<SparkContext> active = SparkContext$.MODULE$.getActive();
        if (active.isEmpty()) {
            return;
        }
        try {
            action.accept(active.get());
        } catch (RuntimeException e) {
            // The listener bus must outlive a bad moment (the SparkContext stopping).
            LOG.warn("could not cancel the jobs of ended statement {}: {}", statement, e.toString());
        }
    }
}
