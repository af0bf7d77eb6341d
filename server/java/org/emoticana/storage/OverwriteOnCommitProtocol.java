package org.emoticana.storage;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.MRJobConfig;
import org.apache.hadoop.mapreduce.OutputCommitter;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.sql.execution.datasources.SQLHadoopMapReduceCommitProtocol;
import org.emoticana.sandbox.SqlSandbox;

/**
 * Spark's file commit protocol ({@code spark.sql.sources.commitProtocolClass}) made safe for the
 * ways a server's tables are written.
 *
 * <p><b>An overwrite replaces rows when it commits.</b> Spark clears a table's folder (or a static
 * partition's) through {@link #deleteWithJob} before it writes the new files, so a statement that
 * failed or was cancelled midway left the table empty. Here {@code deleteWithJob} only records the
 * folder; {@link #setupJob} notes the files it holds (and the folders that hold them) once no
 * other statement writes into it; {@link #commitJob} moves the job's
 * files in first and then deletes exactly the noted ones, and the folders they leave empty;
 * {@link #abortJob} forgets them. The job's files have names of their own (the job's id is in
 * them), so they are never among those noted. A failed statement leaves the old rows; a
 * successful one only the new.
 *
 * <p><b>A job's files wait in a folder of their own.</b> The output committer keeps task files
 * under {@code _temporary/<application attempt>} until the job commits, and merges everything
 * there: with Spark's attempt 0 for every job, the committed tasks of a statement killed with the
 * server (kill -9) came back into the table with the next write. Each job here has its own attempt
 * number, taken from its id.
 *
 * <p><b>One statement at a time writes into a folder.</b> Two jobs writing one table at once would
 * still clean up each other's working folder (the committer removes all of {@code _temporary} when
 * a job ends): {@link #setupJob} refuses a second writer in one line before it writes anything;
 * it may run again when the first ends. Writers of this server are known in memory; on a local
 * file system, servers sharing a warehouse also hold the operating system's lock on a hidden file
 * in the folder ({@link #WRITER_LOCK}), which the system lets go of when a server dies. Servers
 * sharing a warehouse on another file system (HDFS, object stores) do not see each other's
 * writers (docs/operations.md).
 *
 * <p>Jobs are set up, committed and aborted on the driver; executors get a serialized copy for
 * their tasks.
 */
public class OverwriteOnCommitProtocol extends SQLHadoopMapReduceCommitProtocol {

    private static final long serialVersionUID = 1L;

    /** The folders a statement of this server is writing into now. */
    private static final Set<String> WRITING = ConcurrentHashMap.newKeySet();
    /** The real paths of the {@link #WRITER_LOCK} files this server holds locked. */
    private static final Set<String> LOCKED_FILES = ConcurrentHashMap.newKeySet();

    /**
     * The file whose lock a writer holds, for servers sharing a warehouse. Hidden from Spark's and
     * Arrow's listings by its leading underscore. Only a job that finds nothing else in the folder
     * when it aborts removes it: a writer that opened the file just before it went would lock a
     * file no longer in the folder, while the next one made a new file and locked that.
     */
    static final String WRITER_LOCK = "_emoticana_writer.lock";

    /** Markers a commit writes again under the same name: never noted as replaced. */
    private static final Set<String> MARKERS = Set.of(
            FileOutputCommitter.SUCCEEDED_FILE_NAME, "." + FileOutputCommitter.SUCCEEDED_FILE_NAME + ".crc");

    /** A file or folder the job replaces, and its file system. */
    private static final class Replaced {
        final FileSystem fs;
        final Path path;

        Replaced(FileSystem fs, Path path) {
            this.fs = fs;
            this.path = path;
        }
    }

    private final String folder;
    /** The folder as Spark named it, for the file system: {@link #folder} is URI-encoded. */
    private final String path;
    /** This job's application attempt number: its own folder under {@code _temporary}. */
    private final int attempt;
    // Job state, on the driver only: a deserialized copy (an executor's) has none and needs none.
    /** What deleteWithJob was asked to delete: listed when the job starts. */
    private final transient List<Replaced> toReplace = new ArrayList<>();
    private final transient List<Replaced> files = new ArrayList<>();
    /** Folders that held replaced files, each after the folders inside it. */
    private final transient List<Replaced> folders = new ArrayList<>();
    /** This job holds {@link #folder} in {@link #WRITING}. */
    private transient boolean writing;
    /** The open {@link #WRITER_LOCK} whose lock this job holds; closing it lets go. */
    private transient FileChannel writerLock;
    /** Its real path, in {@link #LOCKED_FILES}. */
    private transient String lockedFile;

    public OverwriteOnCommitProtocol(String jobId, String path, boolean dynamicPartitionOverwrite) {
        super(jobId, path, dynamicPartitionOverwrite);
        this.folder = new Path(path).toUri().normalize().toString();
        this.path = path;
        // Never 0, the attempt of jobs written by Spark's own protocol.
        this.attempt = 1 + Math.floorMod(jobId.hashCode(), Integer.MAX_VALUE - 1);
    }

    /** The output committer works under this job's own {@code _temporary/<attempt>}. */
    private void ownAttempt(JobContext context) {
        context.getConfiguration().setInt(MRJobConfig.APPLICATION_ATTEMPT_ID, attempt);
    }

    private void forgetReplaced() {
        toReplace.clear();
        files.clear();
        folders.clear();
    }

    @Override
    public OutputCommitter setupCommitter(TaskAttemptContext context) {
        ownAttempt(context);
        return super.setupCommitter(context);
    }

    private RuntimeException writingNow() {
        return SqlSandbox.refusal("another statement is writing into the table folder '"
                + new Path(folder).getName() + "' now; run this one again when it has finished");
    }

    /**
     * Locks the folder's {@link #WRITER_LOCK} when the folder is on the local file system; false
     * when another process (a server sharing the warehouse) holds it.
     */
    private boolean lockAgainstOtherServers(JobContext jobContext) throws IOException {
        Path table = new Path(path);
        FileSystem fs = table.getFileSystem(jobContext.getConfiguration());
        if (!(fs instanceof LocalFileSystem)) {
            return true;
        }
        java.nio.file.Path dir = ((LocalFileSystem) fs).pathToFile(table).toPath();
        Files.createDirectories(dir);
        // One channel per file in this server: closing a second one on the same file (the folder
        // named another way, through a symbolic link) would let go of the first one's lock.
        String file = dir.toRealPath().resolve(WRITER_LOCK).toString();
        if (!LOCKED_FILES.add(file)) {
            return false;
        }
        FileChannel channel = null;
        try {
            channel = FileChannel.open(
                    java.nio.file.Path.of(file), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            if (channel.tryLock() == null) {
                channel.close();
                LOCKED_FILES.remove(file);
                return false;
            }
        } catch (IOException | RuntimeException | Error e) {
            if (channel != null) {
                channel.close();
            }
            LOCKED_FILES.remove(file);
            throw e;
        }
        writerLock = channel;
        lockedFile = file;
        return true;
    }

    @Override
    public void setupJob(JobContext jobContext) {
        if (!WRITING.add(folder)) {
            throw writingNow();
        }
        // Refused before writing is set: abortJob would clear the other writer's _temporary.
        boolean locked = false;
        try {
            locked = lockAgainstOtherServers(jobContext);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot lock the table folder for writing", e);
        } finally {
            if (!locked) {
                WRITING.remove(folder);
            }
        }
        if (!locked) {
            throw writingNow();
        }
        writing = true;
        // Spark calls setupJob before the block that aborts a failed job: a failure here must let
        // go itself, or the folder would stay refused until the server restarts.
        try {
            for (Replaced old : toReplace) {
                if (old.fs.exists(old.path)) {
                    note(old.fs, old.fs.getFileStatus(old.path));
                }
            }
            ownAttempt(jobContext);
            super.setupJob(jobContext);
        } catch (IOException e) {
            abortQuietly(jobContext, e);
            throw new UncheckedIOException("cannot list the files an overwrite replaces", e);
        } catch (RuntimeException | Error e) {
            abortQuietly(jobContext, e);
            throw e;
        }
    }

    private void abortQuietly(JobContext jobContext, Throwable cause) {
        try {
            abortJob(jobContext);
        } catch (RuntimeException | Error cleanup) {
            cause.addSuppressed(cleanup);
        }
    }

    private void letGo() {
        if (writing) {
            writing = false;
            try {
                if (writerLock != null) {
                    writerLock.close();
                }
            } catch (IOException e) {
                // The lock goes with the channel, which close releases even when it fails.
            } finally {
                writerLock = null;
                if (lockedFile != null) {
                    LOCKED_FILES.remove(lockedFile);
                    lockedFile = null;
                }
                WRITING.remove(folder);
            }
        }
    }

    /**
     * After an aborted job: the lock file, when it is all the folder holds (a failed CREATE TABLE
     * AS SELECT), so that the folder is as Spark left it and the table can be created again.
     */
    private void removeLoneLock(JobContext jobContext) {
        if (writerLock == null) {
            return;
        }
        try {
            Path table = new Path(path);
            FileSystem fs = table.getFileSystem(jobContext.getConfiguration());
            FileStatus[] entries = fs.exists(table) ? fs.listStatus(table) : new FileStatus[0];
            if (entries.length == 1 && entries[0].getPath().getName().equals(WRITER_LOCK)) {
                fs.delete(entries[0].getPath(), false);
            }
        } catch (IOException e) {
            // Left: a hidden file that readers skip.
        }
    }

    @Override
    public boolean deleteWithJob(FileSystem fs, Path path, boolean recursive) {
        // Listed in setupJob, once no other statement of this server writes into the folder: a
        // listing taken now could miss files another overwrite commits before this job starts.
        toReplace.add(new Replaced(fs, path));
        return true;
    }

    private void note(FileSystem fs, FileStatus status) throws IOException {
        String name = status.getPath().getName();
        if (!status.isDirectory()) {
            if (!MARKERS.contains(name) && !name.equals(WRITER_LOCK)) {
                files.add(new Replaced(fs, status.getPath()));
            }
            return;
        }
        if (name.equals(FileOutputCommitter.PENDING_DIR_NAME)) {
            return;  // working folders: the committer removes all of it when this job ends
        }
        for (FileStatus child : fs.listStatus(status.getPath())) {
            note(fs, child);
        }
        if (!status.getPath().toUri().normalize().toString().equals(folder)) {
            folders.add(new Replaced(fs, status.getPath()));  // the table's folder itself stays
        }
    }

    @Override
    public void commitJob(JobContext jobContext, scala.collection.immutable.Seq<FileCommitProtocol.TaskCommitMessage> taskCommits) {
        ownAttempt(jobContext);
        super.commitJob(jobContext, taskCommits);
        try {
            for (Replaced old : files) {
                if (old.fs.exists(old.path) && !old.fs.delete(old.path, false)) {
                    throw new IOException("delete returned false");
                }
            }
            for (Replaced old : folders) {
                if (old.fs.exists(old.path) && old.fs.listStatus(old.path).length == 0) {
                    old.fs.delete(old.path, false);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the rows an overwrite replaced", e);
        } finally {
            // Counted once the old files are gone too: a statement that starts before that
            // could list them again.
            TableChanges.changed();
        }
        forgetReplaced();
        letGo();  // a failed commit is followed by abortJob, which cleans up and lets go
    }

    @Override
    public void abortJob(JobContext jobContext) {
        forgetReplaced();
        if (!writing) {
            return;  // refused by setupJob: the folder's _temporary is the other statement's
        }
        try {
            ownAttempt(jobContext);
            super.abortJob(jobContext);
            removeLoneLock(jobContext);
        } finally {
            letGo();
        }
    }
}
