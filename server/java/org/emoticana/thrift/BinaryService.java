package org.emoticana.thrift;

import java.lang.reflect.Field;

import org.apache.hive.service.cli.CLIService;
import org.apache.hive.service.cli.thrift.ThriftBinaryCLIService;
import org.apache.hive.service.rpc.thrift.TExecuteStatementReq;
import org.apache.hive.service.rpc.thrift.TExecuteStatementResp;
import org.apache.hive.service.rpc.thrift.TFetchResultsReq;
import org.apache.hive.service.rpc.thrift.TFetchResultsResp;
import org.apache.hive.service.rpc.thrift.TGetColumnsReq;
import org.apache.hive.service.rpc.thrift.TGetColumnsResp;
import org.apache.hive.service.rpc.thrift.TGetFunctionsReq;
import org.apache.hive.service.rpc.thrift.TGetFunctionsResp;
import org.apache.hive.service.rpc.thrift.TGetInfoReq;
import org.apache.hive.service.rpc.thrift.TGetInfoResp;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusReq;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusResp;
import org.apache.hive.service.rpc.thrift.TGetSchemasReq;
import org.apache.hive.service.rpc.thrift.TGetSchemasResp;
import org.apache.hive.service.rpc.thrift.TGetTablesReq;
import org.apache.hive.service.rpc.thrift.TGetTablesResp;
import org.apache.hive.service.rpc.thrift.TStatus;
import org.apache.hive.service.rpc.thrift.TOpenSessionReq;
import org.apache.hive.service.rpc.thrift.TOpenSessionResp;
import org.apache.spark.sql.SparkSession;
import org.apache.thrift.TException;
import org.apache.thrift.TProcessor;
import org.apache.thrift.TProcessorFactory;
import org.apache.thrift.server.TServer;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.TTransport;
import org.emoticana.auth.ClientAddress;

/**
 * HiveServer2's binary Thrift service with {@link ServiceHooks}, which also tells the password
 * provider each login's client address ({@link ClientAddress}).
 */
public class BinaryService extends ThriftBinaryCLIService {
    private final SparkSession root;

    public BinaryService(CLIService cliService, SparkSession root) {
        super(cliService);
        this.root = root;
    }

    @Override
    protected void initializeServer() {
        super.initializeServer();
        try {
            // The thread pool server asks for a connection's processor before the SASL handshake,
            // on the thread that then runs the handshake: the one place that sees the socket.
            Field factoryField = TServer.class.getDeclaredField("processorFactory_");
            factoryField.setAccessible(true);
            TProcessorFactory original = (TProcessorFactory) factoryField.get(server);
            factoryField.set(server, new TProcessorFactory(null) {
                @Override
                public TProcessor getProcessor(TTransport client) {
                    ClientAddress.set(client instanceof TSocket socket && socket.getSocket() != null
                            ? socket.getSocket().getInetAddress().getHostAddress() : null);
                    return original.getProcessor(client);
                }
            });
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("emoticana: cannot hook HiveServer2's connections: " + e, e);
        }
    }

    @Override
    public TOpenSessionResp OpenSession(TOpenSessionReq req) throws TException {
        TOpenSessionResp refused = ServiceHooks.refuseOpening(root, req);
        return refused != null ? refused : super.OpenSession(req);
    }

    @Override
    public TExecuteStatementResp ExecuteStatement(TExecuteStatementReq req) {
        return ServiceHooks.executeStatement(cliService, req);
    }

    @Override
    public TFetchResultsResp FetchResults(TFetchResultsReq req) throws TException {
        return ServiceHooks.fetchResults(cliService, req, super::FetchResults);
    }

    @Override
    public TGetInfoResp GetInfo(TGetInfoReq req) throws TException {
        return ServiceHooks.info(cliService, req, super.GetInfo(req));
    }

    @Override
    public TGetOperationStatusResp GetOperationStatus(TGetOperationStatusReq req) throws TException {
        return ServiceHooks.operationStatus(cliService, req, super.GetOperationStatus(req));
    }

    @Override
    public TGetSchemasResp GetSchemas(TGetSchemasReq req) throws TException {
        TStatus refused = ServiceHooks.refusePatterns(req);
        return refused != null ? new TGetSchemasResp(refused) : super.GetSchemas(req);
    }

    @Override
    public TGetTablesResp GetTables(TGetTablesReq req) throws TException {
        TStatus refused = ServiceHooks.refusePatterns(req);
        return refused != null ? new TGetTablesResp(refused) : super.GetTables(req);
    }

    @Override
    public TGetColumnsResp GetColumns(TGetColumnsReq req) throws TException {
        TStatus refused = ServiceHooks.refusePatterns(req);
        return refused != null ? new TGetColumnsResp(refused) : super.GetColumns(req);
    }

    @Override
    public TGetFunctionsResp GetFunctions(TGetFunctionsReq req) {
        return ServiceHooks.functions(cliService, req);
    }
}
