package org.emoticana.thrift;

import java.lang.reflect.Field;
import java.util.Collections;
import java.util.EnumSet;
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
import org.apache.hive.service.cli.SessionHandle;
import org.apache.hive.service.cli.operation.OperationManager;
import org.apache.hive.service.cli.session.HiveSession;
import org.apache.hive.service.cli.session.HiveSessionImpl;
import org.apache.hive.service.cli.thrift.ThriftCLIService;
import org.apache.hive.service.rpc.thrift.TExecuteStatementReq;
import org.apache.hive.service.rpc.thrift.TExecuteStatementResp;
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
import org.apache.hive.service.rpc.thrift.TStatus;
import org.apache.hive.service.rpc.thrift.TStatusCode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.hive.thriftserver.server.SparkSQLOperationManager;
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
 * cannot answer is an error the client reads, not a dropped connection.
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
     * A statement whose first word is one of these reads tables and changes none (a write it
     * holds, as in {@code WITH ... INSERT}, is counted by the commit protocol); any other statement
     * may change a table's definition or files without a commit (DROP, CREATE, ALTER, TRUNCATE).
     */
    private static final Pattern READS = Pattern.compile(
            // Possessive: a statement of many comment marks cannot make the match backtrack.
            "(?:\\s|--[^\\n]*+(?:\\n|$)|/\\*.*?\\*/|\\()*+"
                    + "(?:SELECT|WITH|VALUES|TABLE|FROM|SHOW|DESC|DESCRIBE|EXPLAIN|SET|RESET|USE|LIST)\\b",
            Pattern.CASE_INSENSITIVE | Pattern.DOTALL);
    /** Asynchronous statements that may change tables and have not been seen to end. */
    private static final Set<OperationHandle> CHANGING = ConcurrentHashMap.newKeySet();
    private static final Set<TOperationState> ENDED = EnumSet.of(TOperationState.FINISHED_STATE,
            TOperationState.ERROR_STATE, TOperationState.CANCELED_STATE, TOperationState.CLOSED_STATE,
            TOperationState.TIMEDOUT_STATE);

    static boolean mayChangeTables(String statement) {
        return statement == null || !READS.matcher(statement).lookingAt();
    }

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
            } else {
                try {
                    operation = cli.executeStatement(session, req.getStatement(), req.getConfOverlay(),
                            req.getQueryTimeout());
                } finally {
                    if (changing) {
                        TableChanges.changed();
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
     * After HiveServer2's GetOperationStatus: a failed operation's user error as one line (beeline
     * and JDBC run statements asynchronously, and HiveServer2 puts the whole stack in the message).
     */
    static TGetOperationStatusResp operationStatus(CLIService cli, TGetOperationStatusReq req,
            TGetOperationStatusResp resp) {
        if (resp.isSetOperationState() && ENDED.contains(resp.getOperationState())
                && CHANGING.remove(new OperationHandle(req.getOperationHandle()))) {
            TableChanges.changed();  // as it ends too: a session's statement meanwhile saw it half done
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
