package org.emoticana.thrift;

import org.apache.hive.service.cli.CLIService;
import org.apache.hive.service.cli.thrift.ThriftHttpCLIService;
import org.apache.hive.service.rpc.thrift.TExecuteStatementReq;
import org.apache.hive.service.rpc.thrift.TExecuteStatementResp;
import org.apache.hive.service.rpc.thrift.TGetFunctionsReq;
import org.apache.hive.service.rpc.thrift.TGetFunctionsResp;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusReq;
import org.apache.hive.service.rpc.thrift.TGetOperationStatusResp;
import org.apache.thrift.TException;

/** HiveServer2's HTTP Thrift service with {@link ServiceHooks}. */
public class HttpService extends ThriftHttpCLIService {
    public HttpService(CLIService cliService, boolean sniHostCheckEnabled) {
        super(cliService, sniHostCheckEnabled);
    }

    @Override
    public TExecuteStatementResp ExecuteStatement(TExecuteStatementReq req) {
        return ServiceHooks.executeStatement(cliService, req);
    }

    @Override
    public TGetOperationStatusResp GetOperationStatus(TGetOperationStatusReq req) throws TException {
        return ServiceHooks.operationStatus(cliService, req, super.GetOperationStatus(req));
    }

    @Override
    public TGetFunctionsResp GetFunctions(TGetFunctionsReq req) {
        return ServiceHooks.functions(cliService, req);
    }
}
