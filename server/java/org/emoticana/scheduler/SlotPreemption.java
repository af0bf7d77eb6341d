package org.emoticana.scheduler;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkContext$;
import org.apache.spark.Success$;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.scheduler.StageInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import scala.Option;

/**
 * One statement cannot hold every task slot while another waits.
 *
 * <p>Spark's fair scheduler shares slots between queries only as tasks end, and a task of a huge
 * query ({@code SELECT count(*) FROM range(1e13)}, a classification over a large table) may run
 * for hours; without preemption another user's {@code SELECT 1} (which runs a job too) waits for
 * it. Spark has no per-pool task cap, so this listener preempts: when a stage has tasks to run
 * and none running for {@link #KEY_PREEMPT_AFTER}, it kills the newest running task of the
 * statement that runs the most tasks (keeping at least one of its tasks running).
 * {@code killTaskAttempt} puts the task back in its queue without counting a failure, and the
 * fair scheduler ({@code conf/fairscheduler.xml}) hands the freed slot to the stage that runs
 * none. The preempted statement loses that task's work so far and carries on with its other
 * slots.
 *
 * <p>Registered through {@code spark.extraListeners} (server/spark.py), so it exists before the
 * SparkContext runs any job.
 */
public final class SlotPreemption extends SparkListener {

    /** How long a stage may wait with no task running before another statement's task is killed; 0 turns preemption off. */
    public static final String KEY_PREEMPT_AFTER = "spark.emoticana.scheduler.preemptAfter";
    static final String DEFAULT_PREEMPT_AFTER = "1s";
    static final String REASON =
            "preempted: another statement was waiting for a task slot (Emoticana fair share; the task runs again)";
    private static final Logger LOG = LoggerFactory.getLogger(SlotPreemption.class);

    private static final class Stage {
        final String statement;
        final int tasks;
        int succeeded;
        /** Running task ids with their launch times. */
        final Map<Long, Long> running = new HashMap<>();
        long idleSince;

        Stage(String statement, int tasks, long now) {
            this.statement = statement;
            this.tasks = tasks;
            this.idleSince = now;
        }

        int pending() {
            return tasks - succeeded - running.size();
        }
    }

    private final long preemptAfterMs;
    private final int taskCpus;
    /** Stages by "stageId.attempt"; guarded by this. */
    private final Map<String, Stage> stages = new HashMap<>();
    /** Cores per executor (in local mode the driver, which the scheduler announces at start). */
    private final Map<String, Integer> executorCores = new HashMap<>();

    public SlotPreemption(SparkConf conf) {
        this.preemptAfterMs = conf.getTimeAsMs(KEY_PREEMPT_AFTER, DEFAULT_PREEMPT_AFTER);
        this.taskCpus = Math.max(1, conf.getInt("spark.task.cpus", 1));
        if (preemptAfterMs > 0) {
            ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(runnable -> {
                Thread thread = new Thread(runnable, "emoticana-slot-preemption");
                thread.setDaemon(true);
                return thread;
            });
            long period = Math.max(100, Math.min(1000, preemptAfterMs / 2));
            timer.scheduleWithFixedDelay(this::preemptQuietly, period, period, TimeUnit.MILLISECONDS);
        }
    }

    private static String key(int stageId, int attempt) {
        return stageId + "." + attempt;
    }

    @Override
    public synchronized void onExecutorAdded(SparkListenerExecutorAdded event) {
        executorCores.put(event.executorId(), event.executorInfo().totalCores());
    }

    @Override
    public synchronized void onExecutorRemoved(SparkListenerExecutorRemoved event) {
        executorCores.remove(event.executorId());
    }

    @Override
    public synchronized void onStageSubmitted(SparkListenerStageSubmitted event) {
        StageInfo info = event.stageInfo();
        String statement = event.properties() == null ? null : event.properties().getProperty(SparkContext$.MODULE$.SPARK_JOB_GROUP_ID());
        stages.put(key(info.stageId(), info.attemptNumber()),
                new Stage(statement == null ? "stage " + info.stageId() : statement, info.numTasks(), now()));
    }

    @Override
    public synchronized void onStageCompleted(SparkListenerStageCompleted event) {
        StageInfo info = event.stageInfo();
        stages.remove(key(info.stageId(), info.attemptNumber()));
    }

    @Override
    public synchronized void onTaskStart(SparkListenerTaskStart event) {
        Stage stage = stages.get(key(event.stageId(), event.stageAttemptId()));
        if (stage != null) {
            stage.running.put(event.taskInfo().taskId(), event.taskInfo().launchTime());
        }
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd event) {
        Stage stage = stages.get(key(event.stageId(), event.stageAttemptId()));
        if (stage == null) {
            return;
        }
        stage.running.remove(event.taskInfo().taskId());
        if (event.reason() == Success$.MODULE$) {
            stage.succeeded++;
        }
        if (stage.running.isEmpty()) {
            stage.idleSince = now();
        }
    }

    private static long now() {
        return System.currentTimeMillis();
    }

    private void preemptQuietly() {
        try {
            preempt();
        } catch (RuntimeException e) {
            // The timer must outlive a bad moment (the SparkContext stopping, a task already ended).
            LOG.warn("slot preemption skipped: {}", e.toString());
        }
    }

    /** Kills at most one task per waiting stage and round; the next round sees the result. */
    void preempt() {
        Option<SparkContext> active = SparkContext$.MODULE$.getActive();
        if (active.isEmpty()) {
            return;
        }
        Map<Long, String> victims = new HashMap<>();
        synchronized (this) {
            long now = now();
            Map<String, Integer> runningByStatement = new HashMap<>();
            int running = 0;
            for (Stage stage : stages.values()) {
                runningByStatement.merge(stage.statement, stage.running.size(), Integer::sum);
                running += stage.running.size();
            }
            int slots = 0;
            for (int cores : executorCores.values()) {
                slots += cores / taskCpus;
            }
            if (slots > 0 && running < slots) {
                return;  // a free slot: whatever waits, waits for something else (an executor, locality)
            }
            for (Stage waiting : stages.values()) {
                if (!waiting.running.isEmpty() || waiting.pending() <= 0
                        || now - waiting.idleSince < preemptAfterMs) {
                    continue;
                }
                String busiest = busiestOther(runningByStatement, waiting.statement);
                if (busiest == null) {
                    continue;  // every running statement holds one slot: the waiting stage is next in turn
                }
                long newest = newestTask(busiest, victims.keySet());
                if (newest >= 0) {
                    victims.put(newest, busiest);
                    runningByStatement.merge(busiest, -1, Integer::sum);
                    waiting.idleSince = now;  // give the freed slot time to reach it before another kill
                }
            }
        }
        for (Map.Entry<Long, String> victim : victims.entrySet()) {
            if (active.get().killTaskAttempt(victim.getKey(), true, REASON)) {
                LOG.info("preempted task {} of statement {}: another statement was waiting for a slot",
                        victim.getKey(), victim.getValue());
            }
        }
    }

    /** The statement other than {@code waiting} that runs the most tasks, at least two; null if none. */
    private static String busiestOther(Map<String, Integer> runningByStatement, String waiting) {
        String busiest = null;
        for (Map.Entry<String, Integer> entry : runningByStatement.entrySet()) {
            if (!entry.getKey().equals(waiting) && entry.getValue() >= 2
                    && (busiest == null || entry.getValue() > runningByStatement.get(busiest))) {
                busiest = entry.getKey();
            }
        }
        return busiest;
    }

    /** The statement's most recently launched running task not yet chosen (the least work lost); -1 if none. */
    private long newestTask(String statement, Set<Long> chosen) {
        long newest = -1;
        long newestLaunch = Long.MIN_VALUE;
        for (Stage stage : stages.values()) {
            if (!stage.statement.equals(statement)) {
                continue;
            }
            for (Map.Entry<Long, Long> task : stage.running.entrySet()) {
                if (!chosen.contains(task.getKey()) && task.getValue() > newestLaunch) {
                    newest = task.getKey();
                    newestLaunch = task.getValue();
                }
            }
        }
        return newest;
    }
}
