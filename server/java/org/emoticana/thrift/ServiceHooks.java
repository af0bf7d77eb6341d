package org.emoticana.thrift;

import java.lang.reflect.Field;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

import org.apache.hive.service.cli.CLIService;
import org.apache.hive.service.cli.GetInfoType;
import org.apache.hive.service.cli.GetInfoValue;
import org.apache.hive.service.cli.HiveSQLException;
import org.apache.hive.service.cli.OperationHandle;
import org.apache.hive.service.cli.OperationState;
import org.apache.hive.service.cli.SessionHandle;
import org.apache.hive.service.cli.operation.Operation;
import org.apache.hive.service.cli.operation.OperationManager;
import org.apache.hive.service.cli.session.HiveSession;
import org.apache.hive.service.cli.session.HiveSessionImpl;
import org.apache.hive.service.cli.thrift.ThriftCLIService;
import org.apache.hive.service.rpc.thrift.TColumn;
import org.apache.hive.service.rpc.thrift.TColumnValue;
import org.apache.hive.service.rpc.thrift.TExecuteStatementReq;
import org.apache.hive.service.rpc.thrift.TExecuteStatementResp;
import org.apache.hive.service.rpc.thrift.TFetchOrientation;
import org.apache.hive.service.rpc.thrift.TFetchResultsReq;
import org.apache.hive.service.rpc.thrift.TFetchResultsResp;
import org.apache.hive.service.rpc.thrift.TGetColumnsReq;
import org.apache.hive.service.rpc.thrift.TGetColumnsResp;
import org.apache.hive.service.rpc.thrift.TGetFunctionsReq;
import org.apache.hive.service.rpc.thrift.TGetFunctionsResp;
import org.apache.hive.service.rpc.thrift.TGetInfoReq;
import org.apache.hive.service.rpc.thrift.TGetInfoResp;
import org.apache.hive.service.rpc.thrift.TGetInfoValue;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusReq;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusResp;
import org.apache.hive.service.rpc.thrift.TGetSchemasReq;
import org.apache.hive.service.rpc.thrift.TGetSchemasResp;
import org.apache.hive.service.rpc.thrift.TGetTablesReq;
import org.apache.hive.service.rpc.thrift.TGetTablesResp;
import org.apache.hive.service.rpc.thrift.TOpenSessionReq;
import org.apache.hive.service.rpc.thrift.TOpenSessionResp;
import org.apache.hive.service.rpc.thrift.TOperationState;
import org.apache.hive.service.rpc.thrift.TRowSet;
import org.apache.hive.service.rpc.thrift.TStatus;
import org.apache.hive.service.rpc.thrift.TStatusCode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.hive.thriftserver.server.SparkSQLOperationManager;
import org.apache.thrift.TBase;
import org.apache.thrift.TException;
import org.emoticana.sandbox.NamePatterns;
import org.emoticana.sandbox.SqlSandbox;
import org.emoticana.storage.TableChanges;

/**
 * What Emoticana's Thrift services do differently from HiveServer2's (the binary and the HTTP one
 * share it): a failed statement's user error reaches the client as one line, without the Java
 * stack ({@link UserErrors}); getFunctions lists each function once and reads the JDBC pattern as
 * JDBC defines it ({@link FunctionListing}); a session whose opening settings the SQL sandbox
 * refuses is never opened ({@link SqlSandbox#openingRefusal}); the JDBC metadata calls take
 * patterns that cannot hold a core or the metastore ({@link NamePatterns}); a GetInfo the session
 * cannot answer is an error the client reads, not a dropped connection; a FetchResults answer
 * stays small enough for every client to read ({@link #fetchResults}), and a statement stopped by
 * its time cap or cancelled says so in one line.
 */
final class ServiceHooks {
    private static final TStatus OK = new TStatus(TStatusCode.SUCCESS_STATUS);

    private ServiceHooks() {
    }

    /**
     * The answer to an OpenSession whose settings the SQL sandbox refuses, in one line; null when
     * they pass and HiveServer2 may open the session.
     */
    static TOpenSessionResp refuseOpening(SparkSession root, TOpenSessionReq req) {
        String reason = SqlSandbox.openingRefusal(root, req.getConfiguration());
        if (reason == null) {
            return null;
        }
        TOpenSessionResp resp = new TOpenSessionResp();
        resp.setStatus(refusal("emoticana: " + reason));
        return resp;
    }

    /** A refusal before anything ran: logged and answered as one line, an access rule's state. */
    private static TStatus refusal(String message) {
        UserErrors.LOG.warn(message);
        TStatus status = new TStatus(TStatusCode.ERROR_STATUS);
        status.setErrorMessage(message);
        status.setSqlState("42000");
        return status;
    }

    /** The first refusal among a metadata call's patterns, as the error status, or null. */
    static TStatus refusePatterns(String... argumentsAndPatterns) {
        for (int i = 0; i < argumentsAndPatterns.length; i += 2) {
            String reason = NamePatterns.refusal(argumentsAndPatterns[i], argumentsAndPatterns[i + 1], false);
            if (reason != null) {
                return refusal("emoticana: " + reason + " (JDBC metadata call)");
            }
        }
        return null;
    }

    static TStatus refusePatterns(TGetSchemasReq req) {
        return refusePatterns("catalog", req.getCatalogName(), "schema", req.getSchemaName());
    }

    static TStatus refusePatterns(TGetTablesReq req) {
        return refusePatterns("catalog", req.getCatalogName(), "schema", req.getSchemaName(), "table",
                req.getTableName());
    }

    static TStatus refusePatterns(TGetColumnsReq req) {
        return refusePatterns("catalog", req.getCatalogName(), "schema", req.getSchemaName(), "table",
                req.getTableName(), "column", req.getColumnName());
    }

    /**
     * What comes before a statement's first word: space, comments and opening parentheses.
     * Possessive: a statement of many comment marks cannot make the match backtrack.
     */
    private static final String LEADING = "(?:\\s|--[^\\n]*+(?:\\n|$)|/\\*.*?\\*/|\\()*+";

    /**
     * A statement whose first word is one of these reads tables and changes none (a write it
     * holds, as in {@code WITH ... INSERT}, is counted by the commit protocol); any other statement
     * may change a table's definition or files without a commit (DROP, CREATE, ALTER, TRUNCATE).
     */
    private static final Pattern READS = Pattern.compile(
            LEADING + "(?:SELECT|WITH|VALUES|TABLE|FROM|SHOW|DESC|DESCRIBE|EXPLAIN|SET|RESET|USE|LIST)\\b",
            Pattern.CASE_INSENSITIVE | Pattern.DOTALL);
    /** Asynchronous statements that may change tables and have not been seen to end. */
    private static final Set<OperationHandle> CHANGING = ConcurrentHashMap.newKeySet();
    private static final Set<TOperationState> ENDED = EnumSet.of(TOperationState.FINISHED_STATE,
            TOperationState.ERROR_STATE, TOperationState.CANCELED_STATE, TOperationState.CLOSED_STATE,
            TOperationState.TIMEDOUT_STATE);

    static boolean mayChangeTables(String statement) {
        return statement == null || !READS.matcher(statement).lookingAt();
    }

    /**
     * A statement whose first word is one of these may change a table's files without a commit
     * (TRUNCATE, ALTER TABLE ... DROP PARTITION, LOAD DATA, MSCK REPAIR), which Spark's own
     * refresh of a cached table misses once the session has forgotten its tables.
     */
    private static final Pattern FILES_WITHOUT_COMMIT = Pattern.compile(
            LEADING + "(?:TRUNCATE|ALTER|LOAD|MSCK|REPAIR)\\b",
            Pattern.CASE_INSENSITIVE | Pattern.DOTALL);
    /** Asynchronous statements of that kind that have not been seen to end. */
    private static final Set<OperationHandle> CHANGING_FILES = ConcurrentHashMap.newKeySet();

    /** Each session's count of table changes ({@link TableChanges}) at its last statement. */
    private static final Map<SparkSession, Long> SEEN = Collections.synchronizedMap(new WeakHashMap<>());

    /**
     * A statement reads the tables as they are when it starts, as far as this server's changes go.
     * A Spark session keeps every table it resolved, with the list of its files, until that
     * session itself writes or refreshes it: another session's INSERT stayed unseen (a dashboard's
     * connection gave old counts) and its INSERT OVERWRITE failed the next read with a missing
     * file. So a session forgets its resolved tables when a write has committed, or a statement
     * that may change tables has started or ended, since its last statement. Files that change
     * outside the server (recordings added to a binaryFile table's
     * folder) are seen within spark.sql.metadataCacheTTLSeconds (server/spark.py): forgetting
     * on every statement would list every folder of a table again for each, a Spark job of its
     * own for a table of many folders.
     */
    private static void forgetChangedTables(CLIService cli, SessionHandle handle) {
        SparkSession session = sparkSession(cli, handle);
        Long now = TableChanges.count();
        if (session != null && !now.equals(SEEN.put(session, now))) {
            session.sessionState().catalog().invalidateAllCachedTables();
        }
    }

    /**
     * After a statement that changed a table's files without a commit: cached tables (CACHE TABLE)
     * list their folders again and are cached anew when next read. TRUNCATE and ALTER TABLE
     * refresh a cached table through the table their session resolves, which is not the one the
     * cache holds once a session has forgotten its tables: the cache kept the deleted files, and
     * every read of the table failed in every session until UNCACHE. (A commit refreshes the
     * caches of the folder it wrote itself.)
     */
    private static void refreshCachedTables(SparkSession session) {
        if (!(session instanceof org.apache.spark.sql.classic.SparkSession classic)
                || classic.sharedState().cacheManager().isEmpty()) {
            return;
        }
        // The folders SQL reads tables from: the sandbox's roots, else the warehouse.
        String roots = classic.sparkContext().conf().get(SqlSandbox.KEY_READ_ROOTS,
                classic.sessionState().conf().warehousePath());
        try {
            for (String root : roots.split(",")) {
                classic.sharedState().cacheManager().recacheByPath(classic, root);
            }
        } catch (RuntimeException e) {
            // The statement's own outcome stands; a cached table left stale fails its reads, and
            // UNCACHE TABLE or REFRESH TABLE mends it.
            ThriftCLIService.LOG.warn("emoticana: cannot refresh the cached tables: " + e);
        }
    }

    /** The Spark session of a HiveServer2 session, or null when it has none (any more). */
    private static SparkSession sparkSession(CLIService cli, SessionHandle handle) {
        OperationManager manager = cli.getSessionManager().getOperationManager();
        return manager instanceof SparkSQLOperationManager spark ? spark.sessionToContexts().get(handle) : null;
    }

    /** HiveServer2's ExecuteStatement, but a user error becomes one line (PyHive runs statements so). */
    static TExecuteStatementResp executeStatement(CLIService cli, TExecuteStatementReq req) {
        TExecuteStatementResp resp = new TExecuteStatementResp();
        try {
            SessionHandle session = new SessionHandle(req.getSessionHandle());
            boolean changing = mayChangeTables(req.getStatement());
            boolean changingFiles = req.getStatement() != null
                    && FILES_WITHOUT_COMMIT.matcher(req.getStatement()).lookingAt();
            if (changing) {
                TableChanges.changed();
            }
            forgetChangedTables(cli, session);
            OperationHandle operation;
            if (req.isRunAsync()) {
                operation = cli.executeStatementAsync(session, req.getStatement(), req.getConfOverlay(),
                        req.getQueryTimeout());
                if (changing) {
                    CHANGING.add(operation);
                }
                if (changingFiles) {
                    CHANGING_FILES.add(operation);
                }
            } else {
                try {
                    operation = cli.executeStatement(session, req.getStatement(), req.getConfOverlay(),
                            req.getQueryTimeout());
                } finally {
                    if (changing) {
                        TableChanges.changed();
                    }
                    if (changingFiles) {
                        refreshCachedTables(sparkSession(cli, session));
                    }
                }
            }
            resp.setOperationHandle(operation.toTOperationHandle());
            resp.setStatus(OK);
        } catch (Exception e) {
            String message = UserErrors.userMessage(e);
            if (message != null) {
                UserErrors.log(message, e);
                resp.setStatus(UserErrors.status(message, e));
            } else {
                ThriftCLIService.LOG.warn("Error executing statement: ", e);
                resp.setStatus(HiveSQLException.toTStatus(e));
            }
        }
        return resp;
    }

    /**
     * What one FetchResults answer may carry. A Thrift client refuses a message over its maximum
     * size, 100 MB for the Hive JDBC driver (and beeline), and its connection is unusable after:
     * a thousand rows of {@code mfcc(...)}, 12,943 numbers each as text, are more.
     */
    static final long FETCH_BYTES = 16L << 20;
    /** The most rows an answer takes from the result at a time, before it weighs them. */
    static final long MOST_ROWS_A_STEP = 64;
    /** Each result's largest row so far, in bytes; gone with the operation. */
    private static final Map<Operation, Long> ROW_BYTES = Collections.synchronizedMap(new WeakHashMap<>());

    /** HiveServer2's FetchResults, which the hooks call with the request they adjusted. */
    interface Fetch {
        TFetchResultsResp fetch(TFetchResultsReq req) throws TException;
    }

    /**
     * HiveServer2's FetchResults with about {@link #FETCH_BYTES} of rows at most an answer: the
     * rows are taken from the result a few at a time (1, 2, 4 ... {@link #MOST_ROWS_A_STEP}, and
     * no more than the bytes left allow at the largest row seen) and weighed, until the client's
     * count or the bytes are reached. A client asks again until an answer has no rows (PyHive, the
     * JDBC driver), so fewer rows than it asked for lose none. A stopped statement's answer says
     * why in one line.
     */
    static TFetchResultsResp fetchResults(CLIService cli, TFetchResultsReq req, Fetch original) throws TException {
        Operation operation = operation(cli, req.getOperationHandle());
        if (operation == null || req.getFetchType() != 0 || req.getMaxRows() <= 0) {
            return original.fetch(req);  // logs, HiveServer2's own error about the handle, or no rows
        }
        String stopped = stoppedMessage(cli, operation);
        if (stopped != null) {
            TFetchResultsResp resp = new TFetchResultsResp();
            resp.setStatus(stoppedStatus(operation, stopped));
            return resp;
        }
        long asked = req.getMaxRows();
        long largest = ROW_BYTES.getOrDefault(operation, 0L);
        long left = FETCH_BYTES;
        long rows = 0;
        long step = 1;
        TFetchResultsResp answer = null;
        while (true) {
            long want = Math.min(asked - rows, largest == 0 ? step : Math.max(1, Math.min(step, left / largest)));
            TFetchResultsReq part = req.deepCopy();
            part.setMaxRows(want);
            if (answer != null) {
                part.setOrientation(TFetchOrientation.FETCH_NEXT);  // a FETCH_FIRST goes on from there
            }
            TFetchResultsResp resp = original.fetch(part);
            boolean ok = resp.isSetStatus() && resp.getStatus().getStatusCode() == TStatusCode.SUCCESS_STATUS
                    && resp.isSetResults() && !resp.getResults().isSetBinaryColumns();
            if (answer == null) {
                answer = resp;
                if (!ok) {
                    return resp;
                }
            } else if (!ok) {
                break;  // the rows taken so far are answered; the next fetch meets the error again
            } else {
                append(answer.getResults(), resp.getResults());
            }
            long[] sizes = rowBytes(resp.getResults());
            for (long size : sizes) {
                left -= size;
                largest = Math.max(largest, size);
            }
            rows += sizes.length;
            if (sizes.length < want || rows >= asked || left <= 0) {
                break;
            }
            step = Math.min(2 * want, MOST_ROWS_A_STEP);
        }
        if (largest > 0) {
            ROW_BYTES.put(operation, largest);
        }
        return answer;
    }

    private static Operation operation(CLIService cli, org.apache.hive.service.rpc.thrift.TOperationHandle handle) {
        try {
            return cli.getSessionManager().getOperationManager().getOperation(new OperationHandle(handle));
        } catch (HiveSQLException | RuntimeException unknown) {
            return null;
        }
    }

    /**
     * A column's typed part (TStringColumn, TI64Column, ...): each holds its values as field 1 and
     * its null bits as field 2, so one generic access serves every type.
     */
    private static final short VALUES = 1;
    private static final short NULLS = 2;

    @SuppressWarnings("rawtypes")
    private static TBase typed(TColumn column) {
        return (TBase) column.getFieldValue();
    }

    @SuppressWarnings("unchecked")
    private static Object field(TColumn column, short id) {
        TBase typed = typed(column);
        return typed.getFieldValue(typed.fieldForId(id));
    }

    @SuppressWarnings("unchecked")
    private static void setField(TColumn column, short id, Object value) {
        TBase typed = typed(column);
        typed.setFieldValue(typed.fieldForId(id), value);
    }

    /** A column's values as a list, whatever their type. */
    @SuppressWarnings("unchecked")
    private static List<Object> values(TColumn column) {
        return (List<Object>) field(column, VALUES);
    }

    private static byte[] nulls(TColumn column) {
        byte[] nulls = (byte[]) field(column, NULLS);
        return nulls == null ? new byte[0] : nulls;
    }

    /**
     * {@code more}'s rows after {@code rows}'s: values one after the other, null bits shifted. Into
     * new lists: a metadata operation's answers are views of one list (Hive's subList), which an
     * addAll would shift under the next answer.
     */
    private static void append(TRowSet rows, TRowSet more) {
        if (rows.isSetRows() && more.isSetRows()) {
            List<org.apache.hive.service.rpc.thrift.TRow> all = new java.util.ArrayList<>(rows.getRows());
            all.addAll(more.getRows());
            rows.setRows(all);
        }
        if (!rows.isSetColumns() || !more.isSetColumns()) {
            return;
        }
        for (int c = 0; c < rows.getColumns().size(); c++) {
            TColumn column = rows.getColumns().get(c);
            TColumn next = more.getColumns().get(c);
            List<Object> values = new java.util.ArrayList<>(values(column));
            // Null bits as Hive writes them: bit i of byte i / 8 for row i, lowest bit first.
            BitSet bits = BitSet.valueOf(nulls(column));
            BitSet nextBits = BitSet.valueOf(nulls(next));
            for (int i = nextBits.nextSetBit(0); i >= 0; i = nextBits.nextSetBit(i + 1)) {
                bits.set(values.size() + i);
            }
            values.addAll(values(next));
            setField(column, VALUES, values);
            setField(column, NULLS, Arrays.copyOf(bits.toByteArray(), 1 + bits.length() / 8));
        }
    }

    /** About what each row weighs on the wire: text and bytes as long as they are, else 8 a value. */
    private static long[] rowBytes(TRowSet rows) {
        if (rows.isSetColumns() && !rows.getColumns().isEmpty()) {
            long[] sizes = new long[values(rows.getColumns().get(0)).size()];
            for (TColumn column : rows.getColumns()) {
                List<Object> values = values(column);
                for (int i = 0; i < sizes.length && i < values.size(); i++) {
                    Object value = values.get(i);
                    sizes[i] += value instanceof String text ? 4 + text.length()
                            : value instanceof java.nio.ByteBuffer bytes ? 4 + bytes.remaining() : 8;
                }
            }
            return sizes;
        }
        if (rows.isSetRows()) {
            long[] sizes = new long[rows.getRows().size()];
            for (int i = 0; i < sizes.length; i++) {
                for (TColumnValue value : rows.getRows().get(i).getColVals()) {
                    sizes[i] += value.isSetStringVal() && value.getStringVal().isSetValue()
                            ? 4 + value.getStringVal().getValue().length() : 8;
                }
            }
            return sizes;
        }
        return new long[0];
    }

    /** Why a statement ended without its result, when a time cap or a cancel stopped it; else null. */
    private static String stoppedMessage(CLIService cli, Operation operation) {
        OperationState state = operation.getStatus().getState();
        if (state == OperationState.TIMEDOUT) {
            SparkSession session = sparkSession(cli, operation.getParentSession().getSessionHandle());
            String cap = session == null ? "?" : session.conf().get("spark.sql.thriftServer.queryTimeout", "?");
            return "emoticana: the statement ran past its time cap and was stopped "
                    + "(spark.sql.thriftServer.queryTimeout is " + cap + " in this session, "
                    + "or the client's query timeout if shorter)";
        }
        if (state == OperationState.CANCELED) {
            return "emoticana: the statement was cancelled before it finished";
        }
        return null;
    }

    private static TStatus stoppedStatus(Operation operation, String message) {
        UserErrors.LOG.warn(message);
        TStatus status = new TStatus(TStatusCode.ERROR_STATUS);
        status.setErrorMessage(message);
        // ODBC's states: timeout expired, operation canceled.
        status.setSqlState(operation.getStatus().getState() == OperationState.TIMEDOUT ? "HYT00" : "HY008");
        return status;
    }

    /**
     * After HiveServer2's GetOperationStatus: a failed operation's user error as one line (beeline
     * and JDBC run statements asynchronously, and HiveServer2 puts the whole stack in the message);
     * a statement stopped by its time cap, which HiveServer2 leaves without a message, gets one.
     */
    static TGetOperationStatusResp operationStatus(CLIService cli, TGetOperationStatusReq req,
            TGetOperationStatusResp resp) {
        if (resp.isSetOperationState() && ENDED.contains(resp.getOperationState())
                && CHANGING.remove(new OperationHandle(req.getOperationHandle()))) {
            TableChanges.changed();  // as it ends too: a session's statement meanwhile saw it half done
            Operation ended = operation(cli, req.getOperationHandle());
            if (CHANGING_FILES.remove(new OperationHandle(req.getOperationHandle())) && ended != null) {
                refreshCachedTables(sparkSession(cli, ended.getParentSession().getSessionHandle()));
            }
        }
        if (resp.isSetOperationState() && resp.getOperationState() == TOperationState.TIMEDOUT_STATE
                && !resp.isSetErrorMessage()) {
            Operation operation = operation(cli, req.getOperationHandle());
            String stopped = operation == null ? null : stoppedMessage(cli, operation);
            if (stopped != null) {
                resp.setErrorMessage(stopped);
                resp.setSqlState("HYT00");
            }
            return resp;
        }
        if (!resp.isSetErrorMessage()) {
            return resp;
        }
        try {
            HiveSQLException error = cli.getOperationStatus(new OperationHandle(req.getOperationHandle()))
                    .getOperationException();
            String message = error == null ? null : UserErrors.userMessage(error);
            if (message != null) {
                UserErrors.log(message, error);
                resp.setErrorMessage(message);
                TStatus status = UserErrors.status(message, error);
                if (status.isSetSqlState()) {
                    resp.setSqlState(status.getSqlState());
                }
            }
        } catch (HiveSQLException gone) {
            // The operation was closed in between: the answer HiveServer2 gave stands.
        }
        return resp;
    }

    /**
     * After HiveServer2's GetInfo, whose answer must carry a value. HiveServer2 sends none for an
     * info type it does not know (most of them; ODBC drivers ask for several), and an empty one
     * for the lengths it does know (it converts only text values): writing either answer fails,
     * and the caller's connection is closed with no answer at all. Lengths are sent as lengths;
     * an unknown type becomes an error of one line, with an empty value to keep the answer valid.
     */
    static TGetInfoResp info(CLIService cli, TGetInfoReq req, TGetInfoResp resp) {
        if (resp.isSetInfoValue() && resp.getInfoValue().isSet()) {
            return resp;
        }
        resp.setInfoValue(TGetInfoValue.stringValue(""));
        SessionHandle session;
        try {
            session = new SessionHandle(req.getSessionHandle());
        } catch (RuntimeException malformed) {
            return resp; // HiveServer2's error about the handle stands
        }
        if (resp.isSetStatus() && resp.getStatus().getStatusCode() == TStatusCode.SUCCESS_STATUS) {
            try {
                GetInfoValue value = cli.getInfo(session, GetInfoType.getGetInfoType(req.getInfoType()));
                resp.setInfoValue(TGetInfoValue.lenValue(value.getIntValue()));
                return resp;
            } catch (HiveSQLException e) {
                // Gone in between (the session closed): answered as unknown below.
            }
        }
        String message = "emoticana: this server does not answer GetInfo " + req.getInfoType();
        ThriftCLIService.LOG.info(message);
        TStatus status = new TStatus(TStatusCode.ERROR_STATUS);
        status.setErrorMessage(message);
        status.setSqlState("HYC00"); // optional feature not implemented
        resp.setStatus(status);
        return resp;
    }

    /** getFunctions through {@link FunctionListing} instead of Spark's operation. */
    static TGetFunctionsResp functions(CLIService cli, TGetFunctionsReq req) {
        TGetFunctionsResp resp = new TGetFunctionsResp();
        TStatus refused = refusePatterns("catalog", req.getCatalogName(), "schema", req.getSchemaName(),
                "function", req.getFunctionName());
        if (refused != null) {
            resp.setStatus(refused);
            return resp;
        }
        try {
            SessionHandle handle = new SessionHandle(req.getSessionHandle());
            HiveSession session = cli.getSessionManager().getSession(handle);
            OperationManager manager = cli.getSessionManager().getOperationManager();
            SparkSQLOperationManager spark = (SparkSQLOperationManager) manager;
            SparkSession sparkSession = sparkSession(cli, handle);
            if (sparkSession == null) {
                throw new HiveSQLException("no Spark session for " + handle);
            }
            FunctionListing listing = new FunctionListing(sparkSession, session, req.getCatalogName(),
                    req.getSchemaName(), req.getFunctionName());
            // Registered as the operation manager registers its own, so that the client can
            // fetch, and close it; and with the session, which closes it when it ends.
            spark.handleToOperation().put(listing.getHandle(), listing);
            try {
                listing.run();
            } catch (HiveSQLException e) {
                spark.handleToOperation().remove(listing.getHandle());
                throw e;
            }
            sessionOperations(session).add(listing.getHandle());
            resp.setOperationHandle(listing.getHandle().toTOperationHandle());
            resp.setStatus(OK);
        } catch (Exception e) {
            ThriftCLIService.LOG.warn("Error getting functions: ", e);
            resp.setStatus(HiveSQLException.toTStatus(e));
        }
        return resp;
    }

    @SuppressWarnings("unchecked")
    private static Set<OperationHandle> sessionOperations(HiveSession session) throws ReflectiveOperationException {
        Field field = HiveSessionImpl.class.getDeclaredField("opHandleSet");
        field.setAccessible(true);
        return (Set<OperationHandle>) field.get(session);
    }
}
