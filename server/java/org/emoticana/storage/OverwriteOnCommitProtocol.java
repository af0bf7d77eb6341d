package org.emoticana.storage;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.sql.execution.datasources.SQLHadoopMapReduceCommitProtocol;
import org.emoticana.sandbox.SqlSandbox;

/**
 * Spark's file commit protocol ({@code spark.sql.sources.commitProtocolClass}) with one change:
 * {@code INSERT OVERWRITE} removes the rows it replaces when its job commits, not before the job
 * starts.
 *
 * <p>Spark clears a table's folder (or a static partition's) through {@link #deleteWithJob} before
 * it writes the new files, so a statement that fails or is cancelled midway would leave the table
 * empty. Here {@code deleteWithJob} only notes the files the folder holds then; {@link #commitJob}
 * deletes exactly those and then moves the job's files in (the output committer keeps them under
 * {@code _temporary} until then), and {@link #abortJob} forgets them. The job's own files get new
 * names, so they are never among those noted. A failed statement leaves the old rows; a
 * successful one leaves only the new.
 *
 * <p>One statement at a time writes into a folder: two jobs writing one table share the output
 * committer's {@code _temporary/0}, and the first to commit would take the other's files with its
 * own (two {@code CREATE TABLE AS SELECT} of one name mixed their rows). {@link #setupJob} refuses
 * a second writer in one line before it writes anything; it may run again when the first ends.
 *
 * <p>Runs on the driver: executors get a serialized copy for their tasks and never call these.
 */
public class OverwriteOnCommitProtocol extends SQLHadoopMapReduceCommitProtocol {

    private static final long serialVersionUID = 1L;

    /** A file or folder the job replaces, and its file system. */
    private static final class Replaced {
        final FileSystem fs;
        final Path path;

        Replaced(FileSystem fs, Path path) {
            this.fs = fs;
            this.path = path;
        }
    }

    /** The folders a statement is writing into now. */
    private static final Set<String> WRITING = ConcurrentHashMap.newKeySet();

    private final String folder;
    private transient List<Replaced> replaced;
    /** This job holds {@link #folder} in {@link #WRITING}. */
    private transient boolean writing;

    public OverwriteOnCommitProtocol(String jobId, String path, boolean dynamicPartitionOverwrite) {
        super(jobId, path, dynamicPartitionOverwrite);
        this.folder = new Path(path).toUri().normalize().toString();
    }

    @Override
    public void setupJob(JobContext jobContext) {
        if (!WRITING.add(folder)) {
            throw SqlSandbox.refusal("another statement is writing into the table folder '"
                    + new Path(folder).getName() + "' now; run this one again when it has finished");
        }
        writing = true;
        super.setupJob(jobContext);  // if it fails, Spark calls abortJob, which lets go
    }

    private void letGo() {
        if (writing) {
            writing = false;
            WRITING.remove(folder);
        }
    }

    private List<Replaced> replaced() {
        if (replaced == null) {
            replaced = new ArrayList<>();
        }
        return replaced;
    }

    @Override
    public boolean deleteWithJob(FileSystem fs, Path path, boolean recursive) {
        try {
            if (!fs.exists(path)) {
                return true;
            }
            if (!fs.getFileStatus(path).isDirectory()) {
                replaced().add(new Replaced(fs, path));
                return true;
            }
            for (FileStatus child : fs.listStatus(path)) {
                // The output committer's working folder is where this job's files wait: a stale
                // one from a killed job is removed by the committer itself when the job ends.
                if (!child.getPath().getName().equals(FileOutputCommitter.PENDING_DIR_NAME)) {
                    replaced().add(new Replaced(fs, child.getPath()));
                }
            }
            return true;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the files an overwrite replaces in " + path, e);
        }
    }

    @Override
    public void commitJob(JobContext jobContext, scala.collection.immutable.Seq<FileCommitProtocol.TaskCommitMessage> taskCommits) {
        for (Replaced old : replaced()) {
            try {
                if (old.fs.exists(old.path) && !old.fs.delete(old.path, true)) {
                    throw new IOException("delete returned false");
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot remove the replaced file " + old.path, e);
            }
        }
        replaced().clear();
        super.commitJob(jobContext, taskCommits);
        letGo();  // a failed commit is followed by abortJob, which cleans up and lets go
    }

    @Override
    public void abortJob(JobContext jobContext) {
        replaced().clear();
        if (!writing) {
            return;  // refused by setupJob: the folder's _temporary is the other statement's
        }
        try {
            super.abortJob(jobContext);
        } finally {
            letGo();
        }
    }
}
